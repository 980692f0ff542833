"""What the built-in coding agent adds to a worker, only when a model provider is
configured: its task workflow (workflows/builtin_task.py), its agent's model-request
activities, and its own activities (activities/builtin.py). Without a provider, nothing;
Pydantic AI is imported only with one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.provider import LlmConfig
from agents.worker import AgentMode
from forgeflow.settings import Settings
from store.artifacts import ArtifactStore
from store.db import Database


def builtin_mode(settings: Settings) -> AgentMode:
    """The task workflow and the agent's model requests, the agent built from the settings
    (its model: FORGEFLOW_AGENT_MODEL, else FORGEFLOW_LLM_MODEL) and installed for this
    process's task workflows."""
    config = LlmConfig.from_settings(settings)
    if config is None:
        return AgentMode()
    from agents.coding.builtin_agent import build_builtin_agent, install
    from workflows.builtin_task import BuiltinTaskWorkflow

    agent = build_builtin_agent(config, settings.agent_model)
    install(agent)
    return AgentMode(workflows=[BuiltinTaskWorkflow], activities=agent.activities)


def builtin_activities(
    settings: Settings, db: Database, artifacts: ArtifactStore, **template_options: Any
) -> list[Callable[..., Any]]:
    """The task's start, file tools, usage records and finish; nothing without a provider."""
    config = LlmConfig.from_settings(settings)
    if config is None:
        return []
    from activities.builtin import BuiltinActivities
    from activities.task_records import TaskRecorder

    builtin = BuiltinActivities(
        db,
        config,
        artifacts,
        max_file_bytes=settings.agent_max_file_bytes,
        max_task_bytes=settings.agent_max_task_bytes,
        max_cost_usd_per_task=settings.agent_max_cost_usd_per_task,
        recorder=TaskRecorder(db, start_delay=settings.task_start_record_seconds),
        **template_options,
    )
    return list(builtin.activities())
