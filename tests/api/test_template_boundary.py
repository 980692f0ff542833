"""The template boundary through the real stack: a client's text is data, an untrusted
template cannot run code, read outside itself or name files that escape a ZIP."""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from forgeflow.settings import Settings
from tests.api.test_quickstart import poll_until_done
from tests.conftest import FIXTURES

SECRET = Fernet.generate_key()
TEXT_FIELDS = ("project_name", "project_description", "repo_url", "author_name", "author_url")


def escape(marker: Path) -> str:
    """Server-side template injection: rendered as Jinja, it creates ``marker`` on the worker."""
    return "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}"


def hostile_templates(root: Path, secret: Path, marker: Path) -> None:
    def template(name: str, files: dict[str, str], variables: dict | None = None) -> Path:
        base = root / name
        project = base / "{{ cookiecutter.project_slug }}"
        project.mkdir(parents=True)
        (base / "cookiecutter.json").write_text(
            json.dumps({"project_name": "x", "project_slug": "x", **(variables or {})})
        )
        for rel, body in files.items():
            (project / rel).parent.mkdir(parents=True, exist_ok=True)
            (project / rel).write_text(body)
        return project

    template("ssti-body", {"README.md": "# {{ cookiecutter.project_name }}\n" + escape(marker) + "\n"})
    os.symlink(secret, template("leaky", {"README.md": "hi\n"}) / "leak.txt")
    os.symlink(root / "gone", template("dangling", {"README.md": "hi\n"}) / "leak.txt")
    template("backslash", {"{{ cookiecutter.target }}/f.txt": "x\n"}, {"target": "..\\..\\..\\EVIL"})
    template("extension", {"README.md": "hi\n"}, {"_extensions": ["local_ext.Anything"]})


@pytest.fixture
def settings(tmp_path: Path, database_url: str, temporal_address: str, namespace: str, db) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "secret.key").write_bytes(SECRET)
    hostile_templates(tmp_path / "hostile", data_dir / "secret.key", tmp_path / "ssti-ran")
    return Settings(
        namespace=namespace,
        data_dir=data_dir,
        database_url=database_url,
        temporal_address=temporal_address,
        task_queue=f"tq-{uuid.uuid4().hex[:12]}",
        template_path=os.pathsep.join([str(tmp_path / "hostile"), str(FIXTURES / "templates")]),
        max_parallel_tasks=4,
    )


@pytest.fixture
def auth(make_key):
    return {"X-API-Key": make_key().key}


async def generate(http, auth, body: dict) -> tuple[dict, dict[str, bytes]]:
    created = await http.post("/projects", json=body, headers=auth)
    assert created.status_code == 201, created.text
    project_id = created.json()["project"]["id"]
    status = await poll_until_done(http, project_id, auth)
    files: dict[str, bytes] = {}
    if status["status"] == "ready":
        artifact = await http.get(f"/projects/{project_id}/artifact", headers=auth)
        with zipfile.ZipFile(io.BytesIO(artifact.content)) as archive:
            files = {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}
    return status, files


async def test_every_create_field_reaches_the_files_literally(http, worker, auth, tmp_path):
    markers = {field: tmp_path / f"ran-{field}" for field in TEXT_FIELDS}
    body = {field: f"{field} {escape(marker)}" for field, marker in markers.items()}
    body["project_name"] = "Calc {{ 7*7 }} " + escape(markers["project_name"])
    body["project_slug"] = "calc"
    status, files = await generate(http, auth, body)
    assert status["status"] == "ready", status
    assert not [field for field, marker in markers.items() if marker.exists()]
    readme = files["README.md"].decode()
    assert readme.startswith("# Calc {{ 7*7 }} {{ cycler."), readme[:300]
    assert "Calc 49" not in readme
    everything = b"\n".join(files.values()).decode("utf-8", "replace")
    assert f"author_name {escape(markers['author_name'])}" in everything


async def test_answers_reach_the_files_literally(http, worker, auth, tmp_path):
    marker = tmp_path / "ran-answer"
    body = {"project_name": "Widget", "template": "widget-lib", "answers": {"python_version": escape(marker)}}
    status, files = await generate(http, auth, body)
    assert status["status"] == "ready", status
    assert not marker.exists()
    assert any(escape(marker).encode() in data for data in files.values())


async def test_an_untrusted_templates_jinja_escape_fails_the_project_and_runs_nothing(http, worker, auth, tmp_path):
    status, files = await generate(http, auth, {"project_name": "Probe", "template": "ssti-body"})
    assert status["status"] == "failed" and not files
    assert "template error" in status["error_message"] and "unsafe" in status["error_message"]
    assert not (tmp_path / "ssti-ran").exists()


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("leaky", "symlink {{ cookiecutter.project_slug }}/leak.txt points outside the template"),
        ("dangling", "symlink {{ cookiecutter.project_slug }}/leak.txt points nowhere"),
        ("extension", "the Jinja extensions local_ext.Anything run Python code"),
    ],
)
async def test_a_template_that_reaches_outside_itself_is_refused_at_create(http, auth, template, reason):
    response = await http.post("/projects", json={"project_name": "Leak", "template": template}, headers=auth)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "template_unusable" and error["details"]["template"] == template
    assert reason in error["message"]
    assert SECRET.decode() not in response.text
    listed = await http.get("/projects", headers=auth)
    assert listed.status_code == 200 and listed.json()["total"] == 0


async def test_a_backslash_name_fails_the_project_naming_the_path(http, worker, auth):
    status, files = await generate(http, auth, {"project_name": "Slash", "template": "backslash"})
    assert status["status"] == "failed" and not files
    assert "..\\\\..\\\\..\\\\EVIL/f.txt" in status["error_message"] and "backslash" in status["error_message"]
