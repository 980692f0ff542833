"""Browse the generated project: straight from the stored ZIP, never from the disk."""

from __future__ import annotations

import mimetypes
import zipfile
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import ArtifactsDep, ReadableProject
from api.errors import ERROR_RESPONSES, ApiError, invalid_state
from api.lifecycle_schemas import FileEntry, FileListing
from store.models import Project

router = APIRouter(
    prefix="/projects/{project_id}",
    tags=["files"],
    responses=ERROR_RESPONSES
    | {409: ERROR_RESPONSES[400] | {"description": "The files are not ready yet (invalid_state)"}},
)


def file_not_found(path: str) -> ApiError:
    return ApiError(404, "file_not_found", "validation", "File not found.", details={"path": path[:200]})


def clean_path(raw: str) -> str:
    """A relative POSIX path inside the project, or a 404: no '..', '.', empty segments,
    absolute paths, backslashes or control characters, however they were encoded."""
    trimmed = raw.strip("/") if raw not in ("", "/") else ""
    if not trimmed:
        return ""
    if raw.startswith("/") or "\\" in raw or any(ord(c) < 32 for c in raw):
        raise file_not_found(raw)
    parts = trimmed.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise file_not_found(raw)
    return "/".join(parts)


def _archive(project: Project, artifacts: ArtifactsDep) -> zipfile.ZipFile:
    if not project.artifact_ready or not project.artifact_key:
        raise invalid_state("The project's files are not ready yet.", project.status)
    return zipfile.ZipFile(artifacts.path_for(project.artifact_key))


@router.get("/files", response_model=FileListing, summary="List a directory of the output")
def read_files(
    project: ReadableProject, artifacts: ArtifactsDep, path: Annotated[str, Query(max_length=1000)] = ""
) -> FileListing:
    directory = clean_path(path)
    with _archive(project, artifacts) as zf:
        infos = zf.infolist()
    root = PurePosixPath(infos[0].filename).parts[0] if infos else ""
    prefix = f"{root}/{directory}/" if directory else f"{root}/"
    entries: dict[str, FileEntry] = {}
    for info in infos:
        if not info.filename.startswith(prefix):
            continue
        rest = info.filename[len(prefix) :]
        name, _, below = rest.partition("/")
        rel = f"{directory}/{name}" if directory else name
        entries[name] = (
            FileEntry(path=rel, type="directory") if below else FileEntry(path=rel, type="file", size=info.file_size)
        )
    if directory and not entries:
        raise file_not_found(path)
    return FileListing(path=directory, entries=[entries[k] for k in sorted(entries)])


@router.get(
    "/files/{file_path:path}",
    summary="One file of the output",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes"}},
)
def read_file(file_path: str, project: ReadableProject, artifacts: ArtifactsDep) -> Response:
    rel = clean_path(file_path)
    if not rel:
        raise file_not_found(file_path)
    with _archive(project, artifacts) as zf:
        names = zf.namelist()
        root = PurePosixPath(names[0]).parts[0] if names else ""
        try:
            data = zf.read(f"{root}/{rel}")
        except KeyError:
            raise file_not_found(file_path) from None
    media_type = mimetypes.guess_type(rel)[0] or "application/octet-stream"
    if media_type.startswith("text/") or rel.endswith((".py", ".md", ".toml", ".yml", ".yaml", ".json")):
        media_type = "text/plain; charset=utf-8" if not media_type.startswith("application/json") else media_type
    return Response(content=data, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})
