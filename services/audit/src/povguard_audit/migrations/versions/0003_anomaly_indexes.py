"""Indexes for the anomaly rules that look back at one case's or one person's entries. Without them each check
scanned the acting person's whole history (a county clerk's tens of thousands of entries): the ledger fell behind
as it grew.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ledger_stream_idx ON audit.ledger (stream_id, stream_type, idx)")
    op.execute("CREATE INDEX ledger_actor_time_idx ON audit.ledger (actor_user, recorded_at)")


def downgrade() -> None:
    op.execute("DROP INDEX audit.ledger_actor_time_idx")
    op.execute("DROP INDEX audit.ledger_stream_idx")
