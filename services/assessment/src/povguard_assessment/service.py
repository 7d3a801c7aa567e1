"""The assessment service: 收入和风险研判 from what intake knows, outcome proposals (the eight outcomes of seed
§三(五)), data-quality problems and scale-risk alerts per township."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection

import povguard_contracts  # noqa: F401  (registers the event catalogue)
from povguard_assessment.consumers import ASSESS
from povguard_platform.service import ServiceDef, ServiceRuntime

log = logging.getLogger(__name__)
SWEEP_SECONDS = 300.0


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
            async with runtime.engine.begin() as conn:
                await assessor.sweep_deadlines(conn, runtime.clock.today())
        except Exception as exc:  # the next round tries again
            log.warning("deadline sweep failed: %r", exc)


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
