"""Run a coding agent (Claude Code, codex, or any command) on one task, in its work tree,
in the sandbox (engine/sandbox.py): only the work tree writable (and a private /tmp, its
HOME), the agent's own program readable, no network unless the configuration allows it, an
environment with nothing of the worker's but the variables named in ``pass_env``, and its
whole sandbox killed at its timeout, when ``on_tick`` raises (a cancelled activity), or
with the worker (bwrap's --die-with-parent).

The prompt is never part of a command line: it goes in a file (``{prompt_file}``), also
given on stdin, which is where claude and codex read it. No shell ever runs anything here.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from agents.coding.config import PLACEHOLDER, AgentKind, CodingAgentConfig, check_available
from agents.coding.parsers import Report, read_claude, read_codex, read_command, stdout_text
from agents.coding.types import AgentRun
from engine import EngineError
from engine.sandbox import MIB, SYSTEM_LINKS, Limits, Outcome, SandboxConfig, python_dirs
from engine.sandbox import run as run_sandboxed
from engine.scratch import held_dir

__all__ = ["AgentRun", "AgentUnavailable", "build_argv", "run_coding_agent"]

READERS: dict[AgentKind, Callable[[Path, int], Report]] = {
    AgentKind.CLAUDE_CODE: read_claude,
    AgentKind.CODEX: read_codex,
    AgentKind.COMMAND: read_command,
}
SYSTEM_DIRS = tuple(Path(p) for p in ("/usr", *SYSTEM_LINKS))  # the sandbox mounts them already
TAIL_CHARS = 2000  # of stderr, and of stdout, in AgentRun.output_tail
ERROR_TAIL = 1000  # of that, in the error of a non-zero exit
PRIVATE_PREFIX = "ff-agent-"  # <the system's temporary directory>/ff-agent-*: a run's prompt and output


class AgentUnavailable(EngineError):
    """The agent cannot run on this worker: its program is missing, or lies where it cannot
    be mounted."""


def run_coding_agent(
    *,
    config: CodingAgentConfig,
    prompt: str,
    workdir: Path,
    sandbox: SandboxConfig,
    on_tick: Callable[[], None] | None = None,
) -> AgentRun:
    """One run of the agent on ``prompt`` in ``workdir``. A failure of the agent's own (an
    exit status, its error, a timeout, output it should not print, a cost over the cap) is
    an AgentRun with ok False and its error; a worker that cannot run it raises
    AgentUnavailable (or engine.sandbox.SandboxUnavailable); what ``on_tick`` raises
    propagates, once the agent is gone."""
    if config.kind is AgentKind.BUILTIN:
        raise EngineError("the built-in coding agent runs in the workflow: there is no program to run here")
    why = check_available(config)
    if why is not None:
        raise AgentUnavailable(why)
    workdir = workdir.resolve()
    if not workdir.is_dir():
        raise EngineError(f"the agent's work tree {workdir} is not a directory")
    program = os.path.abspath(shutil.which(config.program) or config.program)
    box = agent_sandbox(config, sandbox)
    # 0700, the worker's alone; held while the agent runs, so a killed worker's is swept away.
    with held_dir(PRIVATE_PREFIX) as private:
        shared = private / "in"  # what the agent may read of it (read-only, as uid 65534)
        shared.mkdir(mode=0o755)
        prompt_file = shared / "prompt.md"
        prompt_file.write_text(prompt, encoding="utf-8")
        prompt_file.chmod(0o644)
        stdout = private / "stdout"
        outcome = run_sandboxed(
            build_argv(config, program=program, prompt_file=prompt_file, workdir=workdir),
            cwd=workdir,
            config=box,
            trusted=False,
            writable=[workdir],
            read_only=[*program_dirs(program, workdir=workdir), shared],
            env={name: os.environ[name] for name in config.pass_env if name in os.environ},
            stdin=prompt_file,
            stdout=stdout,
            on_tick=on_tick,
        )
        report = READERS[config.kind](stdout, outcome.stdout_dropped)
        stdout_tail = stdout_text(stdout, outcome.stdout_dropped, last=4 * TAIL_CHARS)
    return settle(config, outcome, report, box.limits, stdout_tail)


def build_argv(config: CodingAgentConfig, *, program: str, prompt_file: Path, workdir: Path) -> list[str]:
    """The command line: forgeflow's flags, then the permission flags, then extra_args."""
    rest = config.executable[1:]
    if config.kind is AgentKind.CLAUDE_CODE:
        argv = [program, *rest, "-p", "--output-format", "json"]  # the prompt: on stdin
        if config.model:
            argv += ["--model", config.model]
        if config.max_turns is not None:
            argv += ["--max-turns", str(config.max_turns)]
        if config.max_cost_usd_per_task is not None:  # its own stop; the cap is checked here too
            argv += ["--max-budget-usd", f"{config.max_cost_usd_per_task:g}"]
        return [*argv, *config.permissions, *config.extra_args]
    if config.kind is AgentKind.CODEX:
        # Its work tree's .git lies outside the sandbox: codex would refuse a "non-repository".
        argv = [program, *rest, "exec", "--json", "--skip-git-repo-check"]
        if config.model:
            argv += ["--model", config.model]
        return [*argv, *config.permissions, *config.extra_args, "-"]  # "-": the prompt from stdin
    if config.kind is AgentKind.COMMAND:
        values = {"prompt_file": str(prompt_file), "workdir": str(workdir), "model": config.model or ""}
        # One pass per argument: what a value holds (a path with braces) is never substituted again.
        return [program, *(PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), arg) for arg in rest)]
    raise EngineError(f"no program runs the {config.kind} coding agent")


