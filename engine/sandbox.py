"""Run a program that forgeflow did not write (template hooks and checks today, coding
agents next) under bubblewrap: a read-only system, the given directories writable, a
private /tmp (also its HOME), no network, no worker data, no secrets in the environment,
its own PID namespace, no capabilities, and resource limits.

As root (CI, most containers) bwrap runs privileged, so the program is switched to an
unprivileged uid inside (``setpriv``): root keeps every capability and is exempt from
RLIMIT_NPROC, and with them a program can remount the read-only system read-write.
Without bwrap (or namespaces) trusted code runs as a plain subprocess with a warning and
untrusted code does not run at all. RELIABILITY.md ("The sandbox") lists what this does
not cover.

Coding agents (agents/coding/) also need, and hooks do not: their stdout apart from stderr
(the result they print), a few variables of the worker's environment (their API key), their
prompt on stdin, and a heartbeat while they run, which ends them when it raises."""

from __future__ import annotations

import json
import logging
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

from engine import EngineError

log = logging.getLogger("forgeflow.sandbox")

MIB = 1 << 20
OUTPUT_TAIL = 4000  # characters of a program's output kept for its error message
STDOUT_LIMIT = 16 * MIB  # of a stdout kept apart: its last bytes, where a result is printed
TICK_SECONDS = 1.0  # how often on_tick is called while the program runs
WATCHDOG_GRACE_SECONDS = 10  # past its timeout, the sandbox ends itself if the worker has not
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
    # Bytes cut from the start of a stdout kept apart (``stdout=``) to keep it within its limit.
    stdout_dropped: int = 0

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
    return [*argv, "--", *_watchdog(config.limits)]


def _watchdog(limits: Limits) -> list[str]:
    """The sandbox's own clock, a little behind the worker's: --die-with-parent takes a moment
    to be set up in bwrap's own init, and a worker dying within it would leave the program
    running with nothing to end it (seen in tests: an agent still asleep minutes later)."""
    timeout = shutil.which("timeout")
    if timeout is None or not Path(timeout).resolve().is_relative_to("/usr"):
        return []  # only where the sandbox can see it
    return [timeout, "--signal=KILL", "--", str(math.ceil(limits.timeout_seconds) + WATCHDOG_GRACE_SECONDS)]


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


@dataclass(frozen=True)
class _Io:
    env: Mapping[str, str] = field(default_factory=dict)
    stdin: Path | None = None
    stdout: Path | None = None
    stdout_limit: int = STDOUT_LIMIT
    on_tick: Callable[[], None] | None = None


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    config: SandboxConfig,
    trusted: bool,
    writable: Sequence[Path] | None = None,
    read_only: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
    stdin: Path | None = None,
    stdout: Path | None = None,
    stdout_limit: int = STDOUT_LIMIT,
    on_tick: Callable[[], None] | None = None,
) -> Outcome:
    """Run ``argv`` in ``cwd``; only ``writable`` (default: ``cwd``) may be written.
    Untrusted code without a sandbox raises SandboxUnavailable, naming the reason.

    ``env``: variables added to the clean environment. ``stdin``: a file read as stdin
    (default: none). ``stdout``: a file that gets the program's stdout, its last
    ``stdout_limit`` bytes at most (Outcome.stdout_dropped says how many went), while
    Outcome.output then holds stderr's tail alone. ``on_tick``: called about every second
    while the program runs; whatever it raises (a cancelled activity) kills the program and
    everything it started, then propagates."""
    io = _Io(env=dict(env or {}), stdin=stdin, stdout=stdout, stdout_limit=stdout_limit, on_tick=on_tick)
    # Limits do not decide whether a sandbox can be made: one probe serves them all.
    why = "FORGEFLOW_SANDBOX is off" if config.mode == "off" else unavailable_reason(replace(config, limits=Limits()))
    if why is None:
        return _launch(list(argv), config, cwd, list(writable or [cwd]), list(read_only), io)
    if not trusted:
        raise SandboxUnavailable(f"refusing to run untrusted code without a sandbox: {why}")
    log.warning("running trusted %s without a sandbox: %s", Path(argv[0]).name, why)
    with tempfile.TemporaryDirectory(prefix="ff-home-") as home:
        return _start(list(argv), clean_env(home), cwd, config.limits, sandboxed=False, io=io)


def _launch(
    argv: list[str], config: SandboxConfig, cwd: Path, writable: list[Path], read_only: list[Path], io: _Io = _Io()
) -> Outcome:
    root = os.geteuid() == 0
    if root:  # the switched uid writes there; the worker gets its files back afterwards
        for path in writable:
            _chown_tree(path, config.uid, config.uid)
    try:
        command = bwrap_argv(config, cwd=cwd, writable=writable, read_only=read_only) + argv
        return _start(command, clean_env("/tmp"), cwd, config.limits, sandboxed=True, io=io)
    finally:
        if root:
            for path in writable:
                _chown_tree(path, os.getuid(), os.getgid())


