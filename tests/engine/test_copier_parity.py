"""Copier templates through forgeflow's engine give ``copier copy``'s bytes.

A Copier template using a subdirectory, exclusions, validators, choices (a mapping of
labels to values and a list), a computed default, a conditional question, templated file
names (a conditional file among them), a yaml answer and a secret is put in a real git
repository, tagged, and registered as a source. forgeflow resolves the tag, checks the
commit out into its cache, asks its questions, fills the defaults, plans the tasks and
renders each task's files; ``copier copy --defaults --data ... --vcs-ref v1`` (the CLI)
renders the same repository. Every file's bytes and executable bit are compared. The one
intended difference: forgeflow leaves Copier's answers file out (.forgeflow/answers.json
records the source, commit and answers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine import InvalidAnswer
from engine.context import build_context, validate_answers
from engine.outputs import template_files
from engine.plan import decompose, ownership
from engine.provenance import provenance
from engine.questions import questions_for
from engine.sources import TemplateSources
from engine.templates import Template, load_template, resolve_template
from engine.tree import FileData, read_tree
from tests.template_repos import commit, copy_tree, new_repo
from workflows.types import QuestionModel, with_defaults

FIXTURE = Path(__file__).parent.parent / "fixtures" / "copier" / "parity"
COPIER = str(Path(sys.executable).parent / "copier")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = new_repo(tmp_path_factory.mktemp("copier") / "parity")
    copy_tree(FIXTURE, repo)
    commit(repo, "v1", tag="v1")
    return repo


@pytest.fixture(scope="module")
def template(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Template:
    sources = TemplateSources(urls={"parity": str(repo)}, cache_dir=tmp_path_factory.mktemp("cache"))
    return load_template(resolve_template("parity@v1", sources=sources), sources=sources)


def forgeflow_render(template: Template, answers: dict[str, Any]) -> tuple[str, dict[str, FileData]]:
    """As a run does it: clarify (defaults for what is left open), plan, then each task."""
    clean = validate_answers(template, answers)
    asked = [QuestionModel(**q.__dict__) for q in questions_for(template, clean)]
    filled = validate_answers(template, with_defaults(clean, asked), complete=True)
    context = build_context(template, filled)
    plan = decompose(template, context)
    owned = ownership(template, context)
    files: dict[str, FileData] = {}
    for task in plan.tasks:
        files.update(template_files(template, context, owned.files_of(task.slug)))
    return plan.root_name, files


def copier_copy(repo: Path, dest: Path, data: dict[str, str]) -> dict[str, FileData]:
    argv = [COPIER, "copy", "--defaults", "--quiet", "--vcs-ref", "v1"]
    for name, value in data.items():
        argv += ["--data", f"{name}={value}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPIER_")}
    subprocess.run([*argv, str(repo), str(dest)], check=True, env=env, capture_output=True)
    return read_tree(dest)


CASES = [
    pytest.param({"project_name": "Acme Shop"}, {"project_name": "Acme Shop"}, id="defaults"),
    pytest.param(
        {"project_name": "Acme Shop", "use_docker": True, "python_version": "3.13", "license": "GPL-3.0"},
        {"project_name": "Acme Shop", "use_docker": "true", "python_version": "3.13", "license": "GPL-3.0"},
        id="docker-gpl",
    ),
    pytest.param(
        {"project_name": "Calc {{ 7*7 }}", "project_slug": "calc", "workers": 8, "extras": ["ruff", "mypy"]},
        {"project_name": "Calc {{ 7*7 }}", "project_slug": "calc", "workers": "8", "extras": "[ruff, mypy]"},
        id="client-text-and-yaml",
    ),
    pytest.param(
        {"project_name": "Widget", "use_docker": "y", "license": "Apache-2.0"},
        {"project_name": "Widget", "use_docker": "true", "license": "Apache-2.0"},
        id="yes-no",
    ),
]


@pytest.mark.parametrize(("answers", "cli_data"), CASES)
def test_copier_features_render_byte_for_byte_as_copier_copy(
    template: Template, repo: Path, tmp_path: Path, answers: dict[str, Any], cli_data: dict[str, str]
) -> None:
    root, ours = forgeflow_render(template, answers)
    theirs = copier_copy(repo, tmp_path / root, cli_data)
    assert ".copier-answers.yml" in theirs and ".copier-answers.yml" not in ours
    theirs.pop(".copier-answers.yml")
    assert sorted(ours) == sorted(theirs)
    for path in theirs:
        assert ours[path].data == theirs[path].data, path
        assert ours[path].executable == theirs[path].executable, path
    # The features were exercised, not skipped.
    assert "notes.bak" not in ours and not any(p.startswith("scratch/") for p in ours)
    assert ours["bin/run"].executable
    assert ("Dockerfile" in ours) == (answers.get("use_docker") in (True, "y"))


def test_the_questions_are_copiers(template: Template) -> None:
    asked = {q.id: q for q in questions_for(template, {"project_name": "Acme Shop"})}
    assert list(asked) == ["project_slug", "license", "use_docker", "workers", "extras", "api_token"]
    assert asked["project_slug"].default == "acme_shop"  # computed from the answer before it
    assert asked["license"].type == "single_choice" and asked["license"].options == ["MIT", "Apache-2.0", "GPL-3.0"]
    assert asked["use_docker"].type == "boolean" and asked["use_docker"].default is False
    assert asked["workers"].type == "text" and asked["workers"].default == 2
    # `when`: asked only once Docker is chosen.
    docker = {q.id for q in questions_for(template, {"project_name": "A", "use_docker": True})}
    assert "python_version" in docker
    # Unanswered, a question without a default is required.
    assert {q.id: q.required for q in questions_for(template, {})}["project_name"] is True


def test_copiers_validators_and_choices_refuse_what_copier_refuses(template: Template) -> None:
    with pytest.raises(InvalidAnswer) as caught:
        validate_answers(
            template,
            {"project_name": "A", "project_slug": "Not A Slug", "license": "BSD", "workers": 99, "nope": 1},
        )
    problems = {e.field: e.message for e in caught.value.errors}
    assert problems["project_slug"] == "must be a Python identifier in lower case"
    assert "BSD" in problems["license"]
    assert problems["workers"] == "between 1 and 64"
    assert problems["nope"] == "is not a variable of this template"
    with pytest.raises(InvalidAnswer) as missing:
        validate_answers(template, {}, complete=True)
    # project_slug's default, from no name, fails its own validator: it has none to fall back on.
    assert [(e.field, e.message) for e in missing.value.errors] == [
        ("project_name", "is required"),
        ("project_slug", "is required"),
    ]


def test_the_secret_answer_stays_out_of_the_records(template: Template) -> None:
    record, shown = provenance(template, {"project_name": "A", "api_token": "s3cret"})
    assert shown == {"project_name": "A"}
    assert record["format"] == "copier" and record["ref"] == "v1" and len(record["commit"]) == 40
