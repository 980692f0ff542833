"""The engine steps a run calls. A run that waits for nobody clarifies, specs and
decomposes in one local activity (``prepare``), which costs no server round trip and also
stores its tasks-phase write. A run with gates takes the steps one by one as ordinary
activities: a local activity holds the workflow task open until it ends, so a decision
sent while a spec is being written could not even be refused until it was done (and a
model may take minutes). Verify and export are one activity on one merge of the task
bundles, which stores the verify and ready writes the run hands it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.failures import GenerationFailed
    from workflows.state import RunState
    from workflows.status import StatusWriter
    from workflows.status_writes import spec_record
    from workflows.types import (
        CLARIFY,
        DECOMPOSE,
        PREPARE,
        VERIFY_AND_EXPORT,
        WRITE_SPEC,
        AssembleInput,
        AssemblyResult,
        ClarifyResult,
        ExportResult,
        Phase,
        PlanResult,
        PrepareInput,
        PrepareResult,
        ProjectGenerationInput,
        ProjectStatus,
        SpecInput,
        SpecResult,
        TemplateRequest,
        VerifyResult,
    )

# Engine steps are deterministic: what the template or the answers got wrong fails at once,
# non-retryable (activities.base.permanent). Any other failure is the infrastructure's — a
# worker lost, the database or the artifact store unreachable (ArtifactStoreUnavailable,
# naming the store and its endpoint) — and is retried until it is back, backing off to 30 s,
# as status writes are (PROJECTION_RETRY): an outage delays a run, it never fails it. The
# Web UI shows a waiting step as a pending activity with its attempt and last failure.
ENGINE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
# ...for up to an hour, every attempt together: past it, a step that keeps failing (a bug, a
# check that always times out) fails the run with its last error instead of holding it.
OUTAGE_PATIENCE = timedelta(hours=1)


class EngineSteps:
    def __init__(self, input: ProjectGenerationInput, state: RunState, writer: StatusWriter) -> None:
        self._input = input
        self._state = state
        self._writer = writer

    async def _step(self, name: str, arg: Any, result_type: type, summary: str, *, local: bool = False) -> Any:
        execute: Any = workflow.execute_local_activity if local else workflow.execute_activity
        return await execute(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(minutes=5),
            schedule_to_close_timeout=OUTAGE_PATIENCE,
            retry_policy=ENGINE_RETRY,
            summary=summary,
        )

    def request(self, digest: str | None) -> TemplateRequest:
        inp = self._input
        return TemplateRequest(
            project_id=inp.project_id,
            run_number=inp.run_number,
            template=inp.template,
            answers=dict(self._state.answers),
            template_digest=digest,
        )

    async def prepare(self) -> tuple[TemplateRequest, SpecResult, PlanResult]:
        """Clarify, spec and decompose in one local activity, which gives unanswered
        questions their defaults and stores the tasks-phase write the run hands it: the
        same phases, spec and events on record as the steps one by one make."""
        state = self._state
        state.spec_version += 1
        tasks_write = self._writer.tasks_write(state.spec_version)
        prepared: PrepareResult = await self._step(
            PREPARE,
            PrepareInput(
                request=self.request(None), version=state.spec_version, feedback=state.feedback, record_last=tasks_write
            ),
            PrepareResult,
            "clarify, spec and decompose",
            local=True,
        )
        state.answers = dict(prepared.request.answers)
        state.spec_key = prepared.spec.documents_key
        assert prepared.recorded is not None  # the activity stores what it is handed
        self._writer.took(prepared.recorded)
        return prepared.request, prepared.spec, prepared.plan

    async def clarify(self) -> ClarifyResult:
        result: ClarifyResult = await self._step(CLARIFY, self.request(None), ClarifyResult, "clarify")
        return result

    async def write_spec(self, request: TemplateRequest) -> SpecResult:
        """The next spec version, from the answers and every piece of feedback so far; on
        record with the next status write."""
        state = self._state
        state.spec_version += 1
        spec: SpecResult = await self._step(
            WRITE_SPEC,
            SpecInput(request=request, version=state.spec_version, feedback=state.feedback),
            SpecResult,
            f"spec v{state.spec_version}",
        )
        state.spec_key = spec.documents_key
        state.pending.spec = spec_record(spec, request, list(state.feedback))
        state.pending.events.append(self._writer.event("spec_version_created", {"version": spec.version}))
        return spec

    async def decompose(self, request: TemplateRequest) -> PlanResult:
        plan: PlanResult = await self._step(DECOMPOSE, request, PlanResult, "decompose")
        return plan

    async def verify_and_export(self, assemble: AssembleInput) -> ExportResult:
        """One activity: it stores the verify phase as it starts and, once the ZIP is
        stored, the ready write, so the API shows the project ready without waiting for
        another workflow task. A failed verification is stored by the run, then fails it."""
        writer = self._writer
        verifying = writer.next_write(ProjectStatus.GENERATING, Phase.VERIFY)
        ready = writer.ready_write()
        carried = assemble.model_copy(update={"record_first": verifying, "record_last": ready})
        assembled = await self._assembly(carried, "verify and export")
        writer.took(verifying)
        verified = assembled.verification
        if verified.ok and assembled.export is not None and assembled.recorded is not None:
            writer.took(assembled.recorded)
            return assembled.export
        completed = writer.event("verification_completed", verified.model_dump(mode="json"))
        await writer.transition(ProjectStatus.GENERATING, Phase.VERIFY, verification=verified, events=[completed])
        self._state.error = "Verification failed: " + "; ".join(verified.errors[:5])
        raise GenerationFailed(self._state.error)

    async def export_verified(self, assemble: AssembleInput, verified: VerifyResult) -> ExportResult:
        """Coding agents' build, merged and verified already (workflows/fixes.py): the same
        activity exports it without checking again, and stores the ready write."""
        ready = self._writer.ready_write()
        carried = assemble.model_copy(update={"verified": verified, "record_last": ready})
        assembled = await self._assembly(carried, "export")
        if assembled.export is None or assembled.recorded is None:  # verified.ok: not reached
            raise GenerationFailed("The export did not take the verified build.")
        self._writer.took(assembled.recorded)
        return assembled.export

    async def _assembly(self, carried: AssembleInput, summary: str) -> AssemblyResult:
        assembled: AssemblyResult = await workflow.execute_activity(
            VERIFY_AND_EXPORT,
            carried,
            result_type=AssemblyResult,
            start_to_close_timeout=timedelta(minutes=5),
            # It heartbeats while it works (activities.base.keep_alive), so a lost
            # completion is retried within this time rather than after five minutes.
            heartbeat_timeout=timedelta(seconds=self._input.task_heartbeat_seconds),
            schedule_to_close_timeout=OUTAGE_PATIENCE,
            retry_policy=ENGINE_RETRY,
            summary=summary,
        )
        return assembled