def _start(
    argv: list[str], env: dict[str, str], cwd: Path, limits: Limits, *, sandboxed: bool, io: _Io = _Io()
) -> Outcome:
    info_read, info_write = os.pipe()
    os.set_blocking(info_read, False)
    if sandboxed:  # bwrap writes the host pid of the sandbox's init there
        argv = [argv[0], "--info-fd", str(info_write), *argv[1:]]
    command = prlimit_argv(limits) + argv if shutil.which("prlimit") else argv
    # stderr (and stdout, unless kept apart) on disk and bounded by RLIMIT_FSIZE, not in memory
    with tempfile.TemporaryFile() as output, ExitStack() as files:
        sink = files.enter_context(_TailFile(io.stdout, io.stdout_limit)) if io.stdout else None
        try:
            proc = subprocess.Popen(
                command, cwd=cwd, env={**env, **io.env},
                stdin=files.enter_context(open(io.stdin, "rb")) if io.stdin else subprocess.DEVNULL,
                stdout=output if sink is None else subprocess.PIPE,
                stderr=subprocess.STDOUT if sink is None else output,
                start_new_session=True, pass_fds=(info_write,) if sandboxed else (),
            )  # fmt: skip
        except OSError as exc:
            os.close(info_read)
            return Outcome(-1, str(exc), sandboxed)
        finally:
            os.close(info_write)
        try:
            timed_out = not _wait(proc, limits.timeout_seconds, sink, io.on_tick)
            if timed_out:
                _kill(proc, info_read)
        except BaseException:  # on_tick's (a cancellation), or the worker's own: nothing stays behind
            _kill(proc, info_read)
            raise
        finally:
            os.close(info_read)
            if proc.stdout is not None:
                proc.stdout.close()
        output.seek(max(0, os.fstat(output.fileno()).st_size - 4 * OUTPUT_TAIL))
        text = output.read().decode("utf-8", "replace")[-OUTPUT_TAIL:]
    return Outcome(proc.returncode, text, sandboxed, timed_out, sink.dropped if sink else 0)


def _wait(
    proc: subprocess.Popen[bytes], timeout: float, sink: _TailFile | None, on_tick: Callable[[], None] | None
) -> bool:
    """Whether ``proc`` ended within ``timeout``, its stdout pumped into ``sink`` meanwhile."""
    if sink is None and on_tick is None:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    poller, pipe = select.poll(), None  # poll, not select: a busy worker has fds past 1024
    if sink is not None and proc.stdout is not None:
        pipe = proc.stdout.fileno()
        poller.register(pipe, select.POLLIN)
    deadline = time.monotonic() + timeout
    tick = time.monotonic() + TICK_SECONDS
    ended: float | None = None
    while True:
        now = time.monotonic()
        if now >= tick:
            if on_tick is not None:
                on_tick()
            tick = now + TICK_SECONDS
        if ended is None and proc.poll() is not None:
            # A sandbox's stdout closes as it ends (its PID namespace goes with it); what an
            # unsandboxed program left running gets a moment, not the rest of the timeout.
            ended = now + 1
        if (ended is not None and (pipe is None or now >= ended)) or now >= deadline:
            return ended is not None
        wait = max(0.0, min(deadline, tick, ended or deadline) - now)
        if pipe is None:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
            continue
        if poller.poll(wait * 1000) and sink is not None:
            chunk = os.read(pipe, 1 << 16)
            if chunk:
                sink.write(chunk)
            else:  # end of file: every writer has gone
                poller.unregister(pipe)
                pipe = None


class _TailFile:
    """A stream's last ``limit`` bytes on disk (at least half of them once it grew past):
    what a program prints last (its result) is kept, however much it logged first."""

    def __init__(self, path: Path, limit: int) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self.limit, self.size, self.dropped = max(limit, 2), 0, 0

    def __enter__(self) -> _TailFile:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def write(self, data: bytes) -> None:
        while data:
            written = os.pwrite(self.fd, data, self.size)
            self.size, data = self.size + written, data[written:]
        if self.size > self.limit:  # the newest half moves to the front, a MiB at a time
            keep = self.limit // 2
            for offset in range(0, keep, MIB):
                os.pwrite(self.fd, os.pread(self.fd, min(MIB, keep - offset), self.size - keep + offset), offset)
            os.ftruncate(self.fd, keep)
            self.dropped += self.size - keep
            self.size = keep


def _kill(proc: subprocess.Popen[bytes], info_read: int) -> None:
    """Kill bwrap's process group and the sandbox's init (its PID namespace goes with it),
    and wait for the init to be gone. --die-with-parent alone would do it a moment later:
    the caller is about to take the files back and read them, with nothing still writing."""
    with suppress(ProcessLookupError):  # it ended on its own a moment ago (as on_tick raised)
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
