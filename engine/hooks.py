"""Template hooks and check commands: only for trusted templates, each in the sandbox
(engine/sandbox.py) with a time limit and an environment that carries no secrets of the
worker."""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cookiecutter.hooks import valid_hook
from cookiecutter.utils import create_env_with_context

from engine import EngineError
from engine.sandbox import Outcome, SandboxConfig
from engine.sandbox import run as run_sandboxed

HOOK_NAMES = ("pre_gen_project", "post_gen_project")
# Each at most: the sandbox's own time limit may be lower.
HOOK_TIMEOUT = 120
CHECK_TIMEOUT = 300


def find_hooks(template_path: Path, hook_name: str) -> list[Path]:
    hooks_dir = template_path / "hooks"
    if not hooks_dir.is_dir():
        return []
    return sorted(hooks_dir / name for name in os.listdir(hooks_dir) if valid_hook(name, hook_name))


def has_hooks(template_path: Path) -> bool:
    return any(find_hooks(template_path, name) for name in HOOK_NAMES)


@dataclass(frozen=True)
class CommandResult:
    command: str
    ok: bool
    output: str


def _limited(sandbox: SandboxConfig, seconds: float) -> SandboxConfig:
    limits = sandbox.limits
    return replace(sandbox, limits=replace(limits, timeout_seconds=min(limits.timeout_seconds, seconds)))


def _failure(outcome: Outcome, sandbox: SandboxConfig) -> str:
    """The program's own last words, then how it ended."""
    output = outcome.output.strip()[-2000:]
    return f"{output}\n{outcome.reason(sandbox.limits)}" if output else outcome.reason(sandbox.limits)


def run_hook(
    template_path: Path,
    hook_name: str,
    project_dir: Path,
    context: dict[str, Any],
    *,
    sandbox: SandboxConfig,
    trusted: bool,
) -> list[str]:
    """Render each hook script with the context (as cookiecutter does) and run it in the
    project directory. Returns the scripts run; raises EngineError when one fails."""
    ran = []
    env = create_env_with_context(context)
    sandbox = _limited(sandbox, HOOK_TIMEOUT)
    for script in find_hooks(template_path, hook_name):
        rendered = env.from_string(script.read_text(encoding="utf-8")).render(**context)
        with tempfile.TemporaryDirectory(prefix="ff-hook-") as tmp:
            target = Path(tmp) / script.name
            target.write_text(rendered, encoding="utf-8")
            # Mounted read-only in the sandbox, where the program runs as another uid.
            os.chmod(tmp, 0o755)
            target.chmod(0o755)
            command = [sys.executable, str(target)] if script.suffix == ".py" else [str(target)]
            outcome = run_sandboxed(command, cwd=project_dir, config=sandbox, trusted=trusted, read_only=[Path(tmp)])
        if not outcome.ok:
            raise EngineError(f"hook {script.name} failed ({_failure(outcome, sandbox)})")
        ran.append(script.name)
    return ran


def run_check(command: str, project_dir: Path, *, sandbox: SandboxConfig, trusted: bool) -> CommandResult:
    argv = shlex.split(command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable  # the worker's interpreter, not whatever PATH finds first
    sandbox = _limited(sandbox, CHECK_TIMEOUT)
    outcome = run_sandboxed(argv, cwd=project_dir, config=sandbox, trusted=trusted)
    output = outcome.output.strip() if outcome.ok else _failure(outcome, sandbox)
    return CommandResult(command=command, ok=outcome.ok, output=output)
