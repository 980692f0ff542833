"""Answers over real HTTP (Temporal, a worker, the API): a yes/no question takes JSON true
and false, a question left unanswered takes its default unless it is required, and every
problem of one request is answered at once (``details.errors``). An author_email packaging
metadata refuses is refused at create, naming the field; an owner's address the template
refuses is not filled in, and the built-in template's project verifies."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from temporalio.exceptions import ApplicationError

from api.steering import _refusal
from tests.api.test_lifecycle import wait_for_status
from tests.api.test_quickstart import poll_until_done

FIXTURES = Path(__file__).parents[1] / "fixtures" / "templates"
ASKED = {"project_name": "Gadget Kit", "template": "widget-lib", "ask_questions": True}


@pytest.fixture
def settings(settings, tmp_path):
    # widget-lib, and widget-req: the same with python_version marked required.
    root = tmp_path / "templates"
    shutil.copytree(FIXTURES / "widget-lib", root / "widget-lib")
    shutil.copytree(FIXTURES / "widget-lib", root / "widget-req")
    manifest = {"questions": {"python_version": {"required": True}}}
    (root / "widget-req" / "forgeflow.yaml").write_text(yaml.safe_dump(manifest))
    return settings.model_copy(update={"template_path": str(root)})


@pytest.fixture
def auth(make_key):
    return {"X-API-Key": make_key().key}


async def created(http, auth, body: dict, status: str) -> int:
    response = await http.post("/projects", json=body, headers=auth)
    assert response.status_code == 201, response.text
    project_id = response.json()["project"]["id"]
    await wait_for_status(http, project_id, auth, status)
    return project_id


async def test_a_boolean_takes_false_and_unanswered_questions_take_their_defaults(http, worker, auth):
    project_id = await created(http, auth, {**ASKED, "require_approval": True}, "awaiting_answers")
    questions = (await http.get(f"/projects/{project_id}/questions", headers=auth)).json()["questions"]
    assert {q["id"]: (q["type"], q["required"]) for q in questions} == {
        "license": ("single_choice", False),
        "use_cli": ("boolean", False),
        "python_version": ("text", False),
    }
    # One answer, a JSON boolean; license and python_version are left to their defaults.
    answered = await http.post(f"/projects/{project_id}/answers", json={"answers": {"use_cli": False}}, headers=auth)
    assert answered.status_code == 200, answered.text
    await wait_for_status(http, project_id, auth, "awaiting_approval")
    spec = (await http.get(f"/projects/{project_id}/spec", headers=auth)).json()["documents"]["SPEC.md"]
    assert "- `use_cli`: n\n" in spec  # as the template compares it
    assert "- `license`: MIT\n" in spec and "- `python_version`: 3.11\n" in spec
    assert (await http.post(f"/projects/{project_id}/cancel", headers=auth)).is_success  # frees the worker


async def test_every_problem_of_an_answers_request_comes_at_once(http, worker, auth):
    project_id = await created(http, auth, ASKED, "awaiting_answers")
    sent = {"license": "GPL", "use_cli": "maybe", "nope": 1}
    refused = await http.post(f"/projects/{project_id}/answers", json={"answers": sent}, headers=auth)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_payload" and error["details"]["field"] == "license"
    assert error["details"]["errors"] == [
        {"field": "license", "message": "must be one of MIT, Apache-2.0, BSD-3-Clause"},
        {"field": "use_cli", "message": 'must be true, false, "y" or "n"'},
        {"field": "nope", "message": "is not a question of this project"},
    ]
    assert error["message"] == (
        "Invalid value for license: must be one of MIT, Apache-2.0, BSD-3-Clause (and 2 more: details.errors)."
    )
    # Nothing was taken: the project still waits, and a good answer goes through.
    ok = await http.post(f"/projects/{project_id}/answers", json={"answers": {"use_cli": True}}, headers=auth)
    assert ok.status_code == 200, ok.text
    assert (await poll_until_done(http, project_id, auth))["status"] == "ready"


async def test_a_required_question_must_be_answered(http, worker, auth):
    # Without questions asked later, at create.
    body = {"project_name": "Req", "template": "widget-req", "answers": {"use_cli": "maybe"}}
    refused = await http.post("/projects", json=body, headers=auth)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["details"]["errors"] == [
        {"field": "answers.use_cli", "message": 'must be true, false, "y" or "n"'},
        {"field": "python_version", "message": "is required"},
    ]
    # Asked: shown as required, and refused when left out.
    project_id = await created(http, auth, {**ASKED, "template": "widget-req"}, "awaiting_answers")
    questions = (await http.get(f"/projects/{project_id}/questions", headers=auth)).json()["questions"]
    assert [q["id"] for q in questions if q["required"]] == ["python_version"]
    missing = await http.post(f"/projects/{project_id}/answers", json={"answers": {"use_cli": True}}, headers=auth)
    assert missing.status_code == 400, missing.text
    assert missing.json()["error"]["details"]["errors"] == [{"field": "python_version", "message": "is required"}]
    answered = {"answers": {"python_version": "3.12"}}
    assert (await http.post(f"/projects/{project_id}/answers", json=answered, headers=auth)).status_code == 200
    assert (await poll_until_done(http, project_id, auth))["status"] == "ready"


async def test_an_author_email_packaging_refuses_is_taken_and_left_out_of_the_metadata(http, worker, auth):
    # The Djass contract's own example sends "[email protected]": any text is an answer,
    # and the built-in template lists it in pyproject.toml only where `pip install .` takes it.
    response = await http.post(
        "/projects", json={"project_name": "Mail", "author_email": "dev@localhost"}, headers=auth
    )
    assert response.status_code == 201, response.text
    project = response.json()["project"]
    assert project["input_payload"]["author_email"] == "dev@localhost"
    assert (await poll_until_done(http, project["id"], auth))["status"] == "ready"
    run = (await http.get(f"/projects/{project['id']}/runs/1", headers=auth)).json()
    assert run["verification"]["ok"] is True and "passed: pyproject (in process)" in run["verification"]["checks"]
    pyproject = await http.get(f"/projects/{project['id']}/files/pyproject.toml", headers=auth)
    assert "dev@localhost" not in pyproject.text and 'name = "Forgeflow"' in pyproject.text


async def test_an_owner_address_packaging_refuses_still_gives_a_project_that_verifies(http, worker, make_key):
    auth = {"X-API-Key": make_key(email="dev@localhost").key}  # what `forgeflow dev` used to make
    response = await http.post("/projects", json={"project_name": "Dev Made", "use_ci": True}, headers=auth)
    assert response.status_code == 201, response.text
    project = response.json()["project"]
    # Filled from the owner as the contract says; the template leaves it out of the metadata.
    assert project["input_payload"]["author_email"] == "dev@localhost" and project["input_payload"]["use_ci"] == "y"
    assert (await poll_until_done(http, project["id"], auth))["status"] == "ready"
    run = (await http.get(f"/projects/{project['id']}/runs/1", headers=auth)).json()
    assert run["verification"]["ok"] is True
    assert "passed: pyproject (in process)" in run["verification"]["checks"]
    assert "passed: django-urls (in process)" in run["verification"]["checks"]


def test_the_workflows_refusal_keeps_every_problem():
    # What the run's validator answers when the API's own check could not see a problem
    # (the questions changed in between): every problem still reaches the client.
    errors = [
        {"field": "license", "message": "is required"},
        {"field": "x", "message": "is not a question of this project"},
    ]
    cause = ApplicationError("license: is required", {"field": "license", "errors": errors}, type="InvalidInput")
    refusal = _refusal(cause, SimpleNamespace(status="awaiting_answers"))
    assert refusal.status_code == 400
    assert refusal.body.details == {"field": "license", "errors": errors}
