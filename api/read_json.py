"""Rows to response bytes for the status poll and the project list, without pydantic models.

The models in api.schemas define these bodies (keys, order, types, what v1 clients see) and
stay their reference: tests/api/test_read_json.py holds each function here equal, byte for
byte, to FastAPI's serialisation of the model built from the same row. Building the dicts
directly and serialising them with pydantic_core (the serialiser the models use) costs a
fraction of validating twenty models and running their wrap serialisers per request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, get_args

from pydantic_core import to_json

from api.schemas import OPT_IN_FIELDS, ProjectSort, ProjectStatusName
from api.validation import MAX_NESTING, within_depth
from store.reads import PUBLIC_COLUMNS, STATUS_COLUMNS

STATUS_NAMES: tuple[str, ...] = get_args(ProjectStatusName)
OPT_IN = frozenset(OPT_IN_FIELDS)
# The rows' columns are named as the models' fields (store.reads).
STATUS_FIELDS = tuple(column.name for column in STATUS_COLUMNS)
_PUBLIC = tuple(column.name for column in PUBLIC_COLUMNS)
_V1_END = _PUBLIC.index("input_payload") + 1  # v1's fields, then the extensions
V1_FIELDS, EXTENSION_FIELDS = _PUBLIC[:_V1_END], _PUBLIC[_V1_END:]
_EXTENSIONS_END = len(_PUBLIC)  # a page's rows carry the total after them
_PAYLOAD, _PAUSED = _V1_END - 1, _PUBLIC.index("paused")
_PAYLOAD_KEY, _PAUSED_END = b',"input_payload":', b',"paused":true}'
_OPT_IN_NAMES = tuple(f'"{name}":' for name in OPT_IN_FIELDS)


def _dumps(body: dict[str, Any]) -> bytes:
    # As the models serialise: non-ASCII as UTF-8, an infinite or NaN float as null.
    return to_json(body, inf_nan_mode="null")


def status_json(row: Sequence[Any]) -> bytes:
    """api.schemas.ProjectStatusPublic of a row of store.reads.STATUS_COLUMNS (whose
    timestamps come formatted from the database)."""
    return _dumps(dict(zip(STATUS_FIELDS, row, strict=True)))


def _shown_as_stored(payload: str) -> bool:
    """Whether a stored payload goes into the response as it is: written as the API shows
    JSON (store.db.stored_json), it needs a look only where it might name a lifecycle option
    at its top (the name anywhere in the text: the look decides), nest deeper than the bound
    (more brackets than the bound, strings' own included: the look decides), or hold a NaN or
    an infinity (which Python's json writes and JSON lacks: the look turns them to null)."""
    return (
        payload.count("{") + payload.count("[") <= MAX_NESTING
        and not any(name in payload for name in _OPT_IN_NAMES)
        and "NaN" not in payload
        and "Infinity" not in payload
    )


def project_json(row: Sequence[Any]) -> bytes:
    """api.schemas.ProjectPublic.of of a row of store.reads.PUBLIC_COLUMNS, as JSON."""
    # By position: a Row's attributes cost ~0.5 us each (SQLAlchemy 2.1), 16 a project.
    values = tuple(row)
    stored: str = values[_PAYLOAD]
    if _shown_as_stored(stored):
        # A v1 project: its fields, the payload as stored, and paused once it has paused.
        head = _dumps(dict(zip(V1_FIELDS[:_PAYLOAD], values[:_PAYLOAD], strict=True)))
        end = _PAUSED_END if values[_PAUSED] else b"}"
        return b"".join((head[:-1], _PAYLOAD_KEY, stored.encode(), end))
    return _dumps(project_dict(values, json.loads(stored)))


def project_dict(values: Sequence[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """api.schemas.ProjectPublic.of of a row of store.reads.PUBLIC_COLUMNS and its parsed
    payload, as a dict."""
    body = dict(zip(V1_FIELDS, values[:_V1_END], strict=True))
    body["input_payload"] = payload
    if not within_depth(payload):
        # As ProjectPublic.of: a row stored before nesting was bounded never breaks the list.
        body["input_payload"] = {
            name: value if within_depth(value, MAX_NESTING - 1) else "(nested too deeply to show)"
            for name, value in payload.items()
        }
    extensions = dict(zip(EXTENSION_FIELDS, values[_V1_END:_EXTENSIONS_END], strict=True))
    if not OPT_IN.isdisjoint(payload):
        body.update(extensions)  # created with a lifecycle option: all of them, paused included
    elif extensions["paused"]:  # a v1 client sees it only once it has paused the project
        body["paused"] = True
    return body


def list_json(
    rows: Sequence[Any],
    *,
    total: int,
    limit: int,
    offset: int,
    status: ProjectStatusName | list[ProjectStatusName] | None,
    q: str | None,
    sort: ProjectSort | None,
    counts: dict[str, int] | None,
) -> bytes:
    """api.schemas.ProjectList of a page of rows; ``counts``: include=status_counts."""
    filters: dict[str, Any] = {"status": status}
    if q is not None:
        filters["q"] = q
    if sort is not None:
        filters["sort"] = sort
    body: dict[str, Any] = {
        "total": total,
        "limit": limit,
        "offset": offset,
        "has_next": offset + len(rows) < total,
        "filters": filters,
    }
    if counts is not None:
        # Every status, zero for those with no project: clients need not know the list.
        body["status_counts"] = {name: 0 for name in STATUS_NAMES} | counts
    # The projects' JSON joined as bytes: a stored payload is taken as it is (project_json).
    return b"".join((b'{"projects":[', b",".join(map(project_json, rows)), b"],", _dumps(body)[1:]))
