"""How the demo (and the e2e bench) waits for the system to be quiet between stages: not long when nothing is
pending, and never before every consumer has applied what was appended. Intake and assessment run on real
PostgreSQL and NATS; the demo's own client talks to their apps."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from povguard_assessment.service import SERVICE as ASSESSMENT
from povguard_intake.service import SERVICE as INTAKE
from povguard_platform.settings import Settings
from povguard_platform.web import create_app
from povguard_tools.demo.client import Api
from povguard_tools.demo.collection import stage_import
from povguard_tools.demo.state import Campaign, progress_bar, settle
from povguard_tools.synthetic import generate_to


@pytest.fixture
async def campaign(settings: Settings, tmp_path: Path) -> AsyncIterator[Campaign]:
    registry = tmp_path / "registry.csv"
    county = generate_to(registry, 40, 3)
    async with AsyncExitStack() as stack:
        api = Api({}, settings)
        for name, definition in (("intake", INTAKE), ("assessment", ASSESSMENT)):
            app = create_app(definition, settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            api.clients[name] = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}", timeout=60))
        c = Campaign(api, county, Console(quiet=True), registry)
        c.progress = progress_bar(Console(quiet=True))
        yield c


async def test_settle_is_short_when_quiet_and_waits_for_every_consumer(campaign: Campaign,
                                                                      admin_engine: AsyncEngine) -> None:
    started = time.monotonic()
    await settle(campaign, "an idle system")
    # readings over 0.4 s (the lag gauges follow each batch, they are not refreshed on a 2 s timer); it used to
    # take readings over 1.1 s, and before that four over 3.3 s, however idle the system was
    assert time.monotonic() - started < 1.5

    await stage_import(campaign)  # the registry's events go to assessment over the bus
    await settle(campaign, "the assessments")
    async with admin_engine.connect() as conn:
        appended = (await conn.execute(text("SELECT count(*) FROM intake.events"))).scalar_one()
        applied = (await conn.execute(text(
            "SELECT count(*) FROM assessment.inbox WHERE consumer = 'assessment-facts' AND source = 'intake'")
        )).scalar_one()
        assessed = (await conn.execute(text("SELECT count(*) FROM assessment.households"))).scalar_one()
    assert appended >= len(campaign.household_ids) > 0
    assert applied == appended  # settled means every event appended was applied
    assert assessed == len(campaign.household_ids)
    what, seconds, _ = campaign.waits[-1]
    assert what == "the assessments" and seconds > 0


class Flaky(httpx.AsyncBaseTransport):
    """A service under load that drops the first connections to its /metrics page."""

    def __init__(self, inner: httpx.AsyncBaseTransport, drops: int) -> None:
        self.inner, self.drops = inner, drops

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/metrics" and self.drops > 0:
            self.drops -= 1
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return await self.inner.handle_async_request(request)


async def test_a_dropped_metrics_read_is_read_again_not_the_end_of_the_campaign(campaign: Campaign) -> None:
    intake = campaign.api.clients["intake"]
    flaky = Flaky(intake._transport, drops=2)
    campaign.api.clients["intake"] = httpx.AsyncClient(transport=flaky, base_url="http://intake", timeout=60)
    try:
        await settle(campaign, "a busy system")
    finally:
        await campaign.api.clients["intake"].aclose()
        campaign.api.clients["intake"] = intake
    assert flaky.drops == 0
    what, _, held = campaign.waits[-1]
    assert what == "a busy system" and "intake/metrics unread" in held
