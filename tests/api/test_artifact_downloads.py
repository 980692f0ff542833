"""The artifact download answers alike from either store: the local directory (Starlette's
FileResponse) and S3 (the object streamed through the API): same status, headers and bytes
for whole downloads, ranges, bad ranges, If-Range and HEAD. With presigning on, S3 answers
307 to a URL that serves the same bytes."""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import re
import zipfile

import httpx
import pytest
from sqlalchemy import update

from forgeflow.cli.client import Api
from forgeflow.cli.watch import download
from forgeflow.settings import Settings
from store.artifact_stores import open_artifact_store
from store.models import Project
from tests.support import LiveServer

KEY_TEMPLATE = "projects/{id}/runs/1/widget_lib.zip"
COMPARED = (
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "content-disposition",
    "etag",
    "x-content-sha256",
)


def a_zip() -> bytes:
    rng = random.Random(7)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("widget_lib/README.md", "# Widget\n")
        zf.writestr("widget_lib/blob.bin", rng.randbytes(150_000))
    return out.getvalue()


@pytest.fixture
def s3_settings(settings: Settings, s3_bucket) -> Settings:
    return settings.model_copy(update={"artifacts_url": s3_bucket.url, "artifacts_endpoint_url": s3_bucket.endpoint})


@pytest.fixture
def stored_project(settings, s3_settings, db, project_row):
    """A ready project whose ZIP is in both stores under the same key, as a worker leaves it."""
    key, project_id = project_row()
    data = a_zip()
    artifact_key = KEY_TEMPLATE.format(id=project_id)
    for each in (settings, s3_settings):
        open_artifact_store(each).put_bytes(artifact_key, data)
    with db.session() as session:
        session.execute(
            update(Project)
            .where(Project.id == project_id)
            .values(
                status="ready",
                artifact_ready=True,
                artifact_key=artifact_key,
                artifact_sha256=hashlib.sha256(data).hexdigest(),
                artifact_size=len(data),
            )
        )
    return project_id, {"X-API-Key": key.key}, data


REQUESTS = {
    "whole": {},
    "first bytes": {"Range": "bytes=0-99"},
    "middle": {"Range": "bytes=1000-70999"},
    "open ended": {"Range": "bytes=150000-"},
    "suffix": {"Range": "bytes=-500"},
    "one byte": {"Range": "bytes=0-0"},
    "past the end": {"Range": "bytes=0-99999999"},
    "several": {"Range": "bytes=0-9, 100-199, 150-249"},
    "unsatisfiable": {"Range": "bytes=99999999-"},
    "backwards": {"Range": "bytes=500-100"},
    "other unit": {"Range": "items=0-1"},
    "if-range matches": {"Range": "bytes=0-9", "If-Range": "ETAG"},
    "if-range differs": {"Range": "bytes=0-9", "If-Range": '"0000"'},
    "if-none-match": {"If-None-Match": "ETAG"},
}


def answer(response: httpx.Response) -> tuple[int, dict[str, str | None], bytes, bool]:
    """What must match: the status, the headers above and the bytes (a multipart boundary,
    random per response, made neutral), and whether Last-Modified is there."""
    headers = {name: response.headers.get(name) for name in COMPARED}
    body = response.content
    boundary = re.search(r"boundary=(\w+)", headers["content-type"] or "")
    if boundary:
        body = body.replace(boundary.group(1).encode(), b"BOUNDARY")
        headers["content-type"] = (headers["content-type"] or "").replace(boundary.group(1), "BOUNDARY")
    return response.status_code, headers, body, "last-modified" in response.headers


