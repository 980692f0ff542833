"""The list's page and count read the index ix_projects_owner_list (owner_id, id,
archived_at) alone, in its order (no sort of the owner's ids), on both databases."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from store.db import Database
from store.models import Project
from store.projects import create_project
from store.reads import page_query, project_page, read_engine

INDEX = "ix_projects_owner_list"


@pytest.fixture
def owner(db: Database, make_key) -> int:
    key = make_key()
    with db.session(write_lock=True) as session:
        for n in range(5):
            create_project(
                session,
                owner_id=key.owner_id,
                quota=100,
                name=f"P{n}",
                slug=f"p{n}",
                description="",
                template="widget-lib",
                input_payload={},
            )
    return key.owner_id


def test_the_models_declare_the_index():
    (index,) = [index for index in Project.__table__.indexes if index.name == INDEX]
    assert [column.name for column in index.columns] == ["owner_id", "id", "archived_at"]


def plan(conn: sa.Connection, statement: Any, params: dict[str, Any]) -> str:
    compiled = statement.compile(dialect=conn.dialect)
    if conn.dialect.name == "sqlite":
        values = tuple(params[name] for name in compiled.positiontup)
        return "\n".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values))
    # Few rows: the planner would rather scan the table. Asked to use an index if it can, it
    # shows whether this one gives the order.
    conn.exec_driver_sql("SET enable_seqscan = off")
    try:
        return "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", params))
    finally:
        conn.exec_driver_sql("RESET enable_seqscan")


def test_the_page_and_its_count_read_the_index_in_its_order(db: Database, owner: int):
    engine = read_engine(db, 1)
    try:
        with engine.connect() as conn:
            page, count, params = page_query(owner_id=owner, status=None, limit=2, offset=1)
            page_plan, count_plan = plan(conn, page, params), plan(conn, count, params)
            rows, total = project_page(conn, owner_id=owner, status=None, limit=2, offset=1)
    finally:
        if engine is not db.engine:
            engine.dispose()
    assert total == 5 and len(rows) == 2 and rows[0][0] > rows[1][0]
    if db.is_sqlite:
        # The ids subquery and the total, each from the index alone; no sort of the ids.
        assert page_plan.count(f"COVERING INDEX {INDEX} (owner_id=?)") == 2, page_plan
        assert "TEMP B-TREE" not in page_plan.split("LIST SUBQUERY")[1].split("SCALAR SUBQUERY")[0], page_plan
        assert f"COVERING INDEX {INDEX}" in count_plan, count_plan
    else:
        # The owner's ids newest first from the index; the only sort left is the page's own
        # rows, above the join. (Which index counts a few fresh rows is the planner's choice.)
        assert f"Index Only Scan Backward using {INDEX}" in page_plan, page_plan
        assert page_plan.count("Sort Key") <= 1, page_plan
