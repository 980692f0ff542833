"""Template hooks and check commands: only for trusted templates, each in a subprocess
with a timeout and an environment that carries no secrets of the worker."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cookiecutter.hooks import valid_hook
from cookiecutter.utils import create_env_with_context

from engine import EngineError

HOOK_NAMES = ("pre_gen_project", "post_gen_project")
HOOK_TIMEOUT = 120
CHECK_TIMEOUT = 300


def clean_env(home: Path) -> dict[str, str]:
    """PATH and locale only: API keys, database URLs and cloud credentials stay out."""
    python_dir = str(Path(sys.executable).parent)
    return {
        "PATH": os.pathsep.join([python_dir, os.environ.get("PATH", "/usr/bin:/bin")]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


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


def _run(command: list[str], cwd: Path, timeout: int) -> tuple[int, str]:
    with tempfile.TemporaryDirectory(prefix="ff-home-") as home:
        try:
            done = subprocess.run(
                command,
                cwd=cwd,
                env=clean_env(Path(home)),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return -1, f"timed out after {timeout} s"
        except OSError as exc:
            return -1, str(exc)
    return done.returncode, (done.stdout + done.stderr)[-2000:]


def run_hook(template_path: Path, hook_name: str, project_dir: Path, context: dict[str, Any]) -> list[str]:
    """Render each hook script with the context (as cookiecutter does) and run it in the
    project directory. Returns the scripts run; raises EngineError when one fails."""
    ran = []
    env = create_env_with_context(context)
    for script in find_hooks(template_path, hook_name):
        rendered = env.from_string(script.read_text(encoding="utf-8")).render(**context)
        with tempfile.TemporaryDirectory(prefix="ff-hook-") as tmp:
            target = Path(tmp) / script.name
            target.write_text(rendered, encoding="utf-8")
            target.chmod(0o700)
            command = [sys.executable, str(target)] if script.suffix == ".py" else [str(target)]
            code, output = _run(command, project_dir, HOOK_TIMEOUT)
        if code != 0:
            raise EngineError(f"hook {script.name} failed ({output.strip() or f'exit status {code}'})")
        ran.append(script.name)
    return ran


def run_check(command: str, project_dir: Path) -> CommandResult:
    argv = shlex.split(command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable  # the worker's interpreter, not whatever PATH finds first
    code, output = _run(argv, project_dir, CHECK_TIMEOUT)
    return CommandResult(command=command, ok=code == 0, output=output.strip())
