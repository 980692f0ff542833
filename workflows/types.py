"""Pass-through types: the one argument and the result of every workflow, activity,
signal, update and query. Pydantic models, carried by ``pydantic_data_converter``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeKey

from workflows.agent_types import AgentMode
from workflows.change_types import ChangeRequest
from workflows.update_types import HistoryBase, RunCommits


class ProjectStatus(StrEnum):
    QUEUED = "queued"
    GENERATING = "generating"
    AWAITING_ANSWERS = "awaiting_answers"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_BUDGET = "awaiting_budget"  # agent mode: a model budget ran out; raise it or cancel
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset({ProjectStatus.READY, ProjectStatus.FAILED, ProjectStatus.CANCELLED})


class Phase(StrEnum):
    QUEUED = "queued"
    CLARIFY = "clarify"
    AWAITING_ANSWERS = "awaiting_answers"
    SPEC = "spec"
    AWAITING_APPROVAL = "awaiting_approval"
    AWAITING_BUDGET = "awaiting_budget"
    # Agent mode with ``review: "diff"``: the merged, verified build waits for a decision
    # (status awaiting_approval), its diff served by GET /projects/{id}/runs/{n}/diff.
    AWAITING_REVIEW = "awaiting_review"
    DECOMPOSE = "decompose"
    TASKS = "tasks"
    VERIFY = "verify"
    EXPORT = "export"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Activity names: the workflow refers to activities by name so that it never
# imports the activity code (and with it SQLAlchemy) into the workflow sandbox.
RECORD_PROJECTION = "record_projection"
CLARIFY = "clarify"
WRITE_SPEC = "write_spec"
DECOMPOSE = "decompose"
RUN_TASK = "run_task"
RUN_TASKS = "run_tasks"
VERIFY_AND_EXPORT = "verify_and_export"
PREPARE = "prepare"

SA_PROJECT_ID = SearchAttributeKey.for_int("ForgeflowProjectId")
SA_OWNER = SearchAttributeKey.for_keyword("ForgeflowOwner")
SA_STATUS = SearchAttributeKey.for_keyword("ForgeflowStatus")
SA_PHASE = SearchAttributeKey.for_keyword("ForgeflowPhase")
SA_TEMPLATE = SearchAttributeKey.for_keyword("ForgeflowTemplate")
SEARCH_ATTRIBUTES = (SA_PROJECT_ID, SA_OWNER, SA_STATUS, SA_PHASE, SA_TEMPLATE)


class ProjectGenerationInput(BaseModel):
    project_id: int
    owner: str
    name: str
    slug: str
    template: str  # the id; a git source's pinned to its commit, id@ref:commit (engine.sources)
    answers: dict[str, Any]
    # Without gates every unanswered question takes its default and the spec is
    # approved at once: the Djass v1 behaviour.
    wait_for_answers: bool = False
    require_approval: bool = False
    max_parallel_tasks: int = Field(default=4, ge=1, le=64)
    approval_timeout_seconds: float = Field(default=7 * 24 * 3600, gt=0)
    run_number: int = 1
    trigger: str = "create"  # or "retry", "update", "prompt"
    owner_id: int | None = None
    webhook_url: str | None = None
    # A retry rebuilds the approved spec version from its answers and feedback, with no
    # new questions and no new approval.
    approved_spec_version: int | None = None
    first_spec_version: int = 1
    # How long a task may go without a heartbeat before Temporal hands it to another
    # worker: the time to notice a worker that died mid-task.
    task_heartbeat_seconds: float = Field(default=30, gt=0)
    # How long a run that has ended waits for its last webhook deliveries before handing
    # the ones still retrying to a workflow of their own (workflows/webhooks.py).
    webhook_grace_seconds: float = Field(default=30, ge=0)
    feedback: list[str] = Field(default_factory=list)
    # Larger plans run their tasks in child workflows of this many tasks each, so no one
    # history grows with the plan (about six events per task; the server warns at 10,240).
    tasks_per_batch: int = Field(default=250, ge=1, le=2000)
    # Tasks ready together go at least this many to an activity. A task of the built-in
    # engine takes about a millisecond of one interpreter's time, and an activity costs the
    # run a round trip and a workflow task (about 10 ms here): eight tasks one after
    # another in one activity finish sooner than side by side in one worker. 1: spread
    # over every free slot (tasks that mostly wait, on a service for instance).
    min_tasks_per_pack: int = Field(default=8, ge=1, le=25)
    # Agent mode: a model writes the questions, the spec and the plan from the brief.
    agent: AgentMode | None = None
    # An update run (or the retry of one): its render is committed on top of this history,
    # and the project's last ready artifact stays downloadable until the run is ready.
    base: HistoryBase | None = None
    # A retry of a coding agents' run: the approved spec and plan and the finished tasks of
    # this run, kept (workflows.coding_types.Checkpoint).
    resume_from_run: int | None = None
    # A run on demand (trigger "prompt"): the client's change, planned as a spec delta and
    # built by the coding agent on top of ``base``, the last ready run's history.
    change: ChangeRequest | None = None

    @property
    def waits_for_answers(self) -> bool:
        return self.wait_for_answers and self.approved_spec_version is None

    @property
    def waits_for_approval(self) -> bool:
        return self.require_approval and self.approved_spec_version is None


class ArtifactRef(BaseModel):
    key: str
    sha256: str
    size: int


class QuestionModel(BaseModel):
    id: str
    question: str
    type: str
    options: list[str] | None = None
    default: Any = None
    help: str = ""
    required: bool = False  # else an unanswered question takes its default


def with_defaults(answers: dict[str, Any], questions: list[QuestionModel]) -> dict[str, Any]:
    """The answers, with every question nobody answered at the template's default."""
    filled = dict(answers)
    for question in questions:
        filled.setdefault(question.id, question.default)
    return filled


