"""Imports are durable jobs: the next chunk to import and the attempts so far, so that an import resumes where it
stopped after its process died or the database went away.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE intake.imports ADD COLUMN next_chunk integer NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE intake.imports ADD COLUMN attempts integer NOT NULL DEFAULT 0")
    op.execute("CREATE INDEX imports_running_idx ON intake.imports (created_at) WHERE status = 'running'")


def downgrade() -> None:
    op.execute("DROP INDEX intake.imports_running_idx")
    op.execute("ALTER TABLE intake.imports DROP COLUMN attempts, DROP COLUMN next_chunk")
