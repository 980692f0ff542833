"""store.usage: one row per request however often it is recorded, and the summaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from store.db import Database
from store.lifecycle import list_events
from store.projects import ProjectMissing
from store.usage import NewUsage, UsageTotals, list_usage, project_spend, record_usage, usage_summary

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def usage(project_id: int, key: str, **fields) -> NewUsage:  # type: ignore[no-untyped-def]
    values = {
        "key": key,
        "project_id": project_id,
        "run_number": 1,
        "phase": "spec",
        "task_id": None,
        "number": 1,
        "model": "m",
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_usd": 0.5,
        **fields,
    }
    return NewUsage(**values)


def test_a_request_recorded_twice_is_stored_and_announced_once(db: Database, project_row):
    _, project_id = project_row()
    for _attempt in range(2):  # the activity, retried
        with db.session(write_lock=True) as session:
            record_usage(session, usage=usage(project_id, "wf/run/1"), at=NOW)
    with db.session() as session:
        assert len(list_usage(session, project_id=project_id)) == 1
        events = list_events(session, project_id=project_id, after=0, limit=10, type="agent_request_completed")
    assert [e.payload["total_tokens"] for e in events] == [120]


def test_totals_and_breakdowns(db: Database, project_row):
    _, project_id = project_row()
    rows = [
        usage(project_id, "a", phase="clarify"),
        usage(project_id, "b", phase="spec", cost_usd=None, model="unknown-model"),
        usage(project_id, "c", phase="plan", run_number=2, task_id="api"),
        usage(project_id, "d", phase="plan", run_number=2, task_id="api", input_tokens=1, output_tokens=1),
    ]
    with db.session(write_lock=True) as session:
        for row in rows:
            record_usage(session, usage=row, at=NOW)
    with db.session() as session:
        summary = usage_summary(session, project_id=project_id)
        spend = project_spend(session, project_id=project_id)
    assert summary.totals == UsageTotals(
        requests=4, input_tokens=301, output_tokens=61, total_tokens=362, cost_usd=1.5, unpriced_requests=1
    )
    assert summary.by_phase["plan"].requests == 2 and summary.by_phase["spec"].unpriced_requests == 1
    assert summary.by_run[1].total_tokens == 240 and summary.by_run[2].total_tokens == 122
    assert summary.by_task == {"api": UsageTotals(2, 101, 21, 122, 1.0, 0)}
    assert spend.totals == summary.totals and spend.unpriced_models == ["unknown-model"]


def test_a_project_that_is_gone_is_refused(db: Database):
    with db.session(write_lock=True) as session, pytest.raises(ProjectMissing):
        record_usage(session, usage=usage(999_999, "x"), at=NOW)
