"""A county decision published by review sets the household's kind and monitoring status in the registry, once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
from intake_helpers import auth, household_body, visit_form
from sqlalchemy import text

from povguard_contracts.review import CountyDecided
from povguard_contracts.vocab import HouseholdKind, MonitoringCategory, MonitoringStatus, Outcome, RiskType
from povguard_platform.actor import Actor, Role
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.settings import Settings
from povguard_review.service import SERVICE as REVIEW
from povguard_tools.testing import eventually, running

COUNTY = Actor(user="县审定-李", role=Role.COUNTY_BUREAU, org="533123")


async def decide_in_review(client: httpx.AsyncClient, settings: Settings, household: dict[str, Any], case_id: str,
                           until: Callable[[dict[str, Any]], bool]) -> None:
    """Review publishes a county decision (新识别监测对象, 风险未消除) on the household; waits until the registry's read
    of it satisfies `until`."""
    hid = household["household_id"]
    decided = CountyDecided(
        case_id=case_id, household_id=hid, outcome=Outcome.NEWLY_IDENTIFIED, kind=HouseholdKind.MONITORED,
        category=MonitoringCategory.UNSTABLE_LIFTED, status=MonitoringStatus.RISK_NOT_ELIMINATED,
        risks=[RiskType.ILLNESS], decided_on=date(2022, 5, 27))
    async with running(REVIEW, settings) as review:
        stream = StreamRef("case", case_id)
        async with review.engine.begin() as conn:
            await review.store.append(conn, [NewEvent(stream, household["place"]["township_code"], decided)],
                                      {stream: 0}, Metadata(actor=COUNTY))

        async def seen() -> bool:
            return until((await client.get(f"/v1/households/{hid}", headers=auth(settings))).json())

        await eventually(seen)


async def test_county_decision_sets_kind_and_status(client: httpx.AsyncClient, settings: Settings) -> None:
    h = (await client.post("/v1/households", json=household_body(), headers=auth(settings))).json()
    hid = h["household_id"]
    await decide_in_review(client, settings, h, "case-1", lambda got: bool(got["status"] == "风险未消除"))
    got = (await client.get(f"/v1/households/{hid}", headers=auth(settings))).json()
    assert (got["kind"], got["category"], got["version"]) == ("监测对象", "脱贫不稳定户", 2)
    history = (await client.get(f"/v1/households/{hid}/history", headers=auth(settings))).json()
    assert history[-1]["type"] == "MonitoringStatusChanged" and history[-1]["actor"]["user"] == "县审定-李"
    assert history[-1]["data"]["case_id"] == "case-1"


async def test_a_household_changed_by_the_decision_consumer_is_not_read_from_the_routes_cache(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """The routes keep the households they wrote (`Intake.states`, by the row's xmin): a collector's next form is
    decided on the household as the county decision left it, not on the state this process last wrote."""
    h = (await client.post("/v1/households", json=household_body(), headers=auth(settings))).json()
    hid = h["household_id"]
    collector = auth(settings, Role.COLLECTOR)
    first = await client.post("/v1/batches/visits", json={"items": [{"household_id": hid, "form": visit_form()}]},
                              headers=collector)
    assert first.json()["data"][0]["version"] == 2
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        xmin = (await conn.execute(text("SELECT CAST(xmin AS text) FROM intake.households WHERE household_id = :h"),
                                   {"h": hid})).scalar_one()
    held = client.app.state.intake.states.get(hid, xmin)  # type: ignore[attr-defined]
    assert held is not None and held.version == 2
    await decide_in_review(client, settings, h, "case-2", lambda got: bool(got["version"] == 3))
    again = await client.post("/v1/batches/visits", json={"items": [
        {"household_id": hid, "form": visit_form(visit_date="2022-06-01"), "expected_version": 3}]},
        headers=collector)
    assert again.status_code == 200 and again.json()["recorded"] == 1, again.text
    got = (await client.get(f"/v1/households/{hid}", headers=auth(settings))).json()
    assert (got["version"], got["status"], len(got["visits"])) == (4, "风险未消除", 2)
