"""``forgeflow keys``: API keys, shown once, stored as hashes."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from sqlalchemy import select

from forgeflow.settings import get_settings
from store.db import Database
from store.keys import create_key
from store.models import Owner
from store.webhooks import SecretKeyError, issue_webhook_secret, load_cipher

app = typer.Typer(help="Create API keys.", no_args_is_help=True)

KNOWN_SCOPES = ("projects:read", "projects:create", "projects:approve", "projects:cancel", "admin")


@app.command("create")
def create(
    owner: Annotated[str, typer.Option(help="Owner name; created if new.")],
    email: Annotated[str, typer.Option(help="The owner's email (fills an empty author_email).")],
    scopes: Annotated[
        str | None, typer.Option(help="Comma-separated scopes; omit for a legacy key with full access.")
    ] = None,
    quota: Annotated[int | None, typer.Option(help="The owner's project quota.", min=0)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
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
            project_quota=settings.project_quota if quota is None else quota,
            scopes=scope_list,
        )
    db.dispose()
    if as_json:
        typer.echo(json.dumps(asdict(created)))
        return
    kind = "legacy (all scopes)" if created.scopes is None else ", ".join(created.scopes)
    typer.echo(f"API key for {created.owner} <{created.email}>, scopes: {kind}")
    typer.echo("Shown once; only its hash is stored:")
    typer.echo(created.key)


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
