"""The support consumer: county decisions create, close and reopen plans; assessments keep each household's risks,
三保障/water gaps, labour and income so that coverage can be checked."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_platform.clock import clock_for
from povguard_platform.consumer import ConsumerSpec
from povguard_platform.envelope import RecordedEvent
from povguard_platform.eventstore import EventStore
from povguard_platform.policy import load_policy, policy_section
from povguard_platform.settings import get_settings
from povguard_rules.measures import SupportPolicy
from povguard_support.handlers import Support


@lru_cache
def support_for(campaign: str, today: date | None = None) -> Support:
    policy = load_policy(campaign)
    return Support(EventStore("support"), policy, policy_section(campaign, "support", SupportPolicy),
                   clock_for(policy, today))


def _support() -> Support:
    settings = get_settings()
    return support_for(settings.campaign, settings.campaign_today)


async def case_opened(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _support().on_case_opened(conn, event)


async def county_decided(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _support().on_county_decided(conn, event)


async def assessed(conn: AsyncConnection, event: RecordedEvent) -> None:
    await _support().on_assessed(conn, event)


async def in_batch(conn: AsyncConnection, events: list[RecordedEvent]) -> None:
    await _support().consume_batch(conn, events)


DECISIONS = ConsumerSpec(
    name="support-decisions",
    sources=["review", "assessment"],
    handlers={
        "CaseOpened": case_opened,
        "CountyDecided": county_decided,
        "RiskAssessed": assessed,
        "IncomeAssessed": assessed,
    },
    batch_handler=in_batch,  # the same, with facts merged per household and plans refreshed once
)
