"""run history: where a ready run's git bundle is, its main commit and the commit it was
built on (a template update's previous main), so the run's diff can be served

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("bundle_key", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("head_commit", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("base_commit", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("base_commit")
        batch.drop_column("head_commit")
        batch.drop_column("bundle_key")
