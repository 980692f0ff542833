"""Runs of a project, their DAG and tasks, a new run on demand; and the spec versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.auth_first import AuthFirstRoute
from api.deps import (
    MAX_ID,
    CreatableProject,
    CreatorDep,
    DatabaseDep,
    ReadableProject,
    RunId,
    SessionDep,
    SettingsDep,
    TaskKey,
    TemporalDep,
)
from api.errors import ERROR_RESPONSES, ApiError
from api.lifecycle_schemas import (
    ActionResult,
    DagPublic,
    RunDetail,
    RunList,
    RunPublic,
    SpecDiff,
    SpecPublic,
    SpecVersionList,
    SpecVersionSummary,
    TaskList,
    TaskPublic,
)
from api.runs_service import RunCreate, start_prompt_run
from api.schemas import ProjectStatusName
from api.spec_diff import diff_spec_versions
from store.lifecycle import get_run, get_task, list_runs, list_spec_versions, list_tasks, task_summaries
from store.models import Run, SpecVersion

SpecVersionNumber = Annotated[int, Path(ge=1, le=MAX_ID, description="A spec version number")]

router = APIRouter(
    route_class=AuthFirstRoute, prefix="/projects/{project_id}", tags=["runs"], responses=ERROR_RESPONSES
)


def not_found(code: str, what: str, **details: object) -> ApiError:
    return ApiError(404, code, "validation", f"{what} not found.", details=dict(details))


def _run(session: SessionDep, project: ReadableProject, run_id: int) -> Run:
    run = get_run(session, project_id=project.id, number=run_id)
    if run is None:
        raise not_found("run_not_found", "Run", run_id=run_id)
    return run


@router.get("/spec", response_model=SpecPublic, summary="The latest spec version")
def read_spec(project: ReadableProject, session: SessionDep) -> SpecPublic:
    versions = list_spec_versions(session, project_id=project.id)
    if not versions:
        raise not_found("spec_not_found", "Spec", project_id=project.id)
    return SpecPublic.of(versions[-1])


@router.get("/spec/versions", response_model=SpecVersionList, summary="Every spec version")
def read_spec_versions(project: ReadableProject, session: SessionDep) -> SpecVersionList:
    versions = list_spec_versions(session, project_id=project.id)
    return SpecVersionList(versions=[SpecVersionSummary.model_validate(v, from_attributes=True) for v in versions])


def _spec_version(session: SessionDep, project: ReadableProject, version: int) -> SpecVersion:
    found = next((v for v in list_spec_versions(session, project_id=project.id) if v.version == version), None)
    if found is None:
        raise not_found("spec_version_not_found", "Spec version", version=version)
    return found


@router.get("/spec/versions/{version}", response_model=SpecPublic, summary="One spec version")
def read_spec_version(version: SpecVersionNumber, project: ReadableProject, session: SessionDep) -> SpecPublic:
    return SpecPublic.of(_spec_version(session, project, version))


@router.get(
    "/spec/versions/{version}/diff/{other}",
    response_model=SpecDiff,
    summary="What changed from one spec version to another",
)
def read_spec_diff(
    version: SpecVersionNumber, other: SpecVersionNumber, project: ReadableProject, session: SessionDep
) -> SpecDiff:
    return diff_spec_versions(old=_spec_version(session, project, version), new=_spec_version(session, project, other))


@router.get("/runs", response_model=RunList, summary="The project's runs, oldest first")
def read_runs(
    project: ReadableProject,
    session: SessionDep,
    status: Annotated[list[ProjectStatusName] | None, Query(description="One or several (repeat it)")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> RunList:
    # One row more than the page: whether there is a next page, without a COUNT.
    rows = list_runs(session, project_id=project.id, statuses=status or (), limit=limit + 1, offset=offset)
    runs = rows[:limit]
    summaries = task_summaries(session, run_ids=[r.id for r in runs])
    return RunList(
        runs=[RunPublic.of(r, summaries[r.id]) for r in runs], limit=limit, offset=offset, has_next=len(rows) > limit
    )


@router.post(
    "/runs",
    response_model=ActionResult,
    status_code=202,
    summary="Start a run on demand: a change, planned and built on top of the last ready run",
    responses={409: ERROR_RESPONSES[400] | {"description": "Not ready, or a run in progress (invalid_state)"}},
)
async def create_run(
    body: RunCreate,
    project: CreatableProject,
    identity: CreatorDep,
    db: DatabaseDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> ActionResult:
    return await start_prompt_run(
        db=db, temporal=temporal, settings=settings, project=project, owner=identity.owner_name, body=body
    )


@router.get("/runs/{run_id}", response_model=RunDetail, summary="One run: spec snapshot, DAG, verification")
def read_run(run_id: RunId, project: ReadableProject, session: SessionDep) -> RunDetail:
    run = _run(session, project, run_id)
    summary = task_summaries(session, run_ids=[run.id])[run.id]
    versions = {v.version: v for v in list_spec_versions(session, project_id=project.id)}
    spec = versions.get(run.spec_version)
    spec_snapshot = (
        None
        if spec is None
        else {
            "version": spec.version,
            "documents": spec.documents,
            "answers": spec.answers,
            "approved_at": SpecPublic.of(spec).model_dump(mode="json")["approved_at"],
        }
    )
    return RunDetail(
        **RunPublic.of(run, summary).model_dump(),
        spec=spec_snapshot,
        dag=DagPublic.model_validate(run.dag) if run.dag else None,
        verification=run.verification,
        head_commit=run.head_commit,
        base_commit=run.base_commit,
    )


@router.get("/runs/{run_id}/dag", response_model=DagPublic, summary="The run's task graph")
def read_run_dag(run_id: RunId, project: ReadableProject, session: SessionDep) -> DagPublic:
    run = _run(session, project, run_id)
    if not run.dag:
        raise not_found("dag_not_found", "The run's task graph", run_id=run_id)
    return DagPublic.model_validate(run.dag)


@router.get("/runs/{run_id}/tasks", response_model=TaskList, summary="The run's tasks")
def read_run_tasks(run_id: RunId, project: ReadableProject, session: SessionDep) -> TaskList:
    run = _run(session, project, run_id)
    return TaskList(tasks=[TaskPublic.of(t) for t in list_tasks(session, run_id=run.id)])


@router.get("/runs/{run_id}/tasks/{task_id}", response_model=TaskPublic, summary="One task")
def read_run_task(run_id: RunId, task_id: TaskKey, project: ReadableProject, session: SessionDep) -> TaskPublic:
    run = _run(session, project, run_id)
    task = get_task(session, run_id=run.id, key=task_id)
    if task is None:
        raise not_found("task_not_found", "Task", run_id=run_id, task_id=task_id)
    return TaskPublic.of(task)
