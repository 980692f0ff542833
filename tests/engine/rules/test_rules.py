"""engine.rules: the project rules hold forgeflow's own templates only, and verify records
what they ran and found."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.rules import check_project, rules_for
from engine.templates import load_template
from engine.verify import verify_files
from tests.engine.rules.support import replaced

FIXTURES = Path(__file__).parents[2] / "fixtures" / "templates"


def test_only_builtin_templates_are_held_to_the_project_rules(tmp_path):
    assert rules_for(load_template("djass-saas")) is check_project
    assert rules_for(load_template("widget-lib", template_path=str(FIXTURES))) is None
    # A user template that shadows the built-in's id is not one.
    shutil.copytree(FIXTURES / "widget-lib", tmp_path / "djass-saas")
    assert rules_for(load_template("djass-saas", template_path=str(tmp_path))) is None


def test_verify_records_the_rules_that_ran_and_their_findings(default_project):
    result = verify_files(default_project, [], strict=True, project_rules=check_project)
    assert result.ok and result.findings == []
    assert result.rules == ["pyproject", "python-imports", "dependencies", "django-settings", "django-urls"]
    broken = replaced(default_project, "core/urls.py", "views.landing", "views.home")
    failed = verify_files(broken, [], strict=True, project_rules=check_project)
    assert not failed.ok and [f.rule for f in failed.findings] == ["django-urls"]
    assert failed.errors[0].startswith("core/urls.py: line 8: the view views.home")


def test_a_project_without_python_runs_only_what_applies():
    assert check_project({}) == {}
