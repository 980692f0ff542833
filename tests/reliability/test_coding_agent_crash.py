"""A worker killed with SIGKILL while an external coding agent builds a task (agent mode):
the agent's sandbox dies with the worker (bwrap's --die-with-parent), the task starts again
from a clean work tree on the other worker, the project ends ready, and no task that had
completed is built again.

Real processes: the Temporal dev server, forgeflow-fake (a subprocess answering the plan
request with a plan of three tasks: two independent ones, then one depending on both), two
workers running the ``command`` coding agent (agents/fake_coder.py, which works
``AGENT_SECONDS`` on every task) and the API. The kill lands while the last task's agent
runs; the two before it have completed by then (its dependencies)."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.enums.v1 import EventType

import agents
from activities.coding import WORK_TREE_PREFIX
from agents.coding.runners import PRIVATE_PREFIX
from forgeflow.ports import free_port
from tests.reliability.harness import Api, Service, Stack, eventually, make_api_key
from workflows.coding_types import RUN_CODING_TASK

FAKE_CODER = Path(agents.__file__).resolve().parent / "fake_coder.py"
AGENT_SECONDS = 3  # each agent run: long enough for the kill to land while the last one works
QUICK = ("api", "docs")  # independent: built first, side by side
LAST = "glue"  # depends on both: its agent is running when its worker is killed
PLAN = {
    "tasks": [
        {
            "id": slug,
            "title": slug.title(),
            "instructions": f"Build {slug}.",
            "path_scope": [scope],
            "dependencies": deps,
        }
        for slug, scope, deps in (("api", "app/**", []), ("docs", "docs/**", []), (LAST, "tests/**", list(QUICK)))
    ]
}
FILES = {"api": "app/api.py", "docs": "docs/docs.py", LAST: "tests/glue.py"}
# Past its worker's death, the sandbox gets this long to be gone: bwrap's --die-with-parent
# ends it at once; its own watchdog (timeout(1)) would only fire past the agent's time limit.
SANDBOX_GRACE_SECONDS = 3.0


# --- processes, as /proc shows them --------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    argv: tuple[str, ...]


def live_processes() -> dict[int, Proc]:
    """Every process of this host that is running (zombies left out), by pid."""
    found: dict[int, Proc] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as stat:
                state, ppid = stat.read().rsplit(")", 1)[1].split()[:2]
            with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                argv = tuple(a.decode(errors="replace") for a in cmdline.read().split(b"\0") if a)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if state not in ("Z", "X"):
            found[int(name)] = Proc(int(name), int(ppid), argv)
    return found


def ancestors(procs: dict[int, Proc], pid: int) -> set[int]:
    seen: set[int] = set()
    while pid in procs and pid not in seen:
        seen.add(pid)
        pid = procs[pid].ppid
    return seen


def agent_task(proc: Proc) -> str | None:
    """The task a fake coder process works on (from its prompt file), else None; the
    sandbox's other processes (bwrap, its init, the watchdog) name the script too, later."""
    if len(proc.argv) < 3 or proc.argv[1] != str(FAKE_CODER):
        return None
    try:
        prompt = Path(proc.argv[-2]).read_text()
    except OSError:
        return None  # the run just ended
    found = re.search(r"^# Task \d+ of \d+: (\S+)$", prompt, re.M)
    return found.group(1) if found else None


def agents_of(stack: Stack, task: str) -> list[tuple[Proc, dict[int, Proc]]]:
    """The fake coder processes at work on ``task`` in this stack's work trees (other tests
    on the host may run fake coders too), each with the process table it was seen in."""
    procs = live_processes()
    ours = [p for p in procs.values() if p.argv and p.argv[-1].startswith(f"{stack.base}/")]
    return [(p, procs) for p in ours if agent_task(p) == task]


def sandbox_members(procs: dict[int, Proc], workdir: str) -> set[int]:
    """The processes of one agent run: bwrap, the sandbox's init, its watchdog and the agent
    all name the run's work tree on their command line."""
    return {p.pid for p in procs.values() if workdir in p.argv}


# --- the history Temporal kept ---------------------------------------------------------


@dataclass
class TaskActivity:
    scheduled: int = 0  # ActivityTaskScheduled events: a completed task built again makes a second
    attempt: int = 0  # of the attempt that closed it
    completed: bool = False


