"""The generation activities, run directly in Temporal's activity environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.base import base_message, task_commit
from activities.generation import GenerationActivities
from engine.archive import zip_bytes
from engine.context import build_context
from engine.plan import ownership
from engine.render import files_under, render
from engine.templates import load_template
from engine.tree import read_tree
from store.artifacts import LocalArtifactStore
from tests.engine.gitref import commit_task
from workflows.types import TaskInput, TemplateRequest

FIXTURES = str(Path(__file__).parents[1] / "fixtures" / "templates")


@pytest.fixture
def acts(tmp_path):
    return GenerationActivities(LocalArtifactStore(tmp_path / "artifacts"), template_path=FIXTURES, work_dir=tmp_path)


def request(template="widget-lib", **answers):
    digest = load_template(template, template_path=FIXTURES).digest
    return TemplateRequest(project_id=1, run_number=1, template=template, answers=answers, template_digest=digest)


def test_a_retried_task_produces_the_same_commit_and_bundle(acts):
    env = ActivityEnvironment()
    req = request(project_name="Widget Lib")
    plan = env.run(acts.decompose, req)
    task = next(t for t in plan.tasks if t.slug == "src")
    first = env.run(acts.run_task, TaskInput(request=req, task=task, total_tasks=len(plan.tasks)))
    second = env.run(acts.run_task, TaskInput(request=req, task=task, total_tasks=len(plan.tasks)))
    assert first == second
    assert first.branch == f"feat/task-{task.sequence:03d}-src"
    assert first.files == ["src/widget_lib/__init__.py", "src/widget_lib/cli.py"]


def test_writing_outside_the_path_scope_fails_for_good(acts):
    env = ActivityEnvironment()
    req = request(project_name="Widget Lib")
    plan = env.run(acts.decompose, req)
    task = next(t for t in plan.tasks if t.slug == "src").model_copy(update={"path_scope": ["src/other/**"]})
    with pytest.raises(ApplicationError) as raised:
        env.run(acts.run_task, TaskInput(request=req, task=task, total_tasks=1))
    assert raised.value.non_retryable and raised.value.type == "PathScopeViolation"
    assert "src/widget_lib/__init__.py" in raised.value.message


def test_a_cyclic_module_graph_is_rejected_clearly(acts):
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(acts.decompose, request("cyclic-lib"))
    assert raised.value.non_retryable and raised.value.type == "InvalidPlan"
    assert "cycle among: a, b" in raised.value.message


def test_a_template_changed_mid_run_is_refused(acts):
    stale = request().model_copy(update={"template_digest": "0" * 64})
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(acts.decompose, stale)
    assert raised.value.type == "TemplateChanged"


def test_the_bundle_is_the_zip_of_the_rendered_directory_and_the_commit_is_gits(acts, tmp_path):
    env = ActivityEnvironment()
    req = request(project_name="Widget Lib")
    plan = env.run(acts.decompose, req)
    template = load_template("widget-lib", template_path=FIXTURES)
    context = build_context(template, req.answers)
    for task in plan.tasks:
        result = env.run(acts.run_task, TaskInput(request=req, task=task, total_tasks=len(plan.tasks)))
        out = tmp_path / "rendered" / task.slug
        render(template.path, context, out, ownership(template, context).selector(task.slug))
        stored = (tmp_path / "artifacts" / result.bundle_key).read_bytes()
        # The rendered directory's files, stored uncompressed (bundles never leave the store).
        assert stored == zip_bytes(read_tree(out), root_name="task", compress=False)
        assert result.files == files_under(out)
        real = commit_task(
            tmp_path / "git" / task.slug, base_message=base_message(template), task=task_commit(task, out)
        )
        assert result.commit_sha == real


def test_a_worker_with_many_runs_in_flight_builds_each_runs_context_once(acts, monkeypatch):
    # 200 projects at once on one worker: each run's tasks reuse its context and plan.
    import activities.base
    import activities.generation

    builds, plans = [], []
    real_build, real_decompose = activities.base.build_context, activities.generation.decompose
    monkeypatch.setattr(activities.base, "build_context", lambda *a: builds.append(1) or real_build(*a))
    monkeypatch.setattr(activities.generation, "decompose", lambda *a: plans.append(1) or real_decompose(*a))
    env = ActivityEnvironment()
    requests = [request(project_name=f"Widget {n}") for n in range(200)]
    for req in requests:
        env.run(acts.decompose, req)
    for req in requests:
        plan = env.run(acts.decompose, req)
        env.run(acts.run_task, TaskInput(request=req, task=plan.tasks[0], total_tasks=len(plan.tasks)))
    assert len(builds) == len(plans) == 200
