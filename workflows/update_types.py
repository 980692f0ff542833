"""Template updates, as the workflow, the activities and the API see them: where an update
run's history starts (the last ready run's), and what a run's export leaves on its run's
record so its diff can be served. Pydantic only, so a workflow may import them."""

from __future__ import annotations

from pydantic import BaseModel


class HistoryBase(BaseModel):
    """The history an update run builds on: the last ready run's git bundle. The run's new
    render becomes one commit on top of that bundle's ``main``, so the update is a normal
    commit a clone can ``git pull``."""

    bundle_key: str  # in the artifact store
    message: str  # the update commit's message, e.g. "Update template x from v1 to v2"


class RunCommits(BaseModel):
    """Where a run's history is and what it changed: ``head`` is its ``main``; ``base`` the
    commit it was built on (an update's previous main), None for a history of its own."""

    bundle_key: str
    head: str
    base: str | None = None
