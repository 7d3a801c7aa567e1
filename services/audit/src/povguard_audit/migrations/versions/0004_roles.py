"""Least privilege: the service's runtime role (povguard_audit) may use its own schema only; it reads and appends
the ledger, its tree, checkpoints, cosignatures, re-check runs and its events, never changes them, and changes a
payload only by redaction. The events' triggers fire under `session_replication_role = replica` too and refuse
TRUNCATE, as the ledger's do (databases created before this revision get them here, new ones from 0001 on).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from povguard_platform.roles import grant_runtime, revoke_runtime, runtime_role
from povguard_platform.schema import events_triggers_ddl, events_triggers_undo_ddl, execute_all

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_ONLY = ("events", "ledger", "tree_nodes", "checkpoints", "cosignatures", "recheck_runs", "payloads")


def upgrade() -> None:
    execute_all(op, events_triggers_ddl("audit"))
    grant_runtime(op, "audit", append_only=APPEND_ONLY)
    op.execute(f"GRANT UPDATE (body, redacted_at, redaction_reason) ON audit.payloads TO {runtime_role('audit')}")


def downgrade() -> None:
    revoke_runtime(op, "audit")
    execute_all(op, events_triggers_undo_ddl("audit"))
