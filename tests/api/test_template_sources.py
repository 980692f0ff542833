"""Templates from registered git sources, end to end: a create names ``id@ref``, the API
resolves it to a commit (a 400 at once for what cannot be used), the worker renders that
commit from its cache, and the export says where it came from; the project's history
comes as a git bundle or inside the ZIP."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from forgeflow.settings import Settings
from tests.api.test_quickstart import poll_until_done
from tests.template_repos import commit, copy_tree, git, new_repo

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def starter(tmp_path: Path) -> Path:
    """widget-lib in a git repository: v1, then v2 with another README."""
    repo = new_repo(tmp_path / "repos" / "starter")
    copy_tree(FIXTURES / "templates" / "widget-lib", repo)
    commit(repo, "first", tag="v1")
    readme = repo / "{{ cookiecutter.project_slug }}" / "README.md"
    readme.write_text("# {{ cookiecutter.project_name }}\n\nVersion two.\n")
    commit(repo, "second", tag="v2", annotated=True)
    return repo


@pytest.fixture
def settings(settings: Settings, starter: Path, tmp_path: Path) -> Settings:
    copier_repo = new_repo(tmp_path / "repos" / "copierish")
    copy_tree(FIXTURES / "copier" / "parity", copier_repo)
    commit(copier_repo, "v1", tag="v1")
    linked = new_repo(tmp_path / "repos" / "linked")
    copy_tree(FIXTURES / "templates" / "widget-lib", linked)
    (linked / "{{ cookiecutter.project_slug }}" / "leak.txt").symlink_to("/etc/passwd")
    commit(linked, "a link out", tag="v1")
    settings.template_sources = {
        "starter": str(starter),
        "copierish": str(copier_repo),
        "linked": str(linked),
        "gone": str(tmp_path / "repos" / "nowhere"),
    }
    return settings


async def create(http: httpx.AsyncClient, auth: dict[str, str], template: str, **fields: Any) -> httpx.Response:
    return await http.post(
        "/projects", json={"project_name": "Gadget Kit", "template": template, **fields}, headers=auth
    )


async def ready_zip(http: httpx.AsyncClient, auth: dict[str, str], project_id: int, **params: str) -> zipfile.ZipFile:
    status = await poll_until_done(http, project_id, auth)
    assert status["status"] == "ready", status
    artifact = await http.get(f"/projects/{project_id}/artifact", headers=auth, params=params)
    assert artifact.status_code == 200, artifact.text
    return zipfile.ZipFile(io.BytesIO(artifact.content))


async def test_versions_pin_commits_and_the_export_names_them(http, worker, make_key, starter):
    auth = {"X-API-Key": make_key().key}
    v1, v2 = git(starter, "rev-parse", "v1"), git(starter, "rev-parse", "v2^{commit}")
    made = {ref: await create(http, auth, f"starter@{ref}") for ref in ("v1", "v2", v1)}
    for ref, response in made.items():
        assert response.status_code == 201, response.text
        assert response.json()["project"]["template"] == "starter"
        assert response.json()["project"]["input_payload"]["template"] == f"starter@{ref}"
    for ref, commit_id, readme in [("v1", v1, "Made by"), ("v2", v2, "Version two."), (v1, v1, "Made by")]:
        zf = await ready_zip(http, auth, made[ref].json()["project"]["id"])
        answers = json.loads(zf.read("gadget_kit/.forgeflow/answers.json"))
        assert answers["template"] | {"digest": None, "version": None} == {
            "id": "starter",
            "format": "cookiecutter",
            "source": str(starter),
            "ref": ref,
            "commit": commit_id,
            "digest": None,
            "version": None,
        }
        assert answers["answers"]["project_name"] == "Gadget Kit"
        manifest = json.loads(zf.read("gadget_kit/.forgeflow/manifest.json"))
        assert manifest["template"] == answers["template"] and manifest["answers"] == answers["answers"]
        assert readme.lower() in zf.read("gadget_kit/README.md").decode().lower()


async def test_what_cannot_be_used_is_a_400_naming_it(http, make_key, tmp_path):
    auth = {"X-API-Key": make_key().key}
    unknown = await create(http, auth, "starter@v9")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "unknown_template_ref"
    assert unknown.json()["error"]["details"] | {"request_id": None} == {
        "field": "template",
        "template": "starter",
        "ref": "v9",
        "request_id": None,
    }
    unregistered = await create(http, auth, "elsewhere@v1")
    assert unregistered.json()["error"]["code"] == "unknown_template"
    assert "starter" in unregistered.json()["error"]["details"]["available"]
    url = await create(http, auth, "https://example.test/evil.git")
    assert url.status_code == 400 and url.json()["error"]["code"] in ("unknown_template", "invalid_payload")
    gone = await create(http, auth, "gone@v1")
    assert gone.status_code == 400
    assert gone.json()["error"]["code"] == "template_source_unavailable"
    assert str(tmp_path) not in gone.text  # the operator's path stays theirs
    linked = await create(http, auth, "linked@v1")
    assert linked.status_code == 400 and linked.json()["error"]["code"] == "template_unusable"
    assert "points outside the template" in linked.json()["error"]["message"]
    directory = await create(http, auth, "widget-lib@v1")
    assert directory.json()["error"]["code"] == "unknown_template_ref"
    for ref in ["--upload-pack=touch /tmp/pwned", "-x", "../../etc", "a" * 120, "vé", "v1^", "$(id)", "v1 v2"]:
        hostile = await create(http, auth, f"starter@{ref}")
        assert hostile.status_code == 400, ref
        assert hostile.json()["error"]["code"] == "invalid_payload", ref
        assert hostile.json()["error"]["details"]["field"] == "template", ref
    assert not Path("/tmp/pwned").exists()


async def test_versions_of_a_source_and_of_a_directory(http, make_key, starter):
    auth = {"X-API-Key": make_key().key}
    listed = await http.get("/templates/starter/versions", headers=auth)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["source"] is True and body["default_ref"] == "main"
    assert {(v["ref"], v["kind"], v["commit"]) for v in body["versions"]} == {
        ("v1", "tag", git(starter, "rev-parse", "v1")),
        ("v2", "tag", git(starter, "rev-parse", "v2^{commit}")),
        ("main", "branch", git(starter, "rev-parse", "main")),
    }
    directory = (await http.get("/templates/widget-lib/versions", headers=auth)).json()
    assert directory["source"] is False and [v["kind"] for v in directory["versions"]] == ["directory"]
    assert len(directory["versions"][0]["digest"]) == 64
    assert (await http.get("/templates/nope/versions", headers=auth)).status_code == 404
    gone = await http.get("/templates/gone/versions", headers=auth)
    assert gone.status_code == 400 and gone.json()["error"]["code"] == "template_source_unavailable"
    described = (await http.get("/templates/starter", headers=auth)).json()
    assert described["source"] is True and described["usable"] is True and described["trusted"] is False
    assert described["commit"] == git(starter, "rev-parse", "main")


async def test_the_history_comes_as_a_bundle_and_inside_the_zip(http, worker, make_key, tmp_path):
    auth = {"X-API-Key": make_key().key}
    created = await create(http, auth, "starter@v1")
    project_id = created.json()["project"]["id"]
    plain = await ready_zip(http, auth, project_id)
    assert not any("/.git/" in name for name in plain.namelist())

    response = await http.get(f"/projects/{project_id}/artifact", headers=auth, params={"with_git": "1"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert response.headers["x-content-sha256"] == hashlib.sha256(response.content).hexdigest()
    again = await http.get(f"/projects/{project_id}/artifact", headers=auth, params={"with_git": "1"})
    assert again.content == response.content  # kept, and deterministic anyway
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        assert "gadget_kit/.git/HEAD" in zf.namelist()
        for info in zf.infolist():
            target = tmp_path / "unzipped" / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            target.chmod((info.external_attr >> 16) & 0o777)
    tree = tmp_path / "unzipped" / "gadget_kit"
    log = subprocess.run(["git", "log", "--format=%s"], cwd=tree, capture_output=True, text=True, check=True).stdout
    assert "Start from template starter" in log and "Merge branch 'feat/task-" in log
    status = subprocess.run(["git", "status", "--porcelain"], cwd=tree, capture_output=True, text=True, check=True)
    assert status.stdout == ""

    bundle = await http.get(f"/projects/{project_id}/bundle", headers=auth)
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/x-git-bundle"
    assert bundle.headers["etag"] == f'"{bundle.headers["x-content-sha256"]}"'
    (tmp_path / "p.bundle").write_bytes(bundle.content)
    subprocess.run(["git", "clone", "-q", str(tmp_path / "p.bundle"), str(tmp_path / "clone")], check=True)
    cloned = {p.relative_to(tmp_path / "clone").as_posix() for p in (tmp_path / "clone").rglob("*") if p.is_file()}
    in_tree = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()}
    assert {p for p in cloned if not p.startswith(".git/")} == {
        p for p in in_tree if not p.startswith((".git/", ".forgeflow/"))
    }
    other = make_key()  # another owner's key sees nothing
    assert (await http.get(f"/projects/{project_id}/bundle", headers={"X-API-Key": other.key})).status_code == 404
    shutil.rmtree(tmp_path / "clone")


async def test_a_copier_source_renders_through_the_run(http, worker, make_key):
    auth = {"X-API-Key": make_key().key}
    created = await create(http, auth, "copierish@v1", answers={"use_docker": True, "api_token": "t0ken"})
    assert created.status_code == 201, created.text
    zf = await ready_zip(http, auth, created.json()["project"]["id"])
    names = set(zf.namelist())
    assert {"gadget_kit/Dockerfile", "gadget_kit/gadget_kit/__init__.py", "gadget_kit/bin/run"} <= names
    assert "gadget_kit/.copier-answers.yml" not in names
    answers = json.loads(zf.read("gadget_kit/.forgeflow/answers.json"))
    assert answers["template"]["format"] == "copier" and "api_token" not in answers["answers"]
    assert zf.read("gadget_kit/settings.yml") == b"token: t0ken\n"
    bad = await create(http, auth, "copierish@v1", project_slug="Not Valid!", answers={"workers": 0})
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["error"]["details"]["errors"]} >= {"answers.workers"}


async def test_questions_answers_and_a_retry_render_the_commit_of_the_create(http, worker, make_key, starter):
    """The branch moves on while the project waits; its answers are checked against, and its
    retry renders, the commit it was created at."""
    auth = {"X-API-Key": make_key().key}
    first = git(starter, "rev-parse", "main")
    created = await create(http, auth, "starter@main", require_approval=True, ask_questions=True)
    project_id = created.json()["project"]["id"]
    await wait_for_status(http, project_id, auth, "awaiting_answers")
    readme = starter / "{{ cookiecutter.project_slug }}" / "README.md"
    readme.write_text("moved on\n")
    (starter / "cookiecutter.json").write_text(json.dumps({"project_name": "x", "project_slug": "x"}))
    commit(starter, "third")  # a version without the license question
    answered = await http.post(f"/projects/{project_id}/answers", json={"answers": {"license": "MIT"}}, headers=auth)
    assert answered.status_code == 200, answered.text
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    assert (await http.post(f"/projects/{project_id}/cancel", headers=auth)).status_code == 200
    await wait_for_status(http, project_id, auth, "cancelled")
    assert (await http.post(f"/projects/{project_id}/retry", headers=auth)).status_code == 202
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    await http.post(f"/projects/{project_id}/approve", json={}, headers=auth)
    zf = await ready_zip(http, auth, project_id)
    assert json.loads(zf.read("gadget_kit/.forgeflow/answers.json"))["template"]["commit"] == first
    assert b"moved on" not in zf.read("gadget_kit/README.md")


async def wait_for_status(http: httpx.AsyncClient, project_id: int, auth: dict[str, str], status: str) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while (await http.get(f"/projects/{project_id}", headers=auth)).json()["status"] != status:
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.05)
