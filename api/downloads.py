"""The artifact download. From the local store, Starlette's FileResponse serves the file.
From S3, the object is streamed through the API with the same answers FileResponse gives
(the range parser is its own: 206 for one range or several, 416 with ``bytes */size``, 400 for
a malformed header, If-Range against the ETag), or, with ``FORGEFLOW_ARTIFACTS_PRESIGN``,
the client is sent to a presigned URL of the store. Either way the ETag and X-Content-SHA256
are the sha256 on record, and a store that cannot be reached answers 503 before anything
is sent."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from email.utils import formatdate
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from api.exports import zip_with_git_download
from api.run_exports import RunExport, selected_export
from forgeflow.settings import Settings
from store.artifacts import ArtifactStore, LocalArtifactStore, ObjectRead, RemoteArtifactStore
from store.models import Project

ZIP = "application/zip"
CHUNK_BYTES = 256 * 1024
Ranges = list[tuple[int, int]]  # [start, end) pairs


def artifact_response(*, project: Project, artifacts: ArtifactStore, settings: Settings, request: Request) -> Response:
    """The ready project's ZIP; the caller has checked it is ready."""
    assert project.artifact_key is not None
    export = RunExport(None, project.artifact_key, project.artifact_sha256, project.artifact_size, "")
    return zip_response(
        export=export, filename=f"{project.slug}.zip", artifacts=artifacts, settings=settings, request=request
    )


def run_artifact_response(
    *,
    session: Session,
    project: Project,
    run: int,
    with_git: bool,
    artifacts: ArtifactStore,
    settings: Settings,
    request: Request,
) -> Response:
    """Run ``run``'s own ZIP (``?run=N``): every ready run keeps its export, so an earlier
    run's stays downloadable after a later one is ready; 404 ``run_not_found``, 409 for a
    run that did not end ready."""
    export = selected_export(session=session, project=project, run=run)
    if with_git:
        # api/exports.py packs a project's artifact: this run's, as a project that stands
        # at it (a transient row, never added to the session).
        at_run = Project(slug=project.slug, status="ready", artifact_ready=True, artifact_key=export.zip_key)
        return zip_with_git_download(project=at_run, artifacts=artifacts)
    filename = f"{project.slug}-run{run}.zip"
    return zip_response(export=export, filename=filename, artifacts=artifacts, settings=settings, request=request)


def zip_response(
    *, export: RunExport, filename: str, artifacts: ArtifactStore, settings: Settings, request: Request
) -> Response:
    """One stored ZIP, with its checksum on record as ETag and X-Content-SHA256."""
    key, size = export.zip_key, export.size
    checksums = {"ETag": f'"{export.sha256}"', "X-Content-SHA256": export.sha256 or ""}
    if isinstance(artifacts, LocalArtifactStore):
        return FileResponse(artifacts.path_for(key), media_type=ZIP, filename=filename, headers=checksums)
    if not isinstance(artifacts, RemoteArtifactStore):
        raise TypeError(f"cannot serve artifacts from {type(artifacts).__name__}")
    if settings.artifacts_presign:
        url = artifacts.presigned_url(
            key, seconds=settings.artifacts_presign_seconds, filename=filename, media_type=ZIP
        )
        # The URL expires: no cache may keep the redirect longer than that.
        return RedirectResponse(url, status_code=307, headers={**checksums, "Cache-Control": "no-store"})
    headers = {**checksums, "Accept-Ranges": "bytes", "Content-Disposition": attachment(filename)}
    return streamed(artifacts, key=key, size=size, headers=headers, request=request)


def attachment(filename: str) -> str:
    """FileResponse's Content-Disposition, to the byte."""
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'


def requested_ranges(request: Request, *, size: int | None, etag: str) -> Ranges | Response | None:
    """The ranges to send (None: the whole object), or the error answer FileResponse gives."""
    http_range = request.headers.get("range")
    if http_range is None or size is None:
        return None  # without the size on record (a hand-made row), the whole object
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range != etag:
        return None  # a changed (or weak, or dated) validator: the whole object, as RFC 9110 allows
    try:
        # Starlette's own parser: the local store's FileResponse uses it too.
        ranges = FileResponse._parse_range_header(http_range, size)
    except MalformedRangeHeader as exc:
        return PlainTextResponse(exc.content, status_code=400)
    except RangeNotSatisfiable as exc:
        return PlainTextResponse(status_code=416, headers={"Content-Range": f"bytes */{exc.max_size}"})
    return ranges or None  # more ranges than it serves: the whole object


def streamed(
    store: RemoteArtifactStore, *, key: str, size: int | None, headers: dict[str, str], request: Request
) -> Response:
    ranges = requested_ranges(request, size=size, etag=headers["ETag"])
    if isinstance(ranges, Response):
        return ranges
    # The first read is made here, before the response starts: a store that is down is a 503.
    if ranges is None:
        whole = store.read(key)
        return StreamingResponse(_chunks(whole), media_type=ZIP, headers={**headers, **_described(whole)})
    assert size is not None
    first = store.read(key, start=ranges[0][0], end=ranges[0][1])
    if len(ranges) == 1:
        start, end = ranges[0]
        part = {"Content-Range": f"bytes {start}-{end - 1}/{size}", **_described(first)}
        return StreamingResponse(_chunks(first), status_code=206, media_type=ZIP, headers={**headers, **part})
    boundary = secrets.token_hex(13)
    length = sum(len(_part_header(boundary, start, end, size)) + end - start + 2 for start, end in ranges)
    multipart = {"Content-Length": str(length + len(boundary) + 4), **_described(first, length=False)}
    return StreamingResponse(
        _multipart(store, key, first, ranges, size, boundary),
        status_code=206,
        media_type=f"multipart/byteranges; boundary={boundary}",
        headers={**headers, **multipart},
    )


def _described(read: ObjectRead, *, length: bool = True) -> dict[str, str]:
    described = {"Content-Length": str(read.size)} if length else {}
    if read.last_modified is not None:
        described["Last-Modified"] = formatdate(read.last_modified.timestamp(), usegmt=True)
    return described


def _part_header(boundary: str, start: int, end: int, size: int) -> bytes:
    """One part's head in a multipart/byteranges body, as FileResponse writes it."""
    return f"--{boundary}\r\nContent-Type: {ZIP}\r\nContent-Range: bytes {start}-{end - 1}/{size}\r\n\r\n".encode()


async def _chunks(read: ObjectRead) -> AsyncIterator[bytes]:
    # A chunk at a time, each read in a worker thread; the body is closed however the
    # response ends (a client that goes away cancels this generator).
    try:
        while chunk := await run_in_threadpool(read.body.read, CHUNK_BYTES):
            yield chunk
    finally:
        read.body.close()


async def _multipart(
    store: RemoteArtifactStore, key: str, first: ObjectRead, ranges: Ranges, size: int, boundary: str
) -> AsyncIterator[bytes]:
    """Each range from a ranged read of its own (a GET takes one range), the first made already."""
    for index, (start, end) in enumerate(ranges):
        read = first if index == 0 else await run_in_threadpool(store.read, key, start=start, end=end)
        yield _part_header(boundary, start, end, size)
        async for chunk in _chunks(read):
            yield chunk
        yield b"\r\n"
    yield f"--{boundary}--".encode()
