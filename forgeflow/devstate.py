"""Where a running ``forgeflow dev`` stack lives, so commands run beside it use its data.

``forgeflow dev`` writes one small file per stack (``dev-<pid>.json``) into a per-user
directory — ``$XDG_RUNTIME_DIR/forgeflow``, else ``$XDG_STATE_HOME/forgeflow``, else
``~/.local/state/forgeflow`` — and removes it when it stops. A file whose process is gone
(``dev`` was SIGKILLed) is ignored and cleared. ``forgeflow keys …`` and ``forgeflow
temporal-cli`` then use that stack's data directory, database and Temporal address when
the environment names none: without this, ``keys create`` run from another directory made
a new ``./.forgeflow/forgeflow.db`` and printed a key the running API did not know.

The file is advisory: an explicit ``FORGEFLOW_*`` variable always wins, and it never
holds a secret (a database URL with a password is left out)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


@dataclass(frozen=True)
class DevStack:
    pid: int
    started: str  # the process's start time (/proc): a reused pid is not this stack
    cwd: str
    data_dir: str
    database_url: str | None  # None: the stack's URL holds a password and is not written down
    temporal_address: str
    namespace: str
    api_url: str


def state_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "forgeflow"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "forgeflow"


def process_started(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat),
    "" where there is no /proc: together with the pid it names one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # fields after the command name start at 3


def shareable_database_url(url: str) -> str | None:
    try:
        return None if make_url(url).password else url
    except ArgumentError:
        return None


def record(stack: DevStack) -> Path:
    """Write the stack's file (mode 0600, atomically: a reader never sees half of it)."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"dev-{stack.pid}.json"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".dev-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(stack), handle, indent=2)
    os.replace(tmp, path)
    return path


def forget(path: Path) -> None:
    path.unlink(missing_ok=True)


def _alive(stack: DevStack) -> bool:
    try:
        os.kill(stack.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's: not a stack of ours
        return False
    return process_started(stack.pid) == stack.started


def running() -> list[DevStack]:
    """The dev stacks alive now, newest pid first; stale files are removed on the way."""
    stacks = []
    for path in sorted(state_dir().glob("dev-*.json")):
        try:
            stack = DevStack(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if _alive(stack):
            stacks.append(stack)
        else:
            forget(path)
    return sorted(stacks, key=lambda s: s.pid, reverse=True)


def the_running_stack(warn: Callable[[str], None]) -> DevStack | None:
    """The one stack to use: the only one running, else the only one started from this
    directory; several and no way to choose: none, with a warning naming them."""
    stacks = running()
    if len(stacks) <= 1:
        return stacks[0] if stacks else None
    here = [s for s in stacks if s.cwd == os.getcwd()]
    if len(here) == 1:
        return here[0]
    listed = "; ".join(f"pid {s.pid}: {s.data_dir}" for s in stacks)
    warn(f"several forgeflow dev stacks are running ({listed}); set FORGEFLOW_DATA_DIR to pick one")
    return None


def adopt(*, data: bool, temporal: bool, warn: Callable[[str], None]) -> DevStack | None:
    """Point this process's settings at the running dev stack, for what the environment
    leaves unset: its data directory and database (``data``), its Temporal (``temporal``).
    Returns the stack whose settings were taken, if any."""
    env = os.environ
    wants_data = data and not ({"FORGEFLOW_DATA_DIR", "FORGEFLOW_DATABASE_URL"} & env.keys())
    wants_temporal = temporal and "FORGEFLOW_TEMPORAL_ADDRESS" not in env
    if not (wants_data or wants_temporal):
        return None
    stack = the_running_stack(warn)
    if stack is None:
        return None
    if wants_data and stack.database_url is None:
        # Half of it (the data directory without the database) would be worse than none.
        warn(
            f"the running dev stack (pid {stack.pid}) uses a database URL with a password, not written down: "
            f"set FORGEFLOW_DATABASE_URL and FORGEFLOW_DATA_DIR={stack.data_dir}"
        )
    elif wants_data and stack.database_url:
        env["FORGEFLOW_DATA_DIR"] = stack.data_dir
        env["FORGEFLOW_DATABASE_URL"] = stack.database_url
    if wants_temporal:
        env["FORGEFLOW_TEMPORAL_ADDRESS"] = stack.temporal_address
        env.setdefault("FORGEFLOW_NAMESPACE", stack.namespace)
    from forgeflow.settings import get_settings

    get_settings.cache_clear()
    return stack
