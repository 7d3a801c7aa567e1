"""The ledger: entries, Merkle tree nodes, payloads, checkpoints, cosignatures, signing keys, re-check runs.

Append-only at the database: triggers refuse UPDATE, DELETE and TRUNCATE, and the runtime role gets SELECT and
INSERT only (0004). The triggers are ENABLE ALWAYS, so `session_replication_role = replica` does not bypass them;
only the owner or a superuser who disables a trigger can change a row, and the re-check and `povguard audit verify`
then find it.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

IMMUTABLE = ("ledger", "tree_nodes", "checkpoints", "cosignatures")


def upgrade() -> None:
    op.execute("""CREATE TABLE audit.ledger (
        idx bigint PRIMARY KEY CHECK (idx >= 0),
        event_id uuid NOT NULL CONSTRAINT ledger_event_once UNIQUE,  -- a redelivered event never enters twice
        recorded_at timestamptz NOT NULL,
        event_time timestamptz NOT NULL,
        source text NOT NULL,
        stream_type text NOT NULL,
        stream_id text NOT NULL,
        stream_version integer NOT NULL,
        action text NOT NULL,
        actor_user text NOT NULL,
        actor_role text NOT NULL,
        actor_org text NOT NULL,
        household text,
        payload_sha256 bytea NOT NULL,
        prev_idx bigint,
        prev_leaf bytea,
        leaf_hash bytea NOT NULL
    )""")
    for col in ("household", "actor_user", "action", "actor_org"):
        op.execute(f"CREATE INDEX ledger_{col}_idx ON audit.ledger ({col}, idx)")
    op.execute("CREATE INDEX ledger_recorded_idx ON audit.ledger (recorded_at)")
    op.execute("CREATE INDEX ledger_event_time_idx ON audit.ledger (event_time)")
    # Perfect Merkle nodes of level >= 1 (level 0 is ledger.leaf_hash): written once, never changed.
    op.execute("""CREATE TABLE audit.tree_nodes (
        level smallint NOT NULL CHECK (level >= 1),
        idx bigint NOT NULL,
        hash bytea NOT NULL,
        PRIMARY KEY (level, idx)
    )""")
    # The canonical event bytes the entry's payload hash covers. Redaction replaces the body by NULL; the entry
    # keeps the hash, so every proof still holds.
    op.execute("""CREATE TABLE audit.payloads (
        idx bigint PRIMARY KEY,
        body bytea,
        redacted_at timestamptz,
        redaction_reason text,
        CHECK ((body IS NULL) = (redacted_at IS NOT NULL))
    )""")
    op.execute("""CREATE TABLE audit.checkpoints (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tree_size bigint NOT NULL,
        root bytea NOT NULL,
        origin text NOT NULL,
        note text NOT NULL,
        signed_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )""")
    op.execute("CREATE INDEX checkpoints_size_idx ON audit.checkpoints (tree_size, id)")
    op.execute("""CREATE TABLE audit.cosignatures (
        checkpoint_id bigint NOT NULL REFERENCES audit.checkpoints (id),
        witness text NOT NULL,
        key_id bytea NOT NULL,
        line text NOT NULL,
        cosigned_at timestamptz NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (checkpoint_id, witness, key_id)
    )""")
    op.execute("""CREATE TABLE audit.witnesses (
        name text PRIMARY KEY,
        vkey text NOT NULL UNIQUE,
        added_at timestamptz NOT NULL DEFAULT now()
    )""")
    op.execute("""CREATE TABLE audit.signing_keys (
        vkey text PRIMARY KEY,
        name text NOT NULL,
        source text NOT NULL CHECK (source IN ('configured', 'generated-development')),
        seed bytea,  -- only for a generated development key; configured keys stay in the environment
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        retired_at timestamptz
    )""")
    op.execute("""CREATE TABLE audit.recheck_runs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        started_at timestamptz NOT NULL,
        finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        tree_size bigint NOT NULL,
        ok boolean NOT NULL,
        first_bad_index bigint,
        detail text NOT NULL
    )""")
    op.execute("""CREATE TABLE audit.findings (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind text NOT NULL,
        key text NOT NULL,
        household text,
        actor_user text,
        evidence jsonb NOT NULL,
        found_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (kind, key)
    )""")

    op.execute("""CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit.% is append-only (%)', TG_TABLE_NAME, TG_OP
              USING ERRCODE = 'restrict_violation'; END $$""")
    for table in IMMUTABLE:
        op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON audit.{table}
                       FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()""")
        op.execute(f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON audit.{table}
                       FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()""")
        op.execute(f"ALTER TABLE audit.{table} ENABLE ALWAYS TRIGGER {table}_append_only")
        op.execute(f"ALTER TABLE audit.{table} ENABLE ALWAYS TRIGGER {table}_no_truncate")
    # Payloads: the only change allowed is redaction (body to NULL, once); never delete or truncate.
    op.execute("""CREATE FUNCTION audit.payload_redaction_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND OLD.body IS NOT NULL AND NEW.body IS NULL AND NEW.idx = OLD.idx
             AND NEW.redacted_at IS NOT NULL THEN RETURN NEW; END IF;
          RAISE EXCEPTION 'audit.payloads allows redaction only (%)', TG_OP USING ERRCODE = 'restrict_violation';
        END $$""")
    op.execute("""CREATE TRIGGER payloads_redaction_only BEFORE UPDATE OR DELETE ON audit.payloads
                  FOR EACH ROW EXECUTE FUNCTION audit.payload_redaction_only()""")
    op.execute("""CREATE TRIGGER payloads_no_truncate BEFORE TRUNCATE ON audit.payloads
                  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()""")
    op.execute("ALTER TABLE audit.payloads ENABLE ALWAYS TRIGGER payloads_redaction_only")
    op.execute("ALTER TABLE audit.payloads ENABLE ALWAYS TRIGGER payloads_no_truncate")


def downgrade() -> None:
    for table in ("findings", "recheck_runs", "signing_keys", "witnesses", "cosignatures", "checkpoints",
                  "payloads", "tree_nodes", "ledger"):
        op.execute(f"DROP TABLE audit.{table}")
    op.execute("DROP FUNCTION audit.refuse_change(), audit.payload_redaction_only()")
