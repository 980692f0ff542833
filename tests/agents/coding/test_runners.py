"""Each kind of coding agent, run for real in the real sandbox: doubles of claude and codex
printing what those tools document, and command agents, each writing into its work tree;
what the run came to is read from what they print."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agents.coding.config import AgentKind, CodingAgentConfig
from agents.coding.runners import run_coding_agent
from agents.coding.types import AgentRun
from engine.sandbox import SandboxConfig
from tests.agents.coding.fakes import claude_result, codex_events, given, install, needs_bwrap

pytestmark = needs_bwrap

PROMPT = "# Task 1 of 1: hello\n\nWrite hello.py.\n"


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the doubles live: on the worker's PATH, as an operator's install would be."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    tree = tmp_path / "work"
    tree.mkdir()
    (tree / "README.md").write_text("# Hello\n")
    return tree


def run(workdir: Path, prompt: str = PROMPT, **config: object) -> AgentRun:
    return run_coding_agent(
        config=CodingAgentConfig.model_validate(config), prompt=prompt, workdir=workdir, sandbox=SandboxConfig()
    )


def test_claude_code_writes_its_file_and_reports_cost_usage_and_session(bin_dir, workdir):
    install(bin_dir, "claude", f"pathlib.Path('hello.py').write_text('print(1)\\n')\nprint({claude_result()!r})\n")
    done = run_coding_agent(
        config=CodingAgentConfig(kind=AgentKind.CLAUDE_CODE, model="claude-sonnet-4-5", max_turns=30),
        prompt=PROMPT,
        workdir=workdir,
        sandbox=SandboxConfig(),
    )
    assert done.ok and done.error is None, done
    assert (workdir / "hello.py").read_text() == "print(1)\n"
    assert (workdir / "hello.py").stat().st_uid == os.getuid()  # the worker owns what it wrote
    assert (done.summary, done.cost_usd, done.num_turns) == ("Added hello.py.", 0.0421, 4)
    assert done.session_id == "0b1c2d3e-1111-2222-3333-444455556666"
    # Every input token, the cached ones included, and those apart too.
    assert (done.input_tokens, done.output_tokens) == (120 + 2000 + 30000, 640)
    assert (done.cache_read_tokens, done.cache_write_tokens) == (30000, 2000)
    seen = given(workdir)
    assert seen["stdin"] == PROMPT  # the prompt on stdin, never on the command line
    assert seen["argv"] == [
        "-p", "--output-format", "json", "--model", "claude-sonnet-4-5", "--max-turns", "30",
        "--dangerously-skip-permissions",
    ]  # fmt: skip


def test_claude_code_reporting_an_error_is_not_ok_and_says_what(bin_dir, workdir):
    failed = claude_result(subtype="error_during_execution", is_error=True, result="API Error: 401 invalid x-api-key")
    install(bin_dir, "claude", f"print({failed!r})\nsys.exit(1)\n")
    done = run(workdir, kind="claude-code")
    assert not done.ok and not done.timed_out
    assert "exit status 1" in done.error
    assert "claude-code reported an error (error_during_execution): API Error: 401 invalid x-api-key" in done.error
    assert done.cost_usd == 0.0421  # spent is spent: the caller records it


def test_claude_code_stopped_at_its_turn_limit_is_not_ok(bin_dir, workdir):
    # error_max_turns comes with is_error false: the subtype is what says it did not finish.
    install(bin_dir, "claude", f"print({claude_result(subtype='error_max_turns', result=None)!r})\n")
    done = run(workdir, kind="claude-code", max_turns=2)
    assert not done.ok and done.error == "claude-code stopped before it was done: error_max_turns"


def test_claude_code_gets_the_cap_as_its_budget_and_a_run_over_it_fails(bin_dir, workdir):
    install(bin_dir, "claude", f"print({claude_result(total_cost_usd=0.75)!r})\n")
    done = run(workdir, kind="claude-code", max_cost_usd_per_task=0.5)
    assert "--max-budget-usd" in given(workdir)["argv"]
    assert given(workdir)["argv"][given(workdir)["argv"].index("--max-budget-usd") + 1] == "0.5"
    assert not done.ok and done.error == "spent $0.75, over the task's cap $0.50"
    assert done.cost_usd == 0.75


def test_claude_code_printing_no_result_is_unreadable_named(bin_dir, workdir):
    install(bin_dir, "claude", "print('Hello! I edited some files.')\n")
    done = run(workdir, kind="claude-code")
    assert not done.ok
    assert 'expected Claude Code\'s JSON result (an object with "type": "result") on stdout' in done.error
    assert "Hello! I edited some files." in done.output_tail


def test_codex_sums_every_turns_usage_and_keeps_its_last_message(bin_dir, workdir):
    events = codex_events((24763, 24448, 122), (1000, 500, 80), message="Wrote hello.py")
    install(bin_dir, "codex", f"pathlib.Path('hello.py').write_text('print(2)\\n')\nprint({events!r})\n")
    done = run(workdir, kind="codex", model="gpt-5-codex")
    assert done.ok, done
    assert (workdir / "hello.py").read_text() == "print(2)\n"
    assert (done.input_tokens, done.cache_read_tokens, done.output_tokens) == (25763, 24948, 202)
    assert (done.num_turns, done.summary) == (2, "Wrote hello.py (1)")
    assert done.session_id == "0199a213-81c0-7800-8aa1-bbab2a035a53"
    assert done.cost_usd is None  # codex prints no cost
    seen = given(workdir)
    assert seen["argv"] == [
        "exec", "--json", "--skip-git-repo-check", "--model", "gpt-5-codex", "--sandbox", "danger-full-access", "-",
    ]  # fmt: skip
    assert seen["stdin"] == PROMPT


def test_a_failed_codex_turn_is_not_ok(bin_dir, workdir):
    events = codex_events((100, 0, 10)) + "\n" + json.dumps({"type": "turn.started"})
    events += "\n" + json.dumps({"type": "turn.failed", "error": {"message": "stream disconnected: quota exceeded"}})
    install(bin_dir, "codex", f"print({events!r})\nsys.exit(1)\n")
    done = run(workdir, kind="codex")
    assert not done.ok and "codex failed: stream disconnected: quota exceeded" in done.error
    assert (done.input_tokens, done.output_tokens) == (100, 10)  # what the turn before spent


def test_codex_under_a_cost_cap_fails_as_it_reports_no_cost(bin_dir, workdir):
    install(bin_dir, "codex", f"print({codex_events((10, 0, 5))!r})\n")
    done = run(workdir, kind="codex", max_cost_usd_per_task=1.0)
    assert not done.ok and done.error == "the codex agent reported no cost: the task's cap $1.00 cannot be kept"


def test_a_command_agents_last_line_reports_usage_cost_summary_and_risks(bin_dir, workdir):
    report = {
        "usage": {"input_tokens": 1500, "output_tokens": 300},
        "cost_usd": 0.02,
        "summary": "Built hello.py",
        "risks": ["no tests yet"],
    }
    agent = install(
        bin_dir,
        "my-agent",
        f"pathlib.Path('hello.py').write_text('')\nprint('log line')\nprint({json.dumps(report)!r})\n",
    )
    done = run(workdir, kind="command", executable=f"{agent.name} {{prompt_file}}", max_cost_usd_per_task=0.05)
    assert done.ok, done
    assert (done.input_tokens, done.output_tokens, done.cost_usd) == (1500, 300, 0.02)
    assert (done.summary, done.risks, done.session_id) == ("Built hello.py", ["no tests yet"], None)


def test_a_command_agent_printing_no_report_is_ok_with_nothing_counted(bin_dir, workdir):
    install(bin_dir, "quiet-agent", "pathlib.Path('hello.py').write_text('')\nprint('did it')\nprint('{not json')\n")
    done = run(workdir, kind="command", executable="quiet-agent")
    assert done.ok and done.error is None
    assert (done.input_tokens, done.output_tokens, done.cost_usd, done.summary) == (0, 0, None, "")
    assert "did it" in done.output_tail


def test_a_malformed_report_line_is_unreadable_naming_what_was_expected(bin_dir, workdir):
    install(bin_dir, "bad-agent", "print(json.dumps({'usage': {'input_tokens': 'lots'}, 'cost_usd': 0.1}))\n")
    done = run(workdir, kind="command", executable="bad-agent")
    assert not done.ok
    assert "its last line of stdout is JSON, but not a JSON object" in done.error
    assert "usage.input_tokens" in done.error


def test_placeholders_are_substituted_and_the_prompt_is_passed_literally(bin_dir, workdir, tmp_path):
    check = """\
    prompt_file, workdir, model = ARGV[1], ARGV[2].split("=", 1)[1], ARGV[3]
    assert ARGV[0] == "--prompt" and workdir == os.getcwd(), ARGV
    assert model == "m-1" and ARGV[4:] == ["{}", '{"json": 1}'], ARGV
    pathlib.Path("seen.json").write_text(json.dumps({"file": pathlib.Path(prompt_file).read_text(), "model": model}))
    """
    install(bin_dir, "templated", check)
    prompt = "$(touch pwned) `touch pwned2`; touch pwned3 && echo {workdir} {prompt_file} {model} > pwned4 | cat\n"
    argv = ["templated", "--prompt", "{prompt_file}", "--dir={workdir}", "{model}", "{}", '{"json": 1}']
    done = run(workdir, prompt, kind="command", executable=argv, model="m-1")
    assert done.ok, done
    seen = json.loads((workdir / "seen.json").read_text())
    assert seen == {"file": prompt, "model": "m-1"} and given(workdir)["stdin"] == prompt
    assert given(workdir)["argv"][2] == f"--dir={workdir}"
    assert not [p for p in (workdir, tmp_path, Path.cwd()) for q in p.iterdir() if q.name.startswith("pwned")]


def test_a_non_zero_exit_fails_with_the_programs_last_words(bin_dir, workdir):
    install(
        bin_dir, "crashing", "print('half done')\nprint('Traceback: something broke', file=sys.stderr)\nsys.exit(3)\n"
    )
    done = run(workdir, kind="command", executable="crashing")
    assert not done.ok and done.error.startswith("exit status 3: ")
    assert "Traceback: something broke" in done.error and "half done" in done.error
    assert "[stderr]" in done.output_tail and "[stdout]" in done.output_tail
