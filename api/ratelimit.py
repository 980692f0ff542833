"""Who is calling, counted: the key's identity and one hit of its rate-limit window.

Both come from memory on almost every request, so that a request needs neither a thread
hop nor a database write for them:

* An identity is trusted for ``auth_cache_seconds`` (never past the key's expiry); a key
  revoked by another process is refused within that time, or sooner, when the process next
  claims hits for it (the key is authenticated again in that transaction).
* Each process claims blocks of the key's per-minute budget from the counter in the database
  (``store.ratelimit.claim``) and hands them out one by one. Blocks start at one hit per
  window and double up to ``limit // LEASE_DIVISOR`` (at most ``MAX_LEASE``): small limits
  stay exact, a busy key writes once per block, and the limit holds across any number of
  processes because claimed ranges never overlap. What a process has claimed but not used
  when the window ends is lost, so a key may be refused slightly before its limit, never after.

Unknown keys are neither counted (they stay 401) nor cached: a key created a moment ago,
by the CLI in another process, works at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import anyio
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from api.errors import rate_limited
from api.memo import ExpiringCache
from api.request_context import add_response_headers
from forgeflow.settings import Settings
from store.db import Database
from store.keys import LAST_USED_RESOLUTION, Identity, authenticate, hash_key, touch_key
from store.models import utcnow
from store.ratelimit import Claim, RateLimitState, claim, reset_after, window_start

log = logging.getLogger("forgeflow.api")

MAX_KEY_LENGTH = 200
# Where an identity resolved earlier in this request (the idempotency middleware) is kept,
# so that the request is authenticated and counted once.
_RESOLVED = "forgeflow_identity"
# Unix time now; windows are fixed minutes of the API hosts' (NTP-synchronised) clocks.
clock = time.time
LEASE_DIVISOR = 50
MAX_LEASE = 1000
MAX_KEYS = 10_000  # identities (and leases) one process keeps
# The count of a request when rate limiting is off: no headers, never refused.
UNLIMITED = RateLimitState(limit=0, hits=0, reset_after=0)


@dataclass
class _Lease:
    """Hits ``next``..``last`` of the window starting at ``window_start`` are this process's."""

    window_start: int
    next: int
    last: int
    spent: bool  # nothing more can be claimed in this window: refuse once these are used
    claims: int  # claims this window, for the block size


