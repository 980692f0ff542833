"""projects' input payloads rewritten in the form the API shows JSON (store.db.stored_json:
compact, non-ASCII as UTF-8), the form every JSON column is now written in, so that the
project list hands each stored payload to its response as it is (api.read_json)

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from store.db import stored_json

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BATCH = 500
projects = sa.table("projects", sa.column("id", sa.Integer), sa.column("input_payload", sa.JSON))
# The stored text, not the document the driver or SQLAlchemy would parse it into.
stored_text = sa.cast(projects.c.input_payload, sa.Text)


def upgrade() -> None:
    bind = op.get_bind()
    after = 0
    while True:
        rows = bind.execute(
            sa.select(projects.c.id, stored_text).where(projects.c.id > after).order_by(projects.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        for project_id, text in rows:
            value = json.loads(text)
            if stored_json(value) != text:
                # Written through the JSON type, whose serialiser is stored_json (store.db).
                bind.execute(projects.update().where(projects.c.id == project_id).values(input_payload=value))
        after = rows[-1][0]


def downgrade() -> None:
    pass  # the compact form reads back as the same documents: nothing to undo
