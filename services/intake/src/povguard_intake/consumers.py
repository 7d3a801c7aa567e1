"""What intake reacts to: county decisions (县级审定) set a household's kind and monitoring status."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.review import CountyDecided
from povguard_intake.handlers import Intake
from povguard_platform.clock import campaign_clock
from povguard_platform.consumer import ConsumerSpec
from povguard_platform.envelope import RecordedEvent
from povguard_platform.eventstore import EventStore
from povguard_platform.policy import load_policy
from povguard_platform.settings import get_settings


async def on_county_decided(conn: AsyncConnection, event: RecordedEvent) -> None:
    decided = CATALOGUE.decode(event)
    assert isinstance(decided, CountyDecided)
    settings = get_settings()
    intake = Intake(EventStore("intake"), load_policy(settings.campaign), campaign_clock(settings))
    await intake.record_decision(conn, event, decided)


DECISIONS = ConsumerSpec(name="intake-decisions", sources=["review"],
                         handlers={"CountyDecided": on_county_decided})
