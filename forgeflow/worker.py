"""The forgeflow worker: the project workflow and every activity on one task queue.
Run as many as you like; Temporal spreads the work."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities.assembly import AssemblyActivities
from activities.coding import WORK_TREE_PREFIX, CodingActivities
from activities.generation import GenerationActivities
from activities.later import CLEANER
from activities.projection import ProjectionActivities
from activities.task_records import TaskRecorder
from activities.webhooks import WebhookActivities
from agents.coding.builtin_worker import builtin_activities, builtin_mode
from agents.coding.runners import PRIVATE_PREFIX
from agents.worker import agent_activities, agent_mode
from engine.sandbox import MIB, Limits, SandboxConfig
from forgeflow.coding import agent_sandbox, coding_agent_configs, describe
from forgeflow.settings import Settings, get_settings
from forgeflow.temporal import connect, metrics_runtime
from store.artifact_stores import open_artifact_store
from store.db import Database
from store.webhooks import load_cipher
from workflows.project_generation import ProjectGenerationWorkflow
from workflows.tasks import TaskSliceWorkflow
from workflows.webhooks import WebhookRelayWorkflow

log = logging.getLogger("forgeflow.worker")


def sandbox_config(settings: Settings) -> SandboxConfig:
    """The engine's sandbox, from the settings; the data dir (secret key, SQLite database,
    artifacts) and a SQLite file elsewhere stay out of it even below a mounted directory."""
    hidden = [settings.data_dir.resolve()]
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        hidden.append(Path(url.database).resolve())
    limits = Limits(
        timeout_seconds=settings.sandbox_timeout_seconds,
        cpu_seconds=settings.sandbox_cpu_seconds,
        memory_bytes=settings.sandbox_memory_mb * MIB,
        processes=settings.sandbox_processes,
    )
    return SandboxConfig(mode=settings.sandbox, limits=limits, hidden=tuple(hidden))


def build_activities(settings: Settings, db: Database) -> list[Callable[..., Any]]:
    options: dict[str, Any] = {
        "template_path": settings.template_path,
        "trusted_ids": settings.trusted_template_ids,
        "work_dir": settings.data_dir.resolve() / "work",
        "sandbox": sandbox_config(settings),
        "sources": settings.template_source_registry,
    }
    artifacts = open_artifact_store(settings)
    generation = GenerationActivities(artifacts, **options)
    generation.recorder = TaskRecorder(db, start_delay=settings.task_start_record_seconds)
    assembly = AssemblyActivities(artifacts, **options)
    projection = ProjectionActivities(db, artifacts)
    generation.projection = assembly.projection = projection
    cipher = load_cipher(settings.secret_key, settings.data_dir)
    webhooks = WebhookActivities(db, cipher, allow_private=settings.webhook_allow_private)
    coding = coding_agent_configs(settings)
    if coding:
        log.info("coding agents: %s", describe(coding))
    builders = CodingActivities(
        db,
        coding,
        artifacts,
        agent_sandbox=agent_sandbox(settings, options["sandbox"]),
        max_file_bytes=settings.agent_max_file_bytes,
        max_task_bytes=settings.agent_max_task_bytes,
        **options,
    )
    builders.recorder = generation.recorder
    builders.projection = projection
    return [
        builders.prepare_workspace,
        builders.run_coding_task,
        builders.restore_checkpoint,
        projection.record_projection,
        webhooks.deliver_webhook,
        generation.clarify,
        generation.write_spec,
        generation.decompose,
        generation.prepare,
        generation.run_task,
        generation.run_tasks,
        assembly.verify_and_export,
        assembly.verify_merged,
        *agent_activities(settings, db, artifacts, **options),
        *builtin_activities(settings, db, artifacts, **options),
    ]


def build_worker(
    client: Client,
    settings: Settings,
    *,
    db: Database,
    task_queue: str | None = None,
    executor: ThreadPoolExecutor,
    activities: list[Callable[..., Any]] | None = None,
) -> Worker:
    agents = agent_mode(settings)  # agent mode's workflow and model requests, with a provider
    builtin = builtin_mode(settings)  # the built-in coding agent's task workflow and model requests
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[
            ProjectGenerationWorkflow,
            TaskSliceWorkflow,
            WebhookRelayWorkflow,
            *agents.workflows,
            *builtin.workflows,
        ],
        activities=[
            *(activities if activities is not None else build_activities(settings, db)),
            *agents.activities,
            *builtin.activities,
        ],
        plugins=agents.plugins,
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
    )


def worker_runtime(settings: Settings) -> Runtime | None:
    """The runtime exporting the SDK's metrics at ``worker_metrics_address`` (None: the
    default runtime, no exporter). A second worker on the same host and address runs
    without its own exporter rather than not at all."""
    address = settings.worker_metrics_address.strip()
    if not address:
        return None
    try:
        runtime = metrics_runtime(address)
    except ValueError as exc:
        log.warning("worker metrics disabled: %s (set FORGEFLOW_WORKER_METRICS_ADDRESS)", exc)
        return None
    log.info("worker metrics at http://%s/metrics", address)
    return runtime


def sweep_leftovers(settings: Settings) -> None:
    """What killed workers left (their tasks' work trees, their agents' prompt directories),
    swept away on the cleaner's thread now and every ten minutes; what live tasks hold, of
    any worker sharing the directories, stays (engine.scratch)."""
    CLEANER.watch(settings.data_dir.resolve() / "work", WORK_TREE_PREFIX)
    CLEANER.watch(Path(tempfile.gettempdir()), PRIVATE_PREFIX)


async def run_worker(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    sweep_leftovers(settings)
    db = Database(settings.resolved_database_url)
    db.migrate()
    client = await connect(settings, runtime=worker_runtime(settings))
    with ThreadPoolExecutor(max_workers=settings.activity_threads, thread_name_prefix="activity") as executor:
        worker = build_worker(client, settings, db=db, executor=executor)
        log.info("worker polling %s on %s", settings.task_queue, settings.resolved_temporal_address)
        try:
            await worker.run()
        finally:
            db.dispose()


def main() -> None:
    asyncio.run(run_worker())
