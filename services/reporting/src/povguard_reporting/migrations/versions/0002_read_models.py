"""Read models of the reporting service, all rebuildable from its log of consumed facts (`povguard replay reporting`).

`households` keeps every version of a household's figures with the time it held from (the time of the event that
made it) to the time it was replaced, so a figure as of any past time is the same query over the versions valid
then; the current version has valid_to NULL. Data problems keep versions the same way.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE reporting.log_batches")
    op.execute("""CREATE TABLE reporting.log (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        batch bigint NOT NULL,
        event_id uuid NOT NULL UNIQUE,
        source text NOT NULL,
        type text NOT NULL,
        household_id text,
        time timestamptz NOT NULL,
        actor jsonb NOT NULL,
        fact jsonb NOT NULL
    )""")
    op.execute("CREATE INDEX log_household_idx ON reporting.log (household_id, seq) WHERE household_id IS NOT NULL")
    op.execute("""CREATE TABLE reporting.households (
        household_id text NOT NULL,
        valid_from timestamptz NOT NULL,
        valid_to timestamptz,
        township_code text NOT NULL,
        village_code text NOT NULL,
        registered boolean NOT NULL,
        kind text,
        status text,
        category text,
        persons integer NOT NULL,
        priority boolean NOT NULL,
        visited boolean NOT NULL,
        assessed boolean NOT NULL,
        band text,
        per_capita numeric,
        assessed_persons integer,
        risks text[] NOT NULL,
        gaps text[] NOT NULL,
        proposal text,
        held boolean NOT NULL,
        case_stages text[] NOT NULL,
        open_stage text,
        lead_date date,
        decided text[] NOT NULL,
        refused integer NOT NULL,
        new_category text,
        new_risks text[] NOT NULL,
        plan_open boolean NOT NULL,
        measure_kinds text[] NOT NULL,
        implemented integer NOT NULL,
        missing text[] NOT NULL,
        safety_net_only boolean NOT NULL,
        behind boolean NOT NULL,
        unrecorded integer NOT NULL,
        unreceived integer NOT NULL,
        state jsonb NOT NULL,
        PRIMARY KEY (household_id, valid_from)
    )""")
    op.execute("CREATE UNIQUE INDEX households_current_idx ON reporting.households (household_id) "
               "WHERE valid_to IS NULL")
    op.execute("CREATE INDEX households_current_village_idx ON reporting.households (village_code, household_id) "
               "WHERE valid_to IS NULL")
    op.execute("CREATE INDEX households_history_idx ON reporting.households (village_code, valid_from, valid_to)")
    op.execute("""CREATE TABLE reporting.problems (
        problem_id text NOT NULL,
        valid_from timestamptz NOT NULL,
        valid_to timestamptz,
        household_id text NOT NULL,
        village_code text NOT NULL,
        kind text NOT NULL,
        rule_id text NOT NULL,
        open boolean NOT NULL,
        PRIMARY KEY (problem_id, valid_from)
    )""")
    op.execute("CREATE UNIQUE INDEX problems_current_idx ON reporting.problems (problem_id) WHERE valid_to IS NULL")
    op.execute("CREATE INDEX problems_village_idx ON reporting.problems (village_code, valid_from)")
    op.execute("""CREATE TABLE reporting.places (
        code text PRIMARY KEY,
        name text NOT NULL,
        level text NOT NULL
    )""")
    op.execute("""CREATE TABLE reporting.scale_alerts (
        township_code text NOT NULL,
        recorded_at timestamptz NOT NULL,
        crossed text[] NOT NULL,
        as_of date NOT NULL
    )""")
    op.execute("CREATE INDEX scale_alerts_idx ON reporting.scale_alerts (township_code, recorded_at)")
    op.execute("""CREATE TABLE reporting.audit_facts (
        event_id uuid PRIMARY KEY,
        type text NOT NULL,
        recorded_at timestamptz NOT NULL,
        household_id text,
        village_code text,
        kind text,
        actor text,
        tree_size bigint,
        root_hash text
    )""")
    op.execute("CREATE INDEX audit_facts_idx ON reporting.audit_facts (type, recorded_at)")


def downgrade() -> None:
    for table in ("audit_facts", "scale_alerts", "places", "problems", "households", "log"):
        op.execute(f"DROP TABLE reporting.{table}")
    op.execute("DROP SEQUENCE reporting.log_batches")
