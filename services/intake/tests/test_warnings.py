"""Department warnings (部门筛查预警): matched ones become leads, unmatched ones are kept and listed, then matched
when the person is registered."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
from intake_helpers import TOWN, VILLAGE, auth, household_body, make_id, member

from povguard_platform.actor import Role
from povguard_platform.settings import Settings


def dept(settings: Settings, name: str = "医保", org: str = "533123") -> dict[str, str]:
    """A department's machine client: it serves the county (org) and answers for its department (dept)."""
    return auth(settings, Role.DEPARTMENT, org, f"{name}接口", dept=name)


def warning(id_number: str | None, ref: str, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"department": "医保", "kind": "大额医疗支出", "id_number": id_number,
                            "person_name": "某某", "amount": 56000, "occurred_on": "2022-04-20",
                            "reported_on": "2022-05-05", "source_ref": ref}
    body.update(over)
    return body


async def test_a_warning_about_a_registered_person_opens_a_lead(client: httpx.AsyncClient, settings: Settings) -> None:
    body = household_body()
    hid = (await client.post("/v1/households", json=body, headers=auth(settings))).json()["household_id"]
    r = await client.post("/v1/warnings", json=warning(body["members"][1]["id_number"], "YB-1"), headers=dept(settings))
    assert r.status_code == 201, r.text
    assert r.json()["matched"] and r.json()["household_id"] == hid and "****" in r.json()["id_number"]
    h = (await client.get(f"/v1/households/{hid}", headers=auth(settings))).json()
    [lead] = h["leads"]
    assert lead["source"] == "部门筛查预警" and lead["lead_date"] == "2022-05-05"
    assert lead["warning_id"] == r.json()["warning_id"]


async def test_an_unmatched_warning_is_kept_then_matched_when_the_person_registers(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    stranger = make_id(date(1990, 7, 7), male=True)
    r = await client.post("/v1/warnings", json=warning(stranger, "YB-2"), headers=dept(settings))
    assert r.status_code == 201 and not r.json()["matched"]
    county = auth(settings, Role.COUNTY_BUREAU, "533123")
    unmatched = (await client.get("/v1/warnings", params={"matched": "false"}, headers=county)).json()["data"]
    assert [w["warning_id"] for w in unmatched] == [r.json()["warning_id"]]
    body = household_body(members=[member(id_number=stranger, birth=date(1990, 7, 7))])
    h = (await client.post("/v1/households", json=body, headers=auth(settings))).json()
    assert h["leads"][0]["warning_id"] == r.json()["warning_id"]
    assert (await client.get("/v1/warnings", params={"matched": "false"}, headers=county)).json()["data"] == []
    matched = (await client.get("/v1/warnings", params={"matched": "true"}, headers=county)).json()["data"]
    assert matched[0]["household_id"] == h["household_id"]


async def test_warnings_are_sent_and_read_inside_ones_org_unit(client: httpx.AsyncClient, settings: Settings) -> None:
    """A department or county bureau of another county sends nothing here and reads nothing; a village reads the
    warnings about its own households, the county also those about people not in the registry."""
    stranger = make_id(date(1990, 7, 7), male=True)
    for headers in (dept(settings, org="110101"), auth(settings, Role.COUNTY_BUREAU, "110101")):
        r = await client.post("/v1/warnings", json=warning(stranger, "YB-X"), headers=headers)
        assert r.status_code == 403 and r.json()["code"] == "org_scope"
    body = household_body()
    await client.post("/v1/households", json=body, headers=auth(settings))
    ours = await client.post("/v1/warnings", json=warning(body["members"][0]["id_number"], "YB-1"),
                             headers=dept(settings))
    loose = await client.post("/v1/warnings", json=warning(stranger, "YB-2"), headers=dept(settings))
    assert ours.status_code == loose.status_code == 201

    async def listed(role: Role, org: str) -> list[str]:
        r = await client.get("/v1/warnings", headers=auth(settings, role, org))
        assert r.status_code == 200, r.text
        return [w["source_ref"] for w in r.json()["data"]]

    assert await listed(Role.COUNTY_BUREAU, "533123") == ["YB-1", "YB-2"]
    assert await listed(Role.INSPECTOR, "533123") == ["YB-1", "YB-2"]
    assert await listed(Role.VILLAGE_CLERK, VILLAGE) == ["YB-1"]
    assert await listed(Role.VILLAGE_CLERK, TOWN + "202") == []
    assert await listed(Role.COUNTY_BUREAU, "110101") == []
    assert await listed(Role.INSPECTOR, "110101") == []


async def test_warnings_are_checked(client: httpx.AsyncClient, settings: Settings) -> None:
    ok = make_id(date(1990, 7, 7), male=True)
    assert (await client.post("/v1/warnings", json=warning(ok, "YB-3"), headers=dept(settings))).status_code == 201
    again = await client.post("/v1/warnings", json=warning(ok, "YB-3"), headers=dept(settings))
    assert again.status_code == 409
    other_dept = await client.post("/v1/warnings", json=warning(ok, "MZ-1", department="民政"), headers=dept(settings))
    assert other_dept.status_code == 403
    nobody = await client.post("/v1/warnings", json=warning(None, "YB-4"), headers=dept(settings))
    assert nobody.status_code == 422 and nobody.json()["errors"][0]["field"] == "body.id_number"
    bad = await client.post("/v1/warnings", json=warning(ok[:-1] + ("0" if ok[-1] != "0" else "1"), "YB-5",
                                                          occurred_on="2022-06-01"), headers=dept(settings))
    assert {e["field"] for e in bad.json()["errors"]} == {"body.id_number", "body.occurred_on"}
    collector = await client.post("/v1/warnings", json=warning(ok, "YB-6"), headers=auth(settings))
    assert collector.status_code == 403


async def test_a_departments_day_of_warnings_in_one_push(client: httpx.AsyncClient, settings: Settings) -> None:
    """Each warning is handled as if sent alone: a resent source_ref and another department's warning are refused
    and named; the matched one opened its lead, the unmatched one is kept."""
    body = household_body()
    hid = (await client.post("/v1/households", json=body, headers=auth(settings))).json()["household_id"]
    stranger = make_id(date(1991, 8, 8), male=False)
    items = [warning(body["members"][0]["id_number"], "YB-B1"), warning(stranger, "YB-B2"),
             warning(stranger, "YB-B2"), warning(stranger, "MZ-1", department="民政", kind="申请低保")]
    r = await client.post("/v1/batches/warnings", json={"items": items}, headers=dept(settings))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert [(w["source_ref"], w["matched"]) for w in answer["data"]] == [("YB-B1", True), ("YB-B2", False)]
    assert [(f["index"], f["problem"]["status"]) for f in answer["failed"]] == [(2, 409), (3, 403)]
    h = (await client.get(f"/v1/households/{hid}", headers=auth(settings))).json()
    assert [lead["warning_id"] for lead in h["leads"]] == [answer["data"][0]["warning_id"]]
