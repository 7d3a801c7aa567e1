from alembic import op

from povguard_platform.roles import grant_runtime

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    grant_runtime(op, "sample")
