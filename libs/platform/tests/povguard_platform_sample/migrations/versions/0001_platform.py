from alembic import op

from povguard_platform.schema import create_platform_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_platform_tables(op, "sample")
    op.execute("CREATE TABLE sample.totals (id text PRIMARY KEY, total bigint NOT NULL, applied int NOT NULL, "
               "history text NOT NULL DEFAULT '')")
