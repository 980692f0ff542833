"""The caller's webhook signing secret: issue or rotate it (shown once), or see whether one exists."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel

from api.auth_first import AuthFirstRoute
from api.deps import CreatorDep, DatabaseDep, ReaderDep, SessionDep, SettingsDep
from api.errors import ERROR_RESPONSES
from store.webhooks import issue_webhook_secret, load_cipher, webhook_secret_info

router = APIRouter(route_class=AuthFirstRoute, prefix="/webhook-secret", tags=["webhooks"], responses=ERROR_RESPONSES)


class WebhookSecretIssued(BaseModel):
    secret: str
    created_at: datetime
    rotated_at: datetime | None = None


class WebhookSecretState(BaseModel):
    exists: bool
    created_at: datetime | None = None
    rotated_at: datetime | None = None


@router.post(
    "",
    status_code=201,
    response_model=WebhookSecretIssued,
    summary="Create or rotate the webhook signing secret",
    responses={200: {"model": WebhookSecretIssued, "description": "Rotated: the previous secret stops working"}},
)
def issue_secret(
    identity: CreatorDep, db: DatabaseDep, settings: SettingsDep, response: Response
) -> WebhookSecretIssued:
    """A new ``whsec_`` secret for the caller's deliveries, shown only in this response.
    201 for the first one, 200 when it replaces (rotates) the previous one."""
    cipher = load_cipher(settings.secret_key, settings.data_dir)
    with db.session(write_lock=True) as session:  # committed before the secret is shown
        issued = issue_webhook_secret(session, owner_id=identity.owner_id, cipher=cipher)
    if issued.rotated:
        response.status_code = 200
    response.headers["Cache-Control"] = "no-store"
    return WebhookSecretIssued(secret=issued.secret, created_at=issued.created_at, rotated_at=issued.rotated_at)


@router.get("", response_model=WebhookSecretState, summary="Whether a webhook signing secret exists")
def read_secret_state(identity: ReaderDep, session: SessionDep) -> WebhookSecretState:
    info = webhook_secret_info(session, owner_id=identity.owner_id)
    if info is None:
        return WebhookSecretState(exists=False)
    return WebhookSecretState(exists=True, created_at=info.created_at, rotated_at=info.rotated_at)
