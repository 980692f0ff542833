"""Which events a reader wants: the same filter as SQL for pages and as a test on each
event for streams, so that a stream and a page of one project always agree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnElement

from store.models import Event


class FilteredEvent(Protocol):
    """What ``EventFilter.admits`` looks at (api.streams.Frame)."""

    @property
    def type(self) -> str: ...
    @property
    def task_id(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def run(self) -> int | None: ...


def run_of(type: str, key: str) -> int | None:
    """The run an event belongs to, from its key. Events written by a run carry keys
    ``<type>:<run number>:...`` (workflows.status.StatusWriter.event, activities.task_records);
    the others (``project_updated``, written by the API) belong to no run."""
    prefix, _, rest = key.partition(":")
    number, sep, _ = rest.partition(":")
    return int(number) if prefix == type and sep and number.isdigit() else None


@dataclass(frozen=True)
class EventFilter:
    types: tuple[str, ...] = ()  # any of these; none: every type
    task_id: str | None = None
    since: datetime | None = None  # created at or after, aware
    run: int | None = None  # run number

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if len(self.types) == 1:
            found.append(Event.type == self.types[0])
        elif self.types:
            found.append(Event.type.in_(self.types))
        if self.task_id is not None:
            found.append(Event.task_id == self.task_id)
        if self.since is not None:
            found.append(Event.created_at >= self.since)
        if self.run is not None:
            # run_of in SQL: the key starts with the row's own type, then ":<run>:". A "_" in
            # the type is a LIKE wildcard, but it only ever meets that same type's characters.
            found.append(Event.dedup_key.like(Event.type.concat(f":{self.run}:%")))
        return found

    def admits(self, event: FilteredEvent) -> bool:
        return (
            (not self.types or event.type in self.types)
            and (self.task_id is None or event.task_id == self.task_id)
            and (self.since is None or event.created_at >= self.since)
            and (self.run is None or event.run == self.run)
        )

    @property
    def empty(self) -> bool:
        return self == EventFilter()
