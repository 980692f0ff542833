"""Choosing a template at create; the request is validated against its variables."""

from __future__ import annotations

import io
import zipfile

from tests.api.test_quickstart import poll_until_done


async def test_a_custom_template_generates_with_its_own_variables(http, worker, make_key):
    auth = {"X-API-Key": make_key().key}
    body = {"project_name": "Gadget Kit", "template": "widget-lib", "license": "Apache-2.0", "use_cli": "n"}
    created = await http.post("/projects", json=body, headers=auth)
    assert created.status_code == 201, created.text
    project = created.json()["project"]
    assert project["slug"] == "gadget_kit"
    assert project["input_payload"] == {
        "project_name": "Gadget Kit",
        "project_slug": "gadget_kit",
        "license": "Apache-2.0",
        "use_cli": "n",
        "template": "widget-lib",
    }
    status = await poll_until_done(http, project["id"], auth)
    assert status["status"] == "ready", status
    artifact = await http.get(f"/projects/{project['id']}/artifact", headers=auth)
    names = zipfile.ZipFile(io.BytesIO(artifact.content)).namelist()
    assert "gadget_kit/src/gadget_kit/__init__.py" in names
    assert not any(n.endswith("cli.py") for n in names)


async def test_unknown_template_is_400_listing_the_available_ones(http, make_key):
    response = await http.post(
        "/projects", json={"project_name": "X", "template": "nope"}, headers={"X-API-Key": make_key().key}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unknown_template"
    assert error["details"]["field"] == "template"
    assert {"djass-saas", "widget-lib"} <= set(error["details"]["available"])


async def test_values_are_checked_against_the_template(http, make_key):
    auth = {"X-API-Key": make_key().key}
    cases = [
        ({"project_name": "X", "template": "widget-lib", "license": "GPL"}, "license"),
        ({"project_name": "X", "template": "widget-lib", "use_stripe": "y"}, "use_stripe"),
        ({"project_name": "X", "project_main_color": "pink"}, "project_main_color"),
        ({"project_name": "X", "license": "MIT"}, "license"),
    ]
    for body, field in cases:
        response = await http.post("/projects", json=body, headers=auth)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "invalid_payload"
        assert response.json()["error"]["details"]["field"] == field
