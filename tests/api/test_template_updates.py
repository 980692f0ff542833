"""Template updates, end to end over real HTTP, a real Temporal server and real git: a
project made from a template at v1 is updated to v2; a user's clone of its bundle, edited,
takes the update with ``git pull``, merged where git can and in conflict where both
changed the same lines; every file the user did not touch is the template tool's own v2
render, byte for byte (cookiecutter's and Copier's)."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from cookiecutter.main import cookiecutter

from engine.tree import FileData, read_tree
from forgeflow.settings import Settings
from tests.template_repos import commit, copy_tree, git, new_repo

FIXTURES = Path(__file__).parent.parent / "fixtures"
COPIER = str(Path(sys.executable).parent / "copier")
TERMINAL = ("ready", "failed", "cancelled")


def _v2_of_widget_lib(repo: Path) -> None:
    """v2 changes the README's title, a pyproject line and adds a file that asks a new
    question (with a default); it deletes a file; it leaves the package alone."""
    slug = repo / "{{ cookiecutter.project_slug }}"
    readme = (slug / "README.md").read_text()
    (slug / "README.md").write_text(
        readme.replace("# {{ cookiecutter.project_name }}", "# {{ cookiecutter.project_name }}, version two")
    )
    pyproject = (slug / "pyproject.toml").read_text()
    (slug / "pyproject.toml").write_text(pyproject.replace('version = "0.1.0"', 'version = "0.2.0"'))
    (slug / "CHANGELOG.md").write_text("# {{ cookiecutter.tagline }}\n\n- v2\n")
    (slug / "scripts" / "win.bat").unlink()
    context = (repo / "cookiecutter.json").read_text()
    (repo / "cookiecutter.json").write_text(
        context.replace('"use_cli": "y",', '"use_cli": "y",\n  "tagline": "Changes",')
    )


@pytest.fixture
def starter(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path / "repos" / "starter")
    copy_tree(FIXTURES / "templates" / "widget-lib", repo)
    commit(repo, "first", tag="v1")
    _v2_of_widget_lib(repo)
    commit(repo, "second", tag="v2")
    broken = repo / "{{ cookiecutter.project_slug }}" / "BROKEN.md"
    broken.write_text("{{ cookiecutter.project_name | no_such_filter }}\n")
    commit(repo, "third", tag="v3-broken")
    return repo


@pytest.fixture
def copierish(tmp_path: Path) -> Path:
    repo = new_repo(tmp_path / "repos" / "copierish")
    copy_tree(FIXTURES / "copier" / "parity", repo)
    commit(repo, "v1", tag="v1")
    readme = repo / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\n{{ tagline }}\n")
    with (repo / "copier.yml").open("a") as fh:
        fh.write("\ntagline:\n  type: str\n  default: Made with care\n")
    commit(repo, "v2", tag="v2")
    return repo


@pytest.fixture
def settings(settings: Settings, starter: Path, copierish: Path) -> Settings:
    settings.template_sources = {"starter": str(starter), "copierish": str(copierish)}
    return settings


def run_git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    identity = ["-c", "user.name=User", "-c", "user.email=user@example.test", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=check)


async def run_ends(http: httpx.AsyncClient, auth: dict[str, str], project_id: int, run: int) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        response = await http.get(f"/projects/{project_id}/runs/{run}", headers=auth)
        if response.status_code == 200 and response.json()["status"] in TERMINAL:
            return response.json()
        assert asyncio.get_running_loop().time() < deadline, response.text
        await asyncio.sleep(0.1)


async def created_ready(http: httpx.AsyncClient, auth: dict[str, str], template: str, **fields: Any) -> int:
    body = {"project_name": "Gadget Kit", "template": template, **fields}
    created = await http.post("/projects", json=body, headers=auth)
    assert created.status_code == 201, created.text
    project_id = created.json()["project"]["id"]
    assert (await run_ends(http, auth, project_id, 1))["status"] == "ready"
    return int(project_id)


async def bundle_file(http: httpx.AsyncClient, auth: dict[str, str], project_id: int, path: Path) -> Path:
    response = await http.get(f"/projects/{project_id}/bundle", headers=auth)
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return path


def files_of(root: Path) -> dict[str, FileData]:
    return {rel: data for rel, data in read_tree(root).items() if not rel.startswith(".git/")}


def cookiecutter_render(repo: Path, ref: str, out: Path) -> dict[str, FileData]:
    checkout = out / "template"
    run_git(repo, "worktree", "add", "-q", "--detach", str(checkout), ref)
    made = cookiecutter(
        str(checkout), no_input=True, extra_context={"project_name": "Gadget Kit"}, output_dir=str(out / "render")
    )
    return read_tree(Path(made))


def copier_render(repo: Path, ref: str, dest: Path, data: dict[str, str]) -> dict[str, FileData]:
    argv = [COPIER, "copy", "--defaults", "--quiet", "--vcs-ref", ref]
    for name, value in data.items():
        argv += ["--data", f"{name}={value}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPIER_")}
    subprocess.run([*argv, str(repo), str(dest)], check=True, env=env, capture_output=True)
    files = read_tree(dest)
    files.pop(".copier-answers.yml")  # forgeflow records answers in .forgeflow/answers.json instead
    return files


def assert_same_files(ours: dict[str, FileData], theirs: dict[str, FileData], *, except_: set[str]) -> None:
    assert sorted(set(ours) - except_) == sorted(set(theirs) - except_)
    for rel in set(theirs) - except_:
        assert ours[rel].data == theirs[rel].data, rel
        assert ours[rel].executable == theirs[rel].executable, rel


async def test_an_update_merges_into_a_users_clone_like_any_git_pull(http, worker, make_key, starter, tmp_path):
    auth = {"X-API-Key": make_key().key}
    project_id = await created_ready(http, auth, "starter@v1")
    v1_zip = (await http.get(f"/projects/{project_id}/artifact", headers=auth)).content
    v1_bundle = await bundle_file(http, auth, project_id, tmp_path / "v1.bundle")

    # Two users' clones: one edits a file v2 leaves alone and the end of one it changes,
    # the other the very line v2 changes.
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    for clone in (mine, theirs):
        run_git(tmp_path, "clone", "-q", str(v1_bundle), str(clone))
    package = mine / "src" / "gadget_kit" / "__init__.py"
    package.write_text(package.read_text() + "\nMINE = True\n")
    with (mine / "README.md").open("a") as fh:
        fh.write("\n## Our notes\n\nKept across updates.\n")
    run_git(mine, "commit", "-qam", "our changes")
    readme = theirs / "README.md"
    readme.write_text(readme.read_text().replace("# Gadget Kit", "# Our Gadget Kit", 1))
    run_git(theirs, "commit", "-qam", "our title")

    updated = await http.post(f"/projects/{project_id}/update", json={"template_version": "v2"}, headers=auth)
    assert updated.status_code == 202, updated.text
    assert updated.json() | {"phase": None} == {
        "id": project_id,
        "status": "queued",
        "phase": None,
        "paused": False,
        "queued": False,
        "accepted": "update",
        "run": 2,
    }
    run = await run_ends(http, auth, project_id, 2)
    assert run["status"] == "ready" and run["trigger"] == "update", run
    v2_bundle = await bundle_file(http, auth, project_id, tmp_path / "v2.bundle")

    # The update is one commit on top of the project's last generated commit.
    v1_main = run_git(mine, "rev-parse", "origin/main").stdout.strip()
    fetched = run_git(mine, "fetch", "-q", str(v2_bundle), "main")
    assert fetched.returncode == 0
    assert run_git(mine, "log", "-1", "--format=%P%n%s", "FETCH_HEAD").stdout.splitlines() == [
        v1_main,
        f"Update template starter to v2 ({git(starter, 'rev-parse', 'v2')[:12]})",
    ]

    pulled = run_git(mine, "pull", "-q", "--no-rebase", "--no-edit", str(v2_bundle), "main", check=False)
    assert pulled.returncode == 0, pulled.stderr
    assert "MINE = True" in package.read_text()
    merged_readme = (mine / "README.md").read_text()
    assert merged_readme.startswith("# Gadget Kit, version two\n") and "Kept across updates." in merged_readme
    assert not (mine / "scripts" / "win.bat").exists()
    render = cookiecutter_render(starter, "v2", tmp_path / "cookiecutter")
    assert_same_files(files_of(mine), render, except_={"README.md", "src/gadget_kit/__init__.py"})
    assert render["CHANGELOG.md"].data == b"# Changes\n\n- v2\n"  # the new question, at its default

    conflicted = run_git(theirs, "pull", "--no-rebase", "--no-edit", str(v2_bundle), "main", check=False)
    assert conflicted.returncode != 0
    assert "CONFLICT (content): Merge conflict in README.md" in conflicted.stdout
    text = readme.read_text()
    assert "<<<<<<< HEAD\n# Our Gadget Kit\n=======\n# Gadget Kit, version two\n>>>>>>>" in text

    # The update's diff applies to v1 and gives v2.
    diff = await http.get(f"/projects/{project_id}/runs/2/diff", headers=auth)
    assert diff.status_code == 200 and diff.headers["content-type"].startswith("text/x-diff")
    assert diff.headers["x-base-commit"] == v1_main
    assert "--- a/pyproject.toml" in diff.text and '-version = "0.1.0"\n+version = "0.2.0"' in diff.text
    fresh = tmp_path / "fresh"
    run_git(tmp_path, "clone", "-q", str(v1_bundle), str(fresh))
    (tmp_path / "update.diff").write_text(diff.text)
    run_git(fresh, "apply", "--index", str(tmp_path / "update.diff"))
    run_git(tmp_path, "clone", "-q", str(v2_bundle), str(tmp_path / "v2-clone"))
    assert files_of(fresh) == files_of(tmp_path / "v2-clone")
    one = await http.get(f"/projects/{project_id}/runs/2/files/CHANGELOG.md/diff", headers=auth)
    assert one.status_code == 200 and one.text.startswith("diff --git a/CHANGELOG.md b/CHANGELOG.md\nnew file mode")
    first = await http.get(f"/projects/{project_id}/runs/1/diff", headers=auth)
    assert first.status_code == 200 and "x-base-commit" not in first.headers and "+++ b/README.md" in first.text

    # The ZIP says where it now comes from.
    with zipfile.ZipFile(io.BytesIO((await http.get(f"/projects/{project_id}/artifact", headers=auth)).content)) as zf:
        assert b'"ref": "v2"' in zf.read("gadget_kit/.forgeflow/answers.json")
    assert (await http.get(f"/projects/{project_id}/artifact", headers=auth)).content != v1_zip


async def test_a_failed_update_keeps_the_last_ready_project_and_can_be_retried(http, worker, make_key):
    auth = {"X-API-Key": make_key().key}
    project_id = await created_ready(http, auth, "starter@v1")
    v1_zip = (await http.get(f"/projects/{project_id}/artifact", headers=auth)).content
    broken = await http.post(f"/projects/{project_id}/update", json={"template_version": "v3-broken"}, headers=auth)
    assert broken.status_code == 202, broken.text
    run = await run_ends(http, auth, project_id, 2)
    assert run["status"] == "failed" and "no_such_filter" in run["error_message"], run
    project = (await http.get(f"/projects/{project_id}", headers=auth)).json()
    assert project["status"] == "failed" and project["artifact_ready"] is True
    assert (await http.get(f"/projects/{project_id}/artifact", headers=auth)).content == v1_zip
    assert (await http.get(f"/projects/{project_id}/runs/2/diff", headers=auth)).status_code == 409
    # A retry is the same update again (and fails the same way), the v1 project kept.
    retried = await http.post(f"/projects/{project_id}/retry", headers=auth)
    assert retried.status_code == 202 and retried.json()["run"] == 3, retried.text
    run = await run_ends(http, auth, project_id, 3)
    assert run["status"] == "failed" and run["trigger"] == "retry" and "no_such_filter" in run["error_message"]
    assert (await http.get(f"/projects/{project_id}/artifact", headers=auth)).content == v1_zip
    # Another version from there: on top of the same last ready history.
    fixed = await http.post(f"/projects/{project_id}/update", json={"template_version": "v2"}, headers=auth)
    assert fixed.status_code == 202, fixed.text
    ready = await run_ends(http, auth, project_id, 4)
    assert (
        ready["status"] == "ready"
        and ready["base_commit"]
        == (await http.get(f"/projects/{project_id}/runs/1", headers=auth)).json()["head_commit"]
    )
    diff = (await http.get(f"/projects/{project_id}/runs/4/diff", headers=auth)).text
    assert "+# Gadget Kit, version two" in diff and "BROKEN" not in diff


async def test_what_cannot_be_updated_is_refused_and_changes_nothing(http, worker, make_key):
    auth = {"X-API-Key": make_key().key}
    project_id = await created_ready(http, auth, "starter@v1")

    async def update(body: Any, key: dict[str, str] = auth, project: int = project_id) -> httpx.Response:
        return await http.post(f"/projects/{project}/update", json=body, headers=key)

    unknown = await update({"template_version": "v9"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_template_ref"
    assert unknown.json()["error"]["details"]["field"] == "template_version"
    for hostile in ["--upload-pack=touch /tmp/pwned-update", "../v1", "v1^", "a" * 101, "", "$(id)"]:
        refused = await update({"template_version": hostile})
        assert refused.status_code in (400, 422), hostile
        assert refused.json()["error"]["code"] in ("invalid_payload", "invalid_parameters"), hostile
    assert not Path("/tmp/pwned-update").exists()
    same = await update({"template_version": "v1"})
    assert same.status_code == 400 and "already at v1" in same.json()["error"]["message"]
    wrong_answer = await update({"template_version": "v2", "answers": {"license": "WTFPL"}})
    assert wrong_answer.status_code == 400
    assert wrong_answer.json()["error"]["details"]["field"] == "answers.license"
    not_a_question = await update({"template_version": "v2", "answers": {"nope": "x"}})
    assert not_a_question.status_code == 400
    extra = await update({"template_version": "v2", "force": True})
    assert extra.status_code in (400, 422)
    other = {"X-API-Key": make_key().key}
    assert (await update({"template_version": "v2"}, key=other)).status_code == 404
    reader = {"X-API-Key": make_key(scopes=["projects:read"]).key}
    assert (await update({"template_version": "v2"}, key=reader)).status_code in (403, 404)

    directory = await http.post("/projects", json={"project_name": "Plain", "template": "widget-lib"}, headers=auth)
    plain = directory.json()["project"]["id"]
    assert (await run_ends(http, auth, plain, 1))["status"] == "ready"
    unversioned = await update({"template_version": "v2"}, project=plain)
    assert unversioned.status_code == 400 and unversioned.json()["error"]["code"] == "update_unavailable"

    runs = (await http.get(f"/projects/{project_id}/runs", headers=auth)).json()["runs"]
    assert [r["run_number"] for r in runs] == [1]  # nothing refused started a run
    gated = await http.post(
        "/projects", json={"project_name": "Gated", "template": "starter@v1", "require_approval": True}, headers=auth
    )
    gated_id = gated.json()["project"]["id"]
    deadline = asyncio.get_running_loop().time() + 30
    while (await http.get(f"/projects/{gated_id}", headers=auth)).json()["status"] != "awaiting_approval":
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    busy = await update({"template_version": "v2"}, project=gated_id)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "invalid_state"


async def test_a_copier_project_updates_to_copiers_own_v2_render(http, worker, make_key, copierish, tmp_path):
    auth = {"X-API-Key": make_key().key}
    answers = {"use_docker": True, "api_token": "t0ken"}
    project_id = await created_ready(http, auth, "copierish@v1", answers=answers)
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(await bundle_file(http, auth, project_id, tmp_path / "v1.bundle")), str(clone))
    (clone / "gadget_kit" / "static.txt").write_text("edited by us\n")
    run_git(clone, "commit", "-qam", "ours")

    updated = await http.post(f"/projects/{project_id}/update", json={"template_version": "v2"}, headers=auth)
    assert updated.status_code == 202, updated.text
    assert (await run_ends(http, auth, project_id, 2))["status"] == "ready"
    pulled = run_git(
        clone,
        "pull",
        "-q",
        "--no-rebase",
        "--no-edit",
        str(await bundle_file(http, auth, project_id, tmp_path / "v2.bundle")),
        "main",
        check=False,
    )
    assert pulled.returncode == 0, pulled.stderr
    theirs = copier_render(
        copierish,
        "v2",
        tmp_path / "copier" / "gadget_kit",
        {"project_name": "Gadget Kit", "use_docker": "true", "api_token": "t0ken"},
    )
    ours = files_of(clone)
    assert_same_files(ours, theirs, except_={"gadget_kit/static.txt"})
    assert ours["gadget_kit/static.txt"].data == b"edited by us\n"
    assert theirs["README.md"].data.endswith(b"Made with care\n")
    shutil.rmtree(tmp_path / "copier")


async def test_the_cli_updates_and_pulls_into_a_clone(api, http, worker, make_key, tmp_path):
    key = make_key().key
    auth = {"X-API-Key": key}
    project_id = await created_ready(http, auth, "starter@v1")
    clone = tmp_path / "clone"
    run_git(tmp_path, "clone", "-q", str(await bundle_file(http, auth, project_id, tmp_path / "v1.bundle")), str(clone))
    package = clone / "src" / "gadget_kit" / "__init__.py"
    package.write_text(package.read_text() + "\nMINE = True\n")
    run_git(clone, "commit", "-qam", "ours")

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FORGEFLOW_", "DJASS_"))},
        "FORGEFLOW_API_URL": api.url,
        "FORGEFLOW_API_KEY": key,
    }
    argv = [sys.executable, "-m", "forgeflow", "update", str(project_id), "--to", "v2", "--repo", str(clone)]
    done = await asyncio.to_thread(subprocess.run, argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"project {project_id}: run 2 ready at v2" in done.stdout
    assert "MINE = True" in package.read_text() and (clone / "CHANGELOG.md").exists()
    run = (await http.get(f"/projects/{project_id}/runs/2", headers=auth)).json()
    assert run_git(clone, "rev-parse", "HEAD^2").stdout.strip() == run["head_commit"]  # a merge of the update

    again = await asyncio.to_thread(subprocess.run, argv, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "already at v2" in again.stderr and "Traceback" not in again.stderr
    (tmp_path / "nothing").mkdir()
    not_a_clone = [*argv[:-4], "--to", "v1", "--repo", str(tmp_path / "nothing")]
    missing = await asyncio.to_thread(subprocess.run, not_a_clone, env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "is not a git clone" in missing.stderr, missing.stderr
    runs = (await http.get(f"/projects/{project_id}/runs", headers=auth)).json()["runs"]
    assert [r["run_number"] for r in runs] == [1, 2]  # refused before anything started


async def test_an_update_answer_reaches_the_files_as_data(http, worker, make_key, tmp_path):
    auth = {"X-API-Key": make_key().key}
    project_id = await created_ready(http, auth, "starter@v1")
    hostile = "{{ 7*7 }} $(id) ../x \\ {% raw %}"
    updated = await http.post(
        f"/projects/{project_id}/update", json={"template_version": "v2", "answers": {"tagline": hostile}}, headers=auth
    )
    assert updated.status_code == 202, updated.text
    assert (await run_ends(http, auth, project_id, 2))["status"] == "ready"
    changelog = await http.get(f"/projects/{project_id}/files/CHANGELOG.md", headers=auth)
    assert changelog.text == f"# {hostile}\n\n- v2\n"
    nul = await http.post(
        f"/projects/{project_id}/update",
        json={"template_version": "v2", "answers": {"tagline": "a\x00b"}},
        headers=auth,
    )
    assert nul.status_code == 400 and nul.json()["error"]["details"]["field"].startswith("answers")


async def test_what_a_run_changed_is_only_served_for_runs_and_paths_that_exist(http, worker, make_key):
    auth = {"X-API-Key": make_key().key}
    project_id = await created_ready(http, auth, "starter@v1")
    for path in ("/runs/9/diff", "/runs/9/summary", "/runs/9/files/README.md/diff"):
        missing = await http.get(f"/projects/{project_id}{path}", headers=auth)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "run_not_found", path
    for bad in ("nope.txt", "../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "a\\b", ".git/config"):
        refused = await http.get(f"/projects/{project_id}/runs/1/files/{bad}/diff", headers=auth)
        # (a client that normalises "../" asks for another route: 404 not_found)
        assert refused.status_code == 404 and refused.json()["error"]["code"] in ("file_not_found", "not_found"), bad
    for path in ("/runs/0/diff", "/runs/-1/summary", "/runs/abc/diff"):
        assert (await http.get(f"/projects/{project_id}{path}", headers=auth)).status_code == 422, path
    other = {"X-API-Key": make_key().key}
    for path in ("/runs/1/diff", "/runs/1/summary", "/runs/1/files/README.md/diff"):
        assert (await http.get(f"/projects/{project_id}{path}", headers=other)).status_code == 404, path
    summary = (await http.get(f"/projects/{project_id}/runs/1/summary", headers=auth)).json()
    assert summary["base_commit"] is None and {f["status"] for f in summary["changed_files"]} == {"added"}
    assert summary["tasks"] and all(t["summary"] == "" and t["risks"] == [] for t in summary["tasks"])
