"""``forgeflow keys``: API keys, shown once, stored as hashes; listed and revoked by id."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy import select

from forgeflow.settings import get_settings
from store.db import Database
from store.keys import KNOWN_SCOPES, PROJECT_SCOPES, KeyInfo, create_key, get_key, list_keys, revoke_key
from store.models import Owner, utcnow
from store.webhooks import SecretKeyError, issue_webhook_secret, load_cipher

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)

LEGACY = f"legacy ({', '.join(sorted(PROJECT_SCOPES))})"


@app.command("create")
def create(
    owner: Annotated[str, typer.Option(help="Owner name; created if new.")],
    email: Annotated[str, typer.Option(help="The owner's email (fills an empty author_email).")],
    scopes: Annotated[
        str | None,
        typer.Option(help="Comma-separated scopes; omit for a legacy key (every project scope, never admin)."),
    ] = None,
    quota: Annotated[
        int | None,
        typer.Option(help="The owner's project quota (a new owner: FORGEFLOW_PROJECT_QUOTA; else unchanged).", min=0),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """A new API key for an owner (created if new); shown once, only its hash is stored."""
    settings = get_settings()
    scope_list = None
    if scopes is not None:
        scope_list = [s.strip() for s in scopes.split(",") if s.strip()]
        unknown = sorted(set(scope_list) - set(KNOWN_SCOPES))
        if unknown or not scope_list:
            raise typer.BadParameter(
                f"unknown scope {unknown[0]!r}; known: {', '.join(KNOWN_SCOPES)}" if unknown else "no scope given",
                param_hint="--scopes",
            )
    db = Database(settings.resolved_database_url)
    db.migrate()
    with db.session() as session:
        created = create_key(
            session,
            owner_name=owner,
            email=email,
            project_quota=quota,
            default_quota=settings.project_quota,
            scopes=scope_list,
        )
    db.dispose()
    if as_json:
        typer.echo(json.dumps(asdict(created)))
        return
    kind = LEGACY if created.scopes is None else ", ".join(created.scopes)
    typer.echo(f"API key {created.key_id} for {created.owner} <{created.email}>, scopes: {kind}")
    typer.echo(f"Project quota of {created.owner}: {created.project_quota}")
    typer.echo("Shown once; only its hash is stored:")
    typer.echo(created.key)


@app.command("list")
def list_(
    owner: Annotated[str, typer.Option(help="Owner name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """An owner's keys, revoked and expired ones too: id, prefix, scopes, dates. Never the key."""
    db = _database()
    try:
        with db.session() as session:
            keys = list_keys(session, owner_name=owner)
    finally:
        db.dispose()
    if keys is None:
        typer.echo(f"error: no owner named {owner!r}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps([_key_json(key) for key in keys]))
        return
    from forgeflow.cli.output import table

    now = utcnow()
    rows = [
        [
            key.key_id,
            key.prefix + "…",
            LEGACY if key.scopes is None else ", ".join(key.scopes) or "(none)",
            _when(key.created_at),
            _when(key.last_used_at) if key.last_used_at else "never",
            _when(key.expires_at) if key.expires_at else "never",
            _state(key, now),
        ]
        for key in keys
    ]
    table(["id", "prefix", "scopes", "created", "last used", "expires", "state"], rows)


@app.command("revoke")
def revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (`keys list`).", min=1, show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Revoke a key: refused by every API process within FORGEFLOW_AUTH_CACHE_SECONDS."""
    db = _database()
    try:
        with db.session() as session:
            revoked = revoke_key(session, key_id=key_id)
            found = get_key(session, key_id=key_id)
    finally:
        db.dispose()
    if found is None:
        typer.echo(f"error: no key with id {key_id}", err=True)
        raise typer.Exit(1)
    key, owner = found
    if as_json:
        typer.echo(json.dumps({**_key_json(key), "owner": owner, "revoked_now": revoked}))
        return
    said = "revoked" if revoked else f"was already revoked ({_when(key.revoked_at)})"
    typer.echo(f"key {key_id} ({key.prefix}…) of {owner} {said}")


def _database() -> Database:
    db = Database(get_settings().resolved_database_url)
    db.migrate()
    return db


def _key_json(key: KeyInfo) -> dict[str, Any]:
    stamp = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(key).items()}
    return {**stamp, "legacy": key.scopes is None}


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def _state(key: KeyInfo, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    return "expired" if key.expires_at is not None and key.expires_at <= now else "active"


@app.command("webhook-secret")
def webhook_secret(
    owner: Annotated[str, typer.Option(help="Owner name (must exist).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Create or rotate an owner's webhook signing secret; shown once, stored encrypted."""
    settings = get_settings()
    try:
        cipher = load_cipher(settings.secret_key, settings.data_dir)
    except SecretKeyError as exc:
        raise typer.BadParameter(str(exc), param_hint="FORGEFLOW_SECRET_KEY") from exc
    db = Database(settings.resolved_database_url)
    db.migrate()
    try:
        with db.session() as session:
            row = session.scalars(select(Owner).where(Owner.name == owner)).one_or_none()
            if row is None:
                raise typer.BadParameter(f"no owner named {owner!r}", param_hint="--owner")
            issued = issue_webhook_secret(session, owner_id=row.id, cipher=cipher)
    finally:
        db.dispose()
    if as_json:
        rotated_at = issued.rotated_at.isoformat() if issued.rotated_at else None
        shown = {"owner": owner, "owner_id": issued.owner_id, "secret": issued.secret}
        typer.echo(json.dumps({**shown, "created_at": issued.created_at.isoformat(), "rotated_at": rotated_at}))
        return
    typer.echo(f"Webhook secret for {owner} ({'rotated; the old one no longer signs' if issued.rotated else 'new'}).")
    typer.echo("Shown once; stored encrypted:")
    typer.echo(issued.secret)
