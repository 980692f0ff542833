"""`GET /templates`: what a newcomer can make, and what to send for it."""

from __future__ import annotations

import json
import os

import httpx
import yaml

from engine.templates import BUILTIN_TEMPLATES_DIR
from tests.support import LiveServer, error_body


def by_name(template: dict) -> dict[str, dict]:
    return {v["name"]: v for v in template["variables"]}


async def test_templates_list_their_variables_types_defaults_and_trust(http, make_key):
    auth = {"X-API-Key": make_key(scopes=["projects:read"]).key}
    listed = await http.get("/templates", headers=auth)
    assert listed.status_code == 200, listed.text
    templates = {t["id"]: t for t in listed.json()["templates"]}
    # The built-in one and the test fixtures (FORGEFLOW_TEMPLATE_PATH), sorted by id.
    assert "djass-saas" in templates and "widget-lib" in templates
    assert list(templates) == sorted(templates)

    djass = templates["djass-saas"]
    assert (djass["builtin"], djass["trusted"], djass["default"], djass["usable"]) == (True, True, True, True)
    manifest = yaml.safe_load((BUILTIN_TEMPLATES_DIR / "djass-saas" / "forgeflow.yaml").read_text())
    assert (djass["title"], djass["version"]) == (manifest["title"], manifest["version"])
    names = json.loads((BUILTIN_TEMPLATES_DIR / "djass-saas" / "cookiecutter.json").read_text())
    assert list(by_name(djass)) == [n for n in names if not n.startswith("_")]
    variables = by_name(djass)
    # Defaults are rendered: the slug's default is the name's, not its Jinja expression.
    assert variables["project_slug"]["default"] == "my_saas"
    assert variables["project_slug"]["pattern"] == "^[a-z0-9_]+$"
    assert variables["use_stripe"]["type"] == "boolean" and variables["use_stripe"]["default"] == "n"
    assert variables["project_main_color"]["type"] == "single_choice"
    assert "blue" in variables["project_main_color"]["choices"]
    assert variables["project_name"]["prompt"] == "What is the project called?"

    widget = templates["widget-lib"]
    # A fixture from FORGEFLOW_TEMPLATE_PATH, not listed as trusted: its hooks may not run.
    assert (widget["builtin"], widget["trusted"], widget["default"]) == (False, False, False)
    variables = by_name(widget)
    assert variables["project_slug"]["default"] == "widget_lib"
    assert variables["license"] == {
        **variables["license"],
        "type": "single_choice",
        "default": "MIT",
        "choices": ["MIT", "Apache-2.0", "BSD-3-Clause"],
    }
    assert variables["use_cli"]["type"] == "boolean" and variables["use_cli"]["choices"] is None
    assert variables["python_version"]["type"] == "text" and variables["python_version"]["default"] == "3.11"
    # Private variables are the author's, never the client's.
    assert not any(name.startswith("_") for name in variables)

    one = await http.get("/templates/widget-lib", headers=auth)
    assert one.status_code == 200 and one.json() == widget


async def test_unknown_template_is_404_and_reads_need_a_key_with_read(http, make_key):
    auth = {"X-API-Key": make_key(scopes=["projects:read"]).key}
    missing = await http.get("/templates/no-such-thing", headers=auth)
    assert missing.status_code == 404
    error = error_body(missing)["error"]
    assert error["code"] == "template_not_found"
    assert error["details"]["template_id"] == "no-such-thing" and "djass-saas" in error["details"]["available"]

    for path in ("/templates", "/templates/djass-saas"):
        assert (await http.get(path)).status_code == 401
        refused = await http.get(path, headers={"X-API-Key": make_key(scopes=["projects:create"]).key})
        assert refused.status_code == 403
        assert refused.json()["error"]["details"]["required_scope"] == "projects:read"


async def test_trust_follows_the_setting_and_a_broken_template_says_why(settings, make_key, tmp_path):
    extra = tmp_path / "templates"
    broken = extra / "broken-lib"
    broken.mkdir(parents=True)
    (broken / "cookiecutter.json").write_text('{"project_name": "Broken"}')
    os.symlink("/etc/hostname", broken / "leak.txt")  # a link out of the template: refused at load
    template_path = os.pathsep.join([str(extra), settings.template_path])
    local = settings.model_copy(update={"template_path": template_path, "trusted_templates": "hooked-lib"})
    auth = {"X-API-Key": make_key(scopes=["projects:read", "projects:create"]).key}
    async with LiveServer(local) as server, httpx.AsyncClient(base_url=f"{server.url}/api/v1") as http:
        templates = {t["id"]: t for t in (await http.get("/templates", headers=auth)).json()["templates"]}
        assert templates["hooked-lib"]["trusted"] is True and templates["widget-lib"]["trusted"] is False
        shown = templates["broken-lib"]
        assert shown["usable"] is False and "points outside the template" in shown["problem"]
        assert shown["variables"] == []
        # The same reason a create gives.
        created = await http.post("/projects", json={"project_name": "X", "template": "broken-lib"}, headers=auth)
        assert created.status_code == 400 and created.json()["error"]["code"] == "template_unusable", created.text
        one = await http.get("/templates/broken-lib", headers=auth)
        assert one.status_code == 200 and one.json() == shown