class EventRecord(BaseModel):
    type: str
    key: str  # dedup key: the same event written twice is stored once
    payload: dict[str, Any] = Field(default_factory=dict)
    task_id: str | None = None


class TaskUpdate(BaseModel):
    task_id: str
    status: str
    error: str = ""
    # A task a retry keeps from the run before (its commit, branch and files, as they were).
    commit_sha: str | None = None
    branch: str | None = None
    files: list[str] | None = None


class SpecRecord(BaseModel):
    version: int
    documents_key: str
    answers: dict[str, Any]
    feedback: list[str]
    # Stored beside the four documents and kept with them (agent mode: tasks.md, plan.json).
    extra_documents: list[str] = Field(default_factory=list)


class DecisionRecord(BaseModel):
    version: int
    approved: bool
    notes: str = ""


class ProjectionInput(BaseModel):
    """One write of the workflow's state to the database, in one transaction."""

    project_id: int
    seq: int
    status: ProjectStatus
    phase: Phase
    at: datetime
    run_number: int = 1
    trigger: str = "create"
    error_message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    artifact: ArtifactRef | None = None
    events: list[EventRecord] = Field(default_factory=list)
    questions: list[QuestionModel] | None = None  # None leaves them as they are
    # A pause or resume: only ``paused`` and the events are stored; status, phase and the
    # sequence stay as the status writes leave them, whichever lands first.
    flags_only: bool = False
    paused: bool | None = None
    spec: SpecRecord | None = None
    decision: DecisionRecord | None = None
    plan: PlanResult | None = None
    verification: VerifyResult | None = None
    task_updates: list[TaskUpdate] = Field(default_factory=list)
    close_tasks: str | None = None  # "skipped" or "cancelled": what never ran
    # A run's start that leaves the project's last artifact in place (an update's).
    keeps_artifact: bool = False
    commits: RunCommits | None = None  # the ready write's: where the run's history is


class TemplateRequest(BaseModel):
    """What every engine activity needs to rebuild the same context deterministically."""

    project_id: int
    run_number: int
    template: str  # the id; a git source's pinned to its commit, id@ref:commit (engine.sources)
    answers: dict[str, Any]
    # Pinned at decompose time: a template edited mid-run fails the run instead of
    # silently mixing two versions.
    template_digest: str | None = None


class ClarifyResult(BaseModel):
    template_digest: str
    questions: list[QuestionModel]


class SpecInput(BaseModel):
    request: TemplateRequest
    version: int
    feedback: list[str] = Field(default_factory=list)


class SpecResult(BaseModel):
    version: int
    documents_key: str
    digests: dict[str, str]


class PrepareInput(BaseModel):
    request: TemplateRequest  # as the client answered, no template digest yet
    version: int  # of the spec
    feedback: list[str] = Field(default_factory=list)
    # The run's tasks-phase write, less what only the preparation knows (workflows.status):
    # the activity completes and stores it, so the run needs no local activity for it.
    record_last: ProjectionInput | None = None


class TaskDefinition(BaseModel):
    id: str
    slug: str
    description: str
    dependencies: list[str]
    path_scope: list[str]
    expected_outputs: list[str]
    sequence: int


class PlanResult(BaseModel):
    root_name: str
    tasks: list[TaskDefinition]
    merge_order: list[str]


class PrepareResult(BaseModel):
    """Clarify, spec and decompose of a run that waits for nobody, in one step."""

    request: TemplateRequest  # with every question answered (defaults) and the digest pinned
    clarified: ClarifyResult
    spec: SpecResult
    plan: PlanResult
    recorded: ProjectionInput | None = None  # PrepareInput.record_last, completed and stored


class TaskInput(BaseModel):
    request: TemplateRequest
    task: TaskDefinition
    total_tasks: int


class TaskResult(BaseModel):
    task_id: str
    files: list[str]
    bundle_key: str
    bundle_sha256: str
    branch: str
    commit_sha: str
    # A coding agent's own account (agents/coding): its closing message and the risks it named.
    summary: str = ""
    risks: list[str] = Field(default_factory=list)


