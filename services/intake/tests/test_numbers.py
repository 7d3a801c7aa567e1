"""Numbers at the intake API: NaN, ±Infinity, amounts beyond the bounds and more than two decimal places are refused
as 422 problem details naming the field, and nothing is written; amounts round-trip exactly as decimals. Uploaded
numeric cells are held to the same rule."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
from intake_helpers import TOWN, VILLAGE, auth, csv_bytes, household_body, template_rows, visit_form
from sqlalchemy import text
from test_import_export import upload

from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.intake import IncomeLines, VisitForm, VisitRecorded
from povguard_contracts.template import HEADERS
from povguard_platform.actor import Actor, Role
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.settings import Settings

NAN, INF = float("nan"), float("inf")


def raw(body: dict[str, Any]) -> bytes:
    """JSON as a careless client writes it: NaN and Infinity as bare tokens (what Python's json.dumps emits)."""
    return json.dumps(body, allow_nan=True).encode()


async def post_raw(client: httpx.AsyncClient, path: str, body: dict[str, Any],
                   headers: dict[str, str]) -> httpx.Response:
    return await client.post(path, content=raw(body), headers={**headers, "Content-Type": "application/json"})


async def events(client: httpx.AsyncClient) -> list[Any]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        return list((await conn.execute(text("SELECT type, data FROM intake.events ORDER BY position"))).all())


def fields(r: httpx.Response) -> list[str]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return [e["field"] for e in r.json()["errors"]]


def with_value(form: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """The form with `value` at the dotted `path` (lists by index)."""
    target: Any = form
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return form


BAD_VISITS = [
    ("income.wages", NAN), ("income.business", INF), ("spending.business_expense", -INF),
    ("previous_year_per_capita", NAN), ("housing.area_m2", NAN), ("spending.other_rigid.0.amount", INF),
    ("assets.vehicles.0.value", NAN),
    ("income.pension", 1e16),  # beyond any amount (the audit ledger's canonical JSON refuses integers past 2**53)
    ("income.dibao", 1234.567),  # more than two decimal places
    ("income.eco_compensation", 2000000.01),  # above the policy's [bounds] max_line_amount
    ("spending.medical_out_of_pocket", "Infinity"), ("income.tekun", "NaN"),
]


async def test_a_visit_with_a_bad_number_is_refused_naming_the_field_and_writes_nothing(
        client: httpx.AsyncClient, settings: Settings) -> None:
    r = await client.post("/v1/households", json=household_body(), headers=auth(settings))
    hid, version = r.json()["household_id"], r.json()["version"]
    before = await events(client)
    for path, value in BAD_VISITS:
        form = visit_form(spending={"business_expense": 2000, "other_rigid": [{"kind": "因病", "amount": 100}]},
                          assets={"vehicles": [{"kind": "摩托车", "value": 5000}]},
                          housing={"structure": "砖混", "area_m2": 90})
        r = await post_raw(client, f"/v1/households/{hid}/visits", {"form": with_value(form, path, value)},
                           auth(settings, Role.COLLECTOR, VILLAGE))
        assert fields(r) == [f"body.form.{path}"], (path, r.text)
    items = [{"household_id": hid, "form": visit_form()},
             {"household_id": hid, "form": with_value(visit_form(), "income.wages", NAN)}]
    r = await post_raw(client, "/v1/batches/visits", {"items": items}, auth(settings, Role.COLLECTOR, VILLAGE))
    assert fields(r) == ["body.items.1.form.income.wages"]
    assert await events(client) == before

    # the household never got a bad number: it reads and takes a good visit as before
    got = await client.get(f"/v1/households/{hid}", headers=auth(settings))
    assert got.status_code == 200 and got.json()["version"] == version
    r = await client.post(f"/v1/households/{hid}/visits", json={"form": visit_form()},
                          headers=auth(settings, Role.COLLECTOR, VILLAGE))
    assert r.status_code == 201, r.text
    assert (await client.get(f"/v1/households/{hid}/history", headers=auth(settings))).status_code == 200


async def test_amounts_round_trip_exactly_to_the_fen(client: httpx.AsyncClient, settings: Settings) -> None:
    hid = (await client.post("/v1/households", json=household_body(), headers=auth(settings))).json()["household_id"]
    income = {"wages": 12345.67, "business": 0.1, "property": 0.2, "pension": 2000000, "dibao": "1999999.99"}
    form = visit_form(income=income, previous_year_per_capita=6999.99,
                      spending={"business_expense": 0.3, "other_rigid": [{"kind": "因学", "amount": 0.07}]})
    r = await client.post(f"/v1/households/{hid}/visits", json={"form": form},
                          headers=auth(settings, Role.COLLECTOR, VILLAGE))
    assert r.status_code == 201, r.text
    [(_, recorded)] = [(t, d) for t, d in await events(client) if t == "VisitRecorded"]
    stored = recorded["form"]
    assert stored["income"]["wages"] == 12345.67 and stored["income"]["business"] == 0.1
    assert stored["income"]["property"] == 0.2 and stored["income"]["dibao"] == 1999999.99
    assert stored["spending"]["other_rigid"][0]["amount"] == 0.07 and stored["previous_year_per_capita"] == 6999.99
    decoded = CATALOGUE.decode_data("VisitRecorded", 1, recorded)
    assert isinstance(decoded, VisitRecorded)
    assert decoded.form.income.wages == Decimal("12345.67") and decoded.form.spending.business_expense == Decimal("0.3")
    history = (await client.get(f"/v1/households/{hid}/history", headers=auth(settings))).json()
    visit = next(h for h in history if h["type"] == "VisitRecorded")["data"]["form"]
    assert {k: Decimal(str(v)) for k, v in visit["income"].items() if k in income} == {
        "wages": Decimal("12345.67"), "business": Decimal("0.1"), "property": Decimal("0.2"),
        "pension": Decimal("2000000"), "dibao": Decimal("1999999.99")}


async def test_a_warning_with_a_bad_amount_is_refused_and_a_good_one_is_exact(
        client: httpx.AsyncClient, settings: Settings) -> None:
    dept = auth(settings, Role.DEPARTMENT, "533123", "医保接口", dept="医保")
    body = household_body()
    await client.post("/v1/households", json=body, headers=auth(settings))
    id_number = body["members"][0]["id_number"]

    def warning(ref: str, amount: Any) -> dict[str, Any]:
        return {"department": "医保", "kind": "大额医疗支出", "id_number": id_number, "person_name": "岳老三",
                "amount": amount, "occurred_on": "2022-04-20", "reported_on": "2022-05-05", "source_ref": ref}

    before = await events(client)
    for i, amount in enumerate([NAN, INF, -INF, 1e16, 0.001, 2000000.01, "NaN"]):
        assert fields(await post_raw(client, "/v1/warnings", warning(f"YB-{i}", amount), dept)) == ["body.amount"]
    r = await post_raw(client, "/v1/batches/warnings", {"items": [warning("YB-a", 100), warning("YB-b", INF)]}, dept)
    assert fields(r) == ["body.items.1.amount"]
    assert await events(client) == before

    r = await client.post("/v1/warnings", json=warning("YB-ok", 1999999.99), headers=dept)
    assert r.status_code == 201, r.text
    listed = (await client.get("/v1/warnings", headers=auth(settings, Role.TOWNSHIP_REVIEWER, TOWN))).json()["data"]
    assert [w["amount"] for w in listed] == [1999999.99]


async def test_numeric_cells_of_an_upload_must_be_whole_finite_numbers(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """务工时间（月） and 脱贫年度 are integer cells: "inf", "NaN", "1e400" and "2.5" are refused by row and column
    (not truncated, not a failed import)."""
    months = HEADERS.index("务工时间（月）")
    place = HEADERS.index("务工所在地")
    rows: list[list[Any]] = []
    for bad in ("inf", "NaN", "1e400", "2.5"):
        household = template_rows(household_body())
        household[0][months], household[0][place] = bad, "省外"
        rows += household
    result = await upload(client, settings, "county.csv", csv_bytes(rows))
    assert result["imported"] == 0 and result["refused"] == 4, result
    cells = {(e["row"], e["column"]) for e in result["errors"] if e["code"] == "cell"}
    assert cells == {(2 + 3 * i, "务工时间（月）") for i in range(4)}, result["errors"]


async def test_events_stored_before_the_bounds_still_load(client: httpx.AsyncClient, settings: Settings) -> None:
    """Old events hold floats that today's rules refuse (three places, 1e16): read back as stored (STORED), they
    decode, so the read models rebuild and the household stays readable and correctable instead of failing on every
    request."""
    hid = (await client.post("/v1/households", json=household_body(), headers=auth(settings))).json()["household_id"]
    old_lines = IncomeLines.model_construct(**{**dict(IncomeLines()), "wages": 1234.567, "business": 1e16})
    form = VisitForm.model_validate(visit_form()).model_copy(update={"income": old_lines})
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    stream = StreamRef("household", hid)
    async with runtime.engine.begin() as conn:
        version = await runtime.store.stream_version(conn, stream)
        await runtime.store.append(
            conn, [NewEvent(stream, TOWN, VisitRecorded.model_construct(household_id=hid, visit_id="old", form=form))],
            {stream: version}, Metadata(actor=Actor(user="张采集", role=Role.COLLECTOR, org=VILLAGE)))
    async with runtime.engine.begin() as conn:  # the read models as a replay rebuilds them from those events
        assert runtime.definition.rebuild is not None
        await runtime.definition.rebuild(runtime, conn)
    [(stored,)] = [(d,) for t, d in await events(client) if t == "VisitRecorded"]
    assert stored["form"]["income"]["wages"] == 1234.567 and stored["form"]["income"]["business"] == 10**16

    got = await client.get(f"/v1/households/{hid}", headers=auth(settings))
    assert got.status_code == 200 and [v["visit_id"] for v in got.json()["visits"]] == ["old"]
    r = await client.post(f"/v1/households/{hid}/visits/old/corrections",
                          json={"form": visit_form(), "reason": "金额录入错误"},
                          headers=auth(settings, Role.COLLECTOR, VILLAGE, "张采集"))
    assert r.status_code == 201, r.text
