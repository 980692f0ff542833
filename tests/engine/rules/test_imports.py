"""python-imports and dependencies: a project's imports find its own modules, and every
library it imports is one pyproject.toml declares."""

from __future__ import annotations

import pytest

from engine.rules.imports import declared, dependencies, provided, python_imports
from engine.rules.modules import Modules
from engine.tree import FileData
from tests.engine.rules.support import replaced


def project(files: dict[str, str]) -> Modules:
    return Modules({path: FileData(text.encode()) for path, text in files.items()})


def test_imports_of_the_projects_own_modules_must_resolve():
    modules = project(
        {
            "app/__init__.py": "",
            "app/views.py": "from app.models import Post, Missing\nfrom . import forms, nothing\n",
            "app/models.py": "class Post: ...\n",
            "app/forms.py": "",
            "app/admin.py": "from .models import Post\nfrom ..outside import x\n",
            "main.py": "import app.gone\nimport os, django\n"
            "try:\n    from app import optional\nexcept ImportError:\n    pass\n",
        }
    )
    assert [(f.path, f.message) for f in python_imports(modules)] == [
        ("app/admin.py", "line 2: a relative import climbs out of the project: importing app.admin fails"),
        (
            "app/views.py",
            "line 1: imports Missing from app.models, which does not define it: importing app.views fails",
        ),
        ("app/views.py", "line 2: imports nothing from app, which does not define it: importing app.views fails"),
        ("main.py", "line 1: imports app.gone, which is not in the project: importing main fails"),
    ]


def test_a_name_is_defined_however_the_module_binds_it():
    modules = project(
        {
            "a.py": "from b import f, C, X, Y, m, sub\n",
            "b/__init__.py": "import json as m\ndef f(): ...\nclass C: ...\nif True:\n    X = 1\nelse:\n    Y = 2\n",
            "b/sub.py": "",
            "c.py": "from d import anything\n",
            "d.py": "def __getattr__(name): ...\n",
        }
    )
    assert python_imports(modules) == []


def test_a_template_condition_that_drops_a_module_an_import_still_names(default_project):
    broken = replaced(
        default_project,
        "config/settings.py",
        "import dj_database_url\n",
        "import dj_database_url\nfrom config.logfire_setup import configure_logfire\n",
    )
    (finding,) = python_imports(Modules(broken))
    assert (finding.path, finding.rule) == ("config/settings.py", "python-imports")
    assert "imports config.logfire_setup, which is not in the project" in finding.message


def test_every_library_imported_is_declared(posthog_project):
    document = {"project": {"dependencies": ["Django>=5", "dj-database-url", "whitenoise", "gunicorn", "httpx"]}}
    assert dependencies(Modules(posthog_project), "pyproject.toml", declared(document)) == []
    without_httpx = declared({"project": {"dependencies": ["Django>=5", "dj-database-url", "whitenoise"]}})
    found = dependencies(Modules(posthog_project), "pyproject.toml", without_httpx)
    assert {f.path for f in found} == {"analytics/posthog.py", "analytics/tests.py"}
    assert all(
        f.rule == "dependencies" and "imports httpx, which no dependency in pyproject.toml" in f.message for f in found
    )


def test_a_dropped_app_a_module_still_imports_is_an_undeclared_library(default_project):
    broken = replaced(
        default_project,
        "core/views.py",
        "from django.shortcuts import render\n",
        "from django.shortcuts import render\nfrom blog.models import Post\n",
    )
    document = {"project": {"dependencies": ["Django", "dj-database-url", "whitenoise"]}}
    (finding,) = dependencies(Modules(broken), "pyproject.toml", declared(document))
    assert finding.path == "core/views.py" and "imports blog," in finding.message


def test_guarded_imports_and_the_standard_library_need_no_dependency():
    source = (
        "import json, sys\ntry:\n    import ujson\nexcept ImportError:\n    ujson = None\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import mypy_extensions\n"
    )
    assert dependencies(project({"m.py": source}), "pyproject.toml", []) == []


def test_optional_and_group_dependencies_count():
    document = {
        "project": {"dependencies": [], "optional-dependencies": {"pg": ["psycopg[binary]>=3"]}},
        "dependency-groups": {"test": ["pytest>=8", {"include-group": "x"}]},
    }
    assert declared(document) == ["psycopg", "pytest"]


@pytest.mark.parametrize(
    ("top", "dependency", "provides"),
    [
        ("django", "django", True),
        ("sentry_sdk", "sentry-sdk", True),
        ("dj_database_url", "dj-database-url", True),
        ("storages", "django-storages", True),
        ("opentelemetry", "opentelemetry-sdk", True),
        ("yaml", "pyyaml", True),
        ("requests", "httpx", False),
        ("blog", "django", False),
    ],
)
def test_which_distribution_provides_a_module(top, dependency, provides):
    assert provided(top, [dependency]) is provides
