"""The coding agent's configuration: what it accepts, what it refuses (naming the variable),
and whether this worker can run it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from agents.coding.config import (
    DEFAULT_PERMISSION_ARGS,
    AgentKind,
    CodingAgentConfig,
    check_available,
    config_for,
)
from agents.coding.runners import AgentUnavailable, build_argv, program_dirs, run_coding_agent
from engine import EngineError
from engine.sandbox import SandboxConfig
from forgeflow.coding import coding_agent_configs
from forgeflow.settings import Settings


def test_each_kind_has_its_program_and_a_command_is_split_like_a_shell_would():
    assert CodingAgentConfig(kind=AgentKind.CLAUDE_CODE).executable == ["claude"]
    assert CodingAgentConfig.model_validate({"kind": "codex"}).executable == ["codex"]
    spaced = CodingAgentConfig.model_validate({"kind": "claude-code", "executable": "/opt/my tools/claude"})
    assert spaced.executable == ["/opt/my tools/claude"]  # one path, never split
    command = CodingAgentConfig.model_validate(
        {"kind": "command", "executable": "my-agent --prompt {prompt_file} --note 'two words'"}
    )
    assert command.executable == ["my-agent", "--prompt", "{prompt_file}", "--note", "two words"]
    assert CodingAgentConfig().kind is AgentKind.BUILTIN and CodingAgentConfig().timeout_seconds == 1800


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "command"}, "the command agent needs its argv"),
        ({"kind": "command", "executable": "a {prompt}"}, "unknown placeholder {prompt}"),
        ({"kind": "command", "executable": "a --model {model}"}, "uses {model}, but no model is set"),
        ({"kind": "codex", "pass_env": ["OPENAI API KEY"]}, "is not a variable name"),
        ({"kind": "codex", "pass_env": ["PATH"]}, "PATH is the sandbox's own"),
        ({"kind": "codex", "max_cost_usd_per_task": float("nan")}, "finite number"),
        ({"kind": "aider"}, "Input should be 'builtin', 'claude-code', 'codex' or 'command'"),
        ({"kind": "codex", "timeout_seconds": 0}, "greater than 0"),
    ],
)
def test_a_bad_configuration_is_refused_saying_why(fields, message):
    with pytest.raises(ValidationError, match=message):
        CodingAgentConfig.model_validate(fields)


def settings_from(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> Settings:
    """The worker's settings as these environment variables make them (and no others of
    the coding agents')."""
    for name in list(os.environ):
        if name.startswith(("FORGEFLOW_AGENT_", "FORGEFLOW_CODING_AGENT")):
            monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_the_workers_variables_make_its_configuration(monkeypatch):
    settings = settings_from(
        monkeypatch,
        {
            "FORGEFLOW_CODING_AGENT": "claude-code",
            "FORGEFLOW_AGENT_EXECUTABLE": "/opt/claude/bin/claude",
            "FORGEFLOW_AGENT_MODEL": "claude-sonnet-4-5",
            "FORGEFLOW_AGENT_MAX_TURNS": "40",
            "FORGEFLOW_AGENT_TIMEOUT_SECONDS": "900",
            "FORGEFLOW_AGENT_MEMORY_MB": "8192",
            "FORGEFLOW_AGENT_NETWORK": "true",
            "FORGEFLOW_AGENT_PASS_ENV": "ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL,",
            "FORGEFLOW_AGENT_MAX_COST_USD_PER_TASK": "2.5",
            "FORGEFLOW_AGENT_EXTRA_ARGS": "--verbose --append-system-prompt 'Be brief.'",
            "FORGEFLOW_AGENT_PERMISSION_ARGS": "--permission-mode acceptEdits",
            "FORGEFLOW_LLM_MODEL": "not ours",
        },
    )
    assert config_for(settings, AgentKind.CLAUDE_CODE) == CodingAgentConfig(
        kind=AgentKind.CLAUDE_CODE,
        executable=["/opt/claude/bin/claude"],
        model="claude-sonnet-4-5",
        max_turns=40,
        timeout_seconds=900,
        memory_mb=8192,
        network=True,
        pass_env=["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"],
        max_cost_usd_per_task=2.5,
        extra_args=["--verbose", "--append-system-prompt", "Be brief."],
        permission_args=["--permission-mode", "acceptEdits"],
    )
    # The worker's configurations are these (the program must be there: check_available).
    monkeypatch.setenv("FORGEFLOW_AGENT_EXECUTABLE", sys.executable)
    configs = coding_agent_configs(Settings())
    assert list(configs) == [AgentKind.CLAUDE_CODE]
    assert configs[AgentKind.CLAUDE_CODE].max_cost_usd_per_task == 2.5
    assert configs[AgentKind.CLAUDE_CODE].extra_args == ["--verbose", "--append-system-prompt", "Be brief."]


def test_unset_variables_leave_the_kinds_defaults(monkeypatch):
    command = config_for(settings_from(monkeypatch, {"FORGEFLOW_AGENT_COMMAND": "run {workdir}"}), AgentKind.COMMAND)
    assert command.executable == ["run", "{workdir}"] and not command.network
    codex = config_for(settings_from(monkeypatch, {}), AgentKind.CODEX)
    assert codex == CodingAgentConfig(kind=AgentKind.CODEX)
    assert codex.executable == ["codex"] and codex.permissions == DEFAULT_PERMISSION_ARGS[AgentKind.CODEX]
    assert codex.max_cost_usd_per_task is None and codex.extra_args == []


