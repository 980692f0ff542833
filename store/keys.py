"""Owners and API keys. Keys are shown once; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import ApiKey, Owner, utcnow

KEY_PREFIX = "ff_"


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Identity:
    """Who is calling: the owner and the scopes the key grants (None: legacy, all scopes)."""

    owner_id: int
    owner_name: str
    owner_email: str
    project_quota: int
    key_id: int
    scopes: frozenset[str] | None
    # When the key stops working: caches of identities must not outlive it.
    expires_at: datetime | None = field(default=None, compare=False)

    def has_scope(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes


@dataclass(frozen=True)
class CreatedKey:
    key: str
    key_id: int
    owner_id: int
    owner: str
    email: str
    scopes: list[str] | None
    project_quota: int


def ensure_owner(session: Session, *, name: str, email: str, project_quota: int) -> Owner:
    owner = session.scalars(select(Owner).where(Owner.name == name)).one_or_none()
    if owner is None:
        owner = Owner(name=name, email=email, project_quota=project_quota)
        session.add(owner)
        session.flush()
    else:
        owner.email = email or owner.email
        owner.project_quota = project_quota
    return owner


def create_key(
    session: Session,
    *,
    owner_name: str,
    email: str,
    project_quota: int,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    owner = ensure_owner(session, name=owner_name, email=email, project_quota=project_quota)
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


def revoke_key(session: Session, *, key_id: int) -> bool:
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    return True


def list_keys(session: Session) -> list[tuple[ApiKey, Owner]]:
    rows = session.execute(select(ApiKey, Owner).join(Owner, Owner.id == ApiKey.owner_id).order_by(ApiKey.id))
    return [(key, owner) for key, owner in rows]
