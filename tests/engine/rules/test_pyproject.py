"""The pyproject rule: what `pip install .` refuses, refused by verify, naming the file."""

from __future__ import annotations

import pytest

from engine.rules import check_project
from engine.rules import pyproject as rule
from engine.rules.pyproject import check_pyproject
from engine.tree import FileData
from engine.verify import verify_files
from tests.engine.rules.support import render, replaced


def test_the_default_render_is_valid_packaging_metadata(default_project):
    assert check_pyproject(default_project) == []


def test_an_author_email_packaging_refuses_is_left_out_and_would_fail_verify():
    # What every project made with the old dev key (owner dev@localhost) looked like: the
    # template now leaves such an address out of the metadata, so the project installs.
    project = render({"project_name": "Acme", "author_email": "dev@localhost"})
    assert "dev@localhost" not in project["pyproject.toml"].data.decode()
    assert verify_files(project, ["pyproject.toml"], strict=True, project_rules=check_project).ok
    # Had it been listed, verify would refuse what `pip install .` refuses, naming the file.
    listed = replaced(
        project, "pyproject.toml", '{ name = "Forgeflow" }', '{ name = "Forgeflow", email = "dev@localhost" }'
    )
    result = verify_files(listed, ["pyproject.toml"], strict=True, project_rules=check_project)
    assert not result.ok
    assert [(f.path, f.rule, f.severity) for f in result.findings] == [("pyproject.toml", "pyproject", "error")]
    assert result.errors == [
        "pyproject.toml: `project.authors[0].email` must be idn-email (packaging metadata schema):"
        " `pip install .` refuses this file"
    ]
    # Without the project rules (a third-party template), only parsing is checked: it parses.
    assert verify_files(listed, [], strict=True).ok


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('version = "0.1.0"', 'version = "one"', "`project.version` must be pep440"),
        ('"Django>=5.2,<6.0"', '"Django>=>5.2"', "`project.dependencies[0]` must be pep508"),
        ("[tool.setuptools]\npackages = []", "[tool.setuptools]\npackages = 3", "`tool.setuptools.packages`"),
    ],
)
def test_other_metadata_the_schema_refuses(default_project, old, new, problem):
    broken = replaced(default_project, "pyproject.toml", old, new)
    (finding,) = check_pyproject(broken) or []
    assert finding.path == "pyproject.toml" and finding.message.startswith(problem), finding.message


def test_the_files_the_metadata_names_must_exist(default_project):
    without = {k: v for k, v in default_project.items() if k not in ("README.md", "LICENSE")}
    messages = [f.message for f in check_pyproject(without) or []]
    assert messages == [
        "`project.readme` names README.md, which matches no file of the project: the build needs it",
        "`project.license-files` names LICENSE, which matches no file of the project: the build needs it",
    ]


def test_each_pyproject_is_checked_where_it_is():
    tree = {
        "pyproject.toml": FileData(b'[project]\nname = "a"\nversion = "1"\n'),
        "sub/pyproject.toml": FileData(b'[project]\nname = "b"\nversion = "1"\nreadme = "README.md"\n'),
        "README.md": FileData(b"# a\n"),  # the top project's, not sub/'s
    }
    assert [(f.path, f.message.split(",")[0]) for f in check_pyproject(tree) or []] == [
        ("sub/pyproject.toml", "`project.readme` names README.md")
    ]
    assert check_pyproject({"setup.py": FileData(b"")}) is None  # nothing to check: not run


def test_a_pyproject_that_does_not_parse_is_left_to_the_toml_rule():
    assert check_pyproject({"pyproject.toml": FileData(b"[project\n")}) == []


def test_problems_are_remembered_by_content(monkeypatch, default_project):
    calls = []
    real = rule._validator()
    monkeypatch.setattr(rule, "_validator", lambda: lambda doc: calls.append(doc) or real(doc))
    broken = replaced(default_project, "pyproject.toml", 'version = "0.1.0"', 'version = "remembered"')
    first, second = check_pyproject(broken), check_pyproject(dict(broken))
    assert first == second and first and len(calls) == 1