@pytest.mark.parametrize(
    ("values", "kind", "named"),
    [
        ({"FORGEFLOW_AGENT_PASS_ENV": "HOME"}, AgentKind.CODEX, "FORGEFLOW_AGENT_PASS_ENV"),
        ({}, AgentKind.COMMAND, "FORGEFLOW_AGENT_COMMAND"),
        ({"FORGEFLOW_AGENT_COMMAND": "x {nope}"}, AgentKind.COMMAND, "FORGEFLOW_AGENT_COMMAND"),
        ({"FORGEFLOW_AGENT_COMMAND": "x {model}"}, AgentKind.COMMAND, "FORGEFLOW_AGENT_COMMAND"),
    ],
)
def test_a_bad_variable_is_named(monkeypatch, values, kind, named):
    settings = settings_from(monkeypatch, values)
    with pytest.raises(ValueError, match=named):
        config_for(settings, kind)


@pytest.mark.parametrize(
    "values",
    [
        {"FORGEFLOW_CODING_AGENT": "gpt"},
        {"FORGEFLOW_AGENT_TIMEOUT_SECONDS": "soon"},
        {"FORGEFLOW_AGENT_NETWORK": "perhaps"},
        {"FORGEFLOW_AGENT_MAX_TURNS": "0"},
        {"FORGEFLOW_AGENT_MAX_COST_USD_PER_TASK": "-1"},
        {"FORGEFLOW_AGENT_MAX_COST_USD_PER_TASK": "inf"},
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_with_the_settings(monkeypatch, values):
    (name,) = values
    with pytest.raises(ValidationError, match=name.removeprefix("FORGEFLOW_").lower()):
        settings_from(monkeypatch, values)


def test_check_available_finds_the_program_on_path_or_says_it_is_missing(tmp_path, monkeypatch):
    missing = CodingAgentConfig(kind=AgentKind.CLAUDE_CODE, executable=["ff-no-such-claude"])
    assert (
        check_available(missing)
        == "the claude-code coding agent's program 'ff-no-such-claude' is not on this worker's PATH"
    )
    absent = CodingAgentConfig(kind=AgentKind.COMMAND, executable=[str(tmp_path / "agent"), "{prompt_file}"])
    assert (
        check_available(absent)
        == f"the command coding agent's program '{tmp_path / 'agent'}' is not an executable file"
    )
    (tmp_path / "codex").write_text("#!/bin/sh\n")
    (tmp_path / "codex").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert check_available(CodingAgentConfig(kind=AgentKind.CODEX)) is None
    assert check_available(CodingAgentConfig()) is None  # builtin: nothing to find
    with pytest.raises(AgentUnavailable, match="ff-no-such-claude"):
        run_coding_agent(config=missing, prompt="x", workdir=tmp_path, sandbox=SandboxConfig())


def test_the_builtin_agent_is_not_run_here(tmp_path):
    with pytest.raises(EngineError, match="the built-in coding agent runs in the workflow"):
        run_coding_agent(config=CodingAgentConfig(), prompt="x", workdir=tmp_path, sandbox=SandboxConfig())


def test_argv_each_kind_gets():
    prompt, work = Path("/tmp/p/in/prompt.md"), Path("/w/{model}")
    claude = CodingAgentConfig(kind=AgentKind.CLAUDE_CODE, executable=["npx", "claude"], extra_args=["--verbose"])
    assert build_argv(claude, program="/usr/bin/npx", prompt_file=prompt, workdir=work) == [
        "/usr/bin/npx", "claude", "-p", "--output-format", "json", "--dangerously-skip-permissions", "--verbose",
    ]  # fmt: skip
    codex = CodingAgentConfig(kind=AgentKind.CODEX, permission_args=[], max_cost_usd_per_task=1)
    assert build_argv(codex, program="/bin/codex", prompt_file=prompt, workdir=work) == [
        "/bin/codex", "exec", "--json", "--skip-git-repo-check", "-",
    ]  # fmt: skip
    # A value holding a placeholder (the work tree's path) is never substituted again.
    command = CodingAgentConfig(kind=AgentKind.COMMAND, executable=["a", "{workdir}", "-m={model}"], model="x{workdir}")
    assert build_argv(command, program="/bin/a", prompt_file=prompt, workdir=work) == [
        "/bin/a", "/w/{model}", "-m=x{workdir}",
    ]  # fmt: skip


def test_a_program_in_a_directory_holding_the_work_tree_is_refused(tmp_path):
    (tmp_path / "work").mkdir()
    with pytest.raises(AgentUnavailable, match="which holds its work tree"):
        program_dirs(str(tmp_path / "agent"), workdir=tmp_path / "work")
    assert program_dirs("/usr/bin/python3", workdir=tmp_path / "work") == []  # the sandbox shows /usr anyway
    assert program_dirs(str(tmp_path / "bin" / "a"), workdir=tmp_path / "work") == [tmp_path / "bin"]
