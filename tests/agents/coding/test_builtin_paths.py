"""The built-in agent's paths are the model's text: data that never leaves the project,
never names .git, and is written only within the task's scope; Jinja and shell syntax in a
name stay characters of that name."""

from __future__ import annotations

import pytest

from agents.coding.builtin_paths import PathRefused, checked_path, in_scope

ESCAPES = [
    ("../etc/passwd", "'..'"),
    ("app/../../x", "'..'"),
    ("/etc/passwd", "absolute"),
    ("~/.ssh/id_rsa", "absolute"),
    ("C:/Windows/x", "absolute"),
    ("app\\..\\..\\x", "a backslash"),
    ("app/x\x00.py", "a control character"),
    ("app/x\n.py", "a control character"),
    (".git/hooks/pre-commit", ".git"),
    ("app/.GIT./config", ".git"),
    ("", "empty"),
    ("./", "project root"),
]


@pytest.mark.parametrize(("path", "why"), ESCAPES)
def test_a_path_that_could_escape_is_refused_saying_why(path: str, why: str) -> None:
    with pytest.raises(PathRefused) as refused:
        checked_path(path)
    assert why in str(refused.value)


@pytest.mark.parametrize("name", ["{{ 7*7 }}.py", "$(id).txt", "`id`.md", "%s%n.py", "{% raw %}.j2"])
def test_template_and_shell_syntax_stay_part_of_the_name(name: str) -> None:
    assert checked_path(f"app/./{name}") == f"app/{name}"


def test_writes_stay_within_the_scope() -> None:
    in_scope("app/models/user.py", ["app/**"])
    for outside in ("docs/app.md", "appendix/x.py", "README.md"):
        with pytest.raises(PathRefused, match=r"outside this task's path scope \(app/\*\*\)"):
            in_scope(outside, ["app/**"])
