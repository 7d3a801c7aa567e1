"""Least privilege: the service's runtime role (povguard_assessment) may use its own schema only, and read and
append its events and the consumed facts, never change them; the triggers of both fire under
`session_replication_role = replica` too and refuse TRUNCATE (the events' triggers: databases created before this
revision get them here, new ones from 0001 on).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from povguard_platform.roles import grant_runtime, revoke_runtime
from povguard_platform.schema import append_only_ddl, events_triggers_ddl, events_triggers_undo_ddl, execute_all

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_all(op, events_triggers_ddl("assessment"))
    execute_all(op, append_only_ddl("assessment", "facts", "facts_append_only", "facts_append_only"))
    grant_runtime(op, "assessment", append_only=("events", "facts"))


def downgrade() -> None:
    revoke_runtime(op, "assessment")
    op.execute("DROP TRIGGER facts_no_truncate ON assessment.facts")
    op.execute("ALTER TABLE assessment.facts ENABLE TRIGGER facts_append_only")
    execute_all(op, events_triggers_undo_ddl("assessment"))
