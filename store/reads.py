"""Reads for the API's hottest paths, the status poll and the project list: Core
statements on a connection, the columns the response shows as rows (no ORM objects, no
session), and one statement a request (the list's total rides along as a subquery), on
an engine of their own (``read_engine``). The statements and their parameters are also
given alone (``status_query``, ``page_query``), for reads that execute them elsewhere
(api.direct_reads: from the event loop; on PostgreSQL on psycopg's asynchronous connections).

The list's page and count read the index ``ix_projects_owner_list`` (owner_id, id,
archived_at) alone: the owner's ids in order, their archived_at beside them (migration 0010).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Select,
    String,
    Text,
    bindparam,
    cast,
    create_engine,
    func,
    or_,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from store.db import Database
from store.models import Project

projects = Project.__table__.c


def read_engine(db: Database, connections: int) -> Engine:
    """An engine for these reads: autocommit, so that a read is its one statement (on
    PostgreSQL one round trip instead of the ping, BEGIN, the statement and COMMIT; on
    SQLite no BEGIN and ROLLBACK around it), and no ping when a connection is taken from
    the pool (a connection the server dropped fails its statement instead: the caller
    tries once more, see api.reads). A single statement sees one snapshot either way.
    ``connections``: one for each thread that reads; on SQLite one more, which the event
    loop holds for the reads it makes itself (api.direct_reads)."""
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:"):
            return db.engine  # a second engine would open another, empty database
        # Not store.db's engine, which begins a transaction on every connection for its
        # writers; the database's WAL mode is kept in its file.
        return create_engine(
            url, connect_args={"timeout": 30}, isolation_level="AUTOCOMMIT", pool_size=connections + 1, max_overflow=0
        )
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=False, pool_size=connections, max_overflow=0)


class iso_utc(FunctionElement[str]):
    """A UTC timestamp column as the API shows it, ``2026-03-11T12:00:00Z`` (whole seconds,
    truncated, as api.schemas formats them), written by the database: a page of twenty
    projects has eighty, and parsing each into a datetime and formatting it again cost more
    Python than the rest of the row (measured: a fifth of a list request's time)."""

    type = String()
    inherit_cache = True


@compiles(iso_utc, "sqlite")
def _iso_utc_sqlite(element: iso_utc, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as UTC text, "2026-03-11 12:00:00.123456" (store.models.UTCDateTime).
    return f"strftime('%Y-%m-%dT%H:%M:%SZ', {compiler.process(element.clauses, **kw)})"


@compiles(iso_utc, "postgresql")
def _iso_utc_postgresql(element: iso_utc, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


def _shown(column: Any) -> Any:
    return iso_utc(column).label(column.name)


def _as_stored(column: Any) -> Any:
    """A JSON column's stored text, which the response takes as it is (api.read_json), not
    the document the driver would parse it into (store.db.stored_json writes it as shown)."""
    return cast(column, Text).label(column.name)


STATUS_COLUMNS = (
    projects.id,
    projects.status,
    projects.error_message,
    projects.artifact_ready,
    _shown(projects.started_at),
    _shown(projects.finished_at),
    _shown(projects.updated_at),
)
StatusRow = Row[int, str, str, bool, str | None, str | None, str]
PageRow = Row[*tuple[Any, ...]]  # PUBLIC_COLUMNS, then the total

# What api.schemas.ProjectPublic shows, in its order; timestamps as text (iso_utc), the
# input payload as its stored JSON text.
PUBLIC_COLUMNS = (
    projects.id,
    projects.name,
    projects.slug,
    projects.status,
    projects.error_message,
    _shown(projects.created_at),
    _shown(projects.updated_at),
    _shown(projects.started_at),
    _shown(projects.finished_at),
    projects.artifact_ready,
    _as_stored(projects.input_payload),
    projects.phase,
    projects.template,
    projects.current_run,
    projects.spec_version,
    projects.paused,
)

# Built once: the poll's statement is the same for every project, and a statement object
# reused keeps its cache key (SQLAlchemy builds it again for every new object).
_STATUS = select(*STATUS_COLUMNS).where(
    projects.id == bindparam("project_id"),
    projects.owner_id == bindparam("owner_id"),
    projects.archived_at.is_(None),
)


def status_query(*, owner_id: int, project_id: int) -> tuple[Select[Any], dict[str, Any]]:
    """project_status's statement and its parameters."""
    return _STATUS, {"project_id": project_id, "owner_id": owner_id}


def project_status(conn: Connection, *, owner_id: int, project_id: int) -> StatusRow | None:
    """The status columns of the owner's project; None if it is not theirs, or archived."""
    return conn.execute(*status_query(owner_id=owner_id, project_id=project_id)).one_or_none()


# The list's orders, each ended by the id so that pages never overlap or skip rows that tie.
# Names sort case-insensitively, the same on SQLite (binary by default) and PostgreSQL.
SORTS: dict[str, tuple[Any, ...]] = {
    "created_at": (projects.created_at.asc(), projects.id.asc()),
    "-created_at": (projects.created_at.desc(), projects.id.desc()),
    "updated_at": (projects.updated_at.asc(), projects.id.asc()),
    "-updated_at": (projects.updated_at.desc(), projects.id.desc()),
    "name": (func.lower(projects.name).asc(), projects.id.asc()),
    "-name": (func.lower(projects.name).desc(), projects.id.desc()),
}
LIKE_ESCAPE = "/"


def _conditions(statuses: int, searched: bool) -> list[ColumnElement[bool]]:
    """The list's filters with their values as parameters: owner_id, status or statuses
    (``statuses``: how many, 0, 1 or more), pattern (``searched``)."""
    conditions = [projects.owner_id == bindparam("owner_id"), projects.archived_at.is_(None)]
    if statuses == 1:
        conditions.append(projects.status == bindparam("status"))
    elif statuses > 1:
        conditions.append(projects.status.in_(bindparam("statuses", expanding=True)))
    if searched:
        pattern = bindparam("pattern", type_=String())
        conditions.append(
            or_(
                projects.name.icontains(pattern, escape=LIKE_ESCAPE),
                projects.description.icontains(pattern, escape=LIKE_ESCAPE),
            )
        )
    return conditions


# Each shape of the list's statement is built once (a few dozen at most): building one costs
# more than running it (~0.3 ms of SQLAlchemy for the page, measured), and a statement object
# reused keeps its cache key.
@cache
def _page_statement(statuses: int, searched: bool, sort: str | None) -> Select[Any]:
    conditions = _conditions(statuses, searched)
    total = select(func.count()).where(*conditions).scalar_subquery()
    # No sort: the primary key, newest first, as before sorting existed (no sort step).
    order = SORTS[sort] if sort else (projects.id.desc(),)
    # The page's ids first, then their rows: the columns, timestamps formatted included, are
    # computed for the page's rows alone. PostgreSQL computes a select's columns for every
    # row its offset skips too: a page at offset 490 formatted 2,040 timestamps instead of
    # 80, 1.2 ms of the server's time instead of 0.4 (EXPLAIN ANALYZE).
    ids = select(projects.id).where(*conditions).order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))
    return select(*PUBLIC_COLUMNS, total).where(projects.id.in_(ids)).order_by(*order)


@cache
def _count_statement(statuses: int, searched: bool) -> Select[int]:
    return select(func.count()).where(*_conditions(statuses, searched))


def page_query(
    *,
    owner_id: int,
    status: str | Sequence[str] | None,
    limit: int,
    offset: int,
    q: str | None = None,
    sort: str | None = None,
) -> tuple[Select[Any], Select[int], dict[str, Any]]:
    """project_page's statements, the page's and the count's (for a page that came back
    empty), and their parameters."""
    statuses = [status] if isinstance(status, str) else list(status or ())
    shape = (min(len(statuses), 2), bool(q))
    params: dict[str, Any] = {"owner_id": owner_id, "limit": limit, "offset": offset}
    if len(statuses) == 1:
        params["status"] = statuses[0]
    elif statuses:
        params["statuses"] = statuses
    if q:
        # What SQLAlchemy's autoescape does to a literal: the escape character, % and _.
        params["pattern"] = q.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return _page_statement(*shape, sort), _count_statement(*shape), params


def page_total(rows: Sequence[Sequence[Any]], offset: int) -> int | None:
    """The total a page's rows carry; None: the count must be read alone (a page past the
    end, which has no row to carry it)."""
    if rows:
        return int(rows[0][-1])
    return None if offset else 0


def project_page(
    conn: Connection,
    *,
    owner_id: int,
    status: str | Sequence[str] | None,
    limit: int,
    offset: int,
    q: str | None = None,
    sort: str | None = None,
) -> tuple[Sequence[PageRow], int]:
    """The owner's projects (rows of PUBLIC_COLUMNS, then the total), newest first unless
    ``sort`` says otherwise, and how many there are in all (archived ones not). ``status``:
    one or several; ``q``: a case-insensitive substring of the name or description, matched
    literally (``%`` and ``_`` escaped)."""
    page, count, params = page_query(owner_id=owner_id, status=status, limit=limit, offset=offset, q=q, sort=sort)
    rows = conn.execute(page, params).all()
    total = page_total(rows, offset)
    return rows, total if total is not None else conn.scalar(count, params) or 0


_STATUS_COUNTS = (
    select(projects.status, func.count())
    .where(projects.owner_id == bindparam("owner_id"), projects.archived_at.is_(None))
    .group_by(projects.status)
)


def status_counts(conn: Connection, *, owner_id: int) -> dict[str, int]:
    """How many of the owner's projects are in each status (archived ones not): one GROUP BY
    on the (owner_id, status) index. Statuses with no project are absent."""
    return {status: count for status, count in conn.execute(_STATUS_COUNTS, {"owner_id": owner_id})}
