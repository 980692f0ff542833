"""The built-in coding agent's pass-through types: its child workflow's activities, their
inputs and results, and the state the workflow keeps by reference. Pydantic and the
standard library only, so a workflow may import them.

A task's files are never in the workflow's state: it holds where the task started (a
bundle key and a commit) and an overlay of the model's changes, path -> the content's key
in the artifact store (None: deleted)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from agents.types import Spend
from workflows.coding_types import CodingTaskInput

BUILTIN_TASK_WORKFLOW = "BuiltinTaskWorkflow"
START_BUILTIN_TASK = "start_builtin_task"
LIST_BUILTIN_FILES = "list_builtin_files"
READ_BUILTIN_FILE = "read_builtin_file"
WRITE_BUILTIN_FILE = "write_builtin_file"
DELETE_BUILTIN_FILE = "delete_builtin_file"
RECORD_BUILTIN_REQUEST = "record_builtin_request"
FINISH_BUILTIN_TASK = "finish_builtin_task"

# What one task may do: model requests, files it changes, characters a read returns to the
# model, paths a listing names. The byte limits are the worker's (agent_max_file_bytes,
# agent_max_task_bytes), checked by the activities.
MAX_REQUESTS = 50
MAX_CHANGED_FILES = 500
MAX_READ_CHARS = 100_000
MAX_LISTED = 2_000

Overlay = dict[str, str | None]  # path -> blob key, or None: deleted


class BuiltinStart(BaseModel):
    """Where a task starts, by reference: its start commit (the workspace's base with its
    dependencies merged), in a stored bundle whose ``refs/heads/main`` is that commit."""

    bundle_key: str
    commit: str
    files: int  # how many files the start commit holds
    blob_prefix: str  # where the model's writes are stored, content-addressed
    prompt: str  # the task as planned, its scope and the approved spec (data)
    # The worker's cap on a task's cost (FORGEFLOW_AGENT_MAX_COST_USD_PER_TASK), beside the
    # project's own; None: none.
    worker_cap_usd: float | None = None


class FileInput(BaseModel):
    """One tool call (read, delete) on one path: the start commit and the overlay on it."""

    start: BuiltinStart
    path: str
    path_scope: list[str] = Field(default_factory=list)
    overlay: Overlay = Field(default_factory=dict)


class ListInput(BaseModel):
    start: BuiltinStart
    directory: str = ""
    overlay: Overlay = Field(default_factory=dict)


class WriteInput(BaseModel):
    start: BuiltinStart
    path: str
    content: str
    path_scope: list[str]
    overlay: Overlay = Field(default_factory=dict)
    overlay_bytes: int = 0  # what the overlay's other files hold, for the task's limit


class ToolAnswer(BaseModel):
    """What a tool activity says. ``error``: told to the model, which may correct it (never a
    failure of the task); ``path``: the path as stored (normalised)."""

    text: str = ""
    error: str | None = None
    path: str = ""
    key: str | None = None  # write: the content's key
    size: int = 0  # write: its bytes
    existed: bool = False  # delete: in the start commit


class RecordBuiltinInput(BaseModel):
    key: str  # unique per request: a retried recording is stored once
    project_id: int
    run_number: int
    task_id: str
    number: int
    model: str
    provider: str | None = None
    provider_url: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    responded_at: datetime | None = None  # prices may change over time


class RecordedBuiltin(BaseModel):
    cost_usd: float | None  # None: the price tables do not know the model
    spent: Spend
    stop: str | None = None  # the project's budget, as stored now, is used up: why


class FinishInput(BaseModel):
    task: CodingTaskInput
    start: BuiltinStart
    overlay: Overlay
    summary: str = ""
    risks: list[str] = Field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    spent: Spend | None = None


class TaskReport(BaseModel):
    """The model's last word on its task (the output tool ``submit_task``)."""

    summary: str = Field(description="What you built, in a few sentences.")
    risks: list[str] = Field(default_factory=list, description="What may be wrong or untested.")


class TaskFiles(BaseModel):
    """The agent's ``deps``: the task's files as the workflow keeps them, which its tools
    (run in the workflow, each calling an activity) read and change. Pydantic AI also sends
    ``deps`` with every model request, which needs none of it: every field is excluded from
    the serialised form, so those payloads carry ``{}``."""

    start: BuiltinStart | None = Field(default=None, exclude=True)
    path_scope: list[str] = Field(default_factory=list, exclude=True)
    overlay: Overlay = Field(default_factory=dict, exclude=True)
    sizes: dict[str, int] = Field(default_factory=dict, exclude=True)  # bytes of each written file
