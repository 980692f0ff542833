"""Agent mode with a coding agent, after the tasks: verify the merged branches, give a
failure back to the same coding agent as a fix task, and, with ``review: "diff"``, wait for
a person's review of the verified build's diff; then export.

Verification here never fails the run by itself (``verify_merged`` returns what failed):
the run decides. A failing check goes to a fix task, built on the merged history with the
check's output in its prompt, then the branches are verified again; at most
``max_fix_attempts`` fix tasks in a row, then the run fails with the check's output. A fix
task is a task like any other: a row, a branch ``feat/task-NNN-fix-N``, a commit merged into
``main`` after the plan's, its usage within the budget. Its scope is every path the plan's
tasks may change: a check names a failure, not always the file that causes it, and the
template's own files stay as protected as they were from every task."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.agent_types import AgentMode
    from workflows.coding import CodingRunner
    from workflows.coding_types import VERIFY_MERGED, FixRequest, VerifiedMerge, VerifyMergedInput, Workspace
    from workflows.dag import DagFailed
    from workflows.failures import GenerationFailed, cancels_the_run
    from workflows.gates import human_duration
    from workflows.state import Decision, RunState
    from workflows.status import StatusWriter
    from workflows.steps import ENGINE_RETRY, OUTAGE_PATIENCE, EngineSteps
    from workflows.types import (
        AssembleInput,
        EventRecord,
        ExportResult,
        Phase,
        PlanResult,
        ProjectGenerationInput,
        ProjectStatus,
        TaskDefinition,
    )

# The most of a check's output an event or the run's error carries (its last characters);
# the fix task is given up to MAX_FIX_OUTPUT.
EXCERPT_CHARS = 2_000


class BuildFinish:
    def __init__(
        self,
        input: ProjectGenerationInput,
        state: RunState,
        writer: StatusWriter,
        steps: EngineSteps,
        coding: CodingRunner,
    ) -> None:
        assert input.agent is not None
        self._input = input
        self._agent: AgentMode = input.agent
        self._state = state
        self._writer = writer
        self._steps = steps
        self._coding = coding
        self._verifications = 0  # this run's, each merged history stored under its number

    async def run(self, assemble: AssembleInput) -> ExportResult:
        """Verify, fix, review until the build passes (and is approved), then export it.
        A fix task that fails raises DagFailed, as any task does."""
        in_a_row = 0  # fix tasks for failing checks since the last verification that passed
        while True:
            verified = await self._verify(assemble)
            if not verified.verification.ok:
                if in_a_row >= self._agent.max_fix_attempts:
                    raise await self._failed_for_good(verified, in_a_row)
                in_a_row += 1
                fix = FixRequest(reason="checks", attempt=in_a_row, check=verified.failed_check, output=verified.output)
                assemble = await self._fix(assemble, verified, fix, self._checks_failed(verified, in_a_row - 1))
                continue
            in_a_row = 0
            if self._agent.review != "diff":
                return await self._steps.export_verified(assemble, verified.verification)
            decision = await self._review(verified)
            if decision.kind == "approve":
                return await self._steps.export_verified(assemble, verified.verification)
            fix = FixRequest(reason="review", attempt=decision.version, feedback=decision.notes)
            assemble = await self._fix(assemble, verified, fix, [])

    async def _verify(self, assemble: AssembleInput) -> VerifiedMerge:
        self._verifications += 1
        await self._writer.transition(ProjectStatus.GENERATING, Phase.VERIFY)
        verified: VerifiedMerge = await workflow.execute_activity(
            VERIFY_MERGED,
            VerifyMergedInput(assemble=assemble, round=self._verifications),
            result_type=VerifiedMerge,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=self._input.task_heartbeat_seconds),
            schedule_to_close_timeout=OUTAGE_PATIENCE,
            retry_policy=ENGINE_RETRY,
            summary=f"merge and verify ({len(assemble.plan.merge_order)} branches)",
        )
        return verified

    def _checks_failed(self, verified: VerifiedMerge, attempt: int, fix_task: str | None = None) -> list[EventRecord]:
        """The verification on record, and which check failed with the end of its output.
        ``attempt``: the fix tasks in a row before it (0: the tasks' own merge)."""
        writer = self._writer
        payload = {
            "check": verified.failed_check,
            "output": verified.output[-EXCERPT_CHARS:],
            "attempt": attempt,
            "max_fix_attempts": self._agent.max_fix_attempts,
            "fix_task": fix_task,
        }
        return [
            writer.event("verification_completed", verified.verification.model_dump(mode="json")),
            writer.event("checks_failed", payload),
        ]

    async def _failed_for_good(self, verified: VerifiedMerge, attempts: int) -> GenerationFailed:
        state, writer = self._state, self._writer
        events = self._checks_failed(verified, attempts)
        await writer.transition(
            ProjectStatus.GENERATING, Phase.VERIFY, verification=verified.verification, events=events
        )
        tries = f"after {attempts} fix task{'s' if attempts != 1 else ''}" if attempts else "(no fix attempts allowed)"
        state.error = (
            f"Verification failed {tries}: check `{verified.failed_check}` failed: {verified.output[-EXCERPT_CHARS:]}"
        )
        return GenerationFailed(state.error)

    async def _fix(
        self, assemble: AssembleInput, verified: VerifiedMerge, fix: FixRequest, events: list[EventRecord]
    ) -> AssembleInput:
        """A fix task on the merged history; the branches to verify next, its own merged last."""
        state, writer = self._state, self._writer
        task = self._fix_task(assemble.plan, fix)
        if events:  # checks_failed names the fix task it hands the failure to
            events[-1].payload["fix_task"] = task.id
        plan = assemble.plan.model_copy(
            update={"tasks": [*assemble.plan.tasks, task], "merge_order": [*assemble.plan.merge_order, task.id]}
        )
        state.tasks_total += 1
        state.task_states[task.id] = "pending"
        # The plan on record again, so the fix task has its row as every task does.
        await writer.transition(
            ProjectStatus.GENERATING, Phase.TASKS, plan=plan, verification=verified.verification, events=events
        )
        merged = Workspace(base_key=verified.history.bundle_key, base_commit=verified.history.head)
        try:
            done = await self._coding.fix(assemble.request, assemble.spec, task, merged, fix)
        except Exception as exc:
            if cancels_the_run(exc):
                raise  # the run was cancelled while the fix ran: no failure of the fix task's
            raise DagFailed(task.id, exc) from exc
        return assemble.model_copy(
            update={
                "plan": plan,
                "bundles": {**assemble.bundles, task.id: done.result.bundle_key},
                "commits": {**assemble.commits, task.id: done.result.commit_sha},
            }
        )

    def _fix_task(self, plan: PlanResult, fix: FixRequest) -> TaskDefinition:
        state = self._state
        state.fixes += 1
        taken = {t.id for t in plan.tasks}
        task_id, n = f"fix-{state.fixes}", 1
        while task_id in taken:  # a plan may name a task fix-1 itself
            n += 1
            task_id = f"fix-{state.fixes}-{n}"
        scope = list(dict.fromkeys(glob for t in plan.tasks for glob in t.path_scope))
        if fix.reason == "checks":
            why = f"The project fails its verification: `{fix.check}` (fix attempt {fix.attempt} of "
            why += f"{self._agent.max_fix_attempts}). Make it pass, changing no more than it takes."
        else:
            why = f"The build's reviewer asked for changes (review round {fix.attempt}). Make them."
        return TaskDefinition(
            id=task_id,
            slug=task_id,
            description=f"Fix: {why}",
            dependencies=[t.id for t in plan.tasks],
            path_scope=scope,
            expected_outputs=[],
            sequence=max((t.sequence for t in plan.tasks), default=0) + 1,
        )

    async def _review(self, verified: VerifiedMerge) -> Decision:
        """The build's review gate: its merged history stored on the run (so its diff is
        served) before the run waits; approve, reject or regenerate (feedback) with the
        round as ``version``. Left, and the leaving stored, as soon as a decision is taken."""
        inp, state, writer = self._input, self._state, self._writer
        state.review_round += 1
        history = verified.history
        requested = writer.event(
            "review_requested",
            {"round": state.review_round, "head_commit": history.head, "base_commit": history.base},
        )
        await writer.transition(
            ProjectStatus.AWAITING_APPROVAL,
            Phase.AWAITING_REVIEW,
            commits=history,
            verification=verified.verification,
            events=[requested],
        )
        timeout = timedelta(seconds=inp.approval_timeout_seconds)
        try:
            await workflow.wait_condition(lambda: state.decision is not None, timeout=timeout)
        except TimeoutError:
            state.open_gate = None
            state.error = f"No review of the build was received within {human_duration(timeout)}."
            raise GenerationFailed(state.error) from None
        decision, state.decision = state.decision, None
        assert decision is not None
        payload: dict[str, Any] = {"round": decision.version, "notes": decision.notes}
        if decision.kind == "reject":
            state.error = decision.notes or "The build was rejected at its review."
            state.pending.events.append(writer.event("review_rejected", payload))
            raise GenerationFailed(state.error)
        if decision.kind == "approve":
            await writer.transition(
                ProjectStatus.GENERATING, Phase.EXPORT, events=[writer.event("review_approved", payload)]
            )
        else:  # the fix task's write stores it: the run leaves the gate at once
            changes = {"round": decision.version, "feedback": decision.notes}
            state.pending.events.append(writer.event("review_changes_requested", changes))
        return decision
