"""Read models of the registry (rebuildable from events) and the import records.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE intake.households (
        household_id text PRIMARY KEY,
        code text NOT NULL UNIQUE,
        county_code text NOT NULL,
        township_code text NOT NULL,
        village_code text NOT NULL,
        group_code text NOT NULL,
        kind text NOT NULL,
        status text NOT NULL,
        flags text[] NOT NULL,
        members integer NOT NULL,
        version integer NOT NULL,
        state jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")
    op.execute("CREATE INDEX households_village_idx ON intake.households (village_code, household_id)")
    op.execute("CREATE INDEX households_township_idx ON intake.households (township_code, household_id)")
    # An ID number is an active member of at most one household: the key refuses a second one, even in a race.
    op.execute("""CREATE TABLE intake.member_index (
        id_number text PRIMARY KEY,
        household_id text NOT NULL,
        member_id text NOT NULL
    )""")
    op.execute("CREATE INDEX member_index_household_idx ON intake.member_index (household_id)")
    op.execute("""CREATE TABLE intake.warnings (
        warning_id text PRIMARY KEY,
        department text NOT NULL,
        kind text NOT NULL,
        id_number text,
        person_name text,
        household_id text,
        member_id text,
        township_code text,
        amount numeric,
        occurred_on date NOT NULL,
        source_ref text NOT NULL,
        note text NOT NULL,
        received_at timestamptz NOT NULL
    )""")
    op.execute("CREATE INDEX warnings_unmatched_idx ON intake.warnings (id_number) WHERE household_id IS NULL")
    op.execute("CREATE UNIQUE INDEX warnings_source_idx ON intake.warnings (department, source_ref)")
    op.execute("""CREATE TABLE intake.imports (
        import_id text PRIMARY KEY,
        file_name text NOT NULL,
        sha256 text NOT NULL,
        actor jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        status text NOT NULL,
        households integer NOT NULL DEFAULT 0,
        processed integer NOT NULL DEFAULT 0,
        imported integer NOT NULL DEFAULT 0,
        unchanged integer NOT NULL DEFAULT 0,
        refused integer NOT NULL DEFAULT 0,
        rows integer NOT NULL DEFAULT 0,
        errors jsonb NOT NULL DEFAULT '[]',
        message text,
        content bytea NOT NULL
    )""")


def downgrade() -> None:
    for table in ("imports", "warnings", "member_index", "households"):
        op.execute(f"DROP TABLE intake.{table}")
