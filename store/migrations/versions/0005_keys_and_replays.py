"""api keys: when each was last used (`forgeflow keys list`); idempotency keys: the scopes a
replay demands, and no stored 401/403 (they answered the key, not the request)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("required_scopes", sa.JSON(), nullable=True))
    # Stored before they stopped being stored: each would be replayed, for a day, to any key of
    # the owner, one holding the scope included. Dropped, the next request simply runs.
    op.execute("DELETE FROM idempotency_keys WHERE response_status IN (401, 403)")


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("required_scopes")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("last_used_at")
