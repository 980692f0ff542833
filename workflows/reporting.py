"""What a run tells the world: the projection the API reads (status, events, records),
the Web UI's current details and search attributes, and the project's webhook."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.types import (
        DELIVER_WEBHOOK,
        RECORD_PROJECTION,
        SA_PHASE,
        SA_STATUS,
        ArtifactRef,
        DecisionRecord,
        EventRecord,
        Phase,
        ProjectGenerationInput,
        ProjectionInput,
        ProjectStatus,
        QuestionModel,
        SpecRecord,
        VerifyResult,
        WebhookDelivery,
        WebhookResult,
    )

# Projection writes must land eventually, even across a long database outage.
PROJECTION_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))
# Receivers get about a day of retries, backing off to hourly.
WEBHOOK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(hours=1), maximum_attempts=30
)
# Marks runs whose passing phases are written with the next status write, and whose
# verify and export phases are written in the workflow task that starts their activity.
PHASE_WRITES_PATCH = "phase-writes"
T = TypeVar("T")


class ReportingMixin:
    _input: ProjectGenerationInput
    _status: ProjectStatus
    _phase: Phase
    _seq: int
    _error: str
    _paused: bool
    _questions: list[QuestionModel]
    _spec_version: int
    _tasks_total: int
    _tasks_done: int
    _events_made: int
    _pending_events: list[EventRecord]
    _pending_spec: SpecRecord | None
    _pending_decision: DecisionRecord | None
    _webhooks: list[asyncio.Task[Any]]
    _notified_status: ProjectStatus | None
    _pending_started: datetime | None
    _pending_verification: VerifyResult | None

    def _event(self, type: str, payload: dict[str, Any], task_id: str | None = None) -> EventRecord:
        # Deterministic and unique within a project: a replayed or retried write repeats
        # the same keys, so the database stores each event once.
        self._events_made += 1
        key = f"{type}:{self._input.run_number}:{self._events_made}"
        return EventRecord(type=type, key=key, payload=payload, task_id=task_id)

    def _phase_event(self, phase: Phase) -> EventRecord:
        """A generating phase's entry, as it goes on record."""
        return self._event("status_changed", {"status": ProjectStatus.GENERATING.value, "phase": phase.value})

    def _append_pending(self, event: EventRecord) -> None:
        self._pending_events.append(event)

    async def _passing(self, phase: Phase, *, started: bool = False) -> None:
        """Enter a generating phase that ends within the same workflow task (a local engine
        step): its event and start time ride along with the next status write, which saves
        a database transaction and a local activity on the way to the first task. The run,
        its query and the database all stay at the last stored state meanwhile."""
        if not workflow.patched(PHASE_WRITES_PATCH):
            await self._transition(ProjectStatus.GENERATING, phase, started=started)
            return
        self._append_pending(self._phase_event(phase))
        if started:
            self._pending_started = workflow.now()

    async def _alongside(self, work: Coroutine[Any, Any, T], phase: Phase, **changes: Any) -> T:
        """Write a generating phase and start the activity it names in the same workflow
        task. (This saves no time: the SDK sends the activity's command only once the
        workflow task's local activities, the write among them, have finished. Runs since
        the patch carried-verify-write have their activity store the phase instead.)"""
        if not workflow.patched(PHASE_WRITES_PATCH):
            await self._transition(ProjectStatus.GENERATING, phase, **changes)
            return await work
        running = asyncio.create_task(work)
        try:
            await self._transition(ProjectStatus.GENERATING, phase, **changes)
        except BaseException:
            running.cancel()
            await workflow.wait([running])
            raise
        return await running

    async def _transition(
        self,
        status: ProjectStatus,
        phase: Phase,
        *,
        events: Sequence[EventRecord] = (),
        started: bool = False,
        finished: bool = False,
        artifact: ArtifactRef | None = None,
        **extra: Any,
    ) -> None:
        write = self._next_write(status, phase, events, started, finished, artifact, extra)
        await self._record(write)
        self._took(write)

    async def _record(self, write: ProjectionInput) -> None:
        await workflow.execute_local_activity(
            RECORD_PROJECTION,
            write,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PROJECTION_RETRY,
            summary=f"status {write.status.value} ({write.phase.value})",
        )

    def _next_write(
        self,
        status: ProjectStatus,
        phase: Phase,
        events: Sequence[EventRecord],
        started: bool,
        finished: bool,
        artifact: ArtifactRef | None,
        extra: dict[str, Any],
    ) -> ProjectionInput:
        """The next status write, with everything that rides along with it."""
        self._seq += 1
        now = workflow.now()
        changed = self._event("status_changed", {"status": status.value, "phase": phase.value})
        batch = [*self._pending_events, *events, changed]
        self._pending_events = []
        spec, decision = extra.pop("spec", None) or self._pending_spec, self._pending_decision
        self._pending_spec = self._pending_decision = None
        started_at, self._pending_started = (now if started else self._pending_started), None
        if self._pending_verification is not None:
            extra.setdefault("verification", self._pending_verification)
            self._pending_verification = None
        return ProjectionInput(
            project_id=self._input.project_id,
            seq=self._seq,
            status=status,
            phase=phase,
            at=now,
            run_number=self._input.run_number,
            trigger=self._input.trigger,
            error_message=self._error if status in (ProjectStatus.FAILED, ProjectStatus.CANCELLED) else None,
            started_at=started_at,
            finished_at=now if finished else None,
            artifact=artifact,
            events=batch,
            spec=spec,
            decision=decision,
            **extra,
        )

    def _took(self, write: ProjectionInput) -> None:
        """The run takes the new state only once it is stored: a query, an update's
        validator and the API's database read never disagree about where it stands."""
        status, phase = write.status, write.phase
        self._status, self._phase = status, phase
        workflow.upsert_search_attributes([SA_STATUS.value_set(status.value), SA_PHASE.value_set(phase.value)])
        if status != self._notified_status:
            self._notified_status = status
            self._notify(status, phase, write.at)
        workflow.set_current_details(self._details())

    # --- webhooks ----------------------------------------------------------------------

    def _notify(self, status: ProjectStatus, phase: Phase, at: datetime) -> None:
        """Each status change goes to the project's webhook in the background: a slow or
        dead receiver never holds the project up, and never fails it."""
        inp = self._input
        if not inp.webhook_url or inp.owner_id is None:
            return
        delivery = WebhookDelivery(
            project_id=inp.project_id,
            owner_id=inp.owner_id,
            url=inp.webhook_url,
            # Fixed here, so every retry of this delivery carries the same id and body.
            webhook_id=f"msg_project-{inp.project_id}-run-{inp.run_number}-{self._seq}",
            event_type="project.status_changed",
            payload={
                "id": inp.project_id,
                "status": status.value,
                "phase": phase.value,
                "run": inp.run_number,
                "error_message": self._error if status in (ProjectStatus.FAILED, ProjectStatus.CANCELLED) else "",
            },
            timestamp=at,
        )
        self._webhooks.append(asyncio.create_task(self._deliver(delivery)))

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        try:
            await workflow.execute_activity(
                DELIVER_WEBHOOK,
                delivery,
                result_type=WebhookResult,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=WEBHOOK_RETRY,
                summary=f"webhook: {delivery.payload['status']}",
            )
        except ActivityError as exc:
            workflow.logger.warning("webhook %s not delivered: %s", delivery.webhook_id, describe(exc))

    async def _webhooks_sent(self) -> None:
        if self._webhooks:
            await workflow.wait(self._webhooks)

    def _details(self) -> str:
        inp = self._input
        lines = [
            f"**{inp.name}** (`{inp.slug}`), template `{inp.template}`, owner `{inp.owner}`, run {inp.run_number}",
            f"Status: **{self._status.value}**, phase: {self._phase.value}" + (" (paused)" if self._paused else ""),
        ]
        if self._tasks_total:
            lines.append(f"Tasks: {self._tasks_done}/{self._tasks_total} done")
        if self._phase == Phase.AWAITING_APPROVAL:
            lines.append(f"Spec v{self._spec_version} awaits review: update or signal `approve` or `reject`.")
        if self._phase == Phase.AWAITING_ANSWERS:
            lines.append(f"{len(self._questions)} questions await answers: update or signal `answers`.")
        if self._error:
            lines.append(f"Error: {self._error}")
        return "\n\n".join(lines)


def describe(exc: BaseException, *, through: tuple[type[BaseException], ...] = ()) -> str:
    """The root cause's message: an ActivityError's own says only "Activity task failed".
    ``through`` names further wrapper exceptions to look past."""
    while isinstance(exc, (ActivityError, *through)) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, ApplicationError):
        return exc.message or exc.type or "ApplicationError"
    return str(exc) or type(exc).__name__
