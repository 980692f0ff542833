"""Request limits, enforced before anything parses the request: the body's size (a declared
Content-Length over the limit is refused at once, a chunked body is counted as it streams in
and cut off the moment it passes the limit), then control characters in the query string,
and how deeply the body's JSON nests."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response
from api.validation import control_character, nested_too_deep, too_deep

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_RAW_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        "validation",
        f"Request body is larger than {limit} bytes.",
        details={"max_bytes": limit},
    )


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await error_response(too_large(self.max_bytes))(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # An HTTP error, so the app's own handlers answer it when they are the reader.
                    raise HTTPException(413)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as exc:  # raised here when a middleware below read the body itself
            if exc.status_code != 413 or started:
                raise
            await error_response(too_large(self.max_bytes))(scope, receive, send)


class ClientInputMiddleware:
    """What no route should have to think about, refused before any of them runs: a control
    character in the query string (422 invalid_parameters: a NUL reaches PostgreSQL as an
    error, not as a value that matches nothing), and a body that nests JSON deeper than
    ``api.validation.MAX_NESTING`` (400 invalid_payload) before anything parses it: the
    idempotency middleware and FastAPI both parse bodies with recursive code, and Temporal's
    payload converter gives up at a depth the parser still accepts. Sits inside
    BodySizeLimitMiddleware, so the body it buffers is bounded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = _bad_target(scope)
        if refused is not None:
            await error_response(refused)(scope, receive, send)
            return
        if scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if too_deep(body):
            await error_response(nested_too_deep())(scope, receive, send)
            return
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


def _bad_target(scope: Scope) -> ApiError | None:
    # Path parameters are the routes' own: a file path with a NUL is simply not found (404),
    # a task id is held to its pattern (api.deps.TaskKey).
    query: bytes = scope.get("query_string", b"")
    if query and (b"%" in query or _RAW_CONTROL.search(query)):
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8"):
            found = control_character(name) or control_character(value)
            if found is not None:
                return invalid_parameter(name if control_character(name) is None else "query", found)
    return None


def invalid_parameter(field: str, found: str) -> ApiError:
    return ApiError(
        422,
        "invalid_parameters",
        "validation",
        f"Invalid value for {field}: must not contain control characters (found {found}).",
        details={"field": field},
    )
