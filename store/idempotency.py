"""Idempotency keys per owner: the first request claims the key with one atomic insert,
later ones find the claim and wait for, or replay, the stored response."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import IdempotencyRecord


def claim_key(
    session: Session, *, owner_id: int, key: str, fingerprint: str, now: datetime, ttl: timedelta
) -> int | None:
    """Claim ``key`` for a request: the new record's id, or None if it is already held.

    ``INSERT ... ON CONFLICT (owner_id, key) DO NOTHING RETURNING id``: of concurrent
    claims, in any number of processes, exactly one gets an id.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(IdempotencyRecord)
        .values(
            owner_id=owner_id, key=key, fingerprint=fingerprint, locked_at=now, created_at=now, expires_at=now + ttl
        )
        .on_conflict_do_nothing(index_elements=[IdempotencyRecord.owner_id, IdempotencyRecord.key])
        .returning(IdempotencyRecord.id)
    )
    return session.execute(stmt).scalar_one_or_none()


def get_record(session: Session, *, owner_id: int, key: str) -> IdempotencyRecord | None:
    stmt = select(IdempotencyRecord).where(IdempotencyRecord.owner_id == owner_id, IdempotencyRecord.key == key)
    return session.scalars(stmt).one_or_none()


def take_over(session: Session, *, record_id: int, locked_at: datetime, now: datetime) -> bool:
    """Claim a record whose request died while running (its claim is stale). Only one
    of several contenders succeeds: the one that still sees the old ``locked_at``."""
    result = session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.id == record_id,
            IdempotencyRecord.response_status.is_(None),
            IdempotencyRecord.locked_at == locked_at,
        )
        .values(locked_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def complete_key(
    session: Session,
    *,
    record_id: int,
    status: int,
    headers: list[Any],
    body: bytes,
    now: datetime,
    ttl: timedelta,
    required_scopes: list[str] | None = None,
) -> None:
    """Store the response to replay, and the scopes a replay demands (None: none known);
    it is kept for ``ttl`` from now."""
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id)
        .values(
            response_status=status,
            response_headers=headers,
            response_body=body,
            expires_at=now + ttl,
            required_scopes=required_scopes,
        )
    )


def release_key(session: Session, *, record_id: int) -> None:
    """Free a claim whose request failed (5xx or crash), so that the client can retry."""
    session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id, IdempotencyRecord.response_status.is_(None))
    )


def prune_expired(session: Session, *, now: datetime) -> int:
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)
