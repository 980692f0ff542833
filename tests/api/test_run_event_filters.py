"""GET /runs pages and filters by status; GET /events and /events/stream take several types,
``since``, ``run`` and ``task``, and a stream sends only what its filter admits. Rows are
inserted with the store (no workflow needed); every request goes over real HTTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from store.lifecycle import NewEvent, append_events, ensure_run
from store.models import Project, Run, utcnow
from tests.api.test_events_stream import read_frames

T0 = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
# type, run, task, minutes after T0; event ids are 1, 2, ... in this order. Run 11 is there
# so that run=1 is seen not to match it by prefix.
EVENTS = [
    ("status_changed", 1, None, 0),
    ("task_started", 1, "t1", 1),
    ("task_succeeded", 1, "t1", 2),
    ("project_failed", 1, None, 3),
    ("project_updated", None, None, 4),  # written by the API: no run
    ("status_changed", 11, None, 5),
    ("task_started", 11, "t1", 6),
    ("task_succeeded", 11, "t1", 7),
    ("task_started", 11, "t2", 8),
    ("task_failed", 11, "t2", 9),
]
# Appended while a stream is open, then the project ends.
LIVE = [
    ("task_started", 11, "t2", 10),
    ("task_failed", 11, "t2", 11),
    ("project_failed", 11, None, 12),
]


def append(db, project_id, events, first_seq, *, end=False):
    with db.session(write_lock=True) as session:
        for n, (type, run, task, minutes) in enumerate(events, start=first_seq):
            at = T0 + timedelta(minutes=minutes)
            # Keys as the run's writers make them (``<type>:<run>:...``); the API's own edit
            # carries its time instead.
            key = f"{type}:{run}:{task}:{n}" if run is not None else f"{type}:{at.isoformat()}"
            append_events(session, project_id=project_id, events=[NewEvent(type, key, {"n": n}, task)], at=at)
        if end:
            session.execute(update(Project).where(Project.id == project_id).values(status="failed"))


@pytest.fixture
def project(db, project_row):
    key, project_id = project_row()
    with db.session(write_lock=True) as session:
        session.execute(update(Project).where(Project.id == project_id).values(status="generating"))
        for number, status in enumerate(["failed", "failed", "cancelled", "ready", "generating"], start=1):
            ensure_run(session, project_id=project_id, number=number, trigger="retry", at=T0)
            session.execute(update(Run).where(Run.project_id == project_id, Run.number == number).values(status=status))
    append(db, project_id, EVENTS, 1)
    return {"X-API-Key": key.key}, project_id


def matching(events, first_seq=1, *, types=(), run=None, task=None, since=None):
    return [
        n
        for n, (type, event_run, event_task, minutes) in enumerate(events, start=first_seq)
        if (not types or type in types)
        and (run is None or event_run == run)
        and (task is None or event_task == task)
        and (since is None or minutes >= since)
    ]


async def test_runs_page_and_filter_by_status(http, project):
    auth, project_id = project
    url = f"/projects/{project_id}/runs"
    everything = (await http.get(url, headers=auth)).json()
    assert [r["run_number"] for r in everything["runs"]] == [1, 2, 3, 4, 5]
    assert (everything["limit"], everything["offset"], everything["has_next"]) == (100, 0, False)
    first = (await http.get(url, params={"limit": 2}, headers=auth)).json()
    assert [r["run_number"] for r in first["runs"]] == [1, 2] and first["has_next"] is True
    last = (await http.get(url, params={"limit": 2, "offset": 4}, headers=auth)).json()
    assert [r["run_number"] for r in last["runs"]] == [5] and last["has_next"] is False
    picked = (await http.get(url, params=[("status", "failed"), ("status", "ready")], headers=auth)).json()
    assert [(r["run_number"], r["status"]) for r in picked["runs"]] == [(1, "failed"), (2, "failed"), (4, "ready")]
    paged = (await http.get(url, params={"status": "failed", "limit": 1}, headers=auth)).json()
    assert [r["run_number"] for r in paged["runs"]] == [1] and paged["has_next"] is True
    for params, field in (({"status": "done"}, "status"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset")):
        response = await http.get(url, params=params, headers=auth)
        assert response.status_code == 422 and response.json()["error"]["details"]["field"] == field


def iso(minutes, offset=""):
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S") + (offset or "Z")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([("type", "task_started"), ("type", "task_failed")], matching(EVENTS, types=("task_started", "task_failed"))),
        ({"since": iso(5)}, matching(EVENTS, since=5)),
        ({"run": 1}, matching(EVENTS, run=1)),
        ({"run": 11, "type": "task_started"}, matching(EVENTS, run=11, types=("task_started",))),
        ({"task": "t1"}, matching(EVENTS, task="t1")),
        ({"task_id": "t1"}, matching(EVENTS, task="t1")),
        ({"task": "t2", "since": iso(9)}, [10]),
        ({"run": 7}, []),
    ],
)
async def test_events_filters(http, project, params, expected):
    auth, project_id = project
    response = await http.get(f"/projects/{project_id}/events", params=params, headers=auth)
    assert response.status_code == 200, response.text
    assert [e["id"] for e in response.json()["events"]] == expected
    assert expected or params == {"run": 7}  # each case but the last selects something


async def test_since_takes_any_offset(http, project):
    auth, project_id = project
    shifted = (T0 + timedelta(minutes=5, hours=2)).strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"
    naive = (T0 + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")  # taken as UTC
    for since in (shifted, naive):
        response = await http.get(f"/projects/{project_id}/events", params={"since": since}, headers=auth)
        assert [e["id"] for e in response.json()["events"]] == matching(EVENTS, since=5)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ({"run": 0}, "run"),
        ({"run": "first"}, "run"),
        ({"type": "x" * 65}, "type"),
        ({"task": "t1", "task_id": "t2"}, "task"),
    ],
)
async def test_bad_event_filters_are_422(http, project, params, field):
    auth, project_id = project
    for path in ("events", "events/stream"):
        response = await http.get(f"/projects/{project_id}/{path}", params=params, headers=auth)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"]["field"] == field


@pytest.mark.parametrize(
    ("params", "filters"),
    [
        ([("type", "task_started"), ("type", "task_failed")], {"types": ("task_started", "task_failed")}),
        ({"run": 11, "task": "t2"}, {"run": 11, "task": "t2"}),
        ({"since": iso(8)}, {"since": 8}),
    ],
)
async def test_stream_sends_only_what_its_filter_admits(http, db, project, params, filters):
    auth, project_id = project
    expected = matching(EVENTS, **filters) + matching(LIVE, len(EVENTS) + 1, **filters)

    async def later():  # while the stream is open: more events, then the project ends
        await asyncio.sleep(0.8)
        await asyncio.to_thread(append, db, project_id, LIVE, len(EVENTS) + 1, end=True)

    writer = asyncio.create_task(later())
    async with asyncio.timeout(20):
        async with http.stream("GET", f"/projects/{project_id}/events/stream", params=params, headers=auth) as response:
            assert response.status_code == 200
            frames = await read_frames(response)
    await writer
    assert [f["id"] for f in frames] == expected
    assert any(n > len(EVENTS) for n in expected)  # some came live, through the shared feed
    # A page with the same filters says the same.
    page = (await http.get(f"/projects/{project_id}/events", params=params, headers=auth)).json()
    assert [e["id"] for e in page["events"]] == expected
