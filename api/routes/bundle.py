"""``GET /projects/{id}/bundle``: the project's git history as a git bundle."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.auth_first import AuthFirstRoute
from api.deps import ArtifactsDep, ProjectId, ReaderDep, SessionDep
from api.errors import ERROR_RESPONSES, project_not_found
from api.exports import BUNDLE_MEDIA_TYPE, bundle_download
from store.projects import get_project

router = APIRouter(route_class=AuthFirstRoute, prefix="/projects", tags=["projects"], responses=ERROR_RESPONSES)


# Plain ``def``: reading the store blocks, off the event loop.
@router.get(
    "/{project_id}/bundle",
    response_class=Response,
    summary="Download the project's git history (a git bundle)",
    responses={
        200: {"content": {BUNDLE_MEDIA_TYPE: {}}, "description": "`git clone` it: main and every task branch"},
        409: ERROR_RESPONSES[400] | {"description": "The export is not ready yet"},
    },
)
def read_project_bundle(
    project_id: ProjectId, session: SessionDep, identity: ReaderDep, artifacts: ArtifactsDep
) -> Response:
    project = get_project(session, owner_id=identity.owner_id, project_id=project_id)
    if project is None:
        raise project_not_found(project_id)
    return bundle_download(project=project, artifacts=artifacts)
