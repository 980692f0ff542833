"""Waiting for a project, reading and following its events, downloading its ZIP."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

import httpx
import typer

from forgeflow.cli.client import Api, ApiFailure, CliFailure, Unreachable, body_of

TERMINAL = ("ready", "failed", "cancelled")
GATES = ("awaiting_answers", "awaiting_approval", "awaiting_budget")
MAX_FAILURES = 5  # consecutive transient failures tolerated while waiting or following
STREAM_READ_TIMEOUT = 60.0  # the server sends a heartbeat every 15 s by default
TRANSIENT_HTTP = (429, 502, 503, 504)

PollStart = Annotated[
    float, typer.Option("--poll-start", envvar="FORGEFLOW_POLL_START", hidden=True, min=0.001, help="First interval.")
]
PollMax = Annotated[
    float, typer.Option("--poll-max", envvar="FORGEFLOW_POLL_MAX", hidden=True, min=0.001, help="Longest interval.")
]


@dataclass(frozen=True)
class Polling:
    """Polling and reconnect intervals: ``start``, times 1.5 each time, up to ``maximum``."""

    start: float = 2.0
    maximum: float = 15.0

    def intervals(self) -> Iterator[float]:
        delay = self.start
        while True:
            yield min(delay, max(self.maximum, self.start))
            delay *= 1.5


def _transient(exc: Exception) -> bool:
    return isinstance(exc, Unreachable) or (isinstance(exc, ApiFailure) and exc.status in TRANSIENT_HTTP)


@contextmanager
def _progress(enabled: bool, project_id: int) -> Iterator[Callable[[str], None]]:
    if not enabled:
        yield lambda status: None
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("project {task.fields[project]}: {task.fields[status]}"),
        BarColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("wait", total=None, project=project_id, status="…")
        yield lambda status: progress.update(task, status=status)


def wait_for(
    api: Api,
    project_id: int,
    *,
    polling: Polling,
    timeout: float | None = None,
    through_gates: bool = False,
    progress: bool = False,
) -> httpx.Response:
    """Poll ``/status`` until the project is ready, failed or cancelled, waits at a gate
    (unless ``through_gates``), or ``timeout`` seconds passed; return the last answer.

    Once one poll has succeeded, up to MAX_FAILURES transient failures in a row
    (unreachable, 429, 502-504) are sat out with the same backoff."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delays = polling.intervals()
    last: httpx.Response | None = None
    failures = 0
    with _progress(progress, project_id) as show:
        while True:
            try:
                response = api.get(f"/projects/{project_id}/status")
            except (Unreachable, ApiFailure) as exc:
                if last is None or not _transient(exc) or failures >= MAX_FAILURES:
                    raise
                failures += 1
            else:
                last, failures = response, 0
                status = body_of(response)["status"]
                show(status)
                if status in TERMINAL or (status in GATES and not through_gates):
                    return response
            delay = next(delays)
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 and last is not None:
                    return last
                delay = max(0.0, min(delay, remaining))
            time.sleep(delay)


def settle(api: Api, project_id: int, *, leaving: tuple[str, ...], timeout: float = 10.0) -> str:
    """After an action, poll ``/status`` (briefly) until the project has left ``leaving``,
    so that ``approve && wait`` never sees the old state; return the last status."""
    deadline, delay = time.monotonic() + timeout, 0.05
    while True:
        state: str = body_of(api.get(f"/projects/{project_id}/status"))["status"]
        if state not in leaving or time.monotonic() >= deadline:
            return state
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def list_events(api: Api, project_id: int, *, after: int) -> Iterator[dict[str, Any]]:
    """Every event after ``after``, page by page."""
    while True:
        page = body_of(api.get(f"/projects/{project_id}/events", params={"after": after, "limit": 1000}))
        for event in page["events"]:
            after = event["id"]
            yield event
        if not page["has_next"] or not page["events"]:
            return


@dataclass(frozen=True)
class SseEvent:
    id: int
    type: str
    data: str


def parse_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Server-Sent Events frames with a numeric id; comments and partial frames are dropped."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        if line == "":
            if data and fields.get("id", "").isdigit():
                yield SseEvent(id=int(fields["id"]), type=fields.get("event", "message"), data="\n".join(data))
            fields, data = {}, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        else:
            fields[name] = value