class TaskPackInput(BaseModel):
    """Tasks that were ready together, run one after another in one activity."""

    request: TemplateRequest
    tasks: list[TaskDefinition]
    total_tasks: int


class TaskPackResult(BaseModel):
    results: list[TaskResult]


class TaskSliceInput(BaseModel):
    """A slice of a large plan, in plan order; dependencies on earlier slices are dropped
    (those tasks have finished before the slice starts)."""

    request: TemplateRequest
    tasks: list[TaskDefinition]
    total_tasks: int
    max_parallel: int
    task_heartbeat_seconds: float
    paused: bool = False
    min_pack: int = 1  # the parent's min_tasks_per_pack


class TaskSliceResult(BaseModel):
    bundles: dict[str, str]  # task id -> bundle key
    commits: dict[str, str]  # task id -> commit sha


class PauseState(BaseModel):
    paused: bool


class AssembleInput(BaseModel):
    request: TemplateRequest
    plan: PlanResult
    bundles: dict[str, str]  # task id -> bundle key
    commits: dict[str, str] = Field(default_factory=dict)  # task id -> commit sha
    spec: SpecResult
    # The run's next status write (the verify phase): the write costs the run no local
    # activity of its own, and is still stored before the run moves on. The activity
    # stores it once verifying has taken a quarter of a second, or else together with
    # record_last (activities.assembly.VERIFY_RECORD_DELAY).
    record_first: ProjectionInput | None = None
    # The run's ready write, less what only the export knows (workflows.status): stored
    # once the export is, so the API shows the project ready one workflow task sooner.
    record_last: ProjectionInput | None = None
    base: HistoryBase | None = None  # an update's: the history its render goes on top of
    # Agent mode with a coding agent: the tasks' branches (``bundles``) merge into this
    # history's main with git, instead of the template's modules into a history of their own.
    coding_base_key: str | None = None
    # Coding agents' runs: verified already, on this same merge (verify_merged), so the
    # export runs no check again.
    verified: VerifyResult | None = None


class VerifyFinding(BaseModel):
    """What verify found in one file (engine.verify.Finding): an error fails the run, a
    warning is only on record."""

    path: str  # "" where no one file is concerned (a check)
    rule: str  # python, json, jsonc, json5, yaml, toml, expected-output, check
    severity: Literal["error", "warning"]
    message: str


class VerifyResult(BaseModel):
    ok: bool
    files: int
    files_checked: int
    errors: list[str]
    checks: list[str] = Field(default_factory=list)  # "passed: <cmd>" / "failed: <cmd>"
    hooks: list[str] = Field(default_factory=list)  # what ran, or why hooks were skipped
    # Results from before findings have none of these (recorded histories replay them).
    # The first engine.verify.MAX_FINDINGS findings, errors first, to keep payloads small;
    # findings_total and warnings count them all.
    findings: list[VerifyFinding] = Field(default_factory=list)
    findings_total: int = 0
    warnings: int = 0


class ExportResult(BaseModel):
    artifact: ArtifactRef
    files: int
    repository: ArtifactRef
    main_sha: str
    base_sha: str | None = None  # an update's: the main it was committed on top of


class AssemblyResult(BaseModel):
    """Verify and export in one activity: the export only where verification passed."""

    verification: VerifyResult
    export: ExportResult | None = None
    recorded: ProjectionInput | None = None  # AssembleInput.record_last, completed and stored


class ProjectGenerationResult(BaseModel):
    project_id: int
    status: ProjectStatus
    artifact: ArtifactRef | None = None
    error_message: str = ""


class AnswersUpdate(BaseModel):
    answers: dict[str, Any]


class ApprovalUpdate(BaseModel):
    notes: str = ""
    # The spec version decided on; another version, or none under review, is refused.
    version: int | None = None


class RegenerateUpdate(BaseModel):
    feedback: str
    version: int | None = None


class PauseUpdate(BaseModel):
    reason: str = ""


class SpecSnapshot(BaseModel):
    version: int
    documents_key: str | None
    feedback: list[str]
    awaiting_review: bool


class StatusSnapshot(BaseModel):
    project_id: int
    status: ProjectStatus
    phase: Phase
    spec_version: int
    tasks_total: int
    tasks_done: int
    questions: list[QuestionModel]
    error_message: str = ""
    paused: bool = False


# Webhooks (Standard Webhooks): the workflow picks the id and the timestamp, so every
# retry of one delivery carries the same ``webhook-id`` and the same body.
DELIVER_WEBHOOK = "deliver_webhook"


class WebhookDelivery(BaseModel):
    project_id: int
    owner_id: int
    url: str
    webhook_id: str
    event_type: str
    payload: dict[str, Any]
    timestamp: datetime


class WebhookRelayInput(BaseModel):
    deliveries: list[WebhookDelivery] = Field(min_length=1)


class WebhookResult(BaseModel):
    status_code: int
    attempts: int
