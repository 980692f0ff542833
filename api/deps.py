"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPBearer
from sqlalchemy.orm import Session
from temporalio.client import Client

from api.errors import auth_required, insufficient_scope, project_not_found
from api.ratelimit import resolve_identity
from forgeflow.settings import Settings
from store.artifacts import LocalArtifactStore
from store.db import Database
from store.keys import Identity
from store.models import Project
from store.projects import get_project

# Declared for the OpenAPI document; the lookup itself is in ``read_api_key``.
_header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKeyHeader")
_bearer_scheme = HTTPBearer(auto_error=False, scheme_name="Bearer")
_query_scheme = APIKeyQuery(name="api_key", auto_error=False, scheme_name="ApiKeyQuery")

# Ids are 32-bit in the schema (PostgreSQL INTEGER); anything larger cannot exist and is
# refused as a parameter error rather than overflowing the database driver.
MAX_ID = 2_147_483_647
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="Project id")]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="Run number")]
TaskKey = Annotated[str, Path(min_length=1, max_length=100, description="Task id")]
EventCursor = Annotated[int, Query(ge=0, le=MAX_ID, description="Return events with a larger id")]

AUTH_SCHEMES = ("bearer", "api-key", "apikey", "token")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_database(request: Request) -> Database:
    return request.app.state.db


def get_session(db: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with db.session() as session:
        yield session


# Closed when the endpoint returns, before the response is sent: a commit that fails (the
# database went away) is still a 503, not an error after the response has started, which
# drops the client's keep-alive connection; and no connection is held through a stream.
ScopedSession = Depends(get_session, scope="function")


def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


def get_artifacts(request: Request) -> LocalArtifactStore:
    return request.app.state.artifacts


def read_api_key(request: Request) -> str | None:
    """X-API-Key, then Authorization (Bearer, Api-Key, apikey, token), then ?api_key=."""
    header = request.headers.get("x-api-key")
    if header is not None:
        return header.strip() or None
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() in AUTH_SCHEMES and value.strip():
            return value.strip()
        return None
    return request.query_params.get("api_key") or None


def get_identity(
    request: Request,
    db: Annotated[Database, Depends(get_database)],
    _h: Annotated[str | None, Depends(_header_scheme)],
    _b: Annotated[object, Depends(_bearer_scheme)],
    _q: Annotated[str | None, Depends(_query_scheme)],
) -> Identity:
    key = read_api_key(request)
    # Authenticated and counted against the key's rate limit (429 rate_limited) at once.
    identity = resolve_identity(db=db, settings=get_settings(request), scope=request.scope, key=key)
    if identity is None:
        raise auth_required()
    request.state.identity = identity
    return identity


def require_scope(scope: str) -> Callable[[Identity], Identity]:
    def check(identity: Annotated[Identity, Depends(get_identity)]) -> Identity:
        if not identity.has_scope(scope):
            raise insufficient_scope(scope)
        return identity

    return check


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, ScopedSession]
TemporalDep = Annotated[Client, Depends(get_temporal)]
ArtifactsDep = Annotated[LocalArtifactStore, Depends(get_artifacts)]
ReaderDep = Annotated[Identity, Depends(require_scope("projects:read"))]
CreatorDep = Annotated[Identity, Depends(require_scope("projects:create"))]
ApproverDep = Annotated[Identity, Depends(require_scope("projects:approve"))]
CancellerDep = Annotated[Identity, Depends(require_scope("projects:cancel"))]


def owned_project(scope: str) -> Callable[..., Project]:
    """The caller's project from the path, after the scope check; another owner's is a 404."""

    # Passed as a default, not in the annotation: annotations here are strings resolved
    # in module scope, where this closure's ``scope`` does not exist.
    scoped = Depends(require_scope(scope))

    def load(
        project_id: ProjectId,
        session: Annotated[Session, ScopedSession],
        identity: Identity = scoped,
    ) -> Project:
        project = get_project(session, owner_id=identity.owner_id, project_id=project_id)
        if project is None:
            raise project_not_found(project_id)
        return project

    return load


ReadableProject = Annotated[Project, Depends(owned_project("projects:read"))]
CreatableProject = Annotated[Project, Depends(owned_project("projects:create"))]
ApprovableProject = Annotated[Project, Depends(owned_project("projects:approve"))]
CancellableProject = Annotated[Project, Depends(owned_project("projects:cancel"))]
