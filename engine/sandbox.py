"""Run a program that forgeflow did not write (template hooks and checks today, coding
agents next) under bubblewrap: a read-only system, the given directories writable, a
private /tmp (also its HOME), no network, no worker data, no secrets in the environment,
its own PID namespace, no capabilities, and resource limits.

As root (CI, most containers) bwrap runs privileged, so the program is switched to an
unprivileged uid inside (``setpriv``): root keeps every capability and is exempt from
RLIMIT_NPROC, and with them a program can remount the read-only system read-write.
Without bwrap (or namespaces) trusted code runs as a plain subprocess with a warning and
untrusted code does not run at all. RELIABILITY.md ("The sandbox") lists what this does
not cover."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

from engine import EngineError

log = logging.getLogger("forgeflow.sandbox")

MIB = 1 << 20
OUTPUT_TAIL = 4000  # characters of a program's output kept for its error message
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Enough of /etc for the dynamic linker, user names, time zones, TLS and `alternatives`
# links; no shadow, no ssh keys, no machine configuration beyond that.
ETC = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "passwd",
    "group",
    "nsswitch.conf",
    "hosts",
    "localtime",
    "ssl",
    "ca-certificates",
    "mime.types",
)
ETC_NETWORK = ("resolv.conf", "gai.conf", "host.conf")


class SandboxUnavailable(EngineError):
    """Untrusted code was to run, but no sandbox can be made here."""


@dataclass(frozen=True)
class Limits:
    timeout_seconds: float = 300  # wall clock; then the whole sandbox is killed
    cpu_seconds: int = 300  # RLIMIT_CPU: SIGXCPU, then SIGKILL 5 s later
    memory_bytes: int = 1024 * MIB  # RLIMIT_AS: address space, per process
    processes: int = 256  # RLIMIT_NPROC, counted per uid (see RELIABILITY.md)
    file_bytes: int = 1024 * MIB  # RLIMIT_FSIZE: largest file it may write
    tmp_bytes: int = 256 * MIB  # size of its private /tmp (and of /dev/shm)


@dataclass(frozen=True)
class SandboxConfig:
    mode: Literal["bwrap", "off"] = "bwrap"  # off: trusted code only, unsandboxed
    limits: Limits = field(default_factory=Limits)
    network: bool = False
    # Never visible, even where they lie under a mounted directory: the data dir, the database.
    hidden: tuple[Path, ...] = ()
    read_only: tuple[Path, ...] = ()  # more read-only directories (toolchains)
    uid: int = 65534  # who (uid and gid) the program runs as when the worker is root


@dataclass(frozen=True)
class Outcome:
    returncode: int
    output: str  # the tail of stdout and stderr, interleaved
    sandboxed: bool
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def reason(self, limits: Limits) -> str:
        if self.timed_out:
            return f"timed out after {limits.timeout_seconds:g} s: the sandbox was killed"
        # bwrap reports a signal as 128 + its number, a plain subprocess as minus it.
        number = -self.returncode if self.returncode < 0 else self.returncode - 128 if self.sandboxed else 0
        names = {signal.SIGXCPU: "CPU time limit", signal.SIGXFSZ: "file size limit", signal.SIGKILL: "killed"}
        if number in names:
            return f"exit status {self.returncode} ({signal.Signals(number).name}: {names[signal.Signals(number)]})"
        return f"exit status {self.returncode}"


def clean_env(home: str) -> dict[str, str]:
    """PATH and locale only: API keys, database URLs and cloud credentials stay out."""
    python_dir = str(Path(sys.executable).parent)
    return {
        "PATH": os.pathsep.join([python_dir, os.environ.get("PATH", "/usr/bin:/bin")]),
        "HOME": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def python_dirs() -> list[Path]:
    """Where this interpreter lives (a venv and the Python it was made from), so the
    program can run ``python``."""
    dirs = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    dirs.add(Path(sys.executable).resolve().parent.parent)
    return sorted(d for d in dirs if not d.is_relative_to("/usr"))


def prlimit_argv(limits: Limits) -> list[str]:
    """Set by ``prlimit`` (exec'd before bwrap, inherited by all it starts), not a
    preexec_fn: that is unsafe in the worker's threaded process."""
    return [
        shutil.which("prlimit") or "prlimit",
        f"--as={limits.memory_bytes}",
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 5}",
        f"--nproc={limits.processes}",
        f"--fsize={limits.file_bytes}",
        "--core=0",  # no core dumps: a core_pattern helper would run outside the sandbox
        "--",
    ]


