"""Questions, answers, review, cancel, pause, resume, retry: every change goes through
the project's workflow."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.auth_first import AuthFirstRoute
from api.deps import (
    ApprovableProject,
    CancellableProject,
    CreatableProject,
    CreatorDep,
    DatabaseDep,
    ReadableProject,
    SettingsDep,
    TemporalDep,
)
from api.errors import ERROR_RESPONSES
from api.lifecycle_schemas import ActionResult, AnswersIn, FeedbackIn, NotesIn, QuestionList, QuestionPublic
from api.lifecycle_service import cancel_project, result_of, retry_project, submit_answers
from api.steering import steer_within
from workflows.types import ApprovalUpdate, PauseUpdate, RegenerateUpdate

router = APIRouter(
    route_class=AuthFirstRoute,
    prefix="/projects/{project_id}",
    tags=["lifecycle"],
    responses=ERROR_RESPONSES | {409: ERROR_RESPONSES[400] | {"description": "Wrong state (invalid_state)"}},
)


@router.get("/questions", response_model=QuestionList, summary="Open questions")
def read_questions(project: ReadableProject) -> QuestionList:
    return QuestionList(questions=[QuestionPublic.model_validate(q) for q in project.questions or []])


@router.post("/answers", response_model=ActionResult, summary="Answer the open questions")
async def create_answers(
    body: AnswersIn, project: CreatableProject, temporal: TemporalDep, settings: SettingsDep
) -> ActionResult:
    return await submit_answers(temporal=temporal, settings=settings, project=project, answers=body.answers)


@router.post("/approve", response_model=ActionResult, summary="Approve the spec")
async def approve_project(
    project: ApprovableProject, temporal: TemporalDep, settings: SettingsDep, body: NotesIn | None = None
) -> ActionResult:
    decision = body or NotesIn()
    update = ApprovalUpdate(notes=decision.notes, version=decision.version)
    return result_of(project, await steer_within(settings, temporal, project, "approve", update))


@router.post("/reject", response_model=ActionResult, summary="Reject the spec (the project fails)")
async def reject_project(
    project: ApprovableProject, temporal: TemporalDep, settings: SettingsDep, body: NotesIn | None = None
) -> ActionResult:
    decision = body or NotesIn()
    update = ApprovalUpdate(notes=decision.notes, version=decision.version)
    return result_of(project, await steer_within(settings, temporal, project, "reject", update))


@router.post("/regenerate", response_model=ActionResult, summary="A new spec version from feedback")
async def regenerate_project(
    body: FeedbackIn, project: ApprovableProject, temporal: TemporalDep, settings: SettingsDep
) -> ActionResult:
    update = RegenerateUpdate(feedback=body.feedback, version=body.version)
    return result_of(project, await steer_within(settings, temporal, project, "regenerate", update))


@router.post(
    "/cancel",
    response_model=ActionResult,
    status_code=202,
    summary="Cancel the run",
    responses={200: {"model": ActionResult, "description": "Cancelled: the run has stored its end"}},
)
async def cancel(
    project: CancellableProject, temporal: TemporalDep, settings: SettingsDep, response: Response
) -> ActionResult:
    result = await cancel_project(temporal=temporal, project=project, wait=settings.update_timeout.total_seconds())
    if result.accepted is None:  # the run has ended, cancelled; else 202: it will
        response.status_code = 200
    return result


@router.post("/pause", response_model=ActionResult, summary="Start no new task")
async def pause_project(project: CancellableProject, temporal: TemporalDep, settings: SettingsDep) -> ActionResult:
    return result_of(project, await steer_within(settings, temporal, project, "pause", PauseUpdate()))


@router.post("/resume", response_model=ActionResult, summary="Start tasks again")
async def resume_project(project: CancellableProject, temporal: TemporalDep, settings: SettingsDep) -> ActionResult:
    return result_of(project, await steer_within(settings, temporal, project, "resume", PauseUpdate()))


@router.post("/retry", response_model=ActionResult, status_code=202, summary="A new run of a failed project")
async def retry(
    project: CreatableProject, identity: CreatorDep, db: DatabaseDep, temporal: TemporalDep, settings: SettingsDep
) -> ActionResult:
    return await retry_project(db=db, temporal=temporal, settings=settings, project=project, owner=identity.owner_name)
