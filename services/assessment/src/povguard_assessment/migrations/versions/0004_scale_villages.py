"""Scale risk per township and village (seed §二(四)): the counts behind each indicator and each village's
indicators. Rows of the former indicators are dropped: the next check (or `rebuild`) writes them again.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM assessment.scale")
    op.execute("ALTER TABLE assessment.scale ADD COLUMN counts jsonb NOT NULL DEFAULT '{}', "
               "ADD COLUMN villages jsonb NOT NULL DEFAULT '{}'")


def downgrade() -> None:
    op.execute("ALTER TABLE assessment.scale DROP COLUMN villages, DROP COLUMN counts")
