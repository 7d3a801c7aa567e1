"""The household map (`householdmap.py`): its nodes, versioned by the checkpoint size that wrote them, and each
checkpoint's map root (also signed, as the note's `household-map` extension line). Append-only, as the tree is.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from povguard_platform.roles import runtime_role

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit.checkpoints ADD COLUMN map_root bytea")
    # A node as of `version` (the checkpoint size that wrote it); a reader at size N takes the newest version <= N.
    # A leaf node names its household's key and latest entry; an inner node has them NULL.
    op.execute("""CREATE TABLE audit.map_nodes (
        depth smallint NOT NULL CHECK (depth BETWEEN 0 AND 256),
        prefix bytea NOT NULL,
        version bigint NOT NULL,
        hash bytea NOT NULL,
        leaf_key bytea,
        leaf_idx bigint,
        leaf_hash bytea,
        PRIMARY KEY (depth, prefix, version)
    )""")
    op.execute("""CREATE TRIGGER map_nodes_append_only BEFORE UPDATE OR DELETE ON audit.map_nodes
                  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()""")
    op.execute("""CREATE TRIGGER map_nodes_no_truncate BEFORE TRUNCATE ON audit.map_nodes
                  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()""")
    op.execute("ALTER TABLE audit.map_nodes ENABLE ALWAYS TRIGGER map_nodes_append_only")
    op.execute("ALTER TABLE audit.map_nodes ENABLE ALWAYS TRIGGER map_nodes_no_truncate")
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit.map_nodes FROM {runtime_role('audit')}")


def downgrade() -> None:
    op.execute("DROP TABLE audit.map_nodes")
    op.execute("ALTER TABLE audit.checkpoints DROP COLUMN map_root")
