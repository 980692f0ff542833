"""The ways people steer a run: queries, updates with validators (the API), and the same
operations as signals (scripts, the Web UI), which are validated alike but logged and
dropped when invalid instead of failing anything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.types import (
        AnswersUpdate,
        ApprovalUpdate,
        PauseUpdate,
        Phase,
        ProjectGenerationInput,
        ProjectStatus,
        QuestionModel,
        RegenerateUpdate,
        SpecSnapshot,
        StatusSnapshot,
    )

TERMINAL_PHASES = (Phase.DONE, Phase.FAILED, Phase.CANCELLED)


def invalid_state(status: ProjectStatus, phase: Phase, wanted: str) -> ApplicationError:
    return ApplicationError(
        f"the project is {status.value} (phase {phase.value}); {wanted}",
        {"current_status": status.value, "phase": phase.value},
        type="InvalidState",
        non_retryable=True,
    )


class ReviewHandlers:
    _input: ProjectGenerationInput
    _status: ProjectStatus
    _phase: Phase
    _questions: list[QuestionModel]
    _answers: dict[str, Any]
    _answers_received: bool
    _decision: str | None
    _decision_notes: str
    _feedback: list[str]
    _spec_version: int
    _tasks_total: int
    _tasks_done: int
    _error: str
    _paused: bool
    _spec_key: str | None
    _task_states: dict[str, str]

    @workflow.query
    def status(self) -> StatusSnapshot:
        return StatusSnapshot(
            project_id=self._input.project_id,
            status=self._status,
            phase=self._phase,
            spec_version=self._spec_version,
            tasks_total=self._tasks_total,
            tasks_done=self._tasks_done,
            questions=self._questions,
            error_message=self._error,
            paused=self._paused,
        )

    @workflow.query
    def questions(self) -> list[QuestionModel]:
        return self._questions

    @workflow.query
    def spec(self) -> SpecSnapshot:
        return SpecSnapshot(
            version=self._spec_version,
            documents_key=self._spec_key,
            feedback=list(self._feedback),
            awaiting_review=self._phase == Phase.AWAITING_APPROVAL,
        )

    @workflow.query
    def tasks(self) -> dict[str, str]:
        """Task id -> pending, running, succeeded or failed, as this run sees them."""
        return dict(self._task_states)

    # --- approval gate ---------------------------------------------------------------

    def _require_review(self) -> None:
        if self._phase != Phase.AWAITING_APPROVAL or self._decision is not None:
            raise invalid_state(self._status, self._phase, "only a spec awaiting approval can be decided")

    @workflow.update
    def approve(self, update: ApprovalUpdate) -> StatusSnapshot:
        self._decision, self._decision_notes = "approve", update.notes
        return self.status()

    @approve.validator
    def _validate_approve(self, update: ApprovalUpdate) -> None:
        self._require_review()

    @workflow.update
    def reject(self, update: ApprovalUpdate) -> StatusSnapshot:
        self._decision, self._decision_notes = "reject", update.notes
        return self.status()

    @reject.validator
    def _validate_reject(self, update: ApprovalUpdate) -> None:
        self._require_review()

    @workflow.update
    def regenerate(self, update: RegenerateUpdate) -> StatusSnapshot:
        self._feedback.append(update.feedback.strip())
        self._decision, self._decision_notes = "regenerate", update.feedback.strip()
        return self.status()

    @regenerate.validator
    def _validate_regenerate(self, update: RegenerateUpdate) -> None:
        self._require_review()
        if not update.feedback.strip():
            raise ApplicationError("feedback must not be empty", {"field": "feedback"}, type="InvalidInput")

    # --- questions -------------------------------------------------------------------

    @workflow.update
    def answers(self, update: AnswersUpdate) -> StatusSnapshot:
        self._answers.update(update.answers)
        self._answers_received = True
        return self.status()

    @answers.validator
    def _validate_answers(self, update: AnswersUpdate) -> None:
        if self._phase != Phase.AWAITING_ANSWERS or self._answers_received:
            raise invalid_state(self._status, self._phase, "no questions are waiting for answers")
        asked = {q.id for q in self._questions}
        unknown = sorted(set(update.answers) - asked)
        if unknown:
            raise ApplicationError(f"unknown question: {unknown[0]}", {"field": unknown[0]}, type="InvalidInput")
        missing = sorted(asked - set(update.answers))
        if missing:
            raise ApplicationError(f"question {missing[0]} is not answered", {"field": missing[0]}, type="InvalidInput")

    # --- pause and resume ------------------------------------------------------------

    @workflow.update
    def pause(self, update: PauseUpdate) -> StatusSnapshot:
        self._paused = True
        return self.status()

    @pause.validator
    def _validate_pause(self, update: PauseUpdate) -> None:
        if self._phase in TERMINAL_PHASES or self._paused:
            raise invalid_state(self._status, self._phase, "only a running, unpaused project can be paused")

    @workflow.update
    def resume(self, update: PauseUpdate) -> StatusSnapshot:
        self._paused = False
        return self.status()

    @resume.validator
    def _validate_resume(self, update: PauseUpdate) -> None:
        if not self._paused or self._phase in TERMINAL_PHASES:
            raise invalid_state(self._status, self._phase, "only a paused project can be resumed")

    # --- the same as signals, for scripts --------------------------------------------

    def _signal(self, name: str, validate: Callable[[Any], None], apply: Any, arg: Any) -> None:
        try:
            validate(arg)
        except ApplicationError as exc:
            workflow.logger.warning("ignored %s signal: %s", name, exc)
            return
        apply(arg)

    @workflow.signal(name="approve")
    def approve_signal(self, update: ApprovalUpdate) -> None:
        self._signal("approve", self._validate_approve, self.approve, update)

    @workflow.signal(name="reject")
    def reject_signal(self, update: ApprovalUpdate) -> None:
        self._signal("reject", self._validate_reject, self.reject, update)

    @workflow.signal(name="regenerate")
    def regenerate_signal(self, update: RegenerateUpdate) -> None:
        self._signal("regenerate", self._validate_regenerate, self.regenerate, update)

    @workflow.signal(name="answers")
    def answers_signal(self, update: AnswersUpdate) -> None:
        self._signal("answers", self._validate_answers, self.answers, update)

    @workflow.signal(name="pause")
    def pause_signal(self, update: PauseUpdate) -> None:
        self._signal("pause", self._validate_pause, self.pause, update)

    @workflow.signal(name="resume")
    def resume_signal(self, update: PauseUpdate) -> None:
        self._signal("resume", self._validate_resume, self.resume, update)
