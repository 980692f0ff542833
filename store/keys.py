"""Owners and API keys. Keys are shown once; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from store.models import ApiKey, Owner, utcnow

KEY_PREFIX = "ff_"
ADMIN_SCOPE = "admin"
# What a legacy profile key (no scopes stored) holds: every project scope, for the owner's
# own projects. The Djass contract gives it create and read; approve and cancel act on the
# same projects. Never ``admin``, which sees every owner: only an explicit scope grants it.
PROJECT_SCOPES = frozenset({"projects:read", "projects:create", "projects:approve", "projects:cancel"})
KNOWN_SCOPES = (*sorted(PROJECT_SCOPES), ADMIN_SCOPE)
# How stale ``last_used_at`` may get: at most one write per key and API process this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Identity:
    """Who is calling: the owner and the scopes the key grants (None: legacy, see PROJECT_SCOPES)."""

    owner_id: int
    owner_name: str
    owner_email: str
    project_quota: int
    key_id: int
    scopes: frozenset[str] | None
    # When the key stops working: caches of identities must not outlive it.
    expires_at: datetime | None = field(default=None, compare=False)

    def has_scope(self, scope: str) -> bool:
        return scope in (PROJECT_SCOPES if self.scopes is None else self.scopes)


@dataclass(frozen=True)
class CreatedKey:
    key: str
    key_id: int
    owner_id: int
    owner: str
    email: str
    scopes: list[str] | None
    project_quota: int


@dataclass(frozen=True)
class KeyInfo:
    """What an operator may see of a key: never the key or its hash."""

    key_id: int
    prefix: str
    scopes: list[str] | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


def ensure_owner(
    session: Session, *, name: str, email: str, project_quota: int | None, default_quota: int | None = None
) -> Owner:
    """The owner named ``name``, created if new (with ``project_quota``, else ``default_quota``).
    An existing owner keeps its quota unless ``project_quota`` is given."""
    owner = session.scalars(select(Owner).where(Owner.name == name)).one_or_none()
    if owner is None:
        quota = project_quota if project_quota is not None else default_quota
        if quota is None:
            raise ValueError(f"a new owner ({name!r}) needs a project quota")
        owner = Owner(name=name, email=email, project_quota=quota)
        session.add(owner)
        session.flush()
    else:
        owner.email = email or owner.email
        if project_quota is not None:
            owner.project_quota = project_quota
    return owner


def create_key(
    session: Session,
    *,
    owner_name: str,
    email: str,
    project_quota: int | None,
    default_quota: int | None = None,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    owner = ensure_owner(
        session, name=owner_name, email=email, project_quota=project_quota, default_quota=default_quota
    )
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        owner_id=owner.id,
        key_hash=hash_key(plaintext),
        key_prefix=plaintext[:10],
        scopes=sorted(set(scopes)) if scopes is not None else None,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return CreatedKey(
        key=plaintext,
        key_id=row.id,
        owner_id=owner.id,
        owner=owner.name,
        email=owner.email,
        scopes=row.scopes,
        project_quota=owner.project_quota,
    )


def authenticate(session: Session, *, plaintext: str) -> Identity | None:
    """The identity behind a key, or None for unknown, revoked or expired keys."""
    row = session.execute(
        select(ApiKey, Owner).join(Owner, Owner.id == ApiKey.owner_id).where(ApiKey.key_hash == hash_key(plaintext))
    ).one_or_none()
    if row is None:
        return None
    key, owner = row
    now = utcnow()
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        return None
    return Identity(
        owner_id=owner.id,
        owner_name=owner.name,
        owner_email=owner.email,
        project_quota=owner.project_quota,
        key_id=key.id,
        scopes=frozenset(key.scopes) if key.scopes is not None else None,
        expires_at=key.expires_at,
    )


def touch_key(session: Session, *, key_id: int, now: datetime) -> None:
    """Record that the key was used; a no-op while the stored time is recent enough, so
    processes racing to touch one key write it about once per LAST_USED_RESOLUTION."""
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )


def revoke_key(session: Session, *, key_id: int) -> bool:
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    return True


def active_key_ids(session: Session, key_ids: list[int]) -> set[int]:
    """Those of ``key_ids`` that still work (not revoked, not expired, not deleted): one
    query for every open event stream of an API process (api/streams.py)."""
    now, active = utcnow(), set[int]()
    for start in range(0, len(key_ids), 500):  # well under any database's bound on parameters
        chunk = key_ids[start : start + 500]
        live = (ApiKey.expires_at.is_(None)) | (ApiKey.expires_at > now)
        active.update(session.scalars(select(ApiKey.id).where(ApiKey.id.in_(chunk), ApiKey.revoked_at.is_(None), live)))
    return active


def get_key(session: Session, *, key_id: int) -> tuple[KeyInfo, str] | None:
    """One key and its owner's name, or None."""
    row = session.execute(
        select(ApiKey, Owner.name).join(Owner, Owner.id == ApiKey.owner_id).where(ApiKey.id == key_id)
    ).one_or_none()
    return None if row is None else (_info(row[0]), row[1])


def list_keys(session: Session, *, owner_name: str) -> list[KeyInfo] | None:
    """The owner's keys, oldest first (revoked and expired ones too); None: no such owner."""
    owner_id = session.scalar(select(Owner.id).where(Owner.name == owner_name))
    if owner_id is None:
        return None
    keys = session.scalars(select(ApiKey).where(ApiKey.owner_id == owner_id).order_by(ApiKey.id))
    return [_info(key) for key in keys]


def _info(key: ApiKey) -> KeyInfo:
    return KeyInfo(
        key_id=key.id,
        prefix=key.key_prefix,
        scopes=key.scopes,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )
