"""The Djass Projects API v1: create, list, read, status; plus the artifact download."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response

from api.auth_first import AuthFirstRoute
from api.deletion import delete_project as archive_and_cancel
from api.deps import (
    MAX_ID,
    ArtifactsDep,
    CancellableProject,
    CreatableProject,
    CreatorDep,
    DatabaseDep,
    ProjectId,
    ReaderDep,
    ReadsDep,
    SessionDep,
    SettingsDep,
    StatusCacheDep,
    TemporalDep,
)
from api.downloads import artifact_response, run_artifact_response
from api.errors import ERROR_RESPONSES, invalid_state, project_not_found
from api.exports import zip_with_git_download
from api.lifecycle_schemas import ArchivedProject, ProjectUpdate
from api.query import OnlyQuery
from api.reads import DEFAULT_PAGE, MAX_PAGE
from api.run_exports import RunQuery
from api.schemas import (
    ProjectCreate,
    ProjectEnvelope,
    ProjectList,
    ProjectPublic,
    ProjectSort,
    ProjectStatusName,
    ProjectStatusPublic,
)
from api.services import start_project
from store.lifecycle import NewEvent, append_events
from store.models import Project
from store.projects import get_project, update_details

router = APIRouter(route_class=AuthFirstRoute, prefix="/projects", tags=["projects"], responses=ERROR_RESPONSES)


def _owned(session: SessionDep, identity: ReaderDep, project_id: int) -> Project:
    project = get_project(session, owner_id=identity.owner_id, project_id=project_id)
    if project is None:
        raise project_not_found(project_id)
    return project


@router.post("", status_code=201, response_model=ProjectEnvelope, summary="Create project")
async def create_project(
    body: ProjectCreate,
    identity: CreatorDep,
    db: DatabaseDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> ProjectEnvelope:
    project = await start_project(db=db, temporal=temporal, settings=settings, identity=identity, body=body)
    return ProjectEnvelope(project=ProjectPublic.of(project))


SEARCH = "Case-insensitive text in the name or description, matched literally (% and _ are no wildcards)"
LIST_PARAMETERS = Depends(OnlyQuery("limit", "offset", "status", "q", "sort", "include"))


# The reads are ``async def`` with their blocking part in one thread hop: a plain ``def``
# route costs a hop for itself, one for its session's entry and exit, one for the response.
# A plain page (limit and offset alone) is mostly answered before routing, with the same
# read (api.status_middleware); every other list comes here.
@router.get("", response_model=ProjectList, summary="List projects")
async def read_projects(
    reads: ReadsDep,
    identity: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    status: Annotated[list[ProjectStatusName] | None, Query(description="One or several (repeat it)")] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200, description=SEARCH)] = None,
    sort: Annotated[ProjectSort | None, Query(description="A field, `-` first for descending")] = None,
    include: Annotated[list[Literal["status_counts"]] | None, Query(description="Extra parts of the body")] = None,
    _known: None = LIST_PARAMETERS,
) -> Response:
    # One status is shown as one (the v1 body); several as the list of them.
    statuses = list(dict.fromkeys(status or ()))
    body = await reads.page(
        owner_id=identity.owner_id,
        status=statuses[0] if len(statuses) == 1 else statuses or None,
        limit=limit,
        offset=offset,
        q=q,
        sort=sort,
        counts="status_counts" in (include or ()),
    )
    # The response model's body, built as bytes in the read's thread (api.read_json).
    return Response(body, media_type="application/json")


@router.get("/{project_id}", response_model=ProjectPublic, summary="Get project")
async def read_project(project_id: ProjectId, reads: ReadsDep, identity: ReaderDep) -> ProjectPublic:
    return await reads.project(owner_id=identity.owner_id, project_id=project_id)


# Most polls are answered before routing (api.status_middleware), with the same read; the
# others come here (a key to authenticate, a lease to renew, a 404), and fill the cache too.
@router.get("/{project_id}/status", response_model=ProjectStatusPublic, summary="Get project status")
async def read_project_status(project_id: ProjectId, identity: ReaderDep, statuses: StatusCacheDep) -> Response:
    body = await statuses.body(owner_id=identity.owner_id, project_id=project_id)
    return Response(body, media_type="application/json")


@router.get(
    "/{project_id}/artifact",
    response_class=FileResponse,
    summary="Download the project's ZIP",
    responses={
        200: {"content": {"application/zip": {}}, "description": "The generated project as a ZIP"},
        409: ERROR_RESPONSES[400] | {"description": "The artifact is not ready yet"},
    },
)
def read_project_artifact(
    project_id: ProjectId,
    request: Request,
    session: SessionDep,
    identity: ReaderDep,
    artifacts: ArtifactsDep,
    with_git: Annotated[bool, Query(description="Include the project's .git (its history)")] = False,
    run: RunQuery = None,
) -> Response:
    project = _owned(session, identity, project_id)
    if run is not None:  # that run's own ZIP, kept after later runs (api/downloads.py)
        settings = request.app.state.settings
        return run_artifact_response(
            session=session,
            project=project,
            run=run,
            with_git=with_git,
            artifacts=artifacts,
            settings=settings,
            request=request,
        )
    if not project.artifact_ready or not project.artifact_key:
        raise invalid_state("The project's artifact is not ready yet.", project.status)
    if with_git:  # made from the ZIP and the git bundle (api/exports.py)
        return zip_with_git_download(project=project, artifacts=artifacts)
    # The local file, the S3 object streamed, or a redirect to it (api/downloads.py).
    return artifact_response(project=project, artifacts=artifacts, settings=request.app.state.settings, request=request)


@router.patch("/{project_id}", response_model=ProjectPublic, summary="Rename or redescribe a project")
def update_project(body: ProjectUpdate, project: CreatableProject, db: DatabaseDep) -> ProjectPublic:
    # A write transaction of its own: the event number is handed out under its lock.
    with db.session(write_lock=True) as session:
        row = get_project(session, owner_id=project.owner_id, project_id=project.id)
        if row is None:
            raise project_not_found(project.id)
        update_details(session, project=row, name=body.name, description=body.description)
        changes = body.model_dump(exclude_none=True)
        event = NewEvent(type="project_updated", key=f"project_updated:{row.updated_at.isoformat()}", payload=changes)
        append_events(session, project_id=row.id, events=[event], at=row.updated_at)
        return ProjectPublic.of(row)


@router.delete("/{project_id}", response_model=ArchivedProject, summary="Cancel if running, then archive")
async def delete_project(project: CancellableProject, db: DatabaseDep, temporal: TemporalDep) -> ArchivedProject:
    return await archive_and_cancel(db=db, temporal=temporal, project=project)
