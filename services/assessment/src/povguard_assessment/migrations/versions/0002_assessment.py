"""Assessment: the consumed facts (append-only, for as_of and rebuild) and the read models (households with their
current assessment, data problems, warnings per township, scale risk per township).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every consumed event a household's assessment depends on, as it arrived (never updated or deleted).
    op.execute("""CREATE TABLE assessment.facts (
        seq bigserial PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        household_id text,
        township_code text NOT NULL,
        source text NOT NULL,
        type text NOT NULL,
        type_version integer NOT NULL,
        time timestamptz NOT NULL,
        data jsonb NOT NULL
    )""")
    op.execute("CREATE INDEX facts_household_idx ON assessment.facts (household_id, seq)")
    op.execute("""CREATE FUNCTION assessment.facts_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'assessment.facts is append-only'; END $$""")
    op.execute("""CREATE TRIGGER facts_append_only BEFORE UPDATE OR DELETE ON assessment.facts
        FOR EACH ROW EXECUTE FUNCTION assessment.facts_append_only()""")
    op.execute("""CREATE TABLE assessment.households (
        household_id text PRIMARY KEY,
        township_code text NOT NULL,
        village_code text NOT NULL,
        kind text NOT NULL,
        status text NOT NULL,
        visit_id text,
        persons integer NOT NULL DEFAULT 0,
        per_capita numeric,
        band text,
        outcome text,
        category text,
        held boolean NOT NULL DEFAULT false,
        hold_reason text,
        at_risk boolean NOT NULL DEFAULT false,
        income_fell boolean NOT NULL DEFAULT false,
        income jsonb,
        risk jsonb,
        proposal jsonb,
        problems jsonb NOT NULL DEFAULT '{}',
        detail jsonb NOT NULL DEFAULT '{}',
        policy text NOT NULL
    )""")
    op.execute("CREATE INDEX households_village_idx ON assessment.households (village_code, household_id)")
    op.execute("CREATE INDEX households_township_idx ON assessment.households (township_code, household_id)")
    op.execute("CREATE INDEX households_outcome_idx ON assessment.households (outcome, household_id)")
    op.execute("""CREATE TABLE assessment.problems (
        problem_id text PRIMARY KEY,
        household_id text NOT NULL,
        village_code text NOT NULL,
        kind text NOT NULL,
        rule_id text NOT NULL,
        member_id text,
        text text NOT NULL,
        open boolean NOT NULL,
        found_at timestamptz NOT NULL,
        cleared_at timestamptz
    )""")
    op.execute("CREATE INDEX problems_village_idx ON assessment.problems (village_code, open)")
    op.execute("CREATE INDEX problems_household_idx ON assessment.problems (household_id)")
    op.execute("""CREATE TABLE assessment.warnings (
        warning_id text PRIMARY KEY,
        township_code text NOT NULL,
        household_id text,
        kind text NOT NULL,
        occurred_on date NOT NULL
    )""")
    op.execute("CREATE INDEX warnings_township_idx ON assessment.warnings (township_code, kind)")
    op.execute("""CREATE TABLE assessment.scale (
        township_code text PRIMARY KEY,
        households integer NOT NULL,
        indicators jsonb NOT NULL,
        crossed text[] NOT NULL,
        raised text[] NOT NULL DEFAULT '{}',
        raised_at timestamptz
    )""")


def downgrade() -> None:
    for table in ("scale", "warnings", "problems", "households", "facts"):
        op.execute(f"DROP TABLE assessment.{table}")
    op.execute("DROP FUNCTION assessment.facts_append_only()")
