"""The log keeps each fact's position in its source's store, and is indexed by source and time, so that a figure
says exactly up to which event of each source it counts (its `data_as_of`). Facts logged before have no position.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE reporting.log ADD COLUMN position bigint")
    op.execute("CREATE INDEX log_source_time_idx ON reporting.log (source, time, seq)")


def downgrade() -> None:
    op.execute("DROP INDEX reporting.log_source_time_idx")
    op.execute("ALTER TABLE reporting.log DROP COLUMN position")
