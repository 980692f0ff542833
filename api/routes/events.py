"""The project's event log: pages, and a Server-Sent Events stream that resumes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import DatabaseDep, EventCursor, ReadableProject, SessionDep, SettingsDep
from api.errors import ERROR_RESPONSES, ApiError
from api.lifecycle_schemas import EventList, EventPublic
from store.db import Database
from store.lifecycle import list_events
from store.models import Event, Project
from workflows.types import TERMINAL_STATUSES

router = APIRouter(prefix="/projects/{project_id}", tags=["events"], responses=ERROR_RESPONSES)

POLL_SECONDS = 0.25
BATCH = 200


@router.get("/events", response_model=EventList, summary="Events after a given id")
def read_events(
    project: ReadableProject,
    session: SessionDep,
    after: EventCursor = 0,
    type: Annotated[str | None, Query(max_length=64)] = None,
    task_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventList:
    rows = list_events(session, project_id=project.id, after=after, limit=limit + 1, type=type, task_id=task_id)
    return EventList(events=[EventPublic.of(e) for e in rows[:limit]], has_next=len(rows) > limit)


def _start_after(last_event_id: str | None, after: int | None) -> int:
    if last_event_id is not None and last_event_id.strip():
        if not last_event_id.strip().isdigit():
            raise ApiError(
                400,
                "invalid_payload",
                "validation",
                "Last-Event-ID must be an event id.",
                details={"field": "Last-Event-ID"},
            )
        return int(last_event_id.strip())
    return after or 0


def _fetch(db: Database, project_id: int, cursor: int) -> tuple[list[Event], bool]:
    with db.session() as session:
        # Status first, events second: a terminal status is written in the same
        # transaction as the last events, so they are visible once it is.
        project = session.get(Project, project_id)
        terminal = project is None or project.status in TERMINAL_STATUSES
        return list_events(session, project_id=project_id, after=cursor, limit=BATCH), terminal


def _frame(event: Event) -> str:
    data = EventPublic.of(event).model_dump_json()
    return f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n"


@router.get(
    "/events/stream",
    summary="Events as Server-Sent Events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "`id:` is the event id"}},
)
async def stream_events(
    request: Request,
    project: ReadableProject,
    db: DatabaseDep,
    settings: SettingsDep,
    after: EventCursor | None = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    cursor = _start_after(last_event_id, after)
    heartbeat = settings.sse_heartbeat_seconds

    async def frames() -> AsyncIterator[str]:
        position, quiet_since = cursor, time.monotonic()
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            events, terminal = await run_in_threadpool(_fetch, db, project.id, position)
            for event in events:
                position = event.seq
                yield _frame(event)
            if events:
                quiet_since = time.monotonic()
                continue
            if terminal:
                return
            if time.monotonic() - quiet_since >= heartbeat:
                quiet_since = time.monotonic()
                yield ": heartbeat\n\n"
            await asyncio.sleep(POLL_SECONDS)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames(), media_type="text/event-stream", headers=headers)
