"""The API's project reads. Each is one hop to a read thread (api.read_threads) that reads
on the thread's connection and builds the response there; the status poll, the hottest,
skips the hop where the database allows (api.direct_reads, api.status_cache).

The status and the list are one statement each (store.reads), turned into the response's
bytes in the same hop (api.read_json): no session, no ORM objects, no models. Their engine
(store.reads.read_engine) runs in autocommit without a ping at checkout, so that a read is
its one statement: on PostgreSQL one round trip to the server instead of four (the ping,
BEGIN, the statement, COMMIT), on SQLite no BEGIN and ROLLBACK around it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from api.errors import project_not_found
from api.read_json import list_json
from api.read_threads import ReadThreads
from api.schemas import ProjectPublic, ProjectSort, ProjectStatusName
from store.db import Database
from store.projects import get_project
from store.reads import project_page, read_engine, status_counts

T = TypeVar("T")
# The list's page size: when not given, and at most.
DEFAULT_PAGE = 20
MAX_PAGE = 100


class ProjectReads:
    def __init__(self, db: Database, threads: int) -> None:
        self.db = db
        self.engine = read_engine(db, threads)
        self.threads = ReadThreads(self.engine, threads)

    async def run(self, read: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``read(connection, *args, **kwargs)`` in a read thread."""
        return await self.threads.run(partial(_on, read, args, kwargs))

    def close(self) -> None:
        self.threads.close()
        if self.engine is not self.db.engine:
            self.engine.dispose()

    async def page(
        self,
        *,
        owner_id: int,
        status: ProjectStatusName | list[ProjectStatusName] | None,
        limit: int,
        offset: int,
        q: str | None = None,
        sort: ProjectSort | None = None,
        counts: bool = False,
    ) -> bytes:
        """The list's body (api.schemas.ProjectList) as JSON."""
        return await self.run(
            _page, owner_id=owner_id, status=status, limit=limit, offset=offset, q=q, sort=sort, counts=counts
        )

    async def project(self, *, owner_id: int, project_id: int) -> ProjectPublic:
        return await self.run(_project, owner_id=owner_id, project_id=project_id)


def _on(read: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], conn: Connection) -> T:
    return read(conn, *args, **kwargs)


def _page(
    conn: Connection,
    *,
    owner_id: int,
    status: ProjectStatusName | list[ProjectStatusName] | None,
    limit: int,
    offset: int,
    q: str | None,
    sort: ProjectSort | None,
    counts: bool,
) -> bytes:
    rows, total = project_page(conn, owner_id=owner_id, status=status, limit=limit, offset=offset, q=q, sort=sort)
    by_status = status_counts(conn, owner_id=owner_id) if counts else None
    return list_json(rows, total=total, limit=limit, offset=offset, status=status, q=q, sort=sort, counts=by_status)


def _project(conn: Connection, *, owner_id: int, project_id: int) -> ProjectPublic:
    # The whole row, as the model takes it: a session on the read thread's connection.
    with Session(conn) as session:
        project = get_project(session, owner_id=owner_id, project_id=project_id)
        if project is None:
            raise project_not_found(project_id)
        return ProjectPublic.of(project)
