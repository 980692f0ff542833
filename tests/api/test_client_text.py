"""Text a client sends (issue 13, finding 8): ``answers`` under the same limits as the
top-level fields, and no control character anywhere: create fields, ``answers``, template
variables, PATCH, notes, feedback, answers to questions. Always 400 invalid_payload naming
the field, never a 500, never stored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from store.models import Project
from tests.api.test_lifecycle import wait_for_status
from tests.support import error_body

# NUL, an ANSI escape (terminal injection through the CLI's tables), DEL, a C1 control
# (U+0085) and a lone surrogate, which no UTF-8 encoder takes.
BAD = ["nul\x00byte", "red \x1b[31m", "del\x7f", "next\x85line", "half \ud800 pair"]
# Every text field of a create, with its length limit.
FIELDS = {
    "project_name": 200,
    "project_slug": 200,
    "project_description": 5000,
    "repo_url": 500,
    "author_name": 200,
    "author_email": 254,
    "author_url": 500,
    "project_main_color": 50,
}


@pytest.fixture
def auth(make_key):
    return {"X-API-Key": make_key().key}


async def send(http, method: str, path: str, body: dict, auth: dict):
    # json.dumps escapes a lone surrogate as \\ud800, as a hostile client would send it.
    return await http.request(
        method, path, content=json.dumps(body), headers=auth | {"Content-Type": "application/json"}
    )


def refused(response, field: str) -> str:
    assert response.status_code == 400, response.text
    error = error_body(response)["error"]
    assert (error["code"], error["category"], error["retryable"]) == ("invalid_payload", "validation", False)
    assert error["details"]["field"] == field, error
    return error["message"]


def count(db) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(Project.id))) or 0


async def test_answers_are_held_to_the_field_limits(http, auth, db):
    before = count(db)
    # 900,000 characters through answers: before, a 201 (the field allows 5,000).
    huge = {"project_name": "Huge", "answers": {"project_description": "d" * 900_000}}
    message = refused(await send(http, "POST", "/projects", huge, auth), "answers.project_description")
    assert "5000" in message
    for name, limit in FIELDS.items():
        body = {"project_name": "Long", "answers": {name: "x" * (limit + 1)}}
        refused(await send(http, "POST", "/projects", body, auth), f"answers.{name}")
    flag = {"project_name": "Flag", "answers": {"use_stripe": "maybe"}}
    refused(await send(http, "POST", "/projects", flag, auth), "answers.use_stripe")
    assert count(db) == before
    # Within the limits answers still work, normalised as the top-level fields are.
    fine = {"project_name": "Fine", "answers": {"project_description": "  d  ", "author_email": "a@b.test"}}
    created = await send(http, "POST", "/projects", fine, auth)
    assert created.status_code == 201, created.text
    assert created.json()["project"]["input_payload"]["answers"] == {
        "project_description": "d",
        "author_email": "a@b.test",
    }


@pytest.mark.parametrize("bad", BAD)
async def test_no_control_character_in_any_create_field_or_answer(http, auth, db, bad):
    before = count(db)
    for name in FIELDS:
        top = {"project_name": "Ok", name: bad}
        refused(await send(http, "POST", "/projects", top, auth), name)
        # Before, a NUL in answers was taken (and written into the template's files).
        nested = {"project_name": "Ok", "answers": {name: bad}}
        refused(await send(http, "POST", "/projects", nested, auth), f"answers.{name}")
    for name in ("template", "webhook_url"):
        refused(await send(http, "POST", "/projects", {"project_name": "Ok", name: bad}, auth), name)
    # A variable of another template, at the top level, in answers, or as an answer's name.
    other = {"project_name": "Ok", "template": "widget-lib"}
    refused(await send(http, "POST", "/projects", other | {"python_version": bad}, auth), "python_version")
    refused(
        await send(http, "POST", "/projects", other | {"answers": {"python_version": bad}}, auth),
        "answers.python_version",
    )
    by_name = await send(http, "POST", "/projects", other | {"answers": {bad: "1"}}, auth)
    assert by_name.status_code == 400 and by_name.json()["error"]["details"]["field"].startswith("answers.")
    assert count(db) == before


async def test_other_template_variables_have_a_length_limit(http, auth):
    long = "3" * 5001
    other = {"project_name": "Ok", "template": "widget-lib"}
    refused(await send(http, "POST", "/projects", other | {"python_version": long}, auth), "python_version")
    answers = other | {"answers": {"python_version": long}}
    refused(await send(http, "POST", "/projects", answers, auth), "answers.python_version")


@pytest.mark.parametrize("bad", BAD)
async def test_no_control_character_in_patch_notes_feedback_or_answers(http, auth, db, bad):
    created = await http.post("/projects", json={"project_name": "Labelled"}, headers=auth)
    project_id = created.json()["project"]["id"]
    path = f"/projects/{project_id}"
    # Before: PATCH stored a NUL on SQLite and answered 500 on PostgreSQL.
    refused(await send(http, "PATCH", path, {"name": bad}, auth), "name")
    refused(await send(http, "PATCH", path, {"description": bad}, auth), "description")
    refused(await send(http, "POST", f"{path}/approve", {"notes": bad}, auth), "notes")
    refused(await send(http, "POST", f"{path}/reject", {"notes": bad}, auth), "notes")
    refused(await send(http, "POST", f"{path}/regenerate", {"feedback": bad}, auth), "feedback")
    # Answers to questions are checked before the project's state (a queued one here).
    refused(
        await send(http, "POST", f"{path}/answers", {"answers": {"project_description": bad}}, auth),
        "project_description",
    )
    refused(await send(http, "POST", f"{path}/answers", {"answers": {"anything": [bad]}}, auth), "anything")
    project = (await http.get(path, headers=auth)).json()
    assert project["name"] == "Labelled"
    events = (await http.get(f"{path}/events", headers=auth)).json()["events"]
    assert not [e for e in events if e["type"] == "project_updated"]


async def test_answers_to_questions_are_held_to_the_same_rules(http, worker, auth):
    gated = {"project_name": "Asked Kit", "template": "widget-lib", "ask_questions": True}
    project_id = (await http.post("/projects", json=gated, headers=auth)).json()["project"]["id"]
    await wait_for_status(http, project_id, auth, "awaiting_answers")
    path = f"/projects/{project_id}/answers"
    answers = {"license": "MIT", "use_cli": "n", "python_version": "3.12"}
    refused(
        await send(http, "POST", path, {"answers": answers | {"python_version": "3.12\x00"}}, auth), "python_version"
    )
    refused(
        await send(http, "POST", path, {"answers": answers | {"python_version": "3" * 5001}}, auth), "python_version"
    )
    assert (await http.get(f"/projects/{project_id}", headers=auth)).json()["status"] == "awaiting_answers"
    accepted = await send(http, "POST", path, {"answers": answers}, auth)
    assert accepted.status_code == 200, accepted.text


async def test_control_characters_in_a_query_or_task_id_are_422(http, auth):
    created = await http.post("/projects", json={"project_name": "Queried"}, headers=auth)
    project_id = created.json()["project"]["id"]
    # Before, on PostgreSQL: 500 (a NUL cannot be sent to it as a text parameter).
    for target, field in [
        (f"/projects/{project_id}/events?type=a%00b", "type"),
        (f"/projects/{project_id}/events?task_id=a%1Bb", "task_id"),
        (f"/projects/{project_id}/runs/1/tasks/a%00b", "task_id"),
        ("/projects?status=%7F", "status"),
    ]:
        response = await http.get(target, headers=auth)
        assert response.status_code == 422, (target, response.text)
        error = error_body(response)["error"]
        assert (error["code"], error["details"]["field"]) == ("invalid_parameters", field)
    # What is only unusual stays fine: tabs and new lines in free text, any other Unicode.
    ok = await http.patch(f"/projects/{project_id}", json={"description": "two\tcolumns\r\nand lines"}, headers=auth)
    assert ok.status_code == 200 and ok.json()["name"] == "Queried"