async def test_both_stores_answer_downloads_alike(settings, s3_settings, stored_project):
    project_id, auth, data = stored_project
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    path = f"/api/v1/projects/{project_id}/artifact"
    async with LiveServer(settings) as local, LiveServer(s3_settings) as s3, httpx.AsyncClient(timeout=30) as http:
        for name, headers in REQUESTS.items():
            sent = {**auth, **{k: v.replace("ETAG", etag) for k, v in headers.items()}}
            from_local = answer(await http.get(local.url + path, headers=sent))
            from_s3 = answer(await http.get(s3.url + path, headers=sent))
            assert from_s3 == from_local, name
        # The answers themselves, checked once (they are the same for both).
        whole = await http.get(s3.url + path, headers=auth)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["x-content-sha256"] == hashlib.sha256(whole.content).hexdigest()
        assert whole.headers["etag"] == etag and whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["content-disposition"] == 'attachment; filename="widget_lib.zip"'
        middle = await http.get(s3.url + path, headers={**auth, "Range": "bytes=1000-70999"})
        assert middle.status_code == 206 and middle.content == data[1000:71000]
        assert middle.headers["content-range"] == f"bytes 1000-70999/{len(data)}"
        unsatisfiable = await http.get(s3.url + path, headers={**auth, "Range": "bytes=99999999-"})
        assert unsatisfiable.status_code == 416 and unsatisfiable.headers["content-range"] == f"bytes */{len(data)}"
        for server in (local, s3):  # the route takes GET only, HEAD included
            head = await http.head(server.url + path, headers=auth)
            assert head.status_code == 405


async def test_presigned_downloads_redirect_to_the_same_bytes(s3_settings, stored_project):
    project_id, auth, data = stored_project
    sha256 = hashlib.sha256(data).hexdigest()
    presigning = s3_settings.model_copy(update={"artifacts_presign": True, "artifacts_presign_seconds": 60})
    async with LiveServer(presigning) as api, httpx.AsyncClient(timeout=30) as http:
        redirect = await http.get(f"{api.url}/api/v1/projects/{project_id}/artifact", headers=auth)
        assert redirect.status_code == 307, redirect.text
        assert redirect.headers["etag"] == f'"{sha256}"' and redirect.headers["x-content-sha256"] == sha256
        assert redirect.headers["cache-control"] == "no-store"
        location = redirect.headers["location"]
        assert location.startswith(f"{s3_settings.artifacts_endpoint_url}/") and "X-Amz-Expires=60" in location
        assert "forgeflow-test-secret" not in location  # signed with it, never carrying it
        followed = await http.get(
            f"{api.url}/api/v1/projects/{project_id}/artifact", headers=auth, follow_redirects=True
        )
        assert followed.status_code == 200 and hashlib.sha256(followed.content).hexdigest() == sha256
        assert followed.headers["content-disposition"] == 'attachment; filename="widget_lib.zip"'
        assert followed.headers["content-type"] == "application/zip"
        ranged = await http.get(location, headers={"Range": "bytes=10-19"})
        assert ranged.status_code == 206 and ranged.content == data[10:20]


async def test_the_cli_follows_a_presigned_download(s3_settings, stored_project, tmp_path):
    project_id, auth, data = stored_project
    presigning = s3_settings.model_copy(update={"artifacts_presign": True})
    async with LiveServer(presigning) as api:
        with Api(api.url, auth["X-API-Key"]) as client:
            saved = await asyncio.to_thread(download, client, project_id, output=tmp_path, force=False)
    assert saved.path == tmp_path / "widget_lib.zip" and saved.path.read_bytes() == data
    assert saved.sha256 == hashlib.sha256(data).hexdigest()


async def test_files_are_read_from_an_s3_zip(s3_settings, stored_project):
    project_id, auth, _ = stored_project
    async with LiveServer(s3_settings) as api, httpx.AsyncClient(base_url=f"{api.url}/api/v1", timeout=30) as http:
        listing = await http.get(f"/projects/{project_id}/files", headers=auth)
        assert listing.status_code == 200, listing.text
        assert [e["path"] for e in listing.json()["entries"]] == ["README.md", "blob.bin"]
        readme = await http.get(f"/projects/{project_id}/files/README.md", headers=auth)
        assert readme.status_code == 200 and readme.text == "# Widget\n"
    copies = list((s3_settings.data_dir / "cache" / "artifacts").glob("*/*"))
    assert len(copies) == 1, "the ZIP was fetched once, into the content-addressed cache"