def agent_sandbox(config: CodingAgentConfig, sandbox: SandboxConfig) -> SandboxConfig:
    """The worker's sandbox with the agent's own network, time and memory."""
    limits = replace(
        sandbox.limits,
        timeout_seconds=config.timeout_seconds,
        # RLIMIT_CPU is per process: one busy the whole timeout is still within it.
        cpu_seconds=max(sandbox.limits.cpu_seconds, math.ceil(config.timeout_seconds)),
        memory_bytes=config.memory_mb * MIB,
    )
    return replace(sandbox, network=config.network, limits=limits)


def program_dirs(program: str, *, workdir: Path) -> list[Path]:
    """Where the program lives (its link and the file it points to), unless the sandbox
    shows it anyway; never a directory holding the work tree (and its neighbours')."""
    dirs: list[Path] = []
    shown = [*SYSTEM_DIRS, *python_dirs()]
    for folder in (Path(program).parent.resolve(), Path(program).resolve().parent):
        if folder in dirs or any(folder.is_relative_to(d) for d in shown):
            continue
        if workdir.is_relative_to(folder):
            raise AgentUnavailable(
                f"the agent's program {program} lies in {folder}, which holds its work tree: "
                "install it elsewhere (the agent may read the directory its program is in)"
            )
        dirs.append(folder)
    return dirs


def settle(config: CodingAgentConfig, outcome: Outcome, report: Report, limits: Limits, stdout_tail: str) -> AgentRun:
    """The run's verdict: how the program ended, what it said of itself, what it cost."""
    tail = _tail(outcome.output, stdout_tail)
    errors: list[str] = []
    if outcome.timed_out:
        errors.append(f"timed out after {limits.timeout_seconds:g} s: the agent and all it started were killed")
    elif outcome.returncode != 0:
        reason = outcome.reason(limits)
        errors.append(f"{reason}: {tail[-ERROR_TAIL:]}" if tail else reason)
    if report.failure:
        errors.append(report.failure)
    elif report.unreadable and outcome.ok:  # after a crash, its missing result says nothing new
        errors.append(f"the {config.kind} agent's output is unreadable: {report.unreadable}")
    cap = config.max_cost_usd_per_task
    if cap is not None and report.cost_usd is not None and report.cost_usd > cap:
        errors.append(f"spent {_usd(report.cost_usd)}, over the task's cap {_usd(cap)}")
    elif cap is not None and report.cost_usd is None and not errors:
        # As agents.pricing has it: what cannot be priced counts as over a cost budget.
        errors.append(f"the {config.kind} agent reported no cost: the task's cap {_usd(cap)} cannot be kept")
    return AgentRun(
        ok=not errors,
        summary=report.summary,
        input_tokens=report.input_tokens,
        output_tokens=report.output_tokens,
        cache_read_tokens=report.cache_read_tokens,
        cache_write_tokens=report.cache_write_tokens,
        cost_usd=report.cost_usd,
        session_id=report.session_id,
        num_turns=report.num_turns,
        risks=report.risks,
        output_tail=tail,
        error="; ".join(errors) or None,
        timed_out=outcome.timed_out,
    )


def _tail(stderr: str, stdout: str) -> str:
    parts = [(name, text.strip()[-TAIL_CHARS:]) for name, text in (("stderr", stderr), ("stdout", stdout))]
    return "\n".join(f"[{name}]\n{text}" for name, text in parts if text)


def _usd(amount: float) -> str:
    return f"${amount:.2f}" if round(amount, 2) == amount else f"${amount:.4f}"
