"""Least privilege: the service's runtime role (povguard_reporting) may use its own schema only, and read and
append its events, never change them; the events' triggers fire under `session_replication_role = replica` too
and refuse TRUNCATE (databases created before this revision get them here, new ones from 0001 on).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from povguard_platform.roles import grant_runtime, revoke_runtime
from povguard_platform.schema import events_triggers_ddl, events_triggers_undo_ddl, execute_all

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_all(op, events_triggers_ddl("reporting"))
    grant_runtime(op, "reporting")


def downgrade() -> None:
    revoke_runtime(op, "reporting")
    execute_all(op, events_triggers_undo_ddl("reporting"))
