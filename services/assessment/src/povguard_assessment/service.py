"""The assessment service: 收入和风险研判 from what intake knows, outcome proposals (the eight outcomes of seed
§三(五)), data-quality problems and scale-risk alerts per township."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection

import povguard_contracts  # noqa: F401  (registers the event catalogue)
from povguard_assessment.consumers import ASSESS
from povguard_platform.service import ServiceDef, ServiceRuntime

if TYPE_CHECKING:
    from povguard_assessment.handlers import Assessor

log = logging.getLogger(__name__)
SWEEP_SECONDS = 300.0
SWEEP_CHUNK = 500  # households re-assessed per transaction by the deadline sweep


def _routers() -> Sequence[APIRouter]:
    from povguard_assessment.api import routes

    return [routes.router]


async def sweep_deadlines(runtime: ServiceRuntime) -> None:
    """After the visit deadline, households without a visit get a 及时性 problem (every SWEEP_SECONDS)."""
    from povguard_assessment.handlers import Assessor
    from povguard_rules.config import rules_for

    assessor = Assessor(runtime.store, rules_for(runtime.settings.campaign), runtime.clock)
    while not runtime.stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runtime.stop.wait(), SWEEP_SECONDS)
        if runtime.stop.is_set():
            return
        try:
            await sweep_in_chunks(runtime, assessor)
        except Exception as exc:  # the next round tries again (what committed stays: a fact is recorded once)
            log.warning("deadline sweep failed: %r", exc)


async def sweep_in_chunks(runtime: ServiceRuntime, assessor: Assessor, chunk: int = SWEEP_CHUNK,
                          today: date | None = None) -> list[int]:
    """One deadline sweep on the campaign's day: the households past the deadline read once, then swept a chunk to
    a transaction. Returns how many each chunk recorded."""
    today = today or runtime.clock.today()
    async with runtime.read() as conn:
        due = await assessor.past_deadline(conn, today)
    swept = []
    for start in range(0, len(due), chunk):
        async with runtime.engine.begin() as conn:
            swept.append(await assessor.sweep_deadlines(conn, today, due[start:start + chunk]))
    return swept


async def rebuild(runtime: ServiceRuntime, conn: AsyncConnection) -> int:
    from povguard_assessment.handlers import Assessor
    from povguard_rules.config import rules_for

    return await Assessor(runtime.store, rules_for(runtime.settings.campaign), runtime.clock).rebuild(conn)


SERVICE = ServiceDef(
    name="assessment",
    title="povguard assessment: 收入和风险研判, outcome proposals, data quality, scale risk",
    description=__doc__ or "",
    default_port=8102,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=_routers,
    consumers=[ASSESS],
    background=[sweep_deadlines],
    rebuild=rebuild,
)