def bwrap_argv(config: SandboxConfig, *, cwd: Path, writable: Sequence[Path], read_only: Sequence[Path]) -> list[str]:
    root = os.geteuid() == 0
    argv = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session"]
    argv += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
    if not config.network:
        argv.append("--unshare-net")
    if root:
        # No user namespace (it would map the program to root): setpriv below switches uid
        # and needs three of these; bwrap's --chdir into the switched uid's own 0700
        # directory needs the fourth. setpriv drops them all, and the bounding set, before exec.
        caps = ("SETUID", "SETGID", "SETPCAP", "DAC_READ_SEARCH")
        argv += ["--cap-drop", "ALL"] + [a for c in caps for a in ("--cap-add", f"CAP_{c}")]
    else:
        argv += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    for name in ETC + (ETC_NETWORK if config.network else ()):
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    for tmp in ("/tmp", "/dev/shm"):
        argv += ["--perms", "1777", "--size", str(config.limits.tmp_bytes), "--tmpfs", tmp]
    # Later mounts go on top: these after /tmp, which might hold them (a venv, a script).
    mounted = [*python_dirs(), *(p.resolve() for p in (*config.read_only, *read_only))]
    for path in mounted:
        argv += [*_parents(path), "--ro-bind", str(path), str(path)]
    for hidden in (p.resolve() for p in config.hidden):
        if hidden.exists() and any(hidden.is_relative_to(m) for m in [Path("/usr"), *mounted]):
            argv += ["--tmpfs", str(hidden)] if hidden.is_dir() else ["--ro-bind", "/dev/null", str(hidden)]
    for path in (p.resolve() for p in writable):
        argv += [*_parents(path), "--bind", str(path), str(path)]
    argv += ["--chdir", str(cwd.resolve())]
    if root:
        uid = str(config.uid)
        argv += ["--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        argv += ["--inh-caps=-all", "--bounding-set=-all"]
    return [*argv, "--"]


def _parents(path: Path) -> list[str]:
    # bwrap makes a mount point's missing parents 0700, which the switched uid cannot
    # enter (/root/.pyenv/...); --dir makes them 0755.
    return ["--dir", str(path.parent)] if path.parent != Path("/") else []


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    """Never following symlinks: the program may have left some pointing anywhere."""
    os.chown(top, uid, gid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


@lru_cache
def unavailable_reason(config: SandboxConfig) -> str | None:
    """Why no sandbox can be made here, or None: tried once per process and configuration."""
    for tool in ("bwrap", "prlimit", *(("setpriv",) if os.geteuid() == 0 else ())):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install bubblewrap util-linux)"
    with tempfile.TemporaryDirectory(prefix="ff-probe-") as tmp:
        probe = _launch(["true"], config, Path(tmp), [Path(tmp)], [])
    if probe.ok:
        return None
    return f"bwrap cannot make a sandbox here: {probe.output.strip() or probe.reason(Limits())}"


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    config: SandboxConfig,
    trusted: bool,
    writable: Sequence[Path] | None = None,
    read_only: Sequence[Path] = (),
) -> Outcome:
    """Run ``argv`` in ``cwd``; only ``writable`` (default: ``cwd``) may be written.
    Untrusted code without a sandbox raises SandboxUnavailable, naming the reason."""
    # Limits do not decide whether a sandbox can be made: one probe serves them all.
    why = "FORGEFLOW_SANDBOX is off" if config.mode == "off" else unavailable_reason(replace(config, limits=Limits()))
    if why is None:
        return _launch(list(argv), config, cwd, list(writable or [cwd]), list(read_only))
    if not trusted:
        raise SandboxUnavailable(f"refusing to run untrusted code without a sandbox: {why}")
    log.warning("running trusted %s without a sandbox: %s", Path(argv[0]).name, why)
    with tempfile.TemporaryDirectory(prefix="ff-home-") as home:
        return _start(list(argv), clean_env(home), cwd, config.limits, sandboxed=False)


def _launch(argv: list[str], config: SandboxConfig, cwd: Path, writable: list[Path], read_only: list[Path]) -> Outcome:
    root = os.geteuid() == 0
    if root:  # the switched uid writes there; the worker gets its files back afterwards
        for path in writable:
            _chown_tree(path, config.uid, config.uid)
    try:
        command = bwrap_argv(config, cwd=cwd, writable=writable, read_only=read_only) + argv
        return _start(command, clean_env("/tmp"), cwd, config.limits, sandboxed=True)
    finally:
        if root:
            for path in writable:
                _chown_tree(path, os.getuid(), os.getgid())


def _start(argv: list[str], env: dict[str, str], cwd: Path, limits: Limits, *, sandboxed: bool) -> Outcome:
    info_read, info_write = os.pipe()
    os.set_blocking(info_read, False)
    if sandboxed:  # bwrap writes the host pid of the sandbox's init there
        argv = [argv[0], "--info-fd", str(info_write), *argv[1:]]
    command = prlimit_argv(limits) + argv if shutil.which("prlimit") else argv
    with tempfile.TemporaryFile() as output:  # on disk and bounded by RLIMIT_FSIZE, not in memory
        try:
            proc = subprocess.Popen(
                command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True, pass_fds=(info_write,) if sandboxed else (),
            )  # fmt: skip
        except OSError as exc:
            os.close(info_read)
            return Outcome(-1, str(exc), sandboxed)
        finally:
            os.close(info_write)
        timed_out = False
        try:
            proc.wait(timeout=limits.timeout_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(proc, info_read)
        finally:
            os.close(info_read)
        output.seek(max(0, os.fstat(output.fileno()).st_size - 4 * OUTPUT_TAIL))
        text = output.read().decode("utf-8", "replace")[-OUTPUT_TAIL:]
    return Outcome(proc.returncode, text, sandboxed, timed_out)


def _kill(proc: subprocess.Popen[bytes], info_read: int) -> None:
    """Kill bwrap's process group and the sandbox's init (its PID namespace goes with it),
    and wait for the init to be gone. --die-with-parent alone would do it a moment later:
    the caller is about to take the files back and read them, with nothing still writing."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        init = json.loads(os.read(info_read, 65536).decode()).get("child-pid")
    except (OSError, ValueError):
        return  # never sandboxed, or killed before its setup was done
    if not isinstance(init, int):
        return
    try:
        os.kill(init, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(init):
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
