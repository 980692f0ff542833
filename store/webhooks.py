"""Webhook signing secrets: one per owner, Standard Webhooks format (``whsec_<base64>``),
shown once when issued and stored encrypted with the server key (Fernet). Not hashed:
the worker needs the secret itself to sign every delivery."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.models import WebhookSecret, utcnow

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64 random bytes
KEY_FILE = "secret.key"
KEY_HINT = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


class SecretKeyError(ValueError):
    """The server key is malformed, or cannot decrypt a stored secret."""


@dataclass(frozen=True)
class SecretCipher:
    """Encrypts with the first server key; decrypts with any of them (key rotation)."""

    fernet: MultiFernet

    def encrypt(self, plaintext: str) -> str:
        return self.fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self.fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise SecretKeyError("a stored webhook secret does not decrypt with FORGEFLOW_SECRET_KEY") from exc


def _parse_keys(value: str, source: str) -> SecretCipher:
    keys = [k.strip() for k in value.split(",") if k.strip()]
    if not keys:
        raise SecretKeyError(f"{source} holds no key; make one with: {KEY_HINT}")
    try:
        return SecretCipher(MultiFernet([Fernet(k) for k in keys]))
    except (ValueError, binascii.Error) as exc:
        message = f"{source} must hold Fernet keys (32 url-safe base64 bytes); make one with: {KEY_HINT}"
        raise SecretKeyError(message) from exc


def _read_or_create_key_file(path: Path) -> str:
    """The dev key: made once, mode 0600, published atomically (link fails if another
    process won the race, and then its key is the one read back)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(Fernet.generate_key().decode("ascii") + "\n")
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text(encoding="ascii")


@lru_cache(maxsize=16)
def _cached_cipher(secret_key: str | None, key_file: Path) -> SecretCipher:
    if secret_key:
        return _parse_keys(secret_key, "FORGEFLOW_SECRET_KEY")
    return _parse_keys(_read_or_create_key_file(key_file), str(key_file))


def load_cipher(secret_key: str | None, data_dir: Path) -> SecretCipher:
    """The server's cipher: ``FORGEFLOW_SECRET_KEY`` (production), else ``<data_dir>/secret.key``,
    generated on first use. Raises ``SecretKeyError`` for a malformed key."""
    return _cached_cipher(secret_key or None, (data_dir / KEY_FILE).resolve())


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key_bytes(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


@dataclass(frozen=True)
class SecretInfo:
    owner_id: int
    created_at: datetime
    rotated_at: datetime | None


@dataclass(frozen=True)
class IssuedSecret(SecretInfo):
    secret: str  # the only time it is seen in plaintext outside the worker

    @property
    def rotated(self) -> bool:
        return self.rotated_at is not None


def issue_webhook_secret(session: Session, *, owner_id: int, cipher: SecretCipher) -> IssuedSecret:
    """Create the owner's secret, or replace it (rotation). One upsert, so two concurrent
    calls leave exactly one row and the last secret issued is the one kept."""
    secret = generate_secret()
    now = utcnow()
    values = {"owner_id": owner_id, "encrypted_secret": cipher.encrypt(secret), "created_at": now}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(WebhookSecret).values(**values)
    upsert = stmt.on_conflict_do_update(
        index_elements=[WebhookSecret.owner_id],
        set_={"encrypted_secret": stmt.excluded.encrypted_secret, "rotated_at": now},
    ).returning(WebhookSecret.created_at, WebhookSecret.rotated_at)
    created_at, rotated_at = session.execute(upsert).one()
    session.expire_all()
    return IssuedSecret(owner_id=owner_id, created_at=created_at, rotated_at=rotated_at, secret=secret)


def webhook_secret_info(session: Session, *, owner_id: int) -> SecretInfo | None:
    row = session.scalars(select(WebhookSecret).where(WebhookSecret.owner_id == owner_id)).one_or_none()
    if row is None:
        return None
    return SecretInfo(owner_id=owner_id, created_at=row.created_at, rotated_at=row.rotated_at)


def load_webhook_secret(session: Session, *, owner_id: int, cipher: SecretCipher) -> str | None:
    """The owner's plaintext secret, for signing; None if they have none.
    Raises ``SecretKeyError`` if the server key cannot decrypt it."""
    token = session.scalars(
        select(WebhookSecret.encrypted_secret).where(WebhookSecret.owner_id == owner_id)
    ).one_or_none()
    return None if token is None else cipher.decrypt(token)
