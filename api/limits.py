"""Request body size limit, enforced before anything reads the body: a declared
Content-Length over the limit is refused at once, and a chunked body is counted as it
streams in and cut off the moment it passes the limit."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response


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
