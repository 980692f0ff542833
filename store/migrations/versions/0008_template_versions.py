"""template versions: the ref a project named its template's source by, and the commit
it resolved to when the project was created

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("template_ref", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("template_commit", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("template_commit")
        batch.drop_column("template_ref")
