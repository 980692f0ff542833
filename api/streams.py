"""The event streams of one API process: at most ``max_streams_per_key`` open per key, one
database poller per followed project however many streams follow it, and an end to every
stream whose key is revoked or expires.

Why: each stream used to poll the database four times a second on its own, for as long as
its project waited (days, at an approval gate), and went on after its key was revoked; 550
streams of one read-only key took /healthz from 20 ms to 1.5 s (issue 13). Now a followed
project costs one primary-key read per ``POLL_SECONDS`` (its ``event_seq`` says whether
anything is new), and all open streams one key check per ``stream_key_check_seconds``.

The cap is per API process: ``forgeflow api --workers N`` lets a key hold N times as many.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from api.errors import too_many_streams
from api.lifecycle_schemas import EventPublic
from forgeflow.settings import Settings
from store.db import Database
from store.event_filter import EventFilter, run_of
from store.keys import Identity, active_key_ids
from store.lifecycle import list_events
from store.models import Event, Project, utcnow
from workflows.types import TERMINAL_STATUSES

log = logging.getLogger("forgeflow.api.streams")

POLL_SECONDS = 0.25  # how often a followed project is looked at
BATCH = 200  # events per database read
BUFFER = 1000  # recent frames a feed keeps, so that streams near the end never read the database
RETRY_AFTER = 5  # seconds, with too_many_streams: a slot frees when one of the key's clients leaves
CUT_AFTER = 1.0  # seconds an ended stream has to finish its response before it is cut off
RETRY_FRAME = b"retry: 2000\n\n"
HEARTBEAT_FRAME = b": heartbeat\n\n"


class Frame(NamedTuple):
    """An event as an SSE frame, and what a stream's own filter looks at: one feed serves
    every stream of a project, so each stream applies its filter when sending."""

    seq: int  # the event id
    data: bytes
    type: str
    task_id: str | None
    created_at: datetime
    run: int | None


def encode(event: Event) -> Frame:
    data = EventPublic.of(event).model_dump_json()
    frame = f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n".encode()
    return Frame(event.seq, frame, event.type, event.task_id, event.created_at, run_of(event.type, event.dedup_key))


def read_frames(db: Database, project_id: int, after: int) -> list[Frame]:
    """Blocking: the next events after ``after``, for a stream that is behind its feed."""
    with db.session() as session:
        return [encode(e) for e in list_events(session, project_id=project_id, after=after, limit=BATCH)]


@dataclass(eq=False)
class Subscription:
    """One open stream."""

    key_id: int
    project_id: int
    deadline: float | None  # monotonic time at which the key expires
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False  # the key stopped working, or the process is stopping
    cut: Callable[[], object] | None = None  # cancels the response (EventStreamResponse sets it)

    def end(self) -> None:
        self.ended = True
        self.wake.set()
        # A client that stopped reading leaves the response stuck in a send: cut it off.
        asyncio.get_running_loop().call_later(CUT_AFTER, lambda: self.cut() if self.cut else None)


class Feed:
    """One project's new events, read once for every stream of it in this process."""

    def __init__(self, hub: StreamHub, project_id: int) -> None:
        self.hub, self.project_id = hub, project_id
        self.subscribers: set[Subscription] = set()
        self.started = False  # head and floor are known
        self.head = 0  # the last event id read
        self.floor = 0  # every event after this one is in ``frames``
        self.frames: deque[Frame] = deque()
        self.terminal = False  # the project has ended and ``head`` is its last event
        self.broken = False  # the poller failed unexpectedly: its streams end
        self.task: asyncio.Task[None] | None = None

    def since(self, cursor: int) -> list[Frame] | None:
        """The frames after ``cursor`` from memory; None when they must come from the
        database (older than the buffer) or the feed has not read the project yet."""
        if not self.started or cursor < self.floor:
            return None
        newer: list[Frame] = []
        for frame in reversed(self.frames):
            if frame[0] <= cursor:
                break
            newer.append(frame)
        newer.reverse()
        return newer

    def _poll(self) -> tuple[list[Frame], int, bool]:
        """Blocking: (frames after head, the project's last event id, project ended)."""
        with self.hub.db.session() as session:
            # Status first: a terminal status is written in the same transaction as the last
            # events and event_seq, so once it is visible, so are they.
            row = session.execute(
                select(Project.status, Project.event_seq, Project.archived_at).where(Project.id == self.project_id)
            ).one_or_none()
            if row is None:
                return [], self.head, True
            ended = row.status in TERMINAL_STATUSES or row.archived_at is not None
            if not self.started or row.event_seq <= self.head:
                return [], row.event_seq, ended
            events = list_events(session, project_id=self.project_id, after=self.head, limit=BATCH)
            return [encode(e) for e in events], row.event_seq, ended

    async def run(self) -> None:
        failures = 0
        try:
            while self.subscribers:
                try:
                    frames, last, ended = await run_in_threadpool(self._poll)
                except SQLAlchemyError as exc:  # the database is away: streams idle, then go on
                    failures += 1
                    log.warning("event feed of project %s: %s", self.project_id, type(exc).__name__)
                    await asyncio.sleep(min(5.0, POLL_SECONDS * 2**failures))
                    continue
                failures = 0
                if not self.started:
                    self.started, self.head, self.floor = True, last, last
                    self._wake()
                self._publish(frames)
                if ended and self.head >= last:
                    self.terminal = True
                    return
                if len(frames) < BATCH:
                    await asyncio.sleep(POLL_SECONDS)
        except Exception:
            log.exception("event feed of project %s failed", self.project_id)
            self.broken = True
        finally:
            self.hub.feed_done(self)
            self._wake()

    def _publish(self, frames: list[Frame]) -> None:
        if not frames:
            return  # idle streams are not woken: 500 of them cost what one does
        for frame in frames:
            self.frames.append(frame)
            self.head = frame[0]
        while len(self.frames) > BUFFER:
            self.floor = self.frames.popleft()[0]
        self._wake()

    def _wake(self) -> None:
        for sub in self.subscribers:
            sub.wake.set()


