"""Template updates and what runs changed: ``POST /projects/{id}/update`` starts an update
run; ``GET /runs/{n}/diff``, ``/runs/{n}/files/{path}/diff`` and ``/runs/{n}/summary`` serve
what a run changed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.auth_first import AuthFirstRoute
from api.deps import (
    ArtifactsDep,
    CreatableProject,
    CreatorDep,
    DatabaseDep,
    ReadableProject,
    RunId,
    SessionDep,
    SettingsDep,
    TemporalDep,
)
from api.errors import ERROR_RESPONSES
from api.lifecycle_schemas import ActionResult
from api.routes.files import clean_path, file_not_found
from api.routes.runs import not_found
from api.run_diff import DIFF_MEDIA_TYPE, diff_response, run_trees
from api.run_summary import RunSummary, run_summary
from api.update_service import UpdateIn, update_project
from store.lifecycle import get_run

router = APIRouter(
    route_class=AuthFirstRoute,
    prefix="/projects/{project_id}",
    tags=["updates"],
    responses=ERROR_RESPONSES | {409: ERROR_RESPONSES[400] | {"description": "Wrong state (invalid_state)"}},
)

DIFF_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {DIFF_MEDIA_TYPE: {}}, "description": "A patch in git's format (`git apply` takes it)"}
}


@router.post(
    "/update",
    response_model=ActionResult,
    status_code=202,
    summary="Update the project to another version of its template",
)
async def update(
    body: UpdateIn,
    project: CreatableProject,
    identity: CreatorDep,
    db: DatabaseDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> ActionResult:
    return await update_project(
        db=db, temporal=temporal, settings=settings, project=project, owner=identity.owner_name, body=body
    )


# Plain ``def``: reading the store and diffing block, off the event loop.
@router.get(
    "/runs/{run_id}/diff",
    response_class=Response,
    summary="What the run changed, from the commit it built on to its main",
    responses=DIFF_RESPONSES,
)
def read_run_diff(run_id: RunId, project: ReadableProject, session: SessionDep, artifacts: ArtifactsDep) -> Response:
    run = get_run(session, project_id=project.id, number=run_id)
    if run is None:
        raise not_found("run_not_found", "Run", run_id=run_id)
    return diff_response(run_trees(run=run, artifacts=artifacts))


@router.get(
    "/runs/{run_id}/files/{file_path:path}/diff",
    response_class=Response,
    summary="What the run changed in one file",
    responses=DIFF_RESPONSES,
)
def read_run_file_diff(
    run_id: RunId, file_path: str, project: ReadableProject, session: SessionDep, artifacts: ArtifactsDep
) -> Response:
    rel = clean_path(file_path)
    run = get_run(session, project_id=project.id, number=run_id)
    if run is None:
        raise not_found("run_not_found", "Run", run_id=run_id)
    trees = run_trees(run=run, artifacts=artifacts)
    if not rel or (rel not in trees.base and rel not in trees.head):
        raise file_not_found(file_path)
    return diff_response(trees, only=rel)


@router.get(
    "/runs/{run_id}/summary", response_model=RunSummary, summary="What the run did: files, tasks, checks, usage"
)
def read_run_summary(
    run_id: RunId, project: ReadableProject, session: SessionDep, artifacts: ArtifactsDep
) -> RunSummary:
    run = get_run(session, project_id=project.id, number=run_id)
    if run is None:
        raise not_found("run_not_found", "Run", run_id=run_id)
    trees = run_trees(run=run, artifacts=artifacts) if run.bundle_key and run.head_commit else None
    return run_summary(session=session, project_id=project.id, run=run, trees=trees)
