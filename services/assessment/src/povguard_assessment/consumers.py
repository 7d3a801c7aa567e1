"""What assessment consumes: intake's registry events, review's county decisions and support's implemented
measures. Each event is applied in the consumer's transaction (inbox: exactly one effect)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_assessment.handlers import HOUSEHOLD_EVENTS, Assessor
from povguard_platform.clock import campaign_clock
from povguard_platform.consumer import ConsumerSpec
from povguard_platform.envelope import RecordedEvent
from povguard_platform.eventstore import EventStore
from povguard_platform.settings import get_settings
from povguard_rules.config import rules_for


def assessor() -> Assessor:
    settings = get_settings()
    return Assessor(EventStore("assessment"), rules_for(settings.campaign), campaign_clock(settings))


async def on_event(conn: AsyncConnection, event: RecordedEvent) -> None:
    await assessor().consume(conn, event)


async def on_batch(conn: AsyncConnection, events: list[RecordedEvent]) -> None:
    await assessor().consume_batch(conn, [e for e in events if e.type in CONSUMED])


CONSUMED = frozenset(HOUSEHOLD_EVENTS | {"WarningReceived", "WarningMatched"})


ASSESS = ConsumerSpec(
    name="assessment-facts",
    sources=["intake", "review", "support"],
    handlers={t: on_event for t in sorted(CONSUMED)},
    batch_handler=on_batch,  # the same handlers in order, the scale check once per township per batch
)
