"""The status micro-cache at the door (pure ASGI, inside the request id and the metrics).

* A ``GET /api/v1/projects/{id}/status`` whose whole answer is in this process's memory (a
  trusted key with ``projects:read``, a hit left in its rate-limit lease, a fresh body for
  that owner's project) is answered here, without routing, dependencies or a thread: the
  bulk of a poll's cost. Anything else, refusals included, goes to the route, which answers
  as it always does and fills the cache.
* A write under ``/api/v1/projects/{id}`` (POST, PATCH, PUT, DELETE) drops that project's
  cached status before its response starts, so that the client never reads its own write
  as stale from this process.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import READ_SCOPE, read_api_key
from api.observability import ANSWERED_ROUTE
from api.ratelimit import MAX_KEY_LENGTH, Gatekeeper, admit
from api.status_cache import StatusCache

STATUS_ROUTE = "/api/v1/projects/{project_id}/status"
# ASCII digits only: ``\d`` would take other scripts' digits, which ``int`` reads and the
# route's parameter validation refuses.
_STATUS_PATH = re.compile(r"/api/v1/projects/([0-9]+)/status")
_PROJECT_PATH = re.compile(r"/api/v1/projects/([0-9]+)(?:/|$)")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_JSON_HEADERS = (b"content-type", b"application/json")


def _path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class StatusCacheMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["method"] == "GET":
            if not await self._answer_from_memory(scope, send):
                await self.app(scope, receive, send)
        elif scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
        else:
            await self._write(scope, receive, send)

    async def _answer_from_memory(self, scope: Scope, send: Send) -> bool:
        match = _STATUS_PATH.fullmatch(_path(scope))
        if match is None:
            return False
        cache: StatusCache | None = getattr(scope["app"].state, "status_cache", None)
        gatekeeper: Gatekeeper | None = getattr(scope["app"].state, "gatekeeper", None)
        key = read_api_key(Request(scope))
        if cache is None or gatekeeper is None or not key or len(key) > MAX_KEY_LENGTH:
            return False
        identity = gatekeeper.cached(key)
        if identity is None or not identity.has_scope(READ_SCOPE):
            return False
        body = cache.cached(owner_id=identity.owner_id, project_id=int(match.group(1)))
        if body is None:
            return False
        # Counted last, once the answer is certain: a request passed on is counted by the route.
        counted = gatekeeper.count_now(identity)
        if counted is None or not counted.allowed:
            return False
        admit(scope, key, identity, counted)
        # What the route would leave for the access log and the metrics.
        scope["state"].update({"identity": identity, ANSWERED_ROUTE: STATUS_ROUTE})
        scope["path_params"] = {"project_id": match.group(1)}
        headers = [(b"content-length", str(len(body)).encode("latin-1")), _JSON_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

    async def _write(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _PROJECT_PATH.match(_path(scope))
        cache: StatusCache | None = getattr(scope["app"].state, "status_cache", None)
        if match is None or cache is None:
            await self.app(scope, receive, send)
            return
        project_id = int(match.group(1))

        async def send_after_dropping(message: Message) -> None:
            # Before the client can see the response, and so poll again; the write has
            # committed by now (sessions close before the response starts).
            if message["type"] == "http.response.start":
                cache.invalidate(project_id)
            await send(message)

        try:
            await self.app(scope, receive, send_after_dropping)
        finally:
            cache.invalidate(project_id)  # for work that commits after the response started
