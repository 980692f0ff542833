"""An untrusted template renders in Jinja's sandbox and cannot reach outside itself."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine import EngineError
from engine.context import build_context, evaluate
from engine.plan import decompose
from engine.render import list_outputs, render_files
from engine.templates import load_template


def escape(marker: Path) -> str:
    return "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}"


def make_template(root: Path, *, body: str = "hello\n", name: str = "out.txt", variables: dict | None = None) -> Path:
    template = root / "hostile"
    project = template / "{{ cookiecutter.project_slug }}"
    project.mkdir(parents=True)
    settings = {"project_name": "Demo", "project_slug": "demo", **(variables or {})}
    (template / "cookiecutter.json").write_text(json.dumps(settings))
    (project / name).write_text(body)
    return template


def render_all(root: Path, *, trusted: bool = False) -> dict[str, bytes]:
    template = load_template("hostile", template_path=str(root), trusted_ids=["hostile"] if trusted else [])
    context = build_context(template, {})
    files = render_files(template.path, context, trusted=template.trusted)
    return {path: file.data for path, file in files.items()}


@pytest.mark.parametrize(
    "place",
    ["body", "file name", "default", "private default"],
)
def test_jinja_escapes_in_an_untrusted_template_do_not_run(tmp_path, place):
    marker = tmp_path / "owned"
    root = tmp_path / "templates"
    if place == "body":
        make_template(root, body=escape(marker))
    elif place == "file name":
        make_template(root, name="{{ cycler.__init__.__globals__.os.getcwd() }}.txt")
    elif place == "default":
        make_template(root, variables={"project_name": escape(marker)})
    else:
        make_template(root, variables={"__secret": escape(marker)})
    with pytest.raises(EngineError, match=r"unsafe|access to attribute"):
        render_all(root)
    assert not marker.exists()


def test_the_same_template_trusted_keeps_cookiecutters_full_behaviour(tmp_path):
    # The boundary is a real switch: an operator who trusts a template gets what the
    # cookiecutter tool does, Python reach included.
    marker = tmp_path / "ran"
    make_template(tmp_path / "templates", body=escape(marker))
    render_all(tmp_path / "templates", trusted=True)
    assert marker.exists()


def test_ordinary_jinja_still_works_in_the_sandbox(tmp_path):
    body = (
        "{{ cookiecutter.project_name | upper }} {{ cookiecutter.project_name.lower().replace('d', 'D') }}\n"
        "{% for n in range(3) %}{{ loop.index }}{% endfor %} {{ '%s-%d' % ('a', 1) }} {{ '{}!'.format('b') }}\n"
        "{{ cookiecutter | jsonify | length > 0 }} {{ 'A Title' | slugify }}\n"
    )
    make_template(tmp_path / "templates", body=body)
    assert render_all(tmp_path / "templates")["out.txt"] == b"DEMO Demo\n123 a-1 b!\nTrue a-title\n"


def test_manifest_conditions_of_an_untrusted_template_are_sandboxed(tmp_path):
    marker = tmp_path / "owned"
    root = tmp_path / "templates"
    template_dir = make_template(root)
    (template_dir / "forgeflow.yaml").write_text(
        "modules:\n  - slug: core\n    paths: ['**']\n    expected_outputs: [" + json.dumps(escape(marker)) + "]\n"
    )
    template = load_template("hostile", template_path=str(root))
    context = build_context(template, {})
    with pytest.raises(EngineError, match="cannot evaluate condition"):
        evaluate(escape(marker), context, trusted=False)
    with pytest.raises(EngineError, match="cannot render expected output"):
        decompose(template, build_context(template, {}))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("variables", "refusal"),
    [
        ({"_extensions": ["local_ext.Anything"]}, "run Python code"),
        ({"_extensions": ["jinja2.ext.debug"]}, "run Python code"),
        ({"_jinja2_env_vars": {"finalize": "os.system"}}, "not allowed"),
        ({"_jinja2_env_vars": {"trim_blocks": {"nested": 1}}}, "not allowed"),
    ],
)
def test_an_untrusted_template_that_asks_for_code_is_refused_when_it_loads(tmp_path, variables, refusal):
    make_template(tmp_path / "templates", variables=variables)
    with pytest.raises(EngineError, match=refusal):
        load_template("hostile", template_path=str(tmp_path / "templates"))
    # Trusted, the same template loads: cookiecutter's behaviour is the operator's choice.
    load_template("hostile", template_path=str(tmp_path / "templates"), trusted_ids=["hostile"])


def test_harmless_extensions_and_syntax_settings_are_allowed(tmp_path):
    variables = {
        "_extensions": ["jinja2_time.TimeExtension", "jinja2.ext.do", "jinja2.ext.loopcontrols"],
        "_jinja2_env_vars": {"trim_blocks": True, "variable_start_string": "[[", "variable_end_string": "]]"},
    }
    body = "{% for x in [1, 2, 3] %}{% if x > 1 %}{% break %}{% endif %}[[ x ]]{% endfor %}\n"
    template = make_template(tmp_path / "templates", variables=variables, body=body)
    (template / "{{ cookiecutter.project_slug }}").rename(template / "[[ cookiecutter.project_slug ]]")
    assert render_all(tmp_path / "templates")["out.txt"] == b"1"  # trim_blocks took the newline


def test_a_template_without_a_project_directory_is_a_template_error(tmp_path):
    template = make_template(tmp_path / "templates")
    (template / "{{ cookiecutter.project_slug }}").rename(template / "plain")
    with pytest.raises(EngineError, match="template error"):
        render_all(tmp_path / "templates")


@pytest.mark.parametrize("trusted", [False, True])
@pytest.mark.parametrize("kind", ["outside", "dangling", "outside directory"])
def test_symlinks_out_of_a_template_or_nowhere_are_refused_at_load(tmp_path, kind, trusted):
    secret = tmp_path / "data" / "secret.key"
    secret.parent.mkdir()
    secret.write_text("the key")
    root = tmp_path / "templates"
    template = make_template(root)
    project = template / "{{ cookiecutter.project_slug }}"
    if kind == "outside":
        os.symlink(secret, project / "leak.txt")
    elif kind == "dangling":
        os.symlink(tmp_path / "nothing-here", project / "leak.txt")
    else:
        os.symlink(secret.parent, project / "data")
    expected = "points nowhere" if kind == "dangling" else "points outside the template"
    with pytest.raises(EngineError, match=expected):
        load_template("hostile", template_path=str(root), trusted_ids=["hostile"] if trusted else [])


def test_a_symlink_between_the_templates_own_files_is_allowed(tmp_path):
    root = tmp_path / "templates"
    template = make_template(root, body="shared {{ cookiecutter.project_name }}\n")
    project = template / "{{ cookiecutter.project_slug }}"
    os.symlink("out.txt", project / "alias.txt")
    files = render_all(root)
    assert files["alias.txt"] == files["out.txt"] == b"shared Demo\n"
    template_obj = load_template("hostile", template_path=str(root))
    _root, listed = list_outputs(template_obj.path, build_context(template_obj, {}))
    assert sorted(f.output for f in listed) == ["alias.txt", "out.txt"]
