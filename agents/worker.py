"""What agent mode adds to a worker, only when a model provider is configured: the phase
workflow (a phase run alone; the project's workflow runs its phases itself), the phase's
activities, the three agents' model-request activities, and Pydantic AI's Temporal plugin
(it passes Pydantic AI and the HTTP stack through the workflow sandbox, keeps its payload
adapters for the process's life, agents/plugin.py, and lets an agent's run errors fail the
workflow instead of retrying its task forever). Without a provider it adds nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.worker import Plugin

from agents.provider import LlmConfig
from forgeflow.settings import Settings
from store.artifacts import ArtifactStore
from store.db import Database

# Pydantic AI and the OpenAI client (seconds to import) are imported below only when a
# provider is configured: a worker without one starts as fast as before.


@dataclass(frozen=True)
class AgentMode:
    workflows: list[type] = field(default_factory=list)
    activities: list[Callable[..., Any]] = field(default_factory=list)
    plugins: list[Plugin] = field(default_factory=list)


def agent_mode(settings: Settings) -> AgentMode:
    """The phase workflow and the model-request activities, the agents built from the
    settings and installed for this process's phase workflows; nothing without a provider."""
    config = LlmConfig.from_settings(settings)
    if config is None:
        return AgentMode()
    from agents.phases import build_phase_agents, install
    from agents.plugin import AgentWorkerPlugin
    from agents.workflow import AgentPhaseWorkflow

    agents = build_phase_agents(config)
    install(agents)
    return AgentMode(workflows=[AgentPhaseWorkflow], activities=agents.activities, plugins=[AgentWorkerPlugin()])


def agent_activities(
    settings: Settings, db: Database, artifacts: ArtifactStore, **template_options: Any
) -> list[Callable[..., Any]]:
    """The phase's own activities (prompt, usage, output); nothing without a provider."""
    config = LlmConfig.from_settings(settings)
    if config is None:
        return []
    from agents.activities import AgentActivities

    phase = AgentActivities(db, config, artifacts, **template_options)
    return [phase.prepare_agent_phase, phase.record_agent_request, phase.store_agent_output]
