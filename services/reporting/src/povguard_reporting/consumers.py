"""The reporting consumer: every service's events that a figure is made of, logged as facts and projected into the
read models in the consumer's transaction (the inbox row commits with them)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_platform.consumer import ConsumerSpec
from povguard_platform.envelope import RecordedEvent
from povguard_platform.settings import get_settings
from povguard_reporting.domain.facts import HANDLED
from povguard_reporting.policy import reporting_policy
from povguard_reporting.projections import record


async def project_batch(conn: AsyncConnection, events: list[RecordedEvent]) -> None:
    await record(conn, events, reporting_policy(get_settings().campaign).catalogue)


async def project_one(conn: AsyncConnection, event: RecordedEvent) -> None:
    await project_batch(conn, [event])


PROJECTIONS = ConsumerSpec(
    name="reporting-projections",
    sources=["intake", "assessment", "review", "support", "audit"],
    handlers=dict.fromkeys(sorted(HANDLED), project_one),
    batch_handler=project_batch,
    batch_size=500,
)
