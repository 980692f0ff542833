"""Agent mode, part 2, in the workflow: the agent's plan built by a coding agent, one
activity a task, each in its own git work tree started from its dependencies' merged
commit. The DAG runner is the template path's (workflows.dag.run_dag): dependencies first,
at most ``max_parallel_tasks`` at once, the first failure stopping the rest.

A task activity takes as long as its agent does (minutes), so it heartbeats; a worker lost
mid-task is noticed within the heartbeat timeout, and the retry starts from a clean work
tree on any worker, since everything a task starts from is in the artifact store."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from agents.budget import budget_exceeded
    from workflows.builtin_task import run_builtin_task
    from workflows.coding_types import (
        PREPARE_WORKSPACE,
        RUN_CODING_TASK,
        Checkpoint,
        CodingTaskInput,
        CodingTaskResult,
        FixRequest,
        TaskDependency,
        Workspace,
        WorkspaceInput,
    )
    from workflows.dag import run_dag
    from workflows.failures import ended_as
    from workflows.state import RunState
    from workflows.status import StatusWriter
    from workflows.steps import ENGINE_RETRY, OUTAGE_PATIENCE
    from workflows.types import (
        Phase,
        ProjectGenerationInput,
        ProjectStatus,
        SpecResult,
        TaskDefinition,
        TaskResult,
        TaskUpdate,
        TemplateRequest,
    )

# An agent that fails (its own error, a scope it broke) is worth one more clean try; one
# that keeps failing fails the task. Lost workers and stores that are away are retried
# within OUTAGE_PATIENCE like any step.
AGENT_TASK_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=30))
# The longest one agent may work on one task, beyond its own time limit (the worker's setting).
AGENT_TASK_TIMEOUT = timedelta(hours=2)


class CodingRunner:
    def __init__(self, input: ProjectGenerationInput, state: RunState, writer: StatusWriter) -> None:
        self._input = input
        self._state = state
        self._writer = writer
        self.results: dict[str, CodingTaskResult] = {}
        self._budget_gate = asyncio.Lock()
        self._checkpoint: Checkpoint | None = None

    def keep(self, checkpoint: Checkpoint) -> None:
        """A retry: start from the retried run's workspace, its finished tasks kept."""
        self._checkpoint = checkpoint

    async def run(
        self, request: TemplateRequest, tasks: list[TaskDefinition], spec: SpecResult
    ) -> tuple[Workspace, dict[str, str], dict[str, str]]:
        """Every task of the plan: the workspace they started from, and the branch bundle
        keys and commits by task id. A failed task raises DagFailed."""
        kept = self._checkpoint
        if kept is not None and kept.workspace is not None:
            workspace = kept.workspace
            await self._keep_done(tasks, kept)
        else:
            workspace = await self._prepare(request)
        by_id = {t.id: t for t in tasks}
        run_one = partial(self._run_task, request, spec, workspace, by_id)
        results = await run_dag(tasks, self._input.max_parallel_tasks, run_one, lambda: not self._state.paused)
        return (
            workspace,
            {k: v.bundle_key for k, v in results.items()},
            {k: v.commit_sha for k, v in results.items()},
        )

    async def _keep_done(self, tasks: list[TaskDefinition], kept: Checkpoint) -> None:
        """The retried run's finished tasks, on record as this run's, with their commits."""
        done = [t for t in tasks if t.id in kept.done]
        for task in done:
            self.results[task.id] = kept.done[task.id]
            self._state.task_states[task.id] = "succeeded"
        self._state.tasks_done += len(done)
        updates = [
            TaskUpdate(
                task_id=t.id,
                status="succeeded",
                commit_sha=kept.done[t.id].result.commit_sha,
                branch=kept.done[t.id].result.branch,
                files=kept.done[t.id].result.files,
            )
            for t in done
        ]
        if updates:
            kept_event = self._writer.event(
                "tasks_kept", {"run": self._input.resume_from_run, "tasks": [t.id for t in done]}
            )
            await self._writer.transition(
                ProjectStatus.GENERATING, Phase.TASKS, task_updates=updates, events=[kept_event]
            )

    async def _prepare(self, request: TemplateRequest) -> Workspace:
        workspace: Workspace = await workflow.execute_activity(
            PREPARE_WORKSPACE,
            WorkspaceInput(request=request, base=self._input.base),
            result_type=Workspace,
            start_to_close_timeout=timedelta(minutes=5),
            schedule_to_close_timeout=OUTAGE_PATIENCE,
            retry_policy=ENGINE_RETRY,
            summary="the work tree's start: scaffold or last main",
        )
        return workspace

    async def _run_task(
        self,
        request: TemplateRequest,
        spec: SpecResult,
        workspace: Workspace,
        by_id: dict[str, TaskDefinition],
        task: TaskDefinition,
    ) -> TaskResult:
        if task.id in self.results:  # kept from the run a retry resumes
            return self.results[task.id].result
        await self._within_budget()
        dependencies = [
            TaskDependency(task_id=d, branch=self._branch(by_id[d]), bundle_key=self.results[d].result.bundle_key)
            for d in sorted(task.dependencies, key=lambda d: by_id[d].sequence)
        ]
        done = await self._build(request, spec, task, workspace, dependencies)
        return done.result

    async def fix(
        self, request: TemplateRequest, spec: SpecResult, task: TaskDefinition, merged: Workspace, fix: FixRequest
    ) -> CodingTaskResult:
        """A fix task (workflows/fixes.py), built like any task but on the merged history
        (its dependencies, every task, are in it already), within the budget and not while
        the run is paused."""
        await workflow.wait_condition(lambda: not self._state.paused)
        await self._within_budget()
        return await self._build(request, spec, task, merged, [], fix)

    async def _build(
        self,
        request: TemplateRequest,
        spec: SpecResult,
        task: TaskDefinition,
        workspace: Workspace,
        dependencies: list[TaskDependency],
        fix: FixRequest | None = None,
    ) -> CodingTaskResult:
        state, agent = self._state, self._input.agent
        assert agent is not None
        state.task_states[task.id] = "running"
        coding_input = CodingTaskInput(
            request=request,
            task=task,
            total_tasks=state.tasks_total,
            workspace=workspace,
            dependencies=dependencies,
            spec=spec,
            coding_agent=agent.coding_agent or "",
            model=None,  # the worker's agent model (FORGEFLOW_AGENT_MODEL): not the planner's
            max_cost_usd_per_task=agent.budget.max_cost_usd_per_task,
            fix=fix,
        )
        summary = f"task {task.sequence}/{state.tasks_total}: {task.slug} (coding agent)"
        try:
            done: CodingTaskResult
            if coding_input.coding_agent == "builtin":
                # The model and its file tools in the workflow: each request and tool call
                # an activity of its own, in a child workflow that bounds this one's history.
                done = await run_builtin_task(coding_input, summary=summary)
            else:
                done = await workflow.execute_activity(
                    RUN_CODING_TASK,
                    coding_input,
                    result_type=CodingTaskResult,
                    start_to_close_timeout=AGENT_TASK_TIMEOUT,
                    heartbeat_timeout=timedelta(seconds=self._input.task_heartbeat_seconds),
                    schedule_to_close_timeout=OUTAGE_PATIENCE + AGENT_TASK_TIMEOUT,
                    retry_policy=AGENT_TASK_RETRY,
                    summary=summary,
                )
        except BaseException as exc:
            state.task_states[task.id] = ended_as(exc)
            raise
        self.results[task.id] = done
        # Spend only grows: tasks that ran side by side report it in any order.
        if done.spent is not None and done.spent.requests >= state.spent.requests:
            state.spent = done.spent
        state.task_states[task.id] = "succeeded"
        state.tasks_done += 1
        workflow.set_current_details(self._writer.details())
        return done

    async def _within_budget(self) -> None:
        """Before a task starts: the project's budget (every run, phase and task together)
        as the last finished task left it. Once it is used up, no task starts: the run waits
        at ``awaiting_budget`` (running tasks finish, so at most the tasks already running go
        beyond it) until the budget is raised, or the run is cancelled."""
        async with self._budget_gate:  # tasks ready together wait behind one stop
            state, writer = self._state, self._writer
            while state.budget is not None:
                exceeded = budget_exceeded(state.budget, state.spent)
                if exceeded is None:
                    return
                payload = {
                    "phase": "tasks",
                    "limits": exceeded.limits,
                    "message": exceeded.message,
                    "spent": state.spent.model_dump(mode="json"),
                }
                state.error = exceeded.message
                stopped = writer.event("budget_exceeded", payload)
                await writer.transition(ProjectStatus.AWAITING_BUDGET, Phase.AWAITING_BUDGET, events=[stopped])
                await workflow.wait_condition(lambda: state.budget_raised or self._covered())
                state.budget_raised, state.error = False, ""
                raised = writer.event("budget_raised", {"budget": state.budget.model_dump(mode="json")})
                await writer.transition(ProjectStatus.GENERATING, Phase.TASKS, events=[raised])

    def _covered(self) -> bool:
        budget = self._state.budget
        return budget is None or budget_exceeded(budget, self._state.spent) is None

    @staticmethod
    def _branch(task: TaskDefinition) -> str:
        return f"feat/task-{task.sequence:03d}-{task.slug}"
