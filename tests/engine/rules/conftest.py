"""Renders of the built-in template, shared by the rule tests."""

from __future__ import annotations

import pytest

from engine.tree import Tree
from tests.engine.rules.support import render


@pytest.fixture(scope="session")
def default_project() -> Tree:
    return render({"project_name": "Acme"})


@pytest.fixture(scope="session")
def posthog_project() -> Tree:
    return render({"project_name": "Acme", "use_posthog": "y"})
