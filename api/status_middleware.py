"""Project reads at the door (pure ASGI, inside the request id and the metrics).

* A status poll, ``GET /api/v1/projects/{id}/status``, or a plain page of the list,
  ``GET /api/v1/projects`` with nothing but ``limit`` and ``offset`` (digits, within the
  route's bounds), whose caller is known from memory (a trusted key with ``projects:read``),
  is answered here, without routing or dependencies: a status from the status cache when it
  holds a fresh body for that owner's project, else from one read made from the loop
  (``api.direct_reads``: on PostgreSQL shared by the polls of a turn of the loop,
  ``api.status_batches``), as the route would; a page from one read made from the loop too
  (on SQLite within a budget of steps, beyond it in a read thread). Routing and solving the
  route's dependencies and parameters cost about as much as the read itself (measured with
  the cache off: ~45 % of the interpreter's time per poll, ~35 % per page). A hit of the
  key's rate-limit lease is taken from memory; when the lease is used up, the next block is
  claimed here as the route would claim it (one trip for all the key's requests).
  Anything else goes to the route, which answers as it always does (and fills the status
  cache): a key to authenticate, a limit reached, other parameters or values to validate,
  and every read that did not end in a body (no such project for this owner, a database
  error). The request is counted once either way: the route finds it admitted already
  (``api.ratelimit.admit``).
* A write under ``/api/v1/projects/{id}`` (POST, PATCH, PUT, DELETE) drops that project's
  cached status before its response starts, so that the client never reads its own write
  as stale from this process.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import MAX_ID, READ_SCOPE, read_api_key
from api.direct_reads import DirectReads
from api.observability import ANSWERED_ROUTE
from api.ratelimit import MAX_KEY_LENGTH, Gatekeeper, admit
from api.read_json import list_json
from api.reads import DEFAULT_PAGE, MAX_PAGE, ProjectReads
from api.status_cache import StatusCache
from store.keys import Identity
from store.reads import page_query, page_total

STATUS_ROUTE = "/api/v1/projects/{project_id}/status"
LIST_ROUTE = "/api/v1/projects"
# ASCII digits only: ``\d`` would take other scripts' digits, which ``int`` reads and the
# route's parameter validation refuses.
_STATUS_PATH = re.compile(r"/api/v1/projects/([0-9]+)/status")
_PROJECT_PATH = re.compile(r"/api/v1/projects/([0-9]+)(?:/|$)")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_JSON_HEADERS = (b"content-type", b"application/json")
_PAGE_PARAMETERS = frozenset({b"limit", b"offset"})
_DIGITS = re.compile(rb"[0-9]{1,10}")
# What a request answered here reads: the body, for the caller's identity.
Read = Callable[[Identity], Awaitable[bytes]]


def plain_page(query: bytes) -> tuple[int, int] | None:
    """The limit and offset of a list request that gives nothing else, each at most once,
    as ASCII digits within the route's bounds; None: the route checks the request itself."""
    given: dict[bytes, int] = {}
    for pair in query.split(b"&") if query else ():
        name, _, value = pair.partition(b"=")
        if name not in _PAGE_PARAMETERS or name in given or not _DIGITS.fullmatch(value):
            return None
        given[name] = int(value)
    limit, offset = given.get(b"limit", DEFAULT_PAGE), given.get(b"offset", 0)
    return (limit, offset) if 1 <= limit <= MAX_PAGE and offset <= MAX_ID else None


async def direct_page(direct: DirectReads, *, owner_id: int, limit: int, offset: int) -> bytes:
    """A plain page's body (what ``ProjectReads.page`` answers for it) read from the loop
    (api.direct_reads)."""
    statement, count, params = page_query(owner_id=owner_id, status=None, limit=limit, offset=offset)
    rows = await direct.all(statement, params)
    total = page_total(rows, offset)
    if total is None:
        counted = await direct.one(count, params)
        total = int(counted[0]) if counted is not None else 0
    return list_json(rows, total=total, limit=limit, offset=offset, status=None, q=None, sort=None, counts=None)


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
            if not await self._answer_before_routing(scope, send):
                await self.app(scope, receive, send)
        elif scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
        else:
            await self._write(scope, receive, send)

    async def _answer_before_routing(self, scope: Scope, send: Send) -> bool:
        state = scope["app"].state
        path = _path(scope)
        if path == LIST_ROUTE:
            found = self._page(scope, getattr(state, "reads", None))
        else:
            found = self._status(path, getattr(state, "status_cache", None))
        gatekeeper: Gatekeeper | None = getattr(state, "gatekeeper", None)
        if found is None or gatekeeper is None:
            return False
        route, path_params, read = found
        key = read_api_key(Request(scope))
        if not key or len(key) > MAX_KEY_LENGTH:
            return False
        identity = gatekeeper.cached(key)
        if identity is None or not identity.has_scope(READ_SCOPE):
            return False
        # A hit of the lease, which needs no database trip.
        counted = gatekeeper.count_now(identity)
        if counted is None:
            # The lease is used up: claim more as the route would (one trip for all the key's
            # requests), rather than send every request of the key the route's longer way
            # until it is done (measured under load: p90 of a page 36-47 -> 26-28 ms,
            # BENCHMARKS.md, session 9).
            try:
                renewed = await gatekeeper.resolve(key)
            except Exception:
                return False  # the route tries again, and answers (503...)
            if renewed is None:
                return False
            identity, counted = renewed
            if not identity.has_scope(READ_SCOPE):
                return False
        if not counted.allowed:
            return False
        admit(scope, key, identity, counted)
        try:
            body = await read(identity)
        except Exception:
            return False  # the route reads again and answers (404, 503...), counted already
        # What the route would leave for the access log and the metrics.
        scope["state"].update({"identity": identity, ANSWERED_ROUTE: route})
        scope["path_params"] = path_params
        headers = [(b"content-length", str(len(body)).encode("latin-1")), _JSON_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

    @staticmethod
    def _status(path: str, cache: StatusCache | None) -> tuple[str, dict[str, str], Read] | None:
        match = _STATUS_PATH.fullmatch(path)
        if match is None or cache is None:
            return None
        project_id = int(match.group(1))
        if not 1 <= project_id <= MAX_ID:  # the route's parameter error
            return None

        async def read(identity: Identity) -> bytes:
            return await cache.body(owner_id=identity.owner_id, project_id=project_id)

        return STATUS_ROUTE, {"project_id": match.group(1)}, read

    @staticmethod
    def _page(scope: Scope, reads: ProjectReads | None) -> tuple[str, dict[str, str], Read] | None:
        page = plain_page(scope["query_string"])
        if page is None or reads is None:
            return None
        limit, offset = page
        direct = reads.threads.direct
        if direct is not None:

            async def read_direct(identity: Identity) -> bytes:
                return await direct_page(direct, owner_id=identity.owner_id, limit=limit, offset=offset)

            return LIST_ROUTE, {}, read_direct

        async def read(identity: Identity) -> bytes:
            return await reads.page(owner_id=identity.owner_id, status=None, limit=limit, offset=offset)

        return LIST_ROUTE, {}, read

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