def follow_events(api: Api, project_id: int, *, after: int, polling: Polling, emit: Callable[[SseEvent], None]) -> int:
    """Tail ``/events/stream`` until the project is done; once connected, reconnect with
    ``Last-Event-ID`` after a dropped connection or a transient error (the same backoff as
    waiting, at most MAX_FAILURES in a row). Return the last event id seen."""
    cursor, failures, delays, connected = after, 0, polling.intervals(), False
    timeout = httpx.Timeout(30.0, read=STREAM_READ_TIMEOUT)
    while True:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if cursor:
            headers["Last-Event-ID"] = str(cursor)
        try:
            with api.stream("GET", f"/projects/{project_id}/events/stream", headers=headers, timeout=timeout) as resp:
                failures, connected = 0, True
                for event in parse_sse(resp.iter_lines()):
                    cursor, delays = event.id, polling.intervals()
                    emit(event)
            # The server ends the stream once the project is done; anything else ending it
            # (a proxy, a restart) looks the same, so ask.
            done = body_of(api.get(f"/projects/{project_id}/status"))["status"] in TERMINAL
        except (Unreachable, ApiFailure) as exc:
            if not connected or not _transient(exc) or failures >= MAX_FAILURES:
                raise
            failures, done = failures + 1, False
        if done:
            return cursor
        time.sleep(next(delays))


def _filename(disposition: str | None, project_id: int) -> str:
    name = ""
    if disposition:
        if match := re.search(r"filename\*\s*=\s*[\w-]+''([^;]+)", disposition, re.IGNORECASE):
            name = unquote(match.group(1).strip())
        elif match := re.search(r'filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;\s]+)', disposition, re.IGNORECASE):
            name = match.group(1) or match.group(2) or ""
    name = Path(name.replace("\\", "/")).name
    return name if name and not name.startswith(".") else f"project-{project_id}.zip"


def _target(output: Path | None, name: str | None) -> Path | None:
    """Where the ZIP goes; None while that depends on the server's file name."""
    if output is not None and not output.is_dir():
        return output
    if name is None:
        return None
    return (output or Path.cwd()) / name


def check_target(output: Path | None, force: bool) -> None:
    """Refuse early when ``output`` names a file that exists (without ``force``)."""
    early = _target(output, None)
    if early is not None:
        _refuse_overwrite(early, force)


def _refuse_overwrite(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise CliFailure(f"{target} exists; pass --force to overwrite it")
    if not target.parent.is_dir():
        raise typer.BadParameter(f"no such directory: {target.parent}", param_hint="--output")


@dataclass(frozen=True)
class Downloaded:
    path: Path
    sha256: str
    size: int


@contextmanager
def _artifact(api: Api, project_id: int) -> Iterator[tuple[httpx.Response, str]]:
    """The artifact's response and the sha256 it must have. An API that presigns downloads
    (FORGEFLOW_ARTIFACTS_PRESIGN) answers 307 to its S3 store, with the sha256 on the
    redirect: the store is asked without the API key, which is not the store's to see."""
    with api.stream("GET", f"/projects/{project_id}/artifact", headers={"Accept": "application/zip"}) as response:
        expected = response.headers.get("x-content-sha256", "").strip().lower()
        location = response.headers.get("location")
        if not (response.is_redirect and location):
            yield response, expected
            return
    store = httpx.URL(location).copy_with(query=None)  # the signature stays out of messages
    try:
        with httpx.stream("GET", location, timeout=httpx.Timeout(30.0, connect=10.0)) as stored:
            if stored.status_code != 200:
                raise CliFailure(f"the artifact store at {store} answered HTTP {stored.status_code}")
            yield stored, expected
    except httpx.TransportError as exc:
        raise CliFailure(f"cannot reach the artifact store at {store}: {type(exc).__name__}") from exc


def download(api: Api, project_id: int, *, output: Path | None, force: bool) -> Downloaded:
    """Stream the artifact into a temporary file beside the target, check its SHA-256
    against ``X-Content-SHA256``, then move it into place."""
    check_target(output, force)
    with _artifact(api, project_id) as (response, expected):
        target = _target(output, _filename(response.headers.get("content-disposition"), project_id))
        assert target is not None
        _refuse_overwrite(target, force)
        if not expected:
            raise CliFailure("the API sent no X-Content-SHA256 header; the download cannot be verified")
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        digest, size = hashlib.sha256(), 0
        try:
            with partial.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            if digest.hexdigest() != expected:
                raise CliFailure(f"checksum mismatch: X-Content-SHA256 says {expected}, got {digest.hexdigest()}")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return Downloaded(path=target.resolve(), sha256=expected, size=size)
