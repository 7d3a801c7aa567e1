"""Consumers: assessment's proposals open and update cases; intake's registrations give the notice its names."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_platform.clock import clock_for
from povguard_platform.consumer import ConsumerSpec
from povguard_platform.envelope import RecordedEvent
from povguard_platform.eventstore import EventStore
from povguard_platform.settings import get_settings
from povguard_review.handlers import Review
from povguard_review.policy import load


@lru_cache
def review_for(campaign: str, today: date | None = None) -> Review:
    policy, rules = load(campaign)
    return Review(EventStore("review"), policy, rules, clock_for(policy, today))


async def on_proposal(conn: AsyncConnection, event: RecordedEvent) -> None:
    await review_for(get_settings().campaign, get_settings().campaign_today).on_proposal(conn, event)


async def on_proposals(conn: AsyncConnection, events: list[RecordedEvent]) -> None:
    await review_for(get_settings().campaign, get_settings().campaign_today).on_proposals(conn, events)


async def on_household(conn: AsyncConnection, event: RecordedEvent) -> None:
    await review_for(get_settings().campaign, get_settings().campaign_today).on_household(conn, event)


async def on_households(conn: AsyncConnection, events: list[RecordedEvent]) -> None:
    await review_for(get_settings().campaign, get_settings().campaign_today).on_households(conn, events)


PROPOSALS = ConsumerSpec(name="review-proposals", sources=["assessment"], handlers={"OutcomeProposed": on_proposal},
                         batch_handler=on_proposals)  # a batch's proposals in a few statements, not five each
REGISTRY = ConsumerSpec(name="review-registry", sources=["intake"], handlers={"HouseholdRegistered": on_household},
                        batch_handler=on_households)  # an import's registrations in one statement per batch