async def coding_activities(stack: Stack, project_id: int) -> dict[str, TaskActivity]:
    """The task activities (``run_coding_task``) in the workflow's history, by task id."""
    history = await (await stack.workflow(project_id)).fetch_history()
    by_event: dict[int, str] = {}
    found: dict[str, TaskActivity] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name != RUN_CODING_TASK:
                continue
            task_id = json.loads(attrs.input.payloads[0].data)["task"]["id"]
            by_event[event.event_id] = task_id
            found.setdefault(task_id, TaskActivity()).scheduled += 1
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if started.scheduled_event_id in by_event:
                found[by_event[started.scheduled_event_id]].attempt = started.attempt
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed = event.activity_task_completed_event_attributes
            if completed.scheduled_event_id in by_event:
                found[by_event[completed.scheduled_event_id]].completed = True
    return found


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


async def test_worker_sigkill_while_its_coding_agent_runs(make_stack, database_url, tmp_path):
    llm_port = free_port()
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(PLAN))
    key = make_api_key(database_url)
    stack: Stack = make_stack(
        database_url,
        max_parallel_tasks="2",
        llm_base_url=f"http://127.0.0.1:{llm_port}/v1",
        llm_api_key="fake",
        llm_model="forgeflow-fake",
        coding_agent="command",
        agent_command=f"{sys.executable} {FAKE_CODER} --sleep {AGENT_SECONDS} {{prompt_file}} {{workdir}}",
        agent_read_only=str(FAKE_CODER.parent),
        agent_timeout_seconds="60",  # the sandbox's own watchdog: 70 s, far past this test's patience
    )
    fake = Service(
        "fake-llm",
        [sys.executable, "-m", "agents.fake_llm", "--port", str(llm_port), "--plan", str(plan_file)],
        stack.env,
        stack.base / "logs" / "fake-llm.log",
    )
    stack.services.append(fake)  # killed at teardown with the rest
    await stack.start_temporal()
    tmpdir = tmp_path / "tmp"  # the workers' temporary directory, where their agents' prompts go
    tmpdir.mkdir()
    workers = [stack.start_worker(TMPDIR=str(tmpdir)), stack.start_worker(TMPDIR=str(tmpdir))]
    await stack.start_api()

    async def fake_listens() -> bool:
        assert fake.alive, fake.tail()
        try:
            socket.create_connection(("127.0.0.1", llm_port), timeout=0.5).close()
            return True
        except OSError:
            return False

    await eventually(fake_listens, 30, "forgeflow-fake to listen", interval=0.1)

    async with Api(stack, key.key) as api:
        body = {"project_name": "Crash Board", "template": "empty", "prompt": "A task board.", "agent": {}}
        project_id = (await api.create(**body))["id"]

        # The last task's agent at work: which worker runs it, and every process of its sandbox.
        polls = 0

        async def last_agent() -> list[tuple[Proc, dict[int, Proc]]]:
            nonlocal polls
            found = agents_of(stack, LAST)
            if found:
                return found
            polls += 1
            if polls % 20 == 0:  # about every second: a run that went wrong fails here, saying why
                assert all(w.alive for w in workers), [w.tail() for w in workers]
                project = await api.project(project_id)
                assert project["status"] not in ("failed", "cancelled", "ready"), project
            return []

        agent, procs = (await eventually(last_agent, 120, f"the agent of task {LAST} to run", interval=0.05))[0]
        workdir = agent.argv[-1]
        killed = next((w for w in workers if w.proc.pid in ancestors(procs, agent.pid)), None)
        assert killed is not None, f"no worker is an ancestor of the agent {agent}"
        survivor = next(w for w in workers if w is not killed)
        sandbox = sandbox_members(procs, workdir)
        assert agent.pid in sandbox and len(sandbox) >= 2, sandbox  # bwrap and the agent, at least
        assert killed.proc.pid not in sandbox

        # kill -9 of the worker process alone (not its group), as the kernel's OOM killer
        # would: nothing of the worker's own code runs to end its agent.
        os.kill(killed.proc.pid, signal.SIGKILL)
        killed.proc.wait(10)

        async def sandbox_gone() -> bool:
            return not (sandbox_members(live_processes(), workdir) & sandbox)

        try:
            await eventually(sandbox_gone, SANDBOX_GRACE_SECONDS, "the killed worker's sandbox to die", interval=0.02)
        except AssertionError:
            left = {pid: p.argv[:3] for pid, p in live_processes().items() if pid in sandbox}
            raise AssertionError(
                f"the agent outlived its worker: {len(left)} process(es) of the killed worker's sandbox still run "
                f"{SANDBOX_GRACE_SECONDS:g} s after the kill (bwrap --die-with-parent, engine/sandbox.py): {left}"
            ) from None
        # What the killed worker held stays behind: its task's directory, its agent's prompt.
        left = [Path(workdir).parent, Path(agent.argv[-2]).parents[1]]  # {workdir}'s, {prompt_file}'s
        assert left[0].name.startswith(WORK_TREE_PREFIX) and left[1].name.startswith(PRIVATE_PREFIX), left
        assert left[1].parent == tmpdir and all(path.is_dir() for path in left), left
        # The last task's dependencies had completed, and recorded their commits.
        before = {t["id"]: t for t in await api.tasks(project_id)}
        assert all(before[slug]["status"] == "succeeded" and before[slug]["commit_sha"] for slug in QUICK), before

        # The retry: a new agent run of the same task, on the worker still alive, in a new work tree.
        async def retry_agent() -> list[Proc]:
            return [
                proc
                for proc, now in agents_of(stack, LAST)
                if proc.argv[-1] != workdir and survivor.proc.pid in ancestors(now, proc.pid)
            ]

        await eventually(retry_agent, 60, f"task {LAST} to run again on the other worker, in a new work tree")

        ready = await api.wait_status(project_id, "ready", timeout=120)
        assert ready["artifact_ready"] is True
        assert survivor.alive, survivor.tail()

        # The next worker to start sweeps away what the killed one left (forgeflow.worker).
        assert all(path.exists() for path in left), left
        stack.start_worker(TMPDIR=str(tmpdir))

        async def swept() -> bool:
            return not any(path.exists() for path in left)

        await eventually(swept, 60, f"a new worker to remove what the killed one left: {left}")

        tasks = {t["id"]: t for t in await api.tasks(project_id)}
        assert set(tasks) == {*QUICK, LAST}
        assert all(t["status"] == "succeeded" and len(t["commit_sha"] or "") == 40 for t in tasks.values()), tasks
        # A completed task is never built again; the interrupted one was, and only it.
        assert {slug: tasks[slug]["attempts"] for slug in QUICK} == dict.fromkeys(QUICK, 1), tasks
        assert tasks[LAST]["attempts"] >= 2, tasks[LAST]
        # The quick tasks' commits are the ones recorded before the kill.
        assert {slug: tasks[slug]["commit_sha"] for slug in QUICK} == {
            slug: before[slug]["commit_sha"] for slug in QUICK
        }

        # The ZIP holds every task's file.
        data = await api.artifact(project_id)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
        for path in FILES.values():
            assert any(n.endswith(f"/{path}") for n in names), (path, names)

        # The bundle's task branches are the commits on the task rows; the retried task's
        # commit holds its own files alone, its notes written once: a clean work tree.
        bundle = await api.http.get(f"/projects/{project_id}/bundle")
        assert bundle.status_code == 200, bundle.text
        (tmp_path / "project.bundle").write_bytes(bundle.content)
        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "-q", str(tmp_path / "project.bundle"), str(clone)], check=True)
        for slug, task in tasks.items():
            assert task["branch_name"] == f"feat/task-{task['sequence']:03d}-{slug}", task
            assert git(clone, "rev-parse", f"origin/{task['branch_name']}").strip() == task["commit_sha"], slug
        last_branch = f"origin/{tasks[LAST]['branch_name']}"
        assert git(clone, "show", "--name-only", "--format=", last_branch).split() == ["tests/NOTES.md", FILES[LAST]]
        assert git(clone, "show", f"{last_branch}:tests/NOTES.md") == f"- {LAST}: done\n"

        # Every agent run that finished was recorded once: one per task.
        usage = (await api.http.get(f"/projects/{project_id}/usage")).json()
        assert {t["task_id"]: t["input_tokens"] for t in usage["by_task"]} == dict.fromkeys(FILES, 1000), usage
        succeeded = Counter(e["task_id"] for e in await api.events(project_id, type="task_succeeded"))
        assert succeeded == Counter(list(FILES)), succeeded

    # Temporal's own record: each task scheduled once; the quick ones completed on their
    # first attempt, the interrupted one on a later attempt.
    activities = await coding_activities(stack, project_id)
    assert set(activities) == set(FILES), activities
    assert all(a.scheduled == 1 and a.completed for a in activities.values()), activities
    assert {slug: activities[slug].attempt for slug in QUICK} == dict.fromkeys(QUICK, 1), activities
    assert activities[LAST].attempt >= 2, activities[LAST]
