"""The plan rules: every error at once, and the conversion to the template path's PlanResult."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agents.plan_rules import globs_overlap, plan_errors, to_plan_result
from agents.schemas import PlanOutput


def task(id: str, *deps: str, scope: list[str] | None = None, outputs: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": id,
        "title": id.upper(),
        "instructions": f"do {id}",
        "dependencies": list(deps),
        "path_scope": scope or [f"{id}/**"],
        "expected_outputs": outputs or [],
    }


def plan(*tasks: dict[str, Any]) -> PlanOutput:
    return PlanOutput.model_validate({"tasks": list(tasks)})


def test_a_valid_plan_has_no_errors_and_converts_in_dependency_order():
    valid = plan(task("api", "models"), task("models", outputs=["models/user.py"]), task("docs"))
    assert plan_errors(valid) == []

    result = to_plan_result(valid, root_name="acme")
    assert result.root_name == "acme"
    assert result.merge_order == ["models", "docs", "api"]  # ready ones first, in the model's order
    assert [(t.id, t.sequence) for t in result.tasks] == [("models", 1), ("docs", 2), ("api", 3)]
    api = result.tasks[2]
    assert api.slug == "api" and api.dependencies == ["models"] and api.description == "API\n\ndo api"
    assert result.tasks[0].expected_outputs == ["models/user.py"]


def test_every_error_is_reported_at_once():
    errors = plan_errors(
        plan(
            task("a", "b"),
            task("b", "a"),
            task("c", "ghost", "c"),
            task("d", scope=["/etc/**", "d/../x", "d/**"], outputs=["d/*.py", "elsewhere.txt"]),
        )
    )
    assert errors == [
        "task 'c' depends on unknown task 'ghost'",
        "task 'c' depends on itself",
        "task 'd': path_scope '/etc/**' is not a relative path with forward slashes",
        "task 'd': path_scope 'd/../x' has an empty, '.' or '..' segment",
        "task 'd': expected output 'd/*.py' must be a file path, not a glob",
        "task 'd': expected output 'elsewhere.txt' is outside its path_scope",
        "the dependencies form a cycle among: a, b",
    ]


def test_repeated_ids_are_an_error():
    assert plan_errors(plan(task("a"), task("a", scope=["b/**"]))) == ["task ids must be unique; repeated: a"]


def test_overlapping_scopes_are_an_error_only_for_tasks_that_may_run_at_once():
    overlapping = plan(task("app", scope=["app/**"]), task("models", scope=["app/models.py"]))
    assert plan_errors(overlapping) == [
        "tasks 'app' and 'models' may run at once but their path scopes overlap ('app/**' and 'app/models.py'): "
        "make one depend on the other or split the paths"
    ]
    # Ordered, directly or through another task, they never run at once.
    ordered = plan(task("app", scope=["app/**"]), task("mid", "app"), task("models", "mid", scope=["app/models.py"]))
    assert plan_errors(ordered) == []


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("app/**", "app/models.py", True),
        ("**", "README.md", True),
        ("**/*.py", "app/x.py", True),
        ("*.md", "docs/x.md", False),  # * stays in one segment
        ("app/*.py", "app/templates/**", False),  # one segment after app/ against two or more
        ("app/*", "app/templates/**", True),
        ("app/*.py", "app/*.html", False),
        ("src/a/**", "src/b/**", False),
        ("src/[ab].py", "src/a.py", True),
        ("src/[ab].py", "src/c.py", False),
        ("Makefile", "Makefile", True),
        ("a/b", "a/b/c", False),
    ],
)
def test_glob_overlap(first: str, second: str, overlap: bool):
    assert globs_overlap(first, second) is overlap
    assert globs_overlap(second, first) is overlap


def test_the_schema_bounds_a_plan():
    with pytest.raises(ValidationError):
        plan()  # no task
    with pytest.raises(ValidationError):
        plan(task("Not An Id"))
    with pytest.raises(ValidationError):
        plan(*[task(f"t{n}") for n in range(61)])
