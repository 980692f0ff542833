"""Task records: a quick task is written once (start and result together), a long one
shows as running while it runs, a failed attempt is on record; on both databases."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from activities.task_records import TaskRecorder
from store.lifecycle import ensure_run, ensure_tasks, get_run, list_events, list_tasks
from workflows.types import TaskDefinition, TaskResult, TemplateRequest

TASK = TaskDefinition(
    id="core", slug="core", description="", dependencies=[], path_scope=["**"], expected_outputs=[], sequence=1
)
RESULT = TaskResult(
    task_id="core", files=["a.txt"], bundle_key="k", bundle_sha256="0" * 64, branch="feat/task-001-core", commit_sha="c"
)


@pytest.fixture
def request_for(db, project_row):
    _key, project_id = project_row()
    with db.session(write_lock=True) as session:
        run = ensure_run(session, project_id=project_id, number=1, trigger="create", at=datetime.now(UTC))
        ensure_tasks(session, run=run, project_id=project_id, definitions=[TASK.model_dump()])
    return TemplateRequest(project_id=project_id, run_number=1, template="widget-lib", answers={})


def task_row(db, request):
    with db.session() as session:
        run = get_run(session, project_id=request.project_id, number=1)
        (task,) = list_tasks(session, run_id=run.id)
        events = [e.type for e in list_events(session, project_id=request.project_id, after=0, limit=100)]
    return task, events


def count_write_transactions(db, monkeypatch) -> list[int]:
    writes = [0]
    real = db.session

    def session(*, write_lock=False):
        writes[0] += write_lock
        return real(write_lock=write_lock)

    monkeypatch.setattr(db, "session", session)
    return writes


def test_a_quick_task_is_recorded_once_with_its_start(db, request_for, monkeypatch):
    recorder = TaskRecorder(db, start_delay=5)
    writes = count_write_transactions(db, monkeypatch)
    start = recorder.begin(request_for, TASK, attempt=1)
    recorder.succeeded(start, RESULT)
    assert writes[0] == 1
    task, events = task_row(db, request_for)
    assert task.status == "succeeded" and task.attempts == 1 and task.started_at is not None
    assert events == ["task_started", "task_files", "task_succeeded"]


def test_a_long_task_shows_running_while_it_runs(db, request_for):
    recorder = TaskRecorder(db, start_delay=0.05)
    start = recorder.begin(request_for, TASK, attempt=2)
    deadline = time.monotonic() + 10
    while task_row(db, request_for)[0].status != "running":
        assert time.monotonic() < deadline, "the start was never written"
        time.sleep(0.02)
    task, events = task_row(db, request_for)
    assert task.attempts == 2 and events == ["task_started"]
    recorder.succeeded(start, RESULT)
    task, events = task_row(db, request_for)
    assert task.status == "succeeded"
    assert events == ["task_started", "task_files", "task_succeeded"]  # the start is not written twice


def test_a_failed_attempt_is_on_record(db, request_for):
    recorder = TaskRecorder(db, start_delay=5)
    start = recorder.begin(request_for, TASK, attempt=3)
    recorder.failed_attempt(start)
    task, events = task_row(db, request_for)
    assert task.status == "running" and task.attempts == 3 and events == ["task_started"]


def test_a_start_written_as_the_task_ends_is_written_once(db, request_for):
    # The timer fires while the result is being recorded: one of them writes the start.
    recorder = TaskRecorder(db, start_delay=0.001)
    start = recorder.begin(request_for, TASK, attempt=1)
    threading.Event().wait(0.001)
    recorder.succeeded(start, RESULT)
    _task, events = task_row(db, request_for)
    assert events.count("task_started") == 1 and events[-1] == "task_succeeded"


def test_tasks_that_shared_an_activity_are_recorded_in_one_transaction(db, request_for, monkeypatch):
    other = TASK.model_copy(update={"id": "extra", "slug": "extra", "sequence": 2})
    with db.session(write_lock=True) as session:
        run = get_run(session, project_id=request_for.project_id, number=1)
        ensure_tasks(session, run=run, project_id=request_for.project_id, definitions=[other.model_dump()])
    recorder = TaskRecorder(db, start_delay=5)
    done = [
        (recorder.begin(request_for, task, attempt=1), RESULT.model_copy(update={"task_id": task.id}))
        for task in (TASK, other)
    ]
    writes = count_write_transactions(db, monkeypatch)
    recorder.succeeded_many(done)
    assert writes[0] == 1
    with db.session() as session:
        tasks = list_tasks(session, run_id=get_run(session, project_id=request_for.project_id, number=1).id)
        events = [
            (e.task_id, e.type) for e in list_events(session, project_id=request_for.project_id, after=0, limit=100)
        ]
    assert {t.key: t.status for t in tasks} == {"core": "succeeded", "extra": "succeeded"}
    assert events == [
        (task_id, kind) for task_id in ("core", "extra") for kind in ("task_started", "task_files", "task_succeeded")
    ]
