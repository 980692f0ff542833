"""Scratch directories held by their process: a sweep removes the one whose process was
killed (SIGKILL: nothing of its own ran) and keeps those live processes hold, in this
process or another, and whatever it cannot judge."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from engine.scratch import LOCK, held_dir, sweep

ROOT = Path(__file__).parents[2]
PREFIX = "ff-task-"


def holder(parent: Path) -> tuple[subprocess.Popen[str], Path]:
    """Another process holding a directory of ``parent`` until it is killed."""
    code = textwrap.dedent(f"""\
        import sys, time
        from pathlib import Path
        from engine.scratch import held_dir
        with held_dir({PREFIX!r}, Path({str(parent)!r})) as path:
            print(path, flush=True)
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_a_killed_holders_directory_is_swept_and_live_ones_are_kept(tmp_path):
    killed, left = holder(tmp_path)
    live, kept = holder(tmp_path)
    try:
        (left / "git").mkdir()
        (left / "git" / "HEAD").write_text("ref: refs/heads/main\n")
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        assert left.is_dir() and kept.is_dir()  # nothing of the killed process's own ran
        unjudged = tmp_path / f"{PREFIX}older"  # no lock: an older worker's, maybe still in use
        unjudged.mkdir()
        other = tmp_path / "ff-agent-x"  # not what this sweep looks for
        other.mkdir()
        (other / LOCK).touch()
        with held_dir(PREFIX, tmp_path) as mine:
            assert sweep(tmp_path, PREFIX) == [left]
            assert not left.exists()
            assert kept.is_dir() and mine.is_dir() and unjudged.is_dir() and other.is_dir()
        assert not mine.exists()  # its own block's end removed it
    finally:
        live.kill()
        live.wait()
    # Its holder gone too: the next sweep takes it.
    assert sweep(tmp_path, PREFIX) == [kept]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ff-agent-x", f"{PREFIX}older"]


def test_a_released_directory_goes_to_its_remover_and_a_sweep_may_take_it_meanwhile(tmp_path):
    handed: list[Path] = []
    with held_dir(PREFIX, tmp_path, remove=handed.append) as path:
        assert (path / LOCK).is_file() and oct(path.stat().st_mode & 0o777) == "0o700"
        assert sweep(tmp_path, PREFIX) == []
    assert handed == [path] and path.is_dir()  # the remover's to delete, on its own time
    assert sweep(tmp_path, PREFIX) == [path]  # released: anyone may


def test_a_sweep_of_a_missing_directory_finds_nothing(tmp_path):
    assert sweep(tmp_path / "absent", PREFIX) == []


def test_a_symlink_named_like_a_held_directory_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / LOCK).touch()
    (tmp_path / f"{PREFIX}link").symlink_to(target)
    assert sweep(tmp_path, PREFIX) == []
    assert (target / LOCK).exists()
