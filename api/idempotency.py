"""``Idempotency-Key`` on every POST under ``/api/v1``, as pure ASGI middleware, so every
POST route is covered without doing anything itself.

The first request with a key claims it (one atomic insert) and runs; its response is
stored if it is 2xx or 4xx (not 429: the client is told to retry those; not 401 or 403,
which say nothing about the request, only about the key that sent it; nor one marked
``Cache-Control: no-store``, such as a secret shown once) and then sent.
A later request of the same owner with the same key and the same method, path and
canonical JSON body gets that response again, with ``Idempotent-Replayed: true``; with
another body, ``422 idempotency_key_mismatch``. While the first one runs, duplicates
poll the database for up to ``WAIT_SECONDS``, then replay or get ``409
idempotency_key_in_use``. A 5xx or a crash frees the key so that the client can retry.
A replay demands of the replaying key every scope the route demanded of the request that
ran (stored with its response), else it is ``403 insufficient_scope``: a stored response is
never shown to a key that could not have got it. Requests without the header, or whose API
key is not valid, pass through untouched (the route answers 401 as always).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import SCOPES_DEMANDED, read_api_key
from api.errors import (
    ApiError,
    database_unavailable,
    error_response,
    idempotency_key_in_use,
    idempotency_key_mismatch,
    insufficient_scope,
    invalid_idempotency_key,
)
from api.ratelimit import resolve_identity
from forgeflow.settings import Settings
from store.db import Database
from store.idempotency import claim_key, complete_key, get_record, prune_expired, release_key, take_over
from store.keys import Identity
from store.models import IdempotencyRecord, utcnow

log = logging.getLogger("forgeflow.api")

PREFIX = "/api/v1/"
HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 255
WAIT_SECONDS = 10.0  # how long a duplicate waits for the first request to finish
POLL_SECONDS = 0.05
# A claim this old belongs to a request that died without freeing it; it may be taken over.
STALE_AFTER = timedelta(minutes=2)
# Per-request headers: never stored, each replay gets its own.
_NOT_STORED = {
    "content-length",
    "date",
    "server",
    "x-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "transfer-encoding",
    "connection",
}
_DB_ERRORS = (OperationalError, InterfaceError, PoolTimeout)

Step = Literal["claimed", "mismatch", "done", "busy", "retry"]


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of method, path and the body as canonical JSON (the raw bytes if not JSON)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # too deep never gets here (api.limits); the raw bytes then
        canonical = body
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), canonical])).hexdigest()


def storable(status: int) -> bool:
    # 401/403 answer the key, not the request: stored, they would be replayed to a key that
    # may use the route (a 403 to the owner's admin key for a day).
    return 200 <= status < 300 or (400 <= status < 500 and status not in (401, 403, 429))


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        raw_key = next((value for name, value in scope["headers"] if name == HEADER), None)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        db: Database = scope["app"].state.db
        settings: Settings = scope["app"].state.settings
        try:
            identity = await self._identity(scope)
        except (ApiError, *_DB_ERRORS) as exc:
            await _refuse(exc, scope, receive, send)
            return
        if identity is None:  # no valid key: the route answers 401 as always
            await self.app(scope, receive, send)
            return
        try:
            if not 0 < len(key) <= MAX_KEY_LENGTH:
                raise invalid_idempotency_key(MAX_KEY_LENGTH)
            body = await _read_body(receive)
            if body is None:
                return  # the client went away
            print_ = fingerprint(scope["method"], scope["path"], body)
            claimed, record = await self._acquire(db, identity, key, print_, settings)
        except (ApiError, *_DB_ERRORS) as exc:
            await _refuse(exc, scope, receive, send)
            return
        if record is not None:
            refusal = _scope_refusal(identity, record)
            if refusal is not None:  # checked like the route would have; this answer is not stored
                await error_response(refusal)(scope, receive, send)
                return
            await _replay(record, send)
            return
        assert claimed is not None
        await self._run(db, settings, claimed, scope, _replaying(body, receive), send)

    async def _identity(self, scope: Scope) -> Identity | None:
        key = read_api_key(Request(scope))
        # Counted here against the rate limit (429 before anything is claimed), and once:
        # the route's own authentication reuses this identity.
        return await resolve_identity(gatekeeper=scope["app"].state.gatekeeper, scope=scope, key=key)

    async def _acquire(
        self, db: Database, identity: Identity, key: str, print_: str, settings: Settings
    ) -> tuple[int | None, IdempotencyRecord | None]:
        """(the claimed record's id, None) to run, or (None, the record) to replay."""
        ttl = timedelta(hours=settings.idempotency_ttl_hours)
        deadline = time.monotonic() + WAIT_SECONDS
        claim = True
        while True:
            step, found = await run_in_threadpool(_step, db, identity.owner_id, key, print_, ttl, claim)
            if step == "claimed":
                assert isinstance(found, int)
                return found, None
            if step == "done":
                assert isinstance(found, IdempotencyRecord)
                return None, found
            if step == "mismatch":  # nothing said of the key's use to a key that could not use it
                raise _scope_refusal(identity, found) or idempotency_key_mismatch()
            claim = step == "retry"  # the claim vanished, expired or went stale: try to take it
            if not claim:
                if time.monotonic() >= deadline:
                    raise idempotency_key_in_use(retry_after=1)
                await asyncio.sleep(POLL_SECONDS)

    async def _run(
        self, db: Database, settings: Settings, record_id: int, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run the request holding the claim; store or free the claim, then answer."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await _release(db, record_id)
            raise
        if start is None:
            await _release(db, record_id)
            return
        status: int = start["status"]
        body = b"".join(chunks)
        headers = [[name.decode("latin-1"), value.decode("latin-1")] for name, value in start.get("headers", ())]
        # A response marked no-store (a secret shown once) is never written down.
        no_store = any(k.lower() == "cache-control" and "no-store" in v.lower() for k, v in headers)
        if storable(status) and not no_store:
            headers = [[k, v] for k, v in headers if k.lower() not in _NOT_STORED]
            ttl = timedelta(hours=settings.idempotency_ttl_hours)
            # Every scope the route checked (the key held them all: a 403 is not stored).
            demanded = sorted(scope.get("state", {}).get(SCOPES_DEMANDED, ()))
            response = {"status": status, "headers": headers, "body": body, "ttl": ttl, "required_scopes": demanded}
            try:
                await run_in_threadpool(_complete, db, record_id, response)
            except _DB_ERRORS as exc:  # the claim goes stale and is taken over later
                log.warning("could not store the response for an Idempotency-Key: %s", type(exc).__name__)
        else:
            await _release(db, record_id)
        await send(start)
        await send({"type": "http.response.body", "body": body})


def _scope_refusal(identity: Identity, record: IdempotencyRecord) -> ApiError | None:
    """403 if the key lacks a scope the route demanded of the request that ran."""
    missing = [name for name in record.required_scopes or () if not identity.has_scope(name)]
    return insufficient_scope(missing[0]) if missing else None


async def _refuse(exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
    if not isinstance(exc, ApiError):
        log.warning("database unavailable for Idempotency-Key on %s: %s", scope["path"], type(exc).__name__)
        exc = database_unavailable()
    await error_response(exc)(scope, receive, send)


def _step(db: Database, owner_id: int, key: str, print_: str, ttl: timedelta, claim: bool) -> tuple[Step, Any]:
    """One look at the key; with ``claim``, in a write transaction that may claim it."""
    now = utcnow()
    with db.session(write_lock=claim) as session:
        record = get_record(session, owner_id=owner_id, key=key)
        if record is not None and record.expires_at <= now:
            if not claim:
                return "retry", None
            prune_expired(session, now=now)
            record = None
        if record is None:
            if not claim:
                return "retry", None
            prune_expired(session, now=now)
            claimed = claim_key(session, owner_id=owner_id, key=key, fingerprint=print_, now=now, ttl=ttl)
            if claimed is not None:
                return "claimed", claimed
            record = get_record(session, owner_id=owner_id, key=key)
            if record is None:
                return "busy", None
        if record.fingerprint != print_:
            return "mismatch", record
        if record.response_status is not None:
            return "done", record
        if record.locked_at <= now - STALE_AFTER:
            if not claim:
                return "retry", None
            if take_over(session, record_id=record.id, locked_at=record.locked_at, now=now):
                log.warning("took over the stale claim of an Idempotency-Key (record %s)", record.id)
                return "claimed", record.id
        return "busy", None


def _complete(db: Database, record_id: int, response: dict[str, Any]) -> None:
    with db.session(write_lock=True) as session:
        complete_key(session, record_id=record_id, now=utcnow(), **response)


async def _release(db: Database, record_id: int) -> None:
    def release() -> None:
        with db.session(write_lock=True) as session:
            release_key(session, record_id=record_id)

    try:
        await run_in_threadpool(release)
    except Exception as exc:  # the claim goes stale and is taken over later
        log.warning("could not free an Idempotency-Key claim: %s", type(exc).__name__)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; None if the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _replay(record: IdempotencyRecord, send: Send) -> None:
    body = record.response_body or b""
    headers = [(str(k).lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in record.response_headers or []]
    headers += [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
    await send({"type": "http.response.start", "status": record.response_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
