"""The campaign's own clock (CAMPAIGN_TODAY): lists without `as_of`, the bound on `acted_on` and a case opened
without a lead date all stand on the campaign's day, never on the machine's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date

import httpx
import pytest
from review_helpers import (
    cases_of,
    committee,
    county,
    household_id,
    new_case,
    open_case,
    proposal,
    propose,
    step,
    walk,
)

from povguard_assessment.service import SERVICE as ASSESSMENT
from povguard_platform.settings import Settings, get_settings
from povguard_platform.web import create_app
from povguard_review.service import SERVICE
from povguard_tools.testing import eventually, running

TODAY = date(2022, 5, 22)


@pytest.fixture
def campaign_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The campaign replayed on 2022-05-22: the app's settings and the process settings its consumers read."""
    monkeypatch.setenv("CAMPAIGN_TODAY", TODAY.isoformat())
    get_settings.cache_clear()
    yield settings.model_copy(update={"campaign_today": TODAY})
    monkeypatch.delenv("CAMPAIGN_TODAY")
    get_settings.cache_clear()


@pytest.fixture
async def on_the_day(campaign_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SERVICE, campaign_settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://r") as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


async def test_lists_and_actions_stand_on_the_campaigns_day(on_the_day: httpx.AsyncClient,
                                                            campaign_settings: Settings) -> None:
    waiting = await new_case(on_the_day, campaign_settings, lead_date="2022-05-01", acted_on="2022-05-02")
    overdue = (await on_the_day.get("/v1/lists/overdue", headers=county(campaign_settings))).json()
    assert overdue["as_of"] == "2022-05-22"
    [item] = [c for c in overdue["data"] if c["case_id"] == waiting]
    assert (item["deadline"], item["days_overdue"]) == ("2022-05-16", 6)  # not 1600-odd days
    limit = (await on_the_day.get("/v1/lists/identification-limit", headers=county(campaign_settings))).json()
    assert limit["as_of"] == "2022-05-22"
    assert [c["days_left"] for c in limit["data"] if c["case_id"] == waiting] == [-6]
    # the day after the campaign's today is the future
    late = await open_case(on_the_day, campaign_settings, lead_date="2022-05-20", acted_on="2022-05-23")
    assert late.status_code == 422, late.text
    assert [e["field"] for e in late.json()["errors"]] == ["body.acted_on"]


async def test_a_case_without_a_lead_date_opens_on_the_campaigns_day(on_the_day: httpx.AsyncClient,
                                                                     campaign_settings: Settings) -> None:
    hid = household_id()
    async with running(ASSESSMENT, campaign_settings) as assessment:
        await propose(assessment, proposal(hid, lead_date=None))

        async def opened() -> bool:
            return len(await cases_of(on_the_day, hid)) == 1

        await eventually(opened)
    [case] = await cases_of(on_the_day, hid)
    assert case["opened_on"] == "2022-05-22"  # the campaign's day, not the machine's


def test_a_campaign_day_outside_the_campaign_is_refused(settings: Settings) -> None:
    from povguard_platform.clock import campaign_clock

    with pytest.raises(ValueError, match="outside campaign 533123-2022"):
        campaign_clock(settings.model_copy(update={"campaign_today": date(2026, 12, 1)}))
    assert campaign_clock(settings.model_copy(update={"campaign_today": TODAY})).today() == TODAY


async def test_a_notice_is_held_to_its_own_end_and_flagged_when_it_cannot_meet_the_plan(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """Started 2022-05-17 (Tue), five working days end 05-23 (Mon); the plan's notice_end is 05-21."""
    case_id = await new_case(client, settings, lead_date="2022-05-10", acted_on="2022-05-11")
    case = await walk(client, settings, case_id, until="待公示")
    started = await step(client, f"/v1/cases/{case_id}/notice", {"acted_on": "2022-05-17"},
                         committee(settings))
    case = started["case"]
    assert case["notice"]["ends_on"] == "2022-05-23"
    assert case["notice_misses_plan"] is True and case["planned_notice_end"] == "2022-05-21"
    assert case["stage_deadline"] == "2022-05-23"  # the deadline it is held to is its own notice's
    for day in ("2022-05-22", "2022-05-23"):  # still running: not overdue
        overdue = (await client.get("/v1/lists/overdue", params={"as_of": day}, headers=county(settings))).json()
        assert case_id not in [c["case_id"] for c in overdue["data"]], day
    refused = await client.post(f"/v1/cases/{case_id}/notice/closure", json={"acted_on": "2022-05-23"},
                                headers=committee(settings))
    assert refused.status_code == 409
    overdue = (await client.get("/v1/lists/overdue", params={"as_of": "2022-05-24"}, headers=county(settings))).json()
    [item] = [c for c in overdue["data"] if c["case_id"] == case_id]
    assert (item["deadline"], item["days_overdue"]) == ("2022-05-23", 1)
    await step(client, f"/v1/cases/{case_id}/notice/closure", {"acted_on": "2022-05-24"}, committee(settings))
