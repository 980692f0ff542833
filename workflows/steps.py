"""The engine steps a run calls: one at a time, or, where nothing waits between them,
together in one activity, which saves the round trips and workflow tasks between them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.reporting import ReportingMixin
    from workflows.types import (
        CLARIFY,
        DECOMPOSE,
        EXPORT,
        PREPARE,
        VERIFY,
        VERIFY_AND_EXPORT,
        WRITE_SPEC,
        AssembleInput,
        AssemblyResult,
        ExportResult,
        Phase,
        PlanResult,
        PrepareInput,
        PrepareResult,
        ProjectionInput,
        ProjectStatus,
        SpecResult,
        TemplateRequest,
        VerifyResult,
    )
    from workflows.writes import completed_ready_write, completed_tasks_write, spec_record

# Engine steps are quick and deterministic; a few retries cover a worker dying.
ENGINE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
# Clarify, spec and decompose are short, pure computations over the template: as local
# activities they cost no server round trip, and their results are still recorded.
LOCAL_ENGINE_STEPS = frozenset({CLARIFY, WRITE_SPEC, DECOMPOSE, PREPARE})
LOCAL_ENGINE_STEPS_PATCH = "local-engine-steps"
# Marks runs that verify and export in one activity, on one merge of the task bundles.
ONE_ASSEMBLY_PATCH = "one-assembly"
# Marks runs whose verify-and-export activity stores the verify phase itself.
CARRIED_WRITE_PATCH = "carried-verify-write"
# Marks runs that wait for nobody and so clarify, spec and decompose in one local activity.
ONE_PREPARATION_PATCH = "one-preparation"
# Marks runs whose preparation stores the tasks-phase write and whose verify-and-export
# stores the ready write (workflows.writes): two local activities fewer on the way.
CARRIED_WRITES_PATCH = "carried-writes"


class GenerationFailed(Exception):
    pass


class EngineSteps(ReportingMixin):
    _answers: dict[str, Any]
    _feedback: list[str]
    _spec_key: str | None
    _pending_verification: VerifyResult | None

    async def _engine(self, name: str, arg: Any, result_type: type, summary: str) -> Any:
        local = name in LOCAL_ENGINE_STEPS and workflow.patched(LOCAL_ENGINE_STEPS_PATCH)
        options: dict[str, Any] = {}
        if not local:
            # Verify and export heartbeat while they work (activities.base.keep_alive), so a
            # lost completion is retried within this time rather than after five minutes.
            options["heartbeat_timeout"] = timedelta(seconds=self._input.task_heartbeat_seconds)
        execute: Any = workflow.execute_local_activity if local else workflow.execute_activity
        return await execute(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=ENGINE_RETRY,
            summary=summary,
            **options,
        )

    def _request(self, digest: str | None) -> TemplateRequest:
        inp = self._input
        return TemplateRequest(
            project_id=inp.project_id,
            run_number=inp.run_number,
            template=inp.template,
            answers=dict(self._answers),
            template_digest=digest,
        )

    def _waits_for_nobody(self) -> bool:
        """Neither answers nor an approval can hold this run up: its engine steps may run
        back to back."""
        return not self._input.waits_for_answers and not self._input.waits_for_approval

    async def _prepare(self) -> tuple[TemplateRequest, SpecResult, PlanResult, ProjectionInput | None]:
        """Clarify, spec and decompose in one local activity, which also gives unanswered
        questions their defaults; the run records the same phases, spec and events as the
        steps one by one would. Since the patch carried-writes the activity also stores the
        tasks-phase write, which it returns for the run to take."""
        self._spec_version += 1
        carried = workflow.patched(CARRIED_WRITES_PATCH)
        tasks_write = self._tasks_write(self._spec_version) if carried else None
        prepared: PrepareResult = await self._engine(
            PREPARE,
            PrepareInput(
                request=self._request(None),
                version=self._spec_version,
                feedback=self._feedback,
                record_last=tasks_write,
            ),
            PrepareResult,
            "clarify, spec and decompose",
        )
        self._answers = dict(prepared.request.answers)
        spec = prepared.spec
        self._spec_key = spec.documents_key
        if tasks_write is not None:
            stored = prepared.recorded
            if stored is None:  # as in _verify_and_export: the run stores the same write itself
                stored = completed_tasks_write(tasks_write, prepared.request, spec, prepared.plan, self._feedback)
                await self._record(stored)
            return prepared.request, spec, prepared.plan, stored
        await self._passing(Phase.SPEC)
        self._pending_spec = spec_record(spec, prepared.request, list(self._feedback))
        self._append_pending(self._event("spec_version_created", {"version": spec.version}))
        await self._passing(Phase.DECOMPOSE)
        return prepared.request, spec, prepared.plan, None

    def _tasks_write(self, version: int) -> ProjectionInput:
        """The write entering the tasks phase with the events the steps one by one make on
        the way (same order, same keys), for the preparation to complete and store."""
        events = [
            self._phase_event(Phase.SPEC),
            self._event("spec_version_created", {"version": version}),
            self._phase_event(Phase.DECOMPOSE),
            self._event("plan_created", {}),
        ]
        return self._next_write(ProjectStatus.GENERATING, Phase.TASKS, events, False, False, None, {})

    def _ready_write(self) -> ProjectionInput:
        """The ready write with the events a passing verification and the export make on
        the way (same order, same keys), for verify_and_export to complete and store."""
        events = [
            self._event("verification_completed", {}),
            self._phase_event(Phase.EXPORT),
            self._event("export_completed", {}),
            self._event("project_ready", {}),
        ]
        return self._next_write(ProjectStatus.READY, Phase.DONE, events, False, True, None, {})

    async def _verify_and_export(self, assemble: AssembleInput) -> ExportResult:
        """In one activity (patch one-assembly), or, in runs that started before, in two."""
        together = workflow.patched(ONE_ASSEMBLY_PATCH)
        if together and workflow.patched(CARRIED_WRITE_PATCH):
            # The activity stores the verify phase (AssembleInput.record_first): no local
            # activity of the run's own holds up its scheduling.
            write = self._next_write(ProjectStatus.GENERATING, Phase.VERIFY, (), False, False, None, {})
            # Since carried-writes the activity stores the ready write too, once it has
            # exported: the project is ready for the API as soon as its ZIP is stored.
            ready = self._ready_write() if workflow.patched(CARRIED_WRITES_PATCH) else None
            carried = assemble.model_copy(update={"record_first": write, "record_last": ready})
            assembled: AssemblyResult = await self._engine(
                VERIFY_AND_EXPORT, carried, AssemblyResult, "verify and export"
            )
            self._took(write)
            verified = assembled.verification
            if ready is not None and verified.ok and assembled.export is not None:
                stored = assembled.recorded
                if stored is None:  # a worker from before carried-writes ran the activity
                    stored = completed_ready_write(ready, verified, assembled.export)
                    await self._record(stored)
                self._took(stored)
                return assembled.export
        elif together:
            assembled = await self._alongside(
                self._engine(VERIFY_AND_EXPORT, assemble, AssemblyResult, "verify and export"), Phase.VERIFY
            )
            verified = assembled.verification
        else:
            verified = await self._alongside(self._engine(VERIFY, assemble, VerifyResult, "verify"), Phase.VERIFY)
        checked: dict[str, Any] = {
            "verification": verified,
            "events": [self._event("verification_completed", verified.model_dump(mode="json"))],
        }
        if not verified.ok:
            await self._transition(ProjectStatus.GENERATING, Phase.VERIFY, **checked)
            self._error = "Verification failed: " + "; ".join(verified.errors[:5])
            raise GenerationFailed(self._error)
        if together and assembled.export is not None:
            # The export is done already: its phase rides along with the ready write.
            self._pending_verification = verified
            self._pending_events.extend(checked["events"])
            await self._passing(Phase.EXPORT)
            return assembled.export
        result: ExportResult = await self._alongside(
            self._engine(EXPORT, assemble, ExportResult, "export"), Phase.EXPORT, **checked
        )
        return result
