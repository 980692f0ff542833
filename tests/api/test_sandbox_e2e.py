"""A trusted template's hook through the real stack (HTTP, Temporal, the worker and its
settings): it runs in the sandbox, and what it could reach travels back in the ZIP."""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.api.test_quickstart import poll_until_done
from tests.engine.test_sandbox import WORKER_SECRET, listening_server, needs_bwrap, processes_with

pytestmark = needs_bwrap


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"trusted_templates": "sandbox-probe"})


async def test_a_hook_run_by_the_worker_reaches_nothing_of_the_worker(http, worker, make_key, settings, monkeypatch):
    monkeypatch.setenv("FORGEFLOW_LLM_API_KEY", WORKER_SECRET)  # the worker runs in this process
    auth = {"X-API-Key": make_key().key}
    secrets = [settings.data_dir.resolve() / "secret.key"]  # written by the worker as it started
    database = make_url(settings.resolved_database_url)
    if database.get_backend_name() == "sqlite":
        secrets.append(Path(str(database.database)).resolve())
    assert all(path.stat().st_size > 0 for path in secrets)
    marker = f"ff-sleeper-{uuid.uuid4().hex}"
    with listening_server() as port:
        answers = {"probe_paths": os.pathsep.join(map(str, secrets)), "probe_port": str(port), "probe_marker": marker}
        body = {"project_name": "Probe", "template": "sandbox-probe", "answers": answers}
        created = await http.post("/projects", json=body, headers=auth)
        assert created.status_code == 201, created.text
        project_id = created.json()["project"]["id"]
        status = await poll_until_done(http, project_id, auth)
    assert status["status"] == "ready", status
    artifact = await http.get(f"/projects/{project_id}/artifact", headers=auth)
    with zipfile.ZipFile(io.BytesIO(artifact.content)) as zf:
        report = json.loads(zf.read("probe/PROBE.json"))
        manifest = json.loads(zf.read("probe/.forgeflow/manifest.json"))
    assert manifest["hooks"] == ["ran: post_gen_project.py"]
    for path in secrets:
        read = report["reads"][str(path)]
        assert "FileNotFoundError" in read.get("error", ""), read
    assert [path for path, read in report["reads"].items() if read["ok"]] == []
    assert not report["connect"]["ok"]
    assert WORKER_SECRET not in json.dumps(report["env"]) and "FORGEFLOW_LLM_API_KEY" not in report["env"]
    assert report["python"] == {"ok": True, "value": "42"}
    assert processes_with(marker) == []
