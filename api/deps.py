"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPBearer
from sqlalchemy.orm import Session
from temporalio.client import Client

from api.errors import auth_required, insufficient_scope, project_not_found
from api.ratelimit import Gatekeeper, resolve_identity
from api.reads import ProjectReads
from api.status_cache import StatusCache
from forgeflow.settings import Settings
from store.artifacts import ArtifactStore
from store.db import Database
from store.keys import Identity
from store.models import Project
from store.projects import get_project

# Declared in the OpenAPI document (``document_api_keys``), not as sub-dependencies: FastAPI
# would solve all three on every request (measured: 35 of 160 us of a status poll), and
# ``read_api_key`` reads the same places anyway.
API_KEY_SCHEMES = (
    APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKeyHeader"),
    HTTPBearer(auto_error=False, scheme_name="Bearer"),
    APIKeyQuery(name="api_key", auto_error=False, scheme_name="ApiKeyQuery"),
)
API_PREFIX = "/api/v1"
READ_SCOPE = "projects:read"

# Ids are 32-bit in the schema (PostgreSQL INTEGER); anything larger cannot exist and is
# refused as a parameter error rather than overflowing the database driver.
MAX_ID = 2_147_483_647
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="Project id")]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="Run number")]
# No control characters: PostgreSQL refuses a NUL in a text parameter (a 500, not a 404).
TaskKey = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$", description="Task id")]
EventCursor = Annotated[int, Query(ge=0, le=MAX_ID, description="Return events with a larger id")]

AUTH_SCHEMES = ("bearer", "api-key", "apikey", "token")
# Where a request keeps the scopes its route checked (scope["state"]).
SCOPES_DEMANDED = "forgeflow_scopes_demanded"


# The pure dependencies are ``async def``: FastAPI runs a plain ``def`` one in a worker
# thread, a round trip through the thread pool for an attribute lookup.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_database(request: Request) -> Database:
    return request.app.state.db


def get_session(db: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with db.session() as session:
        yield session


# Closed when the endpoint returns, before the response is sent: a commit that fails (the
# database went away) is still a 503, not an error after the response has started, which
# drops the client's keep-alive connection; and no connection is held through a stream.
ScopedSession = Depends(get_session, scope="function")


async def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


async def get_artifacts(request: Request) -> ArtifactStore:
    return request.app.state.artifacts


async def get_reads(request: Request) -> ProjectReads:
    return request.app.state.reads


async def get_status_cache(request: Request) -> StatusCache:
    return request.app.state.status_cache


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


async def get_identity(request: Request) -> Identity:
    """The caller, authenticated and counted against the key's rate limit (429
    rate_limited) at once: from memory on most requests, else in one thread hop."""
    gatekeeper: Gatekeeper = request.app.state.gatekeeper
    identity = await resolve_identity(gatekeeper=gatekeeper, scope=request.scope, key=read_api_key(request))
    if identity is None:
        raise auth_required()
    request.state.identity = identity
    return identity


class RequireScope:
    """The caller's identity if the key grants ``scope``, else 403 insufficient_scope.

    One dependency rather than a check on top of ``get_identity``: every dependency FastAPI
    solves costs a few microseconds per request. A request that needs several scopes is
    still authenticated and counted once (``resolve_identity`` keeps the result)."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, request: Request) -> Identity:
        identity = await get_identity(request)
        # Noted for the idempotency middleware: a replay of this response demands the same.
        request.scope.setdefault("state", {}).setdefault(SCOPES_DEMANDED, set()).add(self.scope)
        if not identity.has_scope(self.scope):
            raise insufficient_scope(self.scope)
        return identity


def require_scope(scope: str) -> RequireScope:
    return RequireScope(scope)


def document_api_keys(app: FastAPI) -> None:
    """Declare the API key schemes on every operation under ``/api/v1`` of the OpenAPI
    document: each one requires a key (tests/api/test_authz_matrix.py holds them to it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            if path.startswith(API_PREFIX):
                for operation in operations.values():
                    operation["security"] = [{scheme.scheme_name: []} for scheme in API_KEY_SCHEMES]
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        for scheme in API_KEY_SCHEMES:
            schemes[scheme.scheme_name] = jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_idempotency_key(app: FastAPI) -> None:
    """Declare the ``Idempotency-Key`` header on every POST of the OpenAPI document (the
    middleware, api.idempotency, handles it, so no route declares it itself)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        header = {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "Same key and body within 24 h: the first response again, and nothing runs twice.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        }
        for path, operations in schema.get("paths", {}).items():
            if path.startswith("/api/v1") and "post" in operations:
                operations["post"].setdefault("parameters", []).append(header)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, ScopedSession]
TemporalDep = Annotated[Client, Depends(get_temporal)]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
ReadsDep = Annotated[ProjectReads, Depends(get_reads)]
StatusCacheDep = Annotated[StatusCache, Depends(get_status_cache)]
ReaderDep = Annotated[Identity, Depends(require_scope(READ_SCOPE))]
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


ReadableProject = Annotated[Project, Depends(owned_project(READ_SCOPE))]
CreatableProject = Annotated[Project, Depends(owned_project("projects:create"))]
ApprovableProject = Annotated[Project, Depends(owned_project("projects:approve"))]
CancellableProject = Annotated[Project, Depends(owned_project("projects:cancel"))]
