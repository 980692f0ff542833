"""How uvicorn serves the API, with the limits on slow clients that uvicorn lacks.

uvicorn (0.55) times out only idle kept-alive connections: a client that opens a connection
and sends its headers a byte at a time (slowloris), or a body that never ends, holds a
connection, a file descriptor and a parser forever, and httptools puts no bound on the size
of headers. ``GuardedHttpToolsProtocol`` closes such connections: the request line and
headers must arrive within ``http_header_timeout_seconds`` of the connection opening (or of
the request's first byte on a kept-alive connection) and be at most ``MAX_HEADER_BYTES``; a
body must arrive within ``http_body_timeout_seconds`` of the headers.

``uvicorn_options`` is what ``forgeflow api`` (and so the dev stack) and the tests' live
servers pass to uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.errors import ErrorDetail, ErrorResponse
from forgeflow.settings import Settings

log = logging.getLogger("forgeflow.api.server")

# h11's default is 16 KiB; browsers send a few KiB. Headers beyond this are refused with 431.
MAX_HEADER_BYTES = 64 * 1024


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config``."""
    guarded = partial(
        GuardedHttpToolsProtocol,
        header_timeout=settings.http_header_timeout_seconds,
        body_timeout=settings.http_body_timeout_seconds,
    )
    return {
        "http": guarded,
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        # Only in force if someone serves the app with --http h11 instead.
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }


def _refusal(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole HTTP response in the API's error contract, for a request the app never saw."""
    detail = ErrorDetail(code=code, category="validation", message=message, retryable=status == 408)
    body = ErrorResponse(error=detail).model_dump_json().encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


REQUEST_TIMEOUT = _refusal(408, "Request Timeout", "request_timeout", "The request was not received in time.")
HEADERS_TOO_LARGE = _refusal(
    431,
    "Request Header Fields Too Large",
    "headers_too_large",
    f"The request line and headers exceed {MAX_HEADER_BYTES} bytes.",
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with deadlines for headers and body and a header size cap."""

    def __init__(self, *args: Any, header_timeout: float, body_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes: int | None = 0  # None: not reading a request line and headers

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, self._headers_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        reading_headers = self._header_bytes is not None
        super().data_received(data)
        if reading_headers and self._header_bytes is not None and not self.transport.is_closing():
            self._header_bytes += len(data)  # this chunk did not complete them
            if self._header_bytes > MAX_HEADER_BYTES:
                self._refuse(HEADERS_TOO_LARGE, "headers over %d bytes", MAX_HEADER_BYTES)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        if self._deadline is None:  # a kept-alive connection's next request: its own deadline
            self._arm(self.header_timeout, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._header_bytes = None
        super().on_headers_complete()
        # Cancelled at once by on_message_complete for a request without a body.
        if not self.parser.should_upgrade():
            self._arm(self.body_timeout, self._body_too_slow)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        self._refuse(REQUEST_TIMEOUT, "headers not received within %s s", self.header_timeout)

    def _body_too_slow(self) -> None:
        self._deadline = None
        if self.flow.read_paused:  # the app is not taking the body yet: the wait is ours, not the client's
            self._arm(self.body_timeout, self._body_too_slow)
            return
        # The app has the request already: it sees a disconnect, no second response is written.
        log.info("closing a connection from %s: body not received within %s s", self._peer(), self.body_timeout)
        self.transport.close()

    def _refuse(self, response: bytes, why: str, *args: object) -> None:
        log.info("closing a connection from %s: " + why, self._peer(), *args)
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # no response of ours under way
            self.transport.write(response)
        self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "?"
