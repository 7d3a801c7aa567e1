"""Numbers at the support API, through the real stack: NaN, ±Infinity, amounts beyond the bounds and more than two
decimal places are refused as 422 problem details naming the field, nothing is written, and the plan stays readable
(a NaN measured income used to be stored as null, and every later request on that plan failed); good amounts
round-trip exactly as decimals."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text
from support_helpers import VILLAGE, assess, auth, decide, department, new_household, plan_of

from povguard_assessment.service import SERVICE as ASSESSMENT
from povguard_contracts.vocab import MeasureKind
from povguard_platform.actor import Role
from povguard_platform.settings import Settings
from povguard_review.service import SERVICE as REVIEW
from povguard_tools.testing import running

NAN, INF = float("nan"), float("inf")
# NaN, ±Infinity (also as strings), beyond any amount, more than two places, above [bounds] max_line_amount, negative
BAD = [NAN, INF, -INF, "NaN", "-Infinity", 1e16, 8252.345, 2000000.01, -1]


async def post_raw(client: httpx.AsyncClient, path: str, body: dict[str, Any],
                   headers: dict[str, str]) -> httpx.Response:
    """JSON as a careless client writes it: NaN and Infinity as bare tokens (what Python's json.dumps emits)."""
    return await client.post(path, content=json.dumps(body, allow_nan=True).encode(),
                             headers={**headers, "Content-Type": "application/json"})


def fields(r: httpx.Response) -> list[str]:
    assert r.status_code == 422, r.text
    return [e["field"] for e in r.json()["errors"]]


async def rows(client: httpx.AsyncClient, sql: str) -> list[Any]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


async def test_bad_numbers_are_refused_naming_the_field_and_the_plan_stays_readable(
        client: httpx.AsyncClient, settings: Settings) -> None:
    hh = new_household()
    async with running(REVIEW, settings) as review, running(ASSESSMENT, settings) as assessment:
        await assess(assessment, hh, per_capita=6500)
        await decide(review, hh, measures=(MeasureKind.EMPLOYMENT,))
        plan = await plan_of(client, settings, hh)
    measure = plan["measures"][0]["measure_id"]
    cadre, dept = auth(settings, Role.WORK_TEAM, VILLAGE), department(settings, "人社")
    before = await rows(client, "SELECT id, data FROM support.events ORDER BY position")

    for value in BAD:
        r = await post_raw(client, f"/v1/plans/{hh}/incomes", {"measured_on": "2022-07-02", "per_capita": value},
                           cadre)
        assert fields(r) == ["body.per_capita"], (value, r.text)
        r = await post_raw(client, f"/v1/plans/{hh}/measures", {"kind": "产业帮扶", "amount": value}, cadre)
        assert fields(r) == ["body.amount"], (value, r.text)
        r = await post_raw(client, f"/v1/plans/{hh}/measures/{measure}/implement",
                           {"implemented_on": "2022-06-15", "amount": value, "evidence_ref": "签到表"}, dept)
        assert fields(r) == ["body.amount"], (value, r.text)
    r = await post_raw(client, "/v1/batches/plans",
                       {"items": [{"household_id": hh, "measures": [{"kind": "产业帮扶", "amount": INF}]}]}, cadre)
    assert fields(r) == ["body.items.0.measures.0.amount"]
    r = await post_raw(client, "/v1/batches/implementations", {"items": [
        {"household_id": hh, "measure_id": measure, "implemented_on": "2022-06-15", "amount": 1e16,
         "evidence_ref": "签到表"}]}, dept)
    assert fields(r) == ["body.items.0.amount"]
    r = await post_raw(client, "/v1/delivery-records", {"records": [
        {"record_ref": "RS-1", "household_id": hh, "kind": "就业帮扶", "delivered_on": "2022-06-15", "amount": NAN}]},
        dept)
    assert fields(r) == ["body.records.0.amount"]
    assert await rows(client, "SELECT id, data FROM support.events ORDER BY position") == before

    got = await client.get(f"/v1/plans/{hh}", headers=cadre)
    assert got.status_code == 200 and got.json()["version"] == plan["version"]
    r = await client.post(f"/v1/plans/{hh}/incomes", json={"measured_on": "2022-07-02", "per_capita": 8252.35},
                          headers=cadre)
    assert r.status_code == 201, r.text
    assert (await client.get(f"/v1/plans/{hh}", headers=cadre)).status_code == 200


async def test_amounts_round_trip_exactly_to_the_fen(client: httpx.AsyncClient, settings: Settings) -> None:
    hh = new_household()
    async with running(REVIEW, settings) as review, running(ASSESSMENT, settings) as assessment:
        await assess(assessment, hh, per_capita=6500.05)
        await decide(review, hh)
        await plan_of(client, settings, hh)
    cadre = auth(settings, Role.WORK_TEAM, VILLAGE)
    r = await client.post(f"/v1/plans/{hh}/measures", json={"kind": "产业帮扶", "amount": 1999999.99}, headers=cadre)
    assert r.status_code == 201, r.text
    measure = r.json()["measures"][-1]["measure_id"]
    r = await client.post(f"/v1/plans/{hh}/measures/{measure}/implement",
                          json={"implemented_on": "2022-06-15", "amount": "0.30", "evidence_ref": "凭证"},
                          headers=cadre)
    assert r.status_code == 200, r.text
    r = await client.post(f"/v1/plans/{hh}/incomes", json={"measured_on": "2022-07-02", "per_capita": 8252.35},
                          headers=cadre)
    assert r.status_code == 201, r.text

    plan = (await client.get(f"/v1/plans/{hh}", headers=cadre)).json()
    assert plan["base_per_capita"] == 6500.05
    [m] = [m for m in plan["measures"] if m["measure_id"] == measure]
    assert (m["amount"], m["implemented_amount"]) == (1999999.99, 0.3)
    assert plan["incomes"][0]["per_capita"] == 8252.35
    listed = (await client.get("/v1/measures", headers=auth(settings, Role.COUNTY_BUREAU, "533123"))).json()["data"]
    assert [(x["amount"], x["implemented_amount"]) for x in listed if x["measure_id"] == measure] == [(1999999.99, 0.3)]
    # in the event store and the read models: exactly those decimals
    stored = {t: d for t, d in await rows(client, "SELECT type, data FROM support.events")}
    assert stored["MeasureAssigned"]["amount"] == 1999999.99 and stored["MeasureImplemented"]["amount"] == 0.3
    assert stored["IncomeMeasured"]["per_capita"] == 8252.35
    [(amount, implemented)] = await rows(client, f"SELECT amount, implemented_amount FROM support.measures "
                                                 f"WHERE measure_id = '{measure}'")
    assert (amount, implemented) == (Decimal("1999999.99"), Decimal("0.30"))
    [(latest,)] = await rows(client, f"SELECT latest_per_capita FROM support.plans WHERE household_id = '{hh}'")
    assert latest == Decimal("8252.35")
