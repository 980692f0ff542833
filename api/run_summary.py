"""``GET /runs/{n}/summary``: what a run did, in one body a reviewer reads first: the files
it changed (from its history, as its diff has them), its tasks (with what each coding agent
said it did and the risks it named), its checks and its model and agent usage."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.run_diff import RunTrees
from engine.treediff import diff_stats
from store.event_filter import EventFilter
from store.lifecycle import list_events, list_tasks
from store.models import Run
from store.usage import list_usage


class ChangedFile(BaseModel):
    path: str
    status: str = Field(description="added, modified, deleted or mode_changed")
    additions: int
    deletions: int
    binary: bool


class TaskSummary(BaseModel):
    id: str
    status: str
    commit_sha: str | None
    files: list[str]
    summary: str = Field(description="The coding agent's own account of the task (empty in template mode)")
    risks: list[str]


class RunUsage(BaseModel):
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None = Field(description="null when a request could not be priced")


class RunSummary(BaseModel):
    run: int
    status: str
    trigger: str
    base_commit: str | None
    head_commit: str | None
    changed_files: list[ChangedFile] | None = Field(description="null until the run is ready (no history yet)")
    tasks: list[TaskSummary]
    checks: list[str]
    usage: RunUsage
    risks: list[str] = Field(description="Every task's risks, in task order")


def run_summary(*, session: Session, project_id: int, run: Run, trees: RunTrees | None) -> RunSummary:
    said: dict[str, dict[str, Any]] = {}
    where = EventFilter(types=("task_succeeded",), run=run.number)
    for event in list_events(session, project_id=project_id, after=0, limit=10_000, where=where):
        if event.task_id is not None:
            said[event.task_id] = event.payload
    tasks = [
        TaskSummary(
            id=t.key,
            status=t.status,
            commit_sha=t.commit_sha,
            files=list(t.files),
            summary=str(said.get(t.key, {}).get("summary", "")),
            risks=[str(r) for r in said.get(t.key, {}).get("risks", [])],
        )
        for t in list_tasks(session, run_id=run.id)
    ]
    requests = list_usage(session, project_id=project_id, run_number=run.number)
    costs = [r.cost_usd for r in requests]
    usage = RunUsage(
        requests=len(requests),
        input_tokens=sum(r.input_tokens for r in requests),
        output_tokens=sum(r.output_tokens for r in requests),
        cost_usd=None if any(c is None for c in costs) else round(sum(c for c in costs if c is not None), 6),
    )
    changed = None
    if trees is not None:
        changed = [ChangedFile.model_validate(stat) for stat in diff_stats(old=trees.base, new=trees.head)]
    return RunSummary(
        run=run.number,
        status=run.status,
        trigger=run.trigger,
        base_commit=run.base_commit,
        head_commit=run.head_commit,
        changed_files=changed,
        tasks=tasks,
        checks=list((run.verification or {}).get("checks", [])),
        usage=usage,
        risks=[risk for task in tasks for risk in task.risks],
    )
