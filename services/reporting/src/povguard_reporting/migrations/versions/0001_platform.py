"""Platform tables: event store (the outbox), relay checkpoint, inbox, consumer versions, dead letters.

Revision ID: 0001
Revises:
"""

from alembic import op

from povguard_platform.schema import create_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables(op, "reporting")


def downgrade() -> None:
    op.execute("DROP SCHEMA reporting CASCADE")
