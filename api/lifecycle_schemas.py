"""Bodies of the lifecycle endpoints: questions, answers, review, runs, tasks, events."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import OptionalTimestamp, ProjectStatusName, Timestamp
from api.validation import ClientText
from store.models import Event, Run, SpecVersion, Task

TaskStatusName = Literal["pending", "running", "succeeded", "failed", "cancelled", "skipped"]


class Strict(ClientText):
    model_config = ConfigDict(extra="forbid")


class QuestionPublic(BaseModel):
    id: str
    question: str
    type: Literal["boolean", "single_choice", "text"]
    options: list[str] | None = None
    default: Any = None
    help: str = ""
    required: bool = Field(default=False, description="Must be answered; else, left out, it takes its default")


class QuestionList(BaseModel):
    questions: list[QuestionPublic]


class AnswersIn(Strict):
    # Each answer is held to the rules of the create field of its name (api.validation).
    answers: dict[str, Any] = Field(description="question id -> answer")


SpecVersionNumber = Field(
    default=None,
    ge=1,
    le=2_147_483_647,
    description="The spec version this decides; another version, or one being written, is 409 invalid_state",
)


class NotesIn(Strict):
    notes: str = Field(default="", max_length=5000)
    version: int | None = SpecVersionNumber


class FeedbackIn(Strict):
    feedback: str = Field(min_length=1, max_length=5000)
    version: int | None = SpecVersionNumber


class ActionResult(BaseModel):
    """Where the action led the project: the status and phase the run stored once it
    accepted the action. ``queued``: no worker answered in time, so the action waits in
    Temporal as a signal and ``status``/``phase`` are still those before it."""

    id: int
    status: ProjectStatusName
    phase: str
    paused: bool = False
    queued: bool = False
    accepted: str | None = Field(
        default=None, description="For 202 answers: the action taken on, whose end state `status` names"
    )
    run: int | None = Field(default=None, description="For a retry or an update: the number of the run it started")


class SpecPublic(BaseModel):
    version: int
    documents: dict[str, str]
    approved_at: OptionalTimestamp
    created_at: Timestamp
    feedback: list[str]

    @classmethod
    def of(cls, spec: SpecVersion) -> SpecPublic:
        return cls.model_validate(spec, from_attributes=True)


class SpecVersionSummary(BaseModel):
    version: int
    created_at: Timestamp
    approved_at: OptionalTimestamp
    feedback: list[str]
    decision_notes: str


class SpecVersionList(BaseModel):
    versions: list[SpecVersionSummary]


class SpecDocumentDiff(BaseModel):
    name: str
    change: Literal["added", "removed", "modified"]
    diff: str = Field(description="A unified diff, as `git diff` prints it")


class SpecDiff(BaseModel):
    from_version: int
    to_version: int
    documents: list[SpecDocumentDiff] = Field(description="Only the documents that changed, by name")


class RunPublic(BaseModel):
    id: int
    run_number: int
    status: ProjectStatusName
    trigger: str
    spec_version: int
    tasks_summary: dict[str, int]
    error_message: str
    created_at: Timestamp
    started_at: OptionalTimestamp
    finished_at: OptionalTimestamp

    @classmethod
    def of(cls, run: Run, summary: dict[str, int]) -> RunPublic:
        return cls(
            id=run.number,
            run_number=run.number,
            status=run.status,  # type: ignore[arg-type]
            trigger=run.trigger,
            spec_version=run.spec_version,
            tasks_summary=summary,
            error_message=run.error_message,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )


class RunList(BaseModel):
    runs: list[RunPublic]
    limit: int
    offset: int
    has_next: bool


class DagPublic(BaseModel):
    nodes: list[dict[str, Any]]
    edges: list[dict[str, str]]
    merge_order: list[str]


class RunDetail(RunPublic):
    spec: dict[str, Any] | None
    dag: DagPublic | None
    verification: dict[str, Any] | None
    head_commit: str | None = Field(default=None, description="A ready run's main commit")
    base_commit: str | None = Field(
        default=None, description="The commit the run built on (a template update's previous main); else null"
    )


class TaskPublic(BaseModel):
    id: str
    slug: str
    status: TaskStatusName
    sequence: int
    definition: dict[str, Any]
    branch_name: str | None
    commit_sha: str | None
    files: list[str]
    attempts: int
    error: str
    started_at: OptionalTimestamp
    finished_at: OptionalTimestamp

    @classmethod
    def of(cls, task: Task) -> TaskPublic:
        return cls(
            id=task.key,
            slug=task.slug,
            status=task.status,  # type: ignore[arg-type]
            sequence=task.sequence,
            definition=task.definition,
            branch_name=task.branch_name,
            commit_sha=task.commit_sha,
            files=task.files,
            attempts=task.attempts,
            error=task.error,
            started_at=task.started_at,
            finished_at=task.finished_at,
        )


class TaskList(BaseModel):
    tasks: list[TaskPublic]


class EventPublic(BaseModel):
    id: int
    type: str
    task_id: str | None
    payload: dict[str, Any]
    created_at: Timestamp

    @classmethod
    def of(cls, event: Event) -> EventPublic:
        return cls(
            id=event.seq, type=event.type, task_id=event.task_id, payload=event.payload, created_at=event.created_at
        )


class EventList(BaseModel):
    events: list[EventPublic]
    has_next: bool


class FileEntry(BaseModel):
    path: str
    type: Literal["file", "directory"]
    size: int | None = None


class FileListing(BaseModel):
    path: str
    entries: list[FileEntry]


class ProjectUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)


class ArchivedProject(BaseModel):
    id: int
    status: Literal["archived"]
