"""The project's event log: pages, and a Server-Sent Events stream that resumes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import StringConstraints
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from api.auth_first import AuthFirstRoute
from api.deps import MAX_ID, EventCursor, ReadableProject, SessionDep
from api.errors import ERROR_RESPONSES, ApiError
from api.lifecycle_schemas import EventList, EventPublic
from api.streams import Feed, StreamHub, Subscription, follow
from store.event_filter import EventFilter
from store.lifecycle import list_events

router = APIRouter(
    route_class=AuthFirstRoute, prefix="/projects/{project_id}", tags=["events"], responses=ERROR_RESPONSES
)

log = logging.getLogger("forgeflow.api.events")
# How long one send may wait on a client that does not read (its socket buffers are full).
SEND_TIMEOUT = 30.0


EventType = Annotated[str, StringConstraints(max_length=64)]
TaskName = Annotated[str | None, Query(max_length=100)]


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(
        422, "invalid_parameters", "validation", f"Invalid value for {field}: {message}.", details={"field": field}
    )


async def event_filter(
    type: Annotated[list[EventType] | None, Query(max_length=20, description="One or several (repeat it)")] = None,
    task_id: TaskName = None,
    task: Annotated[str | None, Query(max_length=100, description="The same as task_id")] = None,
    since: Annotated[
        datetime | None, Query(description="ISO 8601; events created at or after it (UTC if no offset)")
    ] = None,
    run: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Events of this run number")] = None,
) -> EventFilter:
    """The filters of the event pages and of the stream, alike."""
    if task is not None and task_id is not None and task != task_id:
        raise _invalid("task", "task and task_id name different tasks")
    if since is not None:
        try:  # the column holds UTC; an offset at either end of the calendar leaves it
            since = since.replace(tzinfo=since.tzinfo or UTC).astimezone(UTC)
        except OverflowError:
            raise _invalid("since", "out of range") from None
    return EventFilter(types=tuple(dict.fromkeys(type or ())), task_id=task or task_id, since=since, run=run)


EventFilterDep = Annotated[EventFilter, Depends(event_filter)]


@router.get("/events", response_model=EventList, summary="Events after a given id")
def read_events(
    project: ReadableProject,
    session: SessionDep,
    where: EventFilterDep,
    after: EventCursor = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventList:
    rows = list_events(session, project_id=project.id, after=after, limit=limit + 1, where=where)
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


class EventStreamResponse(EventSourceResponse):
    """An SSE response that holds one of its key's stream slots until it is over, however it
    ends: the project ended, the client left, the key stopped working, or the client
    stopped reading (a send blocked for ``SEND_TIMEOUT`` drops it)."""

    def __init__(self, hub: StreamHub, sub: Subscription, feed: Feed, cursor: int, only: EventFilter) -> None:
        # ping=0: heartbeats come from ``follow``, only while the stream is quiet, as before.
        headers = {"Cache-Control": "no-cache"}
        body = follow(hub, sub, feed, cursor, None if only.empty else only)
        super().__init__(body, headers=headers, ping=0, sep="\n", send_timeout=SEND_TIMEOUT)
        self.hub, self.sub, self.feed = hub, sub, feed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with anyio.CancelScope() as cancel:
                self.sub.cut = cancel.cancel
                await super().__call__(scope, receive, send)
        except SendTimeoutError:
            log.info("event stream of project %s dropped: its client stopped reading", self.sub.project_id)
        finally:
            self.hub.release(self.sub, self.feed)


@router.get(
    "/events/stream",
    summary="Events as Server-Sent Events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`id:` is the event id"},
        429: ERROR_RESPONSES[429]
        | {"description": "Too many open event streams for this key (too_many_streams), or rate limited"},
    },
)
async def stream_events(
    request: Request,
    project: ReadableProject,
    where: EventFilterDep,
    after: EventCursor | None = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> EventStreamResponse:
    cursor = _start_after(last_event_id, after)
    hub: StreamHub = request.app.state.streams
    sub, feed = hub.open(request.state.identity, project.id)  # or 429 too_many_streams
    return EventStreamResponse(hub, sub, feed, cursor, where)
