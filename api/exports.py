"""A ready project's git history as downloads: the git bundle its export stored beside the
ZIP, and the ZIP with the project's ``.git`` (engine.gitdir), made from those two the first
time it is asked for and kept beside them: the same bytes every time after.

Both go through the artifact store's own calls (``exists``, ``open``, ``put_bytes``), so
they work on any store. Both carry the sha256 of what is sent, as ``ETag`` and
``X-Content-SHA256``, like the ZIP's download."""

from __future__ import annotations

import hashlib

from fastapi.responses import Response

from api.errors import ApiError, invalid_state
from engine import EngineError
from engine.gitdir import zip_with_git
from store.artifacts import ArtifactStore
from store.export_keys import bundle_key, with_git_key
from store.models import Project

# A git bundle has no registered media type; this is the one git's own tools and hosting
# services use for it.
BUNDLE_MEDIA_TYPE = "application/x-git-bundle"


def _ready_key(project: Project) -> str:
    if not project.artifact_ready or not project.artifact_key:
        raise invalid_state("The project's artifact is not ready yet.", project.status)
    return project.artifact_key


def _missing(what: str) -> ApiError:
    return ApiError(404, "file_not_found", "validation", f"The project's {what} is not stored.", details={"path": what})


def _read(artifacts: ArtifactStore, key: str) -> bytes:
    with artifacts.open(key) as stored:
        return stored.read()


def _download(data: bytes, *, media_type: str, filename: str) -> Response:
    digest = hashlib.sha256(data).hexdigest()
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',  # a slug: nothing to quote
        "ETag": f'"{digest}"',
        "X-Content-SHA256": digest,
    }
    return Response(data, media_type=media_type, headers=headers)


def bundle_download(*, project: Project, artifacts: ArtifactStore) -> Response:
    """The run's repository as a git bundle: ``git clone <file> <dir>`` makes the project."""
    key = bundle_key(_ready_key(project))
    if not artifacts.exists(key):
        raise _missing("git bundle")
    return _download(_read(artifacts, key), media_type=BUNDLE_MEDIA_TYPE, filename=f"{project.slug}.bundle")


def zip_with_git_download(*, project: Project, artifacts: ArtifactStore) -> Response:
    """The ZIP with ``<slug>/.git``: extracted, the project is a clone of its history."""
    artifact = _ready_key(project)
    key = with_git_key(artifact)
    if artifacts.exists(key):
        data = _read(artifacts, key)
    else:
        if not artifacts.exists(bundle_key(artifact)):
            raise _missing("git bundle")
        try:
            data = zip_with_git(_read(artifacts, artifact), _read(artifacts, bundle_key(artifact)))
        except EngineError as exc:
            raise ApiError(500, "internal_error", "internal", f"The project's history cannot be packed: {exc}") from exc
        artifacts.put_bytes(key, data)  # deterministic: a concurrent maker writes the same bytes
    return _download(data, media_type="application/zip", filename=f"{project.slug}.zip")
