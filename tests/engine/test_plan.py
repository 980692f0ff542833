"""Decomposition: globs, ownership, DAG validation."""

from __future__ import annotations

import pytest

from engine import InvalidPlan
from engine.plan import PlannedTask, matches, toposort
from engine.slugs import normalise_project_slug


def task(task_id: str, *deps: str) -> PlannedTask:
    return PlannedTask(
        id=task_id,
        slug=task_id,
        description="",
        dependencies=list(deps),
        path_scope=["**"],
        expected_outputs=[],
    )


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("a.py", "*", True),
        ("pkg/a.py", "*", False),
        ("pkg/sub/a.py", "pkg/**", True),
        ("a.py", "**/a.py", True),
        ("x/y/a.py", "**/a.py", True),
        ("templates/billing/x.html", "templates/billing/**", True),
        ("templatesX/a", "templates/**", False),
        ("a1.txt", "a[0-9].txt", True),
    ],
)
def test_globs(path, pattern, expected):
    assert matches(path, [pattern]) is expected


def test_toposort_orders_dependencies_first_and_is_stable():
    assert toposort([task("core"), task("blog", "core"), task("api", "core"), task("docs", "blog", "api")]) == [
        "core",
        "blog",
        "api",
        "docs",
    ]


def test_cycle_is_rejected_naming_the_tasks():
    with pytest.raises(InvalidPlan, match="cycle among: a, b"):
        toposort([task("core"), task("a", "b"), task("b", "a")])


def test_unknown_dependency_is_rejected():
    with pytest.raises(InvalidPlan, match="unknown task 'ghost'"):
        toposort([task("a", "ghost")])


@pytest.mark.parametrize(
    ("raw", "slug"),
    [
        ("Acme CRM", "acme_crm"),
        ("  Hello -- World  ", "hello_world"),
        ("Crème brûlée", "creme_brulee"),
        ("!!!", ""),
    ],
)
def test_slug_normalisation(raw, slug):
    assert normalise_project_slug(raw) == slug
