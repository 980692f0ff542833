"""list index: the owner's projects by id, with archived_at beside each, so that the list's
page (owner_id, archived_at IS NULL, newest id first) and its count read the index alone

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.create_index("ix_projects_owner_list", ["owner_id", "id", "archived_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_index("ix_projects_owner_list")
