"""Read models of the support service (rebuildable from events): household facts from assessment and review, plans
with their 缺什么补什么 / 一兜了之 / progress flags, measures, departments' delivery records and mismatches.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE support.facts (
        household_id text PRIMARY KEY,
        village_code text,
        township_code text,
        risks text[],
        gaps text[],
        no_labour boolean,
        labour_capable_members integer,
        per_capita numeric,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")
    op.execute("""CREATE TABLE support.plans (
        household_id text PRIMARY KEY,
        village_code text NOT NULL,
        township_code text NOT NULL,
        open boolean NOT NULL,
        basis text[] NOT NULL,
        lead_department text,
        cadre text,
        version integer NOT NULL,
        missing text[] NOT NULL,
        safety_net_only boolean NOT NULL,
        labour_capable boolean,
        measures integer NOT NULL,
        developmental integer NOT NULL,
        final_goal numeric,
        measured_on date,
        latest_per_capita numeric,
        latest_goal numeric,
        latest_expected numeric,
        behind boolean NOT NULL DEFAULT false,
        closed_reason text,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")
    op.execute("CREATE INDEX plans_village_idx ON support.plans (village_code, household_id)")
    op.execute("CREATE INDEX plans_missing_idx ON support.plans (household_id) WHERE open AND missing <> '{}'")
    op.execute("CREATE INDEX plans_safety_net_idx ON support.plans (household_id) WHERE open AND safety_net_only")
    op.execute("""CREATE TABLE support.measures (
        measure_id text PRIMARY KEY,
        household_id text NOT NULL,
        village_code text NOT NULL,
        township_code text NOT NULL,
        kind text NOT NULL,
        department text NOT NULL,
        developmental boolean NOT NULL,
        status text NOT NULL,
        description text NOT NULL,
        amount numeric,
        planned_start date,
        planned_end date,
        implemented_on date,
        implemented_amount numeric,
        evidence_ref text NOT NULL,
        verified_on date
    )""")
    op.execute("CREATE INDEX measures_department_idx ON support.measures (department, status, measure_id)")
    op.execute("CREATE INDEX measures_household_idx ON support.measures (household_id)")
    op.execute("""CREATE TABLE support.delivery_records (
        department text NOT NULL,
        record_ref text NOT NULL,
        household_id text NOT NULL,
        kind text NOT NULL,
        delivered_on date NOT NULL,
        amount numeric,
        received_at timestamptz NOT NULL DEFAULT now(),
        received_by text NOT NULL,
        PRIMARY KEY (department, record_ref)
    )""")
    op.execute("CREATE INDEX delivery_records_household_idx ON support.delivery_records (department, household_id)")
    op.execute("""CREATE TABLE support.mismatches (
        mismatch_id text PRIMARY KEY,
        household_id text NOT NULL,
        village_code text NOT NULL,
        township_code text NOT NULL,
        department text NOT NULL,
        kind text NOT NULL,
        mismatch text NOT NULL,
        open boolean NOT NULL,
        detail text NOT NULL,
        resolution text,
        version integer NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")
    op.execute("CREATE INDEX mismatches_open_idx ON support.mismatches (department, household_id) WHERE open")


def downgrade() -> None:
    for table in ("mismatches", "delivery_records", "measures", "plans", "facts"):
        op.execute(f"DROP TABLE support.{table}")
