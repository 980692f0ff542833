"""Agent mode: what the model requests spent, the plan under review, a new budget."""

from __future__ import annotations

from fastapi import APIRouter

from api.agent_schemas import PlanPublic, UsagePublic
from api.agent_service import latest_plan, project_usage, raise_budget
from api.auth_first import AuthFirstRoute
from api.deps import ApprovableProject, DatabaseDep, ReadableProject, SessionDep, SettingsDep, TemporalDep
from api.errors import ERROR_RESPONSES
from api.lifecycle_schemas import ActionResult
from api.schemas import Budget

router = APIRouter(
    route_class=AuthFirstRoute, prefix="/projects/{project_id}", tags=["agent mode"], responses=ERROR_RESPONSES
)


@router.get("/usage", response_model=UsagePublic, summary="Model usage: tokens and cost, by phase, run and task")
def read_usage(project: ReadableProject, session: SessionDep) -> UsagePublic:
    return project_usage(session, project=project)


@router.get("/plan", response_model=PlanPublic, summary="The plan of the latest spec version that holds one")
def read_plan(project: ReadableProject, session: SessionDep) -> PlanPublic:
    return latest_plan(session, project=project)


@router.post(
    "/budget",
    response_model=ActionResult,
    summary="Replace the model budget (a limit left out is no limit)",
    responses={409: ERROR_RESPONSES[400] | {"description": "Not in agent mode, or ended (invalid_state)"}},
)
async def update_budget(
    body: Budget, project: ApprovableProject, db: DatabaseDep, temporal: TemporalDep, settings: SettingsDep
) -> ActionResult:
    return await raise_budget(db=db, temporal=temporal, settings=settings, project=project, budget=body)
