"""Who is calling, counted: the key's identity and, in the same transaction, one hit
in its rate-limit window. Unknown keys are not counted (they stay 401)."""

from __future__ import annotations

import time

from starlette.types import Scope

from api.errors import rate_limited
from api.request_context import add_response_headers
from forgeflow.settings import Settings
from store.db import Database
from store.keys import Identity, authenticate
from store.ratelimit import hit

MAX_KEY_LENGTH = 200
# Where an identity resolved earlier in this request (the idempotency middleware) is kept,
# so that the request is authenticated and counted once.
_RESOLVED = "forgeflow_identity"
# Unix time now; windows are fixed minutes of the API hosts' (NTP-synchronised) clocks.
clock = time.time


def resolve_identity(*, db: Database, settings: Settings, scope: Scope, key: str | None) -> Identity | None:
    """The identity behind ``key``, counted against its rate limit; None for a bad key.

    Sets the ``X-RateLimit-*`` headers of the response and raises ``rate_limited``
    (429) once the key has used up its window. Blocking: call it from a thread.
    """
    state = scope.setdefault("state", {})
    resolved = state.get(_RESOLVED)
    if resolved is not None and resolved[0] == key:
        identity: Identity = resolved[1]
        return identity
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    limit = settings.rate_limit_per_minute
    # SQLite: take the write lock up front, the upsert follows the read (see store.db).
    with db.session(write_lock=limit > 0) as session:
        found = authenticate(session, plaintext=key)
        counted = hit(session, key_id=found.key_id, limit=limit, now=clock()) if found and limit > 0 else None
    if found is None:
        return None
    state[_RESOLVED] = (key, found)
    if counted is None:
        return found
    add_response_headers(
        scope,
        {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(counted.remaining),
            "X-RateLimit-Reset": str(counted.reset_after),
        },
    )
    if not counted.allowed:
        raise rate_limited(limit, counted.reset_after)
    return found
