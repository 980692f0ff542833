"""A run's diff: what its history changed, from the commit it was built on (an update's
previous main; nothing, for a history of its own) to its ``main``, both read from the
bundle the run's export stored. The patch is git's format, so ``git apply`` takes it."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.responses import Response

from api.errors import ApiError, invalid_state
from engine import EngineError
from engine.gitpack import read_bundle
from engine.tree import Tree
from engine.treediff import tree_of_commit, unified_diff
from store.artifacts import ArtifactStore
from store.models import Run

# What git's own tools send a patch as.
DIFF_MEDIA_TYPE = "text/x-diff; charset=utf-8"


@dataclass(frozen=True)
class RunTrees:
    base: Tree
    head: Tree
    base_commit: str | None
    head_commit: str


def run_trees(*, run: Run, artifacts: ArtifactStore) -> RunTrees:
    if not run.bundle_key or not run.head_commit:
        raise invalid_state(f"Run {run.number} has no stored history: it did not end ready.", run.status)
    try:
        with artifacts.open(run.bundle_key) as stored:
            _refs, objects = read_bundle(stored.read())
        head = tree_of_commit(objects=objects, commit=bytes.fromhex(run.head_commit))
        base = tree_of_commit(objects=objects, commit=bytes.fromhex(run.base_commit)) if run.base_commit else {}
    except FileNotFoundError as exc:
        raise ApiError(
            404, "file_not_found", "validation", "The run's history is not stored.", details={"path": "git bundle"}
        ) from exc
    except EngineError as exc:  # the store's bytes are not the bundle the run wrote
        raise ApiError(500, "internal_error", "internal", f"The run's history cannot be read: {exc}") from exc
    return RunTrees(base=base, head=head, base_commit=run.base_commit, head_commit=run.head_commit)


def diff_response(trees: RunTrees, *, only: str | None = None) -> Response:
    """The patch (of one path with ``only``), with the two commits in headers."""
    base, head = trees.base, trees.head
    if only is not None:
        base = {only: base[only]} if only in base else {}
        head = {only: head[only]} if only in head else {}
    headers = {"X-Head-Commit": trees.head_commit}
    if trees.base_commit:
        headers["X-Base-Commit"] = trees.base_commit
    return Response(unified_diff(old=base, new=head), media_type=DIFF_MEDIA_TYPE, headers=headers)
