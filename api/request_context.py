"""The request id: taken from a sane ``X-Request-ID`` or generated, echoed on every
response, and kept in a contextvar for logs and error bodies. Also the place where
dependencies leave headers for the response (they run before it starts)."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HEADER = b"x-request-id"
# Headers a component asks to add to the response, kept in the request's scope state.
_EXTRA_HEADERS = "forgeflow_response_headers"

request_id_var: ContextVar[str | None] = ContextVar("forgeflow_request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def choose_request_id(value: str | None) -> str:
    """The client's id if it is 1-128 characters of ``[A-Za-z0-9._:-]``, else a new one."""
    if value is not None and _SANE.fullmatch(value):
        return value
    return uuid.uuid4().hex


def add_response_headers(scope: Scope, headers: dict[str, str]) -> None:
    """Ask the middleware to put these headers on this request's response, whatever it is."""
    extra: dict[str, str] = scope.setdefault("state", {}).setdefault(_EXTRA_HEADERS, {})
    extra.update(headers)


class RequestIdMiddleware:
    """Pure ASGI (no body buffering, no extra task): sets the contextvar, adds the headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent: str | None = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                sent = value.decode("latin-1")
                break
        request_id = choose_request_id(sent)
        scope.setdefault("state", {})["request_id"] = request_id
        # Not reset afterwards: the server error handler, outside this middleware, still
        # reads it; every request runs in a context of its own.
        request_id_var.set(request_id)
        raw_id = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
                if not any(name.lower() == _HEADER for name, _ in headers):
                    headers.append((_HEADER, raw_id))
                extra: dict[str, str] | None = scope["state"].get(_EXTRA_HEADERS)
                if extra:
                    present = {name.lower() for name, _ in headers}
                    headers.extend(
                        (k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in extra.items()
                        if k.lower().encode("latin-1") not in present
                    )
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


class RequestIdLogFilter(logging.Filter):
    """Adds ``record.request_id`` (``-`` outside a request) for log formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True
