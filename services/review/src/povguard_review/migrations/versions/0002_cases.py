"""Read models of the review service (rebuildable from events): cases and the registry facts a notice needs.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""CREATE TABLE review.cases (
        case_id text PRIMARY KEY,
        household_id text NOT NULL,
        township_code text NOT NULL,
        village_code text NOT NULL,
        stage text NOT NULL,
        outcome text NOT NULL,
        open boolean NOT NULL,
        lead_date date,
        notice_ends_on date,
        checked text[] NOT NULL DEFAULT '{}',
        open_objections integer NOT NULL DEFAULT 0,
        version integer NOT NULL,
        state jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")
    # a household has at most one open case per campaign (one database per campaign's service schema)
    op.execute("CREATE UNIQUE INDEX cases_one_open_idx ON review.cases (household_id) WHERE open")
    op.execute("CREATE INDEX cases_household_idx ON review.cases (household_id, updated_at)")
    op.execute("CREATE INDEX cases_stage_idx ON review.cases (stage, village_code) WHERE open")
    op.execute("CREATE INDEX cases_village_idx ON review.cases (village_code, case_id)")
    # 户主姓名, 村民小组 etc. for the printable notice (from intake's HouseholdRegistered; never ID numbers)
    op.execute("""CREATE TABLE review.households (
        household_id text PRIMARY KEY,
        code text NOT NULL,
        head_name text,
        members integer NOT NULL,
        township text NOT NULL,
        village text NOT NULL,
        village_code text NOT NULL,
        group_name text NOT NULL,
        kind text NOT NULL,
        lifted_year integer,
        status text NOT NULL
    )""")


def downgrade() -> None:
    op.execute("DROP TABLE review.households")
    op.execute("DROP TABLE review.cases")
