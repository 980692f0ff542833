"""One model request's (or one coding agent run's) usage put on record, once, and the
project's spend right after it: what the next budget check reads. Shared by the agent
phases' activities and the coding agents' task activity."""

from __future__ import annotations

from datetime import UTC, datetime

from activities.base import permanent
from activities.task_records import until_stored
from agents.budget import spend_of
from agents.types import Spend
from store.db import Database
from store.projects import ProjectMissing
from store.usage import NewUsage, project_spend, record_usage


def recorded_spend(db: Database, usage: NewUsage) -> Spend:
    """Store ``usage`` (a retried recording changes nothing) and return the project's spend
    on record, read in the same transaction; waits out a database outage."""
    spent: list[Spend] = []

    def write() -> None:
        with db.session(write_lock=True) as session:
            record_usage(session, usage=usage, at=datetime.now(UTC))
            spent[:] = [spend_of(project_spend(session, project_id=usage.project_id))]

    try:
        until_stored(write)
    except ProjectMissing as exc:
        raise permanent(str(exc), "ProjectMissing") from exc
    return spent[0]
