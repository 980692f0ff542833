"""Where a status is stored: every status write of a run is built here, from one typed
input (``ProjectionInput``), and stored by the ``record_projection`` activity
(``activities/projection.py``). Two writes travel inside the activity whose result they
carry, for speed: the preparation stores the tasks-phase write and verify-and-export the
verify and ready writes, completed with the pure functions of ``workflows/status_writes.py``,
through the same ``ProjectionActivities.store``. The run takes a write as its new state
only once it is stored.

A status change also updates the Web UI's search attributes and current details, and
goes to the project's webhook."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.state import RunState
    from workflows.types import (
        RECORD_PROJECTION,
        SA_PHASE,
        SA_STATUS,
        ArtifactRef,
        EventRecord,
        Phase,
        ProjectGenerationInput,
        ProjectionInput,
        ProjectStatus,
        WebhookDelivery,
        WebhookRelayInput,
    )
    from workflows.webhooks import WebhookRelayWorkflow, deliver_webhook, relay_id

# Projection writes must land eventually, even across a long database outage.
PROJECTION_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))
GATES = (Phase.AWAITING_ANSWERS, Phase.AWAITING_APPROVAL, Phase.AWAITING_REVIEW, Phase.AWAITING_BUDGET)
# What the Web UI's ForgeflowStatus shows while a run is paused, so an operator can filter on it.
PAUSED_STATUS = "paused"


class StatusWriter:
    def __init__(self, input: ProjectGenerationInput, state: RunState) -> None:
        self._input = input
        self._state = state

    def event(self, type: str, payload: dict[str, Any], task_id: str | None = None) -> EventRecord:
        # Deterministic and unique within a project: a replayed or retried write repeats
        # the same keys, so the database stores each event once.
        self._state.events_made += 1
        key = f"{type}:{self._input.run_number}:{self._state.events_made}"
        return EventRecord(type=type, key=key, payload=payload, task_id=task_id)

    def phase_event(self, phase: Phase) -> EventRecord:
        """A generating phase's entry, as it goes on record."""
        return self.event("status_changed", {"status": ProjectStatus.GENERATING.value, "phase": phase.value})

    def passing(self, phase: Phase, *, started: bool = False) -> None:
        """Enter a generating phase that ends within the same workflow task (a local engine
        step): its event and start time ride along with the next status write. The run,
        its queries and the database stay at the last stored state meanwhile."""
        self._state.pending.events.append(self.phase_event(phase))
        if started:
            self._state.pending.started = workflow.now()

    async def transition(self, status: ProjectStatus, phase: Phase, **write: Any) -> None:
        """Build the next write (``next_write``'s options), store it, then take it."""
        stored = self.next_write(status, phase, **write)
        await self.record(stored)
        self.took(stored)

    async def record(self, write: ProjectionInput) -> None:
        await workflow.execute_local_activity(
            RECORD_PROJECTION,
            write,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=PROJECTION_RETRY,
            summary=f"status {write.status.value} ({write.phase.value})",
        )

    def next_write(
        self,
        status: ProjectStatus,
        phase: Phase,
        events: Sequence[EventRecord] = (),
        *,
        started: bool = False,
        finished: bool = False,
        artifact: ArtifactRef | None = None,
        **extra: Any,
    ) -> ProjectionInput:
        """The next status write, with everything that rides along with it."""
        state, pending = self._state, self._state.pending
        state.seq += 1
        now = workflow.now()
        changed = self.event("status_changed", {"status": status.value, "phase": phase.value})
        batch = [*pending.events, *events, changed]
        spec, decision = extra.pop("spec", None) or pending.spec, pending.decision
        started_at = now if started else pending.started
        if pending.verification is not None:
            extra.setdefault("verification", pending.verification)
        state.pending = type(pending)()
        return ProjectionInput(
            project_id=self._input.project_id,
            seq=state.seq,
            status=status,
            phase=phase,
            at=now,
            run_number=self._input.run_number,
            trigger=self._input.trigger,
            error_message=state.error if status in (ProjectStatus.FAILED, ProjectStatus.CANCELLED) else None,
            started_at=started_at,
            # An update keeps the project's last ready artifact downloadable while it runs
            # and after it fails: a client never loses the project it had.
            keeps_artifact=started_at is not None and self._input.base is not None,
            finished_at=now if finished else None,
            artifact=artifact,
            events=batch,
            spec=spec,
            decision=decision,
            **extra,
        )

    async def record_flags(self, *, events: Sequence[EventRecord]) -> None:
        """Store the run's paused flag with ``events``, leaving status and phase to the
        status writes (one may be on its way), then show it."""
        state = self._state
        write = ProjectionInput(
            project_id=self._input.project_id,
            seq=state.seq,
            status=state.status,
            phase=state.phase,
            at=workflow.now(),
            run_number=self._input.run_number,
            trigger=self._input.trigger,
            events=list(events),
            flags_only=True,
            paused=state.paused,
        )
        await self.record(write)
        self.show()

    def tasks_write(self, version: int) -> ProjectionInput:
        """The write entering the tasks phase with the events the steps make on the way
        (spec, decompose, the plan), for the preparation to complete and store."""
        events = [
            self.phase_event(Phase.SPEC),
            self.event("spec_version_created", {"version": version}),
            self.phase_event(Phase.DECOMPOSE),
            self.event("plan_created", {}),
        ]
        return self.next_write(ProjectStatus.GENERATING, Phase.TASKS, events)

    def ready_write(self) -> ProjectionInput:
        """The ready write with the events a passing verification and the export make on
        the way, for verify-and-export to complete and store once the ZIP is stored."""
        events = [
            self.event("verification_completed", {}),
            self.phase_event(Phase.EXPORT),
            self.event("export_completed", {}),
            self.event("project_ready", {}),
        ]
        return self.next_write(ProjectStatus.READY, Phase.DONE, events, finished=True)

    def took(self, write: ProjectionInput) -> None:
        """The run takes the new state only once it is stored: a query, an update's
        validator and the API's database read never disagree about where it stands."""
        state = self._state
        state.status, state.phase = write.status, write.phase
        state.stored += 1
        if write.phase in GATES:
            state.open_gate = write.phase
        self.show()
        if write.status != state.notified_status:
            state.notified_status = write.status
            self._notify(write.status, write.phase, write.at)

    def show(self) -> None:
        """The Web UI's view: search attributes and current details."""
        state = self._state
        shown = PAUSED_STATUS if state.paused and state.status == ProjectStatus.GENERATING else state.status.value
        workflow.upsert_search_attributes([SA_STATUS.value_set(shown), SA_PHASE.value_set(state.phase.value)])
        workflow.set_current_details(self.details())

    def details(self) -> str:
        inp, state = self._input, self._state
        lines = [
            f"**{inp.name}** (`{inp.slug}`), template `{inp.template}`, owner `{inp.owner}`, run {inp.run_number}",
            f"Status: **{state.status.value}**, phase: {state.phase.value}" + (" (paused)" if state.paused else ""),
        ]
        if state.tasks_total:
            lines.append(f"Tasks: {state.tasks_done}/{state.tasks_total} done")
        if state.open_gate == Phase.AWAITING_APPROVAL:
            lines.append(
                f"Waits for a review of spec v{state.spec_version}: "
                f"`approve`, `reject` or `regenerate` (update or signal, with `version: {state.spec_version}`)."
            )
        elif state.open_gate == Phase.AWAITING_REVIEW:
            diff = f"GET /projects/{inp.project_id}/runs/{inp.run_number}/diff"
            lines.append(
                f"Waits for a review of the build's diff (`{diff}`), round {state.review_round}: `approve`, "
                f"`reject` or `regenerate` with feedback (update or signal, with `version: {state.review_round}`)."
            )
        elif state.open_gate == Phase.AWAITING_ANSWERS:
            lines.append(f"Waits for `answers` to {len(state.questions)} questions (update or signal).")
        elif state.open_gate == Phase.AWAITING_BUDGET:
            lines.append("Waits for a larger model budget: `raise_budget` (update or signal), or cancel.")
        if state.budget is not None:
            spent = state.spent
            lines.append(f"Model: {spent.requests} requests, {spent.total_tokens} tokens, ${spent.cost_usd:.4f}")
        if state.paused:
            lines.append("Paused: no new task starts until `resume`.")
        if state.error:
            lines.append(f"Error: {state.error}")
        return "\n\n".join(lines)

    # --- webhooks ----------------------------------------------------------------------

    def _notify(self, status: ProjectStatus, phase: Phase, at: datetime) -> None:
        """Each status change goes to the project's webhook in the background: a slow or
        dead receiver never holds the project up, and never fails it."""
        inp, state = self._input, self._state
        if not inp.webhook_url or inp.owner_id is None:
            return
        delivery = WebhookDelivery(
            project_id=inp.project_id,
            owner_id=inp.owner_id,
            url=inp.webhook_url,
            # Fixed here, so every retry of this delivery carries the same id and body.
            webhook_id=f"msg_project-{inp.project_id}-run-{inp.run_number}-{state.seq}",
            event_type="project.status_changed",
            payload={
                "id": inp.project_id,
                "status": status.value,
                "phase": phase.value,
                "run": inp.run_number,
                "error_message": state.error if status in (ProjectStatus.FAILED, ProjectStatus.CANCELLED) else "",
            },
            timestamp=at,
        )
        state.webhooks.append((delivery, asyncio.create_task(deliver_webhook(delivery))))

    async def webhooks_sent(self) -> None:
        """The run's last deliveries: waited for up to its ``webhook_grace_seconds`` (less
        once ``webhooks_hurried``); those still retrying then go on in a relay workflow of
        their own (workflows/webhooks.py), started and abandoned, so that a receiver that is
        down never keeps the run open."""
        state = self._state
        pending = [(delivery, task) for delivery, task in state.webhooks if not task.done()]
        if not pending:
            return
        grace = self._input.webhook_grace_seconds
        workflow.set_current_details(
            f"{self.details()}\n\nDelivering {len(pending)} status change(s) to the project's webhook: "
            f"up to {grace:g} s more here, then in a workflow of their own."
        )
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: state.webhooks_hurried or all(task.done() for _, task in pending), timeout=grace
            )
        still = [(delivery, task) for delivery, task in pending if not task.done()]
        if not still:
            return
        await workflow.start_child_workflow(
            WebhookRelayWorkflow.run,
            WebhookRelayInput(deliveries=[delivery for delivery, _ in still]),
            id=relay_id(workflow.info().workflow_id, self._input.run_number),
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            static_summary=f"webhooks of project {self._input.project_id}, run {self._input.run_number}",
        )
        for _, task in still:  # handed on: this run's tries stop
            task.cancel()
        await workflow.wait([task for _, task in still])
