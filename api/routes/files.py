"""Browse the generated project: straight from the stored ZIP, never from the disk. The
latest ready run's by default; ``?run=N`` another ready run's; ``?ref=`` one branch of the
run's history (``main`` or a task branch), read from its git bundle (api/run_exports.py)."""

from __future__ import annotations

import mimetypes
import zipfile
from collections.abc import AsyncIterator, Iterable
from pathlib import PurePosixPath
from typing import Annotated, BinaryIO
from urllib.parse import quote

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth_first import AuthFirstRoute
from api.deps import ArtifactsDep, ReadableProject, SessionDep
from api.errors import ERROR_RESPONSES, ApiError
from api.lifecycle_schemas import FileEntry, FileListing
from api.run_exports import RefQuery, RunExport, RunQuery, branch_tree, selected_export

CHUNK_BYTES = 256 * 1024
SNIFF_BYTES = 8 * 1024  # enough to tell text from binary in a file without a known type
# Generated files are untrusted (a template, a client's answers, later an agent wrote them):
# a browser must neither guess a type that runs (nosniff) nor run anything the file holds,
# even a file opened directly: no sources, no plugins, no framing, a sandboxed origin.
SAFE_FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
}
# Images a browser only ever paints; SVG is a document that can run script, so it is not one.
INLINE_IMAGES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp", "image/vnd.microsoft.icon"}
)
TEXT_SUFFIXES = (".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".ini", ".txt")

router = APIRouter(
    route_class=AuthFirstRoute,
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


def presentation(rel: str, head: bytes) -> tuple[str, bool]:
    """(Content-Type, inline?) of a file: plain text and raster images inline, all else an
    attachment. HTML, JavaScript, files without a known type that are UTF-8 text, and so on
    are shown as their source, ``text/plain``; SVG and JSON keep their types, as attachments."""
    guessed, encoding = mimetypes.guess_type(rel, strict=False)
    if encoding is not None:  # .gz, .bz2...: the bytes are compressed, whatever the name says
        return "application/octet-stream", False
    if guessed in INLINE_IMAGES:
        return guessed, True
    if guessed in ("image/svg+xml", "application/json"):
        return guessed, False
    if (guessed or "").startswith("text/") or rel.endswith(TEXT_SUFFIXES) or _is_text(head):
        return "text/plain; charset=utf-8", True
    return guessed or "application/octet-stream", False


def _is_text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut at the end of the sample is still text
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def content_disposition(kind: str, name: str) -> str:
    """``kind`` with the file's name, as ASCII and as RFC 6266 ``filename*`` (UTF-8)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


class _OwnZip(zipfile.ZipFile):
    """A ZipFile that closes the file it reads when it closes (ZipFile leaves a file it was
    handed open)."""

    def __init__(self, file: BinaryIO) -> None:
        self._own = file
        try:
            super().__init__(file)
        except BaseException:
            file.close()
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._own.close()


def _archive(export: RunExport, artifacts: ArtifactsDep) -> zipfile.ZipFile:
    """The run's ZIP, from a seekable local file: the stored file itself, or a copy of the
    S3 object kept by its sha256. A store that cannot be reached is a 503."""
    return _OwnZip(artifacts.open_seekable(export.zip_key, export.sha256))


def _listing(files: Iterable[tuple[str, int]], directory: str, raw: str) -> FileListing:
    """The entries of ``directory`` among ``files`` (path relative to the project, size)."""
    prefix = f"{directory}/" if directory else ""
    entries: dict[str, FileEntry] = {}
    for rel_path, size in files:
        if not rel_path.startswith(prefix):
            continue
        name, _, below = rel_path[len(prefix) :].partition("/")
        rel = f"{prefix}{name}"
        entries[name] = FileEntry(path=rel, type="directory") if below else FileEntry(path=rel, type="file", size=size)
    if directory and not entries:
        raise file_not_found(raw)
    return FileListing(path=directory, entries=[entries[k] for k in sorted(entries)])


@router.get("/files", response_model=FileListing, summary="List a directory of the output")
def read_files(
    response: Response,
    project: ReadableProject,
    session: SessionDep,
    artifacts: ArtifactsDep,
    path: Annotated[str, Query(max_length=1000)] = "",
    run: RunQuery = None,
    ref: RefQuery = None,
) -> FileListing:
    response.headers.update(SAFE_FILE_HEADERS)
    directory = clean_path(path)
    export = selected_export(session=session, project=project, run=run)
    if ref is not None:  # one branch of the run's history, from its git bundle
        tree = branch_tree(artifacts=artifacts, export=export, ref=ref)
        return _listing(((rel, len(data.data)) for rel, data in tree.items()), directory, path)
    with _archive(export, artifacts) as zf:
        infos = zf.infolist()
    root = PurePosixPath(infos[0].filename).parts[0] if infos else ""
    return _listing(((i.filename[len(root) + 1 :], i.file_size) for i in infos), directory, path)


@router.get(
    "/files/{file_path:path}",
    summary="One file of the output",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/octet-stream": {}, "text/plain": {}, "application/json": {}, "image/*": {}},
            "description": "The file's bytes, streamed. Text and raster images are inline; anything else,"
            " SVG included, is an attachment. Always with `X-Content-Type-Options: nosniff` and a"
            " `Content-Security-Policy` that lets nothing run.",
        }
    },
)
def read_file(
    file_path: str,
    project: ReadableProject,
    session: SessionDep,
    artifacts: ArtifactsDep,
    run: RunQuery = None,
    ref: RefQuery = None,
) -> Response:
    rel = clean_path(file_path)
    if not rel:
        raise file_not_found(file_path)
    export = selected_export(session=session, project=project, run=run)
    if ref is not None:  # one branch of the run's history, from its git bundle
        found = branch_tree(artifacts=artifacts, export=export, ref=ref).get(rel)
        if found is None:
            raise file_not_found(file_path)
        media_type, inline = presentation(rel, found.data[:SNIFF_BYTES])
        return Response(found.data, media_type=media_type, headers=_file_headers(rel, inline))
    zf = _archive(export, artifacts)
    try:
        names = zf.namelist()
        root = PurePosixPath(names[0]).parts[0] if names else ""
        try:
            info = zf.getinfo(f"{root}/{rel}")
        except KeyError:
            raise file_not_found(file_path) from None
        if info.is_dir():
            raise file_not_found(file_path)
        member = zf.open(info)
        head = member.read(SNIFF_BYTES)
    except BaseException:
        zf.close()
        raise
    media_type, inline = presentation(rel, head)

    # The member is read a chunk at a time, each in a worker thread: memory stays at a few
    # chunks per download however large the file (it used to be the whole file, twice).
    async def body() -> AsyncIterator[bytes]:
        try:
            yield head
            while chunk := await run_in_threadpool(member.read, CHUNK_BYTES):
                yield chunk
        finally:
            member.close()
            zf.close()

    headers = {**_file_headers(rel, inline), "Content-Length": str(info.file_size)}
    return StreamingResponse(body(), media_type=media_type, headers=headers)


def _file_headers(rel: str, inline: bool) -> dict[str, str]:
    disposition = "inline" if inline else "attachment"
    return {**SAFE_FILE_HEADERS, "Content-Disposition": content_disposition(disposition, PurePosixPath(rel).name)}
