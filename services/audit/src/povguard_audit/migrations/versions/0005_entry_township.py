"""The township of each entry's event, so that every read of the ledger is limited to the reader's org unit.

Not part of the entry's hashed bytes (the event's own bytes, covered by the payload hash, carry it too), so no leaf,
root or signed checkpoint changes. Existing entries take it from their stored event; a redacted one has none and
belongs to the county.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit.ledger ADD COLUMN township text")
    # the one write to existing entries: the append-only trigger is lifted for this statement of the migration only
    op.execute("ALTER TABLE audit.ledger DISABLE TRIGGER ledger_append_only")
    op.execute("""UPDATE audit.ledger l SET township = convert_from(p.body, 'UTF8')::jsonb->>'township'
                  FROM audit.payloads p WHERE p.idx = l.idx AND p.body IS NOT NULL""")
    op.execute("ALTER TABLE audit.ledger ENABLE ALWAYS TRIGGER ledger_append_only")
    op.execute("CREATE INDEX ledger_township_idx ON audit.ledger (township, idx)")


def downgrade() -> None:
    op.execute("DROP INDEX audit.ledger_township_idx")
    op.execute("ALTER TABLE audit.ledger DROP COLUMN township")
