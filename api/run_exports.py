"""Per-run reads of a project's output: which run's export a request means (``?run=N``, or
the latest ready run's by default, the project's artifact), and one branch of that run's
history (``?ref=``: ``main`` or a task branch such as ``feat/task-001-api``), read from the
git bundle its export stored beside its ZIP (engine.gitpack reads it).

Every ready run keeps its own ZIP and bundle under its own key, so run 1's files stay
readable after run 2 is ready; a run that did not end ready has none (409)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query
from sqlalchemy.orm import Session

from api.deps import MAX_ID
from api.errors import ApiError, invalid_state
from api.routes.runs import not_found
from engine import EngineError
from engine.gitpack import read_bundle
from engine.tree import Tree
from engine.treediff import tree_of_commit
from store.artifacts import ArtifactStore
from store.event_filter import EventFilter
from store.export_keys import bundle_key
from store.lifecycle import get_run, list_events
from store.models import Project

RunQuery = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="A run number: that run's output (default: the latest ready run)")
]
RefQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*$",
        description="A branch of the run's history: `main`, or a task branch such as `feat/task-001-api` "
        "(`GET /runs/{n}/tasks` names them); read from the run's git bundle. Default: the run's ZIP",
    ),
]
LISTED_REFS = 50  # branches a ref_not_found names


@dataclass(frozen=True)
class RunExport:
    """Where one run's export is: its ZIP (with the checksum on record) and its git bundle."""

    run: int | None  # None: the project's artifact as it stands (the latest ready run's)
    zip_key: str
    sha256: str | None
    size: int | None
    bundle_key: str


def selected_export(*, session: Session, project: Project, run: int | None) -> RunExport:
    """The export ``run`` names (default: the project's latest ready one), or the 404/409."""
    if run is None:
        if not project.artifact_ready or not project.artifact_key:
            raise invalid_state("The project's files are not ready yet.", project.status)
        key = project.artifact_key
        return RunExport(None, key, project.artifact_sha256, project.artifact_size, bundle_key(key))
    row = get_run(session, project_id=project.id, number=run)
    if row is None:
        raise not_found("run_not_found", "Run", run_id=run)
    if not row.bundle_key:
        raise invalid_state(f"Run {run} has no files: it did not end ready.", row.status)
    # The export's own record: the ZIP's key and checksum, as the run stored them.
    where = EventFilter(types=("export_completed",), run=run)
    events = list_events(session, project_id=project.id, after=0, limit=1, where=where)
    payload = events[0].payload if events else {}
    zip_key = str(payload.get("key") or row.bundle_key.removesuffix(".bundle") + ".zip")
    return RunExport(run, zip_key, payload.get("sha256"), payload.get("size"), row.bundle_key)


def ref_not_found(ref: str, available: list[str]) -> ApiError:
    return ApiError(
        404,
        "ref_not_found",
        "validation",
        f"The run's history has no branch {ref!r}.",
        details={"ref": ref, "available": available[:LISTED_REFS]},
    )


def branch_tree(*, artifacts: ArtifactStore, export: RunExport, ref: str) -> Tree:
    """The files of branch ``ref`` in the run's history, by path."""
    try:
        with artifacts.open(export.bundle_key) as stored:
            refs, objects = read_bundle(stored.read())
        heads = {name.removeprefix("refs/heads/"): oid for name, oid in refs if name.startswith("refs/heads/")}
        if ref not in heads:
            raise ref_not_found(ref, sorted(heads))
        return tree_of_commit(objects=objects, commit=heads[ref])
    except FileNotFoundError as exc:
        raise ApiError(
            404, "file_not_found", "validation", "The run's history is not stored.", details={"path": "git bundle"}
        ) from exc
    except EngineError as exc:  # the store's bytes are not the bundle the run wrote
        raise ApiError(500, "internal_error", "internal", f"The run's history cannot be read: {exc}") from exc
