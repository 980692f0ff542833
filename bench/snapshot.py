"""A copy of the source tree taken when the run starts: every process of the run (the
bench itself, the workers, the API) imports forgeflow from it, so edits made to the
checkout during a long run cannot mix two versions of the code in one measurement."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("forgeflow", "workflows", "activities", "agents", "api", "engine", "store", "bench")
FILES = ("temporal-dev.yaml",)
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "results")


def take_snapshot(dest: Path) -> Path:
    """Copy the packages into ``dest`` and check that the copy imports; return ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PACKAGES:
        shutil.copytree(REPO / name, dest / name, ignore=IGNORE, symlinks=True)
    for name in FILES:
        shutil.copy2(REPO / name, dest / name)
    check = "import forgeflow.worker, api.main, bench.bare, bench.runner"
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=dest, env={"PYTHONPATH": str(dest)}, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"the source tree does not import (edited right now?):\n{result.stderr[-2000:]}")
    return dest


def revision() -> str:
    """The checkout's commit, with ``+dirty`` when it has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
