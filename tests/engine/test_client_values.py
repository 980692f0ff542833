"""A client's answers are data: they reach the files exactly as sent, never run as Jinja."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from engine.context import build_context
from engine.render import render_files
from engine.templates import load_template

FIXTURE_TEMPLATES = Path(__file__).parents[1] / "fixtures" / "templates"


def escape(marker: Path) -> str:
    """A server-side template injection that would create ``marker`` on the worker."""
    return "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}"


def rendered(template_id: str, answers: dict, template_path: str = "") -> dict[str, bytes]:
    template = load_template(template_id, template_path=template_path)
    context = build_context(template, answers)
    files = render_files(template.path, context, digest=template.digest, trusted=template.trusted)
    return {path: file.data for path, file in files.items()}


def test_builtin_template_takes_names_and_descriptions_literally(tmp_path):
    marker = tmp_path / "owned"
    answers = {
        "project_name": "Calc {{ 7*7 }}",
        "project_description": escape(marker),
        "author_name": "{% for x in range(3) %}x{% endfor %}",
    }
    files = rendered("djass-saas", answers)
    readme = files["README.md"].decode()
    assert readme.startswith("# Calc {{ 7*7 }}"), readme[:200]
    assert escape(marker) in readme
    assert not marker.exists()
    pyproject = files["pyproject.toml"].decode()
    assert "{% for x in range(3) %}x{% endfor %}" in pyproject


def test_author_defaults_still_render_around_a_literal_value():
    # project_slug's default is the author's Jinja over project_name: it renders, and the
    # client's braces inside it are carried as text, not evaluated a second time.
    template = load_template("widget-lib", template_path=str(FIXTURE_TEMPLATES))
    context = build_context(template, {"project_name": "My {{ 6*7 }} Lib"})["cookiecutter"]
    assert context["project_name"] == "My {{ 6*7 }} Lib"
    assert context["project_slug"] == "my_{{_6*7_}}_lib"
    assert context["__dunder_id"] == "my_{{_6*7_}}_lib-id"


def test_a_supplied_dict_is_data_and_merges_as_the_tool_merges(tmp_path):
    root = tmp_path / "templates"
    template_dir = root / "dicty"
    (template_dir / "{{ cookiecutter.slug }}").mkdir(parents=True)
    variables = {"name": "N", "slug": "dicty", "extra": {"base": "{{ cookiecutter.name }}!", "keep": "k"}}
    (template_dir / "cookiecutter.json").write_text(json.dumps(variables))
    (template_dir / "{{ cookiecutter.slug }}" / "out.txt").write_text("{{ cookiecutter.extra | tojson }}\n")
    marker = tmp_path / "owned"
    answers = {"extra": {"keep": escape(marker), "{{ 1+1 }}": "new"}}
    template = load_template("dicty", template_path=str(root))
    context = build_context(template, answers)
    assert context["cookiecutter"]["extra"] == {"base": "N!", "keep": escape(marker), "{{ 1+1 }}": "new"}
    assert context["_cookiecutter"]["extra"]["keep"] == escape(marker)
    render_files(template.path, context)
    assert not marker.exists()


@pytest.mark.parametrize(
    "answers",
    [{}, {"project_name": "Plain Name", "license": "Apache-2.0", "use_cli": "n"}, {"python_version": "3.13"}],
)
def test_values_without_jinja_give_the_tools_bytes(tmp_path, answers):
    # The one intended difference from the tool is for text with Jinja syntax; everything
    # else renders exactly as `cookiecutter --no-input` renders it.
    reference = Path(
        cookiecutter(
            str(FIXTURE_TEMPLATES / "widget-lib"),
            no_input=True,
            extra_context=answers,
            output_dir=str(tmp_path / "ref"),
            default_config=True,
        )
    )
    ours = rendered("widget-lib", answers, str(FIXTURE_TEMPLATES))
    theirs = {p.relative_to(reference).as_posix(): p.read_bytes() for p in reference.rglob("*") if p.is_file()}
    assert ours == theirs


def test_the_tool_itself_would_have_run_the_value(tmp_path):
    # Why the difference exists: the cookiecutter tool renders a supplied value as code.
    marker = tmp_path / "owned-by-the-tool"
    cookiecutter(
        str(FIXTURE_TEMPLATES / "widget-lib"),
        no_input=True,
        extra_context={"project_name": "x" + escape(marker)},
        output_dir=str(tmp_path / "ref"),
        default_config=True,
    )
    assert marker.exists()
