"""The project's event log: pages, and a Server-Sent Events stream that resumes."""

from __future__ import annotations

import logging
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send

from api.auth_first import AuthFirstRoute
from api.deps import EventCursor, ReadableProject, SessionDep
from api.errors import ERROR_RESPONSES, ApiError
from api.lifecycle_schemas import EventList, EventPublic
from api.streams import Feed, StreamHub, Subscription, follow
from store.lifecycle import list_events

router = APIRouter(
    route_class=AuthFirstRoute, prefix="/projects/{project_id}", tags=["events"], responses=ERROR_RESPONSES
)

log = logging.getLogger("forgeflow.api.events")
# How long one send may wait on a client that does not read (its socket buffers are full).
SEND_TIMEOUT = 30.0


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


class EventStreamResponse(EventSourceResponse):
    """An SSE response that holds one of its key's stream slots until it is over, however it
    ends: the project ended, the client left, the key stopped working, or the client
    stopped reading (a send blocked for ``SEND_TIMEOUT`` drops it)."""

    def __init__(self, hub: StreamHub, sub: Subscription, feed: Feed, cursor: int) -> None:
        # ping=0: heartbeats come from ``follow``, only while the stream is quiet, as before.
        headers = {"Cache-Control": "no-cache"}
        super().__init__(follow(hub, sub, feed, cursor), headers=headers, ping=0, sep="\n", send_timeout=SEND_TIMEOUT)
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
    after: EventCursor | None = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> EventStreamResponse:
    cursor = _start_after(last_event_id, after)
    hub: StreamHub = request.app.state.streams
    sub, feed = hub.open(request.state.identity, project.id)  # or 429 too_many_streams
    return EventStreamResponse(hub, sub, feed, cursor)
