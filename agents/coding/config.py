"""Which coding agent builds a task and how it may run (agents/coding/runners.py): a typed
configuration, made from the worker's ``FORGEFLOW_*`` settings by :func:`config_for`, and
checked against the worker by :func:`check_available`.

The variables (empty means unset):

* ``FORGEFLOW_CODING_AGENT``: builtin (default; the model provider's model, or
  FORGEFLOW_AGENT_MODEL, with file tools: it needs FORGEFLOW_LLM_*), claude-code, codex or command;
* ``FORGEFLOW_AGENT_COMMAND``: command: the argv template, split like a shell would (never
  run by one), with ``{prompt_file}``, ``{workdir}`` and ``{model}``; claude-code, codex: the
  program and any arguments before forgeflow's, when FORGEFLOW_AGENT_EXECUTABLE is unset;
* ``FORGEFLOW_AGENT_EXECUTABLE``: claude-code, codex: the program, one path (default:
  ``claude``, ``codex`` on PATH);
* ``FORGEFLOW_AGENT_MODEL``, ``FORGEFLOW_AGENT_MAX_TURNS`` (claude-code only);
* ``FORGEFLOW_AGENT_TIMEOUT_SECONDS`` (1800), ``FORGEFLOW_AGENT_MEMORY_MB`` (4096);
* ``FORGEFLOW_AGENT_NETWORK`` (false): the agent's own network (its model's API needs it);
* ``FORGEFLOW_AGENT_PASS_ENV``: comma-separated names of the worker's variables the agent
  gets (``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``...), and none other;
* ``FORGEFLOW_AGENT_MAX_COST_USD_PER_TASK``: a run that spends more fails (the built-in
  agent's too); a project's own cap (its ``agent.budget``) may be tighter;
* ``FORGEFLOW_AGENT_EXTRA_ARGS``, ``FORGEFLOW_AGENT_PERMISSION_ARGS``: split like a shell would.
"""

from __future__ import annotations

import re
import shlex
import shutil
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forgeflow.settings import Settings


class AgentKind(StrEnum):
    BUILTIN = "builtin"  # forgeflow's own: the model with file tools, in a workflow (workflows/builtin_task.py)
    CLAUDE_CODE = "claude-code"
    CODEX = "codex"
    COMMAND = "command"


DEFAULT_EXECUTABLE = {AgentKind.CLAUDE_CODE: "claude", AgentKind.CODEX: "codex"}
# What lets a headless agent edit files and run commands without asking anyone: the sandbox
# around it, not its own prompts, is what confines it. Without them Claude Code's print mode
# refuses every edit, and codex exec runs read-only (its own Linux sandbox would have to
# nest inside bwrap).
DEFAULT_PERMISSION_ARGS = {
    AgentKind.CLAUDE_CODE: ["--dangerously-skip-permissions"],
    AgentKind.CODEX: ["--sandbox", "danger-full-access"],
}
PLACEHOLDERS = ("prompt_file", "workdir", "model")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The sandbox sets these itself: the worker's would point where the agent cannot go.
SANDBOX_OWN_ENV = frozenset({"PATH", "HOME"})
PREFIX = "FORGEFLOW_"


class CodingAgentConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: AgentKind = AgentKind.BUILTIN
    # claude-code, codex: the program (and any arguments before forgeflow's), default claude,
    # codex; command: the argv template. A string is one path for the former, and split like
    # a shell would for the latter.
    executable: list[str] = Field(default_factory=list)
    model: str | None = None
    max_turns: int | None = Field(default=None, ge=1)  # claude-code's --max-turns
    timeout_seconds: float = Field(default=1800, gt=0)
    # RLIMIT_AS, per process: address space, which runtimes (V8, threads' stacks) reserve
    # well past what they use, hence more than a hook's.
    memory_mb: int = Field(default=4096, ge=64)
    network: bool = False
    pass_env: list[str] = Field(default_factory=list)
    max_cost_usd_per_task: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    extra_args: list[str] = Field(default_factory=list)  # after forgeflow's own
    # None: the kind's DEFAULT_PERMISSION_ARGS.
    permission_args: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _executable(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        kind = data.get("kind", AgentKind.BUILTIN)
        executable = data.get("executable")
        if isinstance(executable, str):
            data["executable"] = shlex.split(executable) if kind == AgentKind.COMMAND else [executable]
        elif not executable and kind in DEFAULT_EXECUTABLE:
            data["executable"] = [DEFAULT_EXECUTABLE[AgentKind(kind)]]
        for name in ("extra_args", "permission_args"):
            if isinstance(data.get(name), str):
                data[name] = shlex.split(data[name])
        return data

    @field_validator("pass_env")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a variable name")
            if name in SANDBOX_OWN_ENV:
                raise ValueError(f"{name} is the sandbox's own: it cannot come from the worker")
        return names

    @model_validator(mode="after")
    def _template(self) -> CodingAgentConfig:
        if self.kind is AgentKind.COMMAND:
            if not self.executable:
                raise ValueError("the command agent needs its argv, e.g. 'my-agent --prompt {prompt_file}'")
            used = {name for arg in self.executable for name in PLACEHOLDER.findall(arg)}
            unknown = sorted(used - set(PLACEHOLDERS))
            if unknown:  # a typo would otherwise reach the program as literal text
                known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
                raise ValueError(f"unknown placeholder {{{unknown[0]}}} in the command (known: {known})")
            if "model" in used and self.model is None:
                raise ValueError("the command uses {model}, but no model is set")
        return self

    @property
    def program(self) -> str:
        return self.executable[0]

    @property
    def permissions(self) -> list[str]:
        if self.permission_args is not None:
            return self.permission_args
        return DEFAULT_PERMISSION_ARGS.get(self.kind, [])


def check_available(config: CodingAgentConfig) -> str | None:
    """Why this worker cannot run the agent (its program is not found), or None."""
    if config.kind is AgentKind.BUILTIN:
        return None
    program = config.program
    if shutil.which(program) is not None:
        return None
    where = "is not an executable file" if "/" in program else "is not on this worker's PATH"
    return f"the {config.kind} coding agent's program {program!r} {where}"


def config_for(settings: Settings, kind: AgentKind) -> CodingAgentConfig:
    """The configuration of ``kind`` on this worker, from its ``FORGEFLOW_*`` settings. A bad
    value raises ValueError naming its variable."""
    data: dict[str, Any] = {
        "kind": kind,
        "model": settings.agent_model,
        "max_turns": settings.agent_max_turns,
        "timeout_seconds": settings.agent_timeout_seconds,
        "memory_mb": settings.agent_memory_mb,
        "network": settings.agent_network,
        "pass_env": [name.strip() for name in settings.agent_pass_env.split(",") if name.strip()],
        "max_cost_usd_per_task": settings.agent_max_cost_usd_per_task,
        "extra_args": shlex.split(settings.agent_extra_args),
    }
    if settings.agent_permission_args is not None:
        data["permission_args"] = shlex.split(settings.agent_permission_args)
    if kind is AgentKind.COMMAND:
        data["executable"] = settings.agent_command  # split by the model, like a shell would
    elif settings.agent_executable:
        data["executable"] = [settings.agent_executable]
    try:
        return CodingAgentConfig.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_variable(error['loc'], kind)}: {error['msg']}" for error in exc.errors()]
        raise ValueError("; ".join(problems)) from exc


def _variable(loc: tuple[int | str, ...], kind: str) -> str:
    field = str(loc[0]) if loc else ""
    if field == "kind":
        return f"{PREFIX}CODING_AGENT"
    if field == "executable" or not field:  # the model's own checks are all of the command
        return f"{PREFIX}AGENT_COMMAND" if kind == AgentKind.COMMAND.value else f"{PREFIX}AGENT_EXECUTABLE"
    return f"{PREFIX}AGENT_{field.upper()}"