class Gatekeeper:
    """One per API process: its identity cache and its rate-limit leases."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.limit = settings.rate_limit_per_minute
        self.ttl = settings.auth_cache_seconds
        self.max_lease = max(1, min(MAX_LEASE, self.limit // LEASE_DIVISOR))
        self.identities: ExpiringCache[str, Identity] = ExpiringCache(MAX_KEYS)
        self._leases: dict[int, _Lease] = {}
        # When this process last recorded each key's use (monotonic), see store.keys.touch_key.
        self._touched: dict[int, float] = {}
        # One database trip per key at a time; concurrent requests of that key wait for it.
        self._trips: dict[str, anyio.Event] = {}

    def forget_key(self, key_id: int) -> None:
        """Stop trusting a key at once (a revocation made by this process)."""
        for key_hash, identity in list(self.identities.items()):
            if identity.key_id == key_id:
                self.identities.pop(key_hash)

    def cached(self, key: str) -> Identity | None:
        """The identity behind ``key`` if this process still trusts it; nothing is counted."""
        return self.identities.get(hash_key(key), time.monotonic())

    def count_now(self, identity: Identity) -> RateLimitState | None:
        """One hit of the key's lease, if that needs no database trip (None: it does, and
        nothing was counted). A refusal counts nothing either."""
        if self.limit <= 0:
            return UNLIMITED
        return self._take(identity.key_id, clock())

    async def resolve(self, key: str) -> tuple[Identity, RateLimitState] | None:
        """The identity behind ``key`` and its count; None for a bad key."""
        key_hash = hash_key(key)
        while True:
            now = clock()
            identity = self.identities.get(key_hash, time.monotonic())
            if identity is not None:
                if self.limit <= 0:
                    return identity, UNLIMITED
                counted = self._take(identity.key_id, now)
                if counted is not None:
                    return identity, counted
            trip = self._trips.get(key_hash)
            if trip is not None:
                await trip.wait()
                continue
            known = identity or self.identities.peek(key_hash)
            # A key never seen is only authenticated (no write lock for a flood of bad keys);
            # its hits are claimed on the next round, once its lease can be known.
            size = self._claim_size(known.key_id, now) if known else None
            self._trips[key_hash] = trip = anyio.Event()
            try:
                found, claimed = await run_in_threadpool(self._lookup, key, size, now)
            finally:
                del self._trips[key_hash]
                trip.set()
            if found is None:
                self.identities.pop(key_hash)
                return None
            self._remember(key_hash, found)
            if self.limit <= 0:
                return found, UNLIMITED
            if claimed is not None:
                self._apply(found.key_id, claimed)
            counted = self._take(found.key_id, now)
            if counted is not None:
                return found, counted
            # A key just seen has no lease yet, or concurrent requests took the hits this
            # trip relied on: go again.

    def _lookup(self, key: str, size: int | None, now: float) -> tuple[Identity | None, Claim | None]:
        """Blocking: authenticate, and claim ``size`` hits in the same transaction."""
        # SQLite: take the write lock up front, the upsert follows the read (see store.db).
        claimed: Claim | None = None
        touched: float | None = None
        with self.db.session(write_lock=size is not None) as session:
            found = authenticate(session, plaintext=key)
            if found is not None and size is not None:
                claimed = claim(session, key_id=found.key_id, limit=self.limit, size=size, now=now)
                touched = self._touch_due(found.key_id)
                if touched is not None:  # rides along with the claim: no transaction of its own
                    touch_key(session, key_id=found.key_id, now=utcnow())
        if found is not None and touched is not None:
            self._remember_touch(found.key_id, touched)
        elif found is not None and self.limit <= 0:
            self._touch_alone(found.key_id)
        return found, claimed

    def _touch_due(self, key_id: int) -> float | None:
        """Now (monotonic) if this process has not recorded the key's use for a while, else None."""
        now = time.monotonic()
        last = self._touched.get(key_id)
        return now if last is None or now - last >= LAST_USED_RESOLUTION.total_seconds() else None

    def _remember_touch(self, key_id: int, touched: float) -> None:
        if key_id not in self._touched and len(self._touched) >= MAX_KEYS:
            self._touched.clear()  # forgetting only costs an early write per key
        self._touched[key_id] = touched

    def _touch_alone(self, key_id: int) -> None:
        """Without rate limiting no claim is written: the key's last use gets a short write
        of its own, at most once per LAST_USED_RESOLUTION. Bookkeeping never fails a request."""
        touched = self._touch_due(key_id)
        if touched is None:
            return
        self._remember_touch(key_id, touched)
        try:
            with self.db.session(write_lock=True) as session:
                touch_key(session, key_id=key_id, now=utcnow())
        except (OperationalError, InterfaceError, PoolTimeout) as exc:
            log.warning("could not record the last use of key %s: %s", key_id, type(exc).__name__)

    def _remember(self, key_hash: str, identity: Identity) -> None:
        lifetime = self.ttl
        if identity.expires_at is not None:
            lifetime = min(lifetime, (identity.expires_at - utcnow()).total_seconds())
        # Kept even when already stale (no caching, an expiring key): the next trip then
        # knows the key's lease and claims no hits while it still has some.
        self.identities.put(key_hash, identity, time.monotonic() + max(0.0, lifetime))

    def _claim_size(self, key_id: int, now: float) -> int | None:
        """How many hits the next trip claims; None: the lease still has some, claim none."""
        if self.limit <= 0:
            return None
        lease = self._leases.get(key_id)
        if lease is None or lease.window_start != window_start(now):
            return 1
        if lease.next <= lease.last or lease.spent:
            return None
        return min(self.max_lease, 1 << min(lease.claims, 30))

    def _apply(self, key_id: int, claimed: Claim) -> None:
        lease = self._leases.get(key_id)
        claims = lease.claims + 1 if lease is not None and lease.window_start == claimed.window_start else 1
        if lease is None and len(self._leases) >= MAX_KEYS:
            current = claimed.window_start
            self._leases = {k: v for k, v in self._leases.items() if v.window_start >= current}
        self._leases[key_id] = _Lease(claimed.window_start, claimed.first, claimed.last, claimed.spent, claims)

    def _take(self, key_id: int, now: float) -> RateLimitState | None:
        """The next hit of the key's lease; None when the process must claim more."""
        lease = self._leases.get(key_id)
        if lease is None or lease.window_start != window_start(now):
            return None
        if lease.next <= lease.last:
            lease.next += 1
            return RateLimitState(limit=self.limit, hits=lease.next - 1, reset_after=reset_after(now))
        if lease.spent:
            return RateLimitState(limit=self.limit, hits=self.limit + 1, reset_after=reset_after(now))
        return None


async def resolve_identity(*, gatekeeper: Gatekeeper, scope: Scope, key: str | None) -> Identity | None:
    """The identity behind ``key``, counted against its rate limit; None for a bad key.

    Sets the ``X-RateLimit-*`` headers of the response and raises ``rate_limited``
    (429) once the key has used up its window.
    """
    state = scope.setdefault("state", {})
    resolved = state.get(_RESOLVED)
    if resolved is not None and resolved[0] == key:
        identity: Identity = resolved[1]
        return identity
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    found = await gatekeeper.resolve(key)
    if found is None:
        return None
    admit(scope, key, *found)
    return found[0]


def admit(scope: Scope, key: str, identity: Identity, counted: RateLimitState) -> None:
    """Record the request's identity (so it is resolved once) and its count in the response
    headers; raise ``rate_limited`` (429) if the count is over the limit."""
    scope.setdefault("state", {})[_RESOLVED] = (key, identity)
    if counted is UNLIMITED:
        return
    add_response_headers(
        scope,
        {
            "X-RateLimit-Limit": str(counted.limit),
            "X-RateLimit-Remaining": str(counted.remaining),
            "X-RateLimit-Reset": str(counted.reset_after),
        },
    )
    if not counted.allowed:
        raise rate_limited(counted.limit, counted.reset_after)
