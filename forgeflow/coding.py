"""The worker's coding agents (agent mode, part 2): one configuration per kind a project
may name (FORGEFLOW_CODING_AGENT and FORGEFLOW_CODING_AGENTS_ALLOWED), built from the
settings, and the sandbox they run in: the hooks' sandbox with read-only toolchains."""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import replace
from pathlib import Path

from agents.coding.config import AgentKind, CodingAgentConfig, check_available, config_for
from engine.sandbox import SandboxConfig
from forgeflow.settings import Settings

log = logging.getLogger("forgeflow.worker")


def coding_agent_configs(settings: Settings) -> dict[AgentKind, CodingAgentConfig]:
    """Every kind this worker is configured for and can run; a kind whose program is not
    here is left out with a warning (a task of it is retried until a worker that has it
    takes it, within the task's time). A bad setting raises ValueError naming its variable."""
    configs: dict[AgentKind, CodingAgentConfig] = {}
    for name in sorted(settings.coding_agent_kinds):
        kind = AgentKind(name)
        if kind is AgentKind.BUILTIN:
            continue  # the model with file tools, in a workflow of its own (workflows/builtin_task.py)
        config = config_for(settings, kind)
        problem = check_available(config)
        if problem is not None:
            log.warning("coding agent %s unavailable on this worker: %s", kind, problem)
            continue
        configs[kind] = config
    return configs


def agent_sandbox(settings: Settings, base: SandboxConfig) -> SandboxConfig:
    """The hooks' sandbox with the toolchains an agent may read; its time, memory and
    network come from its configuration (agents.coding.runners.agent_sandbox)."""
    read_only = tuple(Path(p).resolve() for p in settings.agent_read_only.split(os.pathsep) if p.strip())
    return replace(base, read_only=base.read_only + read_only)


def describe(configs: dict[AgentKind, CodingAgentConfig]) -> str:
    return ", ".join(f"{kind}: {shlex.join(config.executable)}" for kind, config in configs.items()) or "none"