class StreamHub:
    """One per API process: its open streams by key, the feeds they follow, the key watch."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.limit = settings.max_streams_per_key
        self.check_seconds = settings.stream_key_check_seconds
        self.heartbeat = settings.sse_heartbeat_seconds
        self.by_key: dict[int, set[Subscription]] = {}
        self.feeds: dict[int, Feed] = {}
        self._watch: asyncio.Task[None] | None = None

    def open(self, identity: Identity, project_id: int) -> tuple[Subscription, Feed]:
        """A new stream of ``project_id``, or 429 too_many_streams. Pair with ``release``."""
        streams = self.by_key.get(identity.key_id, set())
        if len(streams) >= self.limit:
            raise too_many_streams(self.limit, RETRY_AFTER)
        sub = Subscription(identity.key_id, project_id, deadline=_deadline(identity.expires_at))
        self.by_key[identity.key_id] = streams | {sub}
        feed = self.feeds.get(project_id)
        if feed is None:
            feed = self.feeds[project_id] = Feed(self, project_id)
        feed.subscribers.add(sub)
        if feed.task is None:
            feed.task = asyncio.create_task(feed.run(), name=f"event-feed-{project_id}")
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._watch_keys(), name="event-stream-keys")
        return sub, feed

    def release(self, sub: Subscription, feed: Feed) -> None:
        """The stream is over (idempotent)."""
        streams = self.by_key.get(sub.key_id, set()) - {sub}
        if streams:
            self.by_key[sub.key_id] = streams
        else:
            self.by_key.pop(sub.key_id, None)
        feed.subscribers.discard(sub)
        if not feed.subscribers and feed.task is not None and not feed.task.done():
            feed.task.cancel()
        if not feed.subscribers:
            self.feed_done(feed)

    def feed_done(self, feed: Feed) -> None:
        # A finished feed is forgotten at once: a project that is retried gets a fresh one.
        if self.feeds.get(feed.project_id) is feed:
            del self.feeds[feed.project_id]

    async def _watch_keys(self) -> None:
        while self.by_key:
            await asyncio.sleep(self.check_seconds)
            key_ids = sorted(self.by_key)
            if not key_ids:
                return
            try:
                active = await run_in_threadpool(self._active, key_ids)
            except SQLAlchemyError as exc:  # keep the streams; their feeds cannot read either
                log.warning("event streams: cannot check keys: %s", type(exc).__name__)
                continue
            for key_id in set(key_ids) - active:
                for sub in self.by_key.get(key_id, set()):
                    if not sub.ended:
                        sub.end()

    def _active(self, key_ids: list[int]) -> set[int]:
        with self.db.session() as session:
            return active_key_ids(session, key_ids)

    async def aclose(self) -> None:
        """Process shutdown: end every stream and stop every task."""
        for streams in list(self.by_key.values()):
            for sub in streams:
                sub.ended = True
                sub.wake.set()
        tasks = [f.task for f in self.feeds.values() if f.task is not None]
        tasks += [self._watch] if self._watch is not None else []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _deadline(expires_at: datetime | None) -> float | None:
    if expires_at is None:
        return None
    return time.monotonic() + (expires_at - utcnow()).total_seconds()


async def follow(
    hub: StreamHub, sub: Subscription, feed: Feed, cursor: int, only: EventFilter | None = None
) -> AsyncIterator[bytes]:
    """The SSE body of one stream: events after ``cursor`` (those ``only`` admits) until the
    project ends, the key stops working or the client leaves; a heartbeat comment whenever
    it has been quiet. Events filtered out still move the position on."""
    yield RETRY_FRAME
    position, quiet_since = cursor, time.monotonic()
    while not sub.ended:
        if sub.deadline is not None and time.monotonic() >= sub.deadline:
            return  # the key has expired
        sub.wake.clear()  # before looking: a frame published from here on wakes the wait below
        frames = feed.since(position)
        if frames is None and feed.started:
            frames = await run_in_threadpool(read_frames, hub.db, feed.project_id, position)
            if not frames:  # nothing stored between here and the feed's memory: join it
                position = max(position, feed.floor)
                continue
        if frames:
            for frame in frames:
                if sub.ended:
                    return
                position = frame.seq
                if only is None or only.admits(frame):
                    yield frame.data
                    quiet_since = time.monotonic()
            continue
        if (feed.terminal and frames is not None) or feed.broken:
            return
        wait = quiet_since + hub.heartbeat - time.monotonic()
        if sub.deadline is not None:
            wait = min(wait, sub.deadline - time.monotonic())
        if wait > 0:
            try:
                async with asyncio.timeout(wait):
                    await sub.wake.wait()
            except TimeoutError:
                pass
        if time.monotonic() - quiet_since >= hub.heartbeat:
            quiet_since = time.monotonic()
            yield HEARTBEAT_FRAME
