"""Through the real stack: review and assessment events appended to those services' stores travel over NATS to the
support consumer; the rules are then checked through the support API."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from support_helpers import (
    OTHER_VILLAGE,
    TOWN,
    VILLAGE,
    assess,
    auth,
    decide,
    department,
    facts_known,
    new_household,
    plan_of,
)

from povguard_assessment.service import SERVICE as ASSESSMENT
from povguard_contracts.vocab import HouseholdKind, MeasureKind, MonitoringStatus, Outcome, RiskType
from povguard_platform.actor import Role
from povguard_platform.envelope import StreamRef
from povguard_platform.settings import Settings
from povguard_review.service import SERVICE as REVIEW
from povguard_tools.testing import eventually, running


async def listed(client: httpx.AsyncClient, settings: Settings, path: str, household_id: str) -> dict[str, Any] | None:
    r = await client.get(path, headers=auth(settings, Role.TOWNSHIP_REVIEWER, TOWN))
    assert r.status_code == 200, r.text
    return next((p for p in r.json()["data"] if p["household_id"] == household_id), None)


async def test_missing_measures_and_safety_net_only_are_flagged_until_supplied(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """缺什么补什么 and 一兜了之, worked example: a household decided 因病 + 因学 with only 健康帮扶 proposed, and
    assessed with a 住房安全 gap and two members able to work."""
    hh = new_household()
    async with running(REVIEW, settings) as review, running(ASSESSMENT, settings) as assessment:
        await assess(assessment, hh, risks=(RiskType.ILLNESS,), gaps=("住房安全",), labour=2, per_capita=6500)
        await facts_known(client, hh)
        await decide(review, hh, risks=(RiskType.ILLNESS, RiskType.SCHOOLING), measures=(MeasureKind.HEALTH,))
        plan = await plan_of(client, settings, hh, missing=["因学"])  # 住房安全 answered when the plan was made

    assert plan["basis"] == ["监测对象"] and plan["village_code"] == VILLAGE and plan["lead_department"] == "农业农村"
    assert [g["per_capita"] for g in plan["goals"]] == [7667, 8833, 10000]  # from the assessed 6500
    assert [(m["kind"], m["department"], m["status"]) for m in plan["measures"]] == [
        ("健康帮扶", "卫健", "planned"), ("住房安全保障", "住建", "planned")]
    assert plan["safety_net_only"] and plan["labour_capable"]
    gap = await listed(client, settings, "/v1/coverage-gaps", hh)
    assert gap is not None and gap["missing"] == ["因学"]
    assert await listed(client, settings, "/v1/safety-net-only", hh) is not None

    cadre = auth(settings, Role.WORK_TEAM, VILLAGE)
    for kind in ("义务教育保障",):
        r = await client.post(f"/v1/plans/{hh}/measures", json={"kind": kind, "amount": 2000}, headers=cadre)
        assert r.status_code == 201, r.text
    assert r.json()["missing"] == [] and r.json()["safety_net_only"]  # covered, but still no developmental measure
    assert await listed(client, settings, "/v1/coverage-gaps", hh) is None
    r = await client.post(f"/v1/plans/{hh}/measures", json={"kind": "就业帮扶"}, headers=cadre)
    assert not r.json()["safety_net_only"]
    assert await listed(client, settings, "/v1/safety-net-only", hh) is None

    # org scope and read-only inspector
    assert (await client.post(f"/v1/plans/{hh}/measures", json={"kind": "产业帮扶"},
                              headers=auth(settings, Role.WORK_TEAM, OTHER_VILLAGE))).status_code == 403
    assert (await client.post(f"/v1/plans/{hh}/measures", json={"kind": "产业帮扶"},
                              headers=auth(settings, Role.INSPECTOR, "533123"))).status_code == 403
    assert (await client.get(f"/v1/plans/{hh}", headers=auth(settings, Role.INSPECTOR, "533123"))).status_code == 200
    assert (await client.get(f"/v1/plans/{hh}",
                             headers=auth(settings, Role.WORK_TEAM, OTHER_VILLAGE))).status_code == 403


async def test_measure_steps_are_ordered_and_taken_by_the_department_or_the_cadre(
        client: httpx.AsyncClient, settings: Settings) -> None:
    hh = new_household()
    async with running(REVIEW, settings) as review:
        await decide(review, hh, risks=(RiskType.UNSTABLE_EMPLOYMENT,), measures=(MeasureKind.EMPLOYMENT,))
        plan = await plan_of(client, settings, hh)
    [measure] = plan["measures"]
    mid, base = measure["measure_id"], f"/v1/plans/{hh}/measures/{measure['measure_id']}"
    assert measure["department"] == "人社"
    done = {"implemented_on": "2022-06-15", "amount": 1500, "evidence_ref": "人社培训签到表-0615"}

    r = await client.post(f"{base}/verify", json={"verified_on": "2022-06-20"},
                          headers=department(settings, "人社"))
    assert r.status_code == 409, r.text  # planned → verified skips a step
    r = await client.post(f"{base}/implement", json=done, headers=department(settings, "民政"))
    assert r.status_code == 403  # not the responsible department
    r = await client.post(f"{base}/implement", json={**done, "evidence_ref": ""},
                          headers=department(settings, "人社"))
    assert r.status_code == 422 and "evidence_ref" in r.text
    r = await client.post(f"{base}/implement", json=done, headers=department(settings, "人社"))
    assert r.status_code == 200, r.text
    assert r.json()["measures"][0]["status"] == "implemented" and r.headers["ETag"] == '"3"'
    r = await client.post(f"{base}/implement", json=done, headers=department(settings, "人社"))
    assert r.status_code == 409  # already implemented
    r = await client.post(f"{base}/verify", json={"verified_on": "2022-06-20", "note": "到户核实"},
                          headers={**auth(settings, Role.VILLAGE_COMMITTEE, VILLAGE), "If-Match": '"2"'})
    assert r.status_code == 412  # stale If-Match: the precondition failed (RFC 9110 §13.1.1)
    r = await client.post(f"{base}/verify", json={"verified_on": "2022-06-20", "note": "到户核实"},
                          headers=auth(settings, Role.VILLAGE_COMMITTEE, VILLAGE))
    assert r.status_code == 200 and r.json()["measures"][0]["status"] == "verified"

    r = await client.get("/v1/measures", params={"status": "verified"}, headers=department(settings, "人社"))
    assert [m["measure_id"] for m in r.json()["data"]] == [mid]
    r = await client.get("/v1/measures", params={"department": "民政"}, headers=department(settings, "人社"))
    assert r.status_code == 403
    # the event assessment relies on (帮扶消除 needs an implemented developmental measure)
    async with client.app.state.runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        events = await client.app.state.runtime.store.load(conn, StreamRef("plan", hh))  # type: ignore[attr-defined]
    assert [e.type for e in events] == ["PlanCreated", "MeasureAssigned", "MeasureImplemented", "MeasureVerified"]
    assert events[2].data["developmental"] is True and events[2].township == TOWN


async def test_plans_close_on_elimination_reopen_on_roll_back_and_cover_income_targets(
        client: httpx.AsyncClient, settings: Settings) -> None:
    hh, target, removed = new_household(), new_household(), new_household()
    async with running(REVIEW, settings) as review:
        await decide(review, hh)
        await decide(review, target, kind=HouseholdKind.ORDINARY, category=None, outcome=Outcome.INCOME_INCREASE_TARGET,
                     status=MonitoringStatus.NOT_MONITORED, income_increase_target=True, lead_department=None)
        await decide(review, removed)
        await plan_of(client, settings, hh, open=True)
        await plan_of(client, settings, removed, open=True)
        await decide(review, hh, outcome=Outcome.RISK_ELIMINATION, status=MonitoringStatus.RISK_ELIMINATED,
                     elimination_method="帮扶消除", open_case=False)
        await decide(review, removed, outcome=Outcome.REMOVED_WRONGLY_IDENTIFIED, status=MonitoringStatus.REMOVED,
                     open_case=False)
        closed = await plan_of(client, settings, hh, open=False)
        assert closed["closed_reason"] == "风险已消除（帮扶消除）"
        gone = await plan_of(client, settings, removed, open=False)
        assert gone["closed_reason"] == "整户清退（识别不精准整户清退）"
        r = await client.post(f"/v1/plans/{hh}/measures", json={"kind": "产业帮扶"},
                              headers=auth(settings, Role.WORK_TEAM, VILLAGE))
        assert r.status_code == 409  # a closed plan takes no new measures
        await decide(review, hh, outcome=Outcome.ELIMINATION_ROLLED_BACK, measures=(MeasureKind.INDUSTRY,),
                     open_case=False)
        back = await plan_of(client, settings, hh, open=True)
        assert back["reopened_reason"] == "风险消除不稳定回退" and back["closed_reason"] is None
        assert [m["kind"] for m in back["measures"]] == ["产业帮扶"]
        increase = await plan_of(client, settings, target)
    assert increase["basis"] == ["户户增收"] and increase["base_source"] == "监测范围"
    r = await client.get("/v1/plans", params={"open": "false"}, headers=auth(settings, Role.TOWNSHIP_REVIEWER, TOWN))
    assert [p["household_id"] for p in r.json()["data"]] == [removed]


async def test_delivery_records_list_unrecorded_and_unreceived_until_resolved(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """未录入: 人社 paid household A for 就业帮扶 that the plan has only planned. 未享受录入: household B's 公益岗位 is
    recorded as implemented but 人社 has no record of it."""
    a, b = new_household(), new_household()
    async with running(REVIEW, settings) as review:
        await decide(review, a, measures=(MeasureKind.EMPLOYMENT,))
        await decide(review, b, measures=(MeasureKind.PUBLIC_WELFARE_JOB,))
        plan_a = await plan_of(client, settings, a)
        plan_b = await plan_of(client, settings, b)
    cadre, dept = auth(settings, Role.WORK_TEAM, VILLAGE), department(settings, "人社")
    mb = plan_b["measures"][0]["measure_id"]
    r = await client.post(f"/v1/plans/{b}/measures/{mb}/implement", headers=cadre,
                          json={"implemented_on": "2022-06-01", "amount": 800, "evidence_ref": "岗位协议-17"})
    assert r.status_code == 200
    r = await client.get("/v1/mismatches", headers=dept)
    assert r.json()["data"] == []  # nothing to compare before the department reports

    r = await client.post("/v1/delivery-records", headers=dept, json={"records": [
        {"record_ref": "RS-2022-001", "household_id": a, "kind": "就业帮扶", "delivered_on": "2022-06-03",
         "amount": 1200}]})
    assert r.status_code == 200, r.text
    assert r.json() == {"department": "人社", "records": 1, "found": 2, "resolved": 0}
    r = await client.post("/v1/delivery-records", headers=dept, json={"department": "民政", "records": [
        {"record_ref": "X", "household_id": a, "kind": "综合保障", "delivered_on": "2022-06-03"}]})
    assert r.status_code == 403  # a department reports only its own records
    r = await client.get("/v1/mismatches", headers=auth(settings, Role.TOWNSHIP_REVIEWER, TOWN))
    assert sorted((m["household_id"], m["mismatch"], m["kind"]) for m in r.json()["data"]) == [
        (a, "未录入", "就业帮扶"), (b, "未享受录入", "公益岗位帮扶")]

    # the cadre records A's measure as implemented: 未录入 resolved
    ma = plan_a["measures"][0]["measure_id"]
    r = await client.post(f"/v1/plans/{a}/measures/{ma}/implement", headers=cadre,
                          json={"implemented_on": "2022-06-03", "amount": 1200, "evidence_ref": "RS-2022-001"})
    assert r.status_code == 200
    r = await client.get("/v1/mismatches", params={"household_id": a}, headers=dept)
    assert r.json()["data"] == []

    # the department uploads its sheet with B's record: 未享受录入 resolved
    from io import BytesIO

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["记录编号", "户ID", "措施类型", "发放日期", "金额"])
    sheet.append(["RS-2022-002", b, "公益岗位帮扶", "2022-06-01", 800])
    buffer = BytesIO()
    book.save(buffer)
    r = await client.post("/v1/delivery-records.xlsx", headers=dept,
                          files={"file": ("人社发放.xlsx", buffer.getvalue())})
    assert r.status_code == 200, r.text
    assert r.json()["resolved"] == 1
    r = await client.get("/v1/mismatches", params={"open": "false"}, headers=dept)
    assert sorted(m["mismatch"] for m in r.json()["data"]) == ["未享受录入", "未录入"]
    assert all(m["resolution"] == "已核对一致" for m in r.json()["data"])
    bad = BytesIO()
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["记录编号", "户ID", "措施类型", "发放日期"])
    sheet.append(["RS-3", b, "不存在的措施", "2022-06-01"])
    book.save(bad)
    r = await client.post("/v1/delivery-records.xlsx", headers=dept, files={"file": ("x.xlsx", bad.getvalue())})
    assert r.status_code == 422 and "第2行 措施类型" in r.text


async def test_quarterly_income_shows_progress_and_flags_households_falling_behind(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """Goals 7667 / 8833 / 10000 from 6500. By 2023-07-02 a household should be at about 8252: one measured at 7500
    is behind (more than 5% short), one at 8600 is on track."""
    slow, fast = new_household(), new_household()
    async with running(REVIEW, settings) as review, running(ASSESSMENT, settings) as assessment:
        for hh in (slow, fast):
            await assess(assessment, hh, per_capita=6500)
            await decide(review, hh)
            await plan_of(client, settings, hh, base_source="收入评估")
    cadre = auth(settings, Role.VILLAGE_CLERK, VILLAGE)
    r = await client.post(f"/v1/plans/{slow}/incomes", json={"measured_on": "2023-07-02", "per_capita": 7500},
                          headers=cadre)
    assert r.status_code == 201, r.text
    slow_plan = r.json()
    assert slow_plan["behind"] and slow_plan["incomes"][0]["goal"] == 8833
    assert slow_plan["incomes"][0]["expected"] == 8251.6  # 7667 + (8833 - 7667) × 183/365
    r = await client.post(f"/v1/plans/{fast}/incomes", json={"measured_on": "2023-07-02", "per_capita": 8600},
                          headers=cadre)
    assert not r.json()["behind"]
    r = await client.post(f"/v1/plans/{fast}/incomes", json={"measured_on": "2023-07-02", "per_capita": 1},
                          headers=department(settings, "人社"))
    assert r.status_code == 403  # income is measured by the cadre

    reader = auth(settings, Role.TOWNSHIP_REVIEWER, TOWN)
    r = await client.get("/v1/plans", params={"behind": "true"}, headers=reader)
    assert [p["household_id"] for p in r.json()["data"]] == [slow]
    for level, code in (("village", VILLAGE), ("township", TOWN)):
        r = await client.get("/v1/progress", params={"level": level}, headers=reader)
        [row] = r.json()["data"]
        assert row["code"] == code and row["plans"] == 2 and row["measured"] == 2
        assert row["behind"] == 1 and row["on_track"] == 1 and row["average_per_capita"] == 8050


async def test_lists_page_by_cursor(client: httpx.AsyncClient, settings: Settings) -> None:
    households = [new_household() for _ in range(5)]
    async with running(REVIEW, settings) as review:
        for hh in households:
            await decide(review, hh, risks=(RiskType.ILLNESS,))

        async def all_there() -> bool:
            r = await client.get("/v1/coverage-gaps", headers=auth(settings, Role.COUNTY_BUREAU, "533123"))
            return len(r.json()["data"]) == 5

        await eventually(all_there, within=20)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/coverage-gaps", params=params, headers=auth(settings, Role.COUNTY_BUREAU, "533123"))
        seen += [p["household_id"] for p in r.json()["data"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(households)


async def test_a_work_team_enters_plans_and_a_department_records_delivery_in_batches(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """批量: each household is its own command; one with a closed gap comes back with nothing missing, one outside
    the team's village is refused by item and nothing of it is written."""
    hh, elsewhere = new_household(), new_household()
    async with running(REVIEW, settings) as review, running(ASSESSMENT, settings) as assessment:
        # a 三保障/water gap gets its measure with the plan (test_gap_measures); a decided 因学 waits for the team
        await assess(assessment, hh, risks=(RiskType.ILLNESS,), labour=2, per_capita=6500)
        await decide(review, hh, risks=(RiskType.ILLNESS, RiskType.SCHOOLING), measures=(MeasureKind.HEALTH,))
        await decide(review, elsewhere, village=OTHER_VILLAGE, risks=(RiskType.ILLNESS,))
        await plan_of(client, settings, hh, missing=["因学"])
        await plan_of(client, settings, elsewhere)

    team = auth(settings, Role.WORK_TEAM, VILLAGE)
    r = await client.post("/v1/batches/plans", headers=team, json={"items": [
        {"household_id": hh, "cadre": "王帮扶", "measures": [{"kind": "义务教育保障"}, {"kind": "就业帮扶"}]},
        {"household_id": elsewhere, "cadre": "王帮扶", "measures": [{"kind": "就业帮扶"}]}]})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["recorded"] == 1 and answer["data"][0]["missing"] == []
    assert [(f["index"], f["problem"]["status"]) for f in answer["failed"]] == [(1, 403)]
    assert (await plan_of(client, settings, elsewhere))["cadre"] is None
    plan = await plan_of(client, settings, hh, cadre="王帮扶")
    assert not plan["safety_net_only"]

    bad = await client.post("/v1/batches/plans", headers=team, json={"items": [
        {"household_id": hh, "measures": [{"kind": "不存在的措施"}]}]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.items.0.measures.0.kind"

    employment = next(m for m in answer["data"][0]["measures"] if m["kind"] == "就业帮扶")
    done = {"household_id": hh, "measure_id": employment["measure_id"], "implemented_on": "2022-06-15",
            "evidence_ref": "人社培训签到表-0615"}
    r = await client.post("/v1/batches/implementations", headers=department(settings, "人社"),
                          json={"items": [done, done]})
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == 1
    assert r.json()["failed"][0]["problem"]["status"] == 409  # the second time it is no longer planned
    implemented = (await plan_of(client, settings, hh))["measures"]
    assert [m["status"] for m in implemented if m["kind"] == "就业帮扶"] == ["implemented"]


async def test_implementing_and_verifying_are_two_people_and_never_the_department_alone(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """Verifying is the check that the household received the measure: not by whoever recorded it, and a delivery
    the department recorded is checked from the village, not by another account of the same department."""
    hh = new_household()
    async with running(REVIEW, settings) as review:
        await decide(review, hh, measures=(MeasureKind.EMPLOYMENT, MeasureKind.PUBLIC_WELFARE_JOB))
        plan = await plan_of(client, settings, hh)
    base = {m["kind"]: f"/v1/plans/{hh}/measures/{m['measure_id']}" for m in plan["measures"]}
    done = {"implemented_on": "2022-06-15", "amount": 1500, "evidence_ref": "签到表-0615"}
    check = {"verified_on": "2022-06-20", "note": "到户核实"}

    employment = base["就业帮扶"]
    r = await client.post(f"{employment}/implement", json=done, headers=department(settings, "人社"))
    assert r.status_code == 200, r.text
    for again in (department(settings, "人社"), department(settings, "人社", user="人社-复核岗")):
        r = await client.post(f"{employment}/verify", json=check, headers=again)
        assert r.status_code == 403 and r.json()["code"] == "segregation", r.text
    r = await client.post(f"{employment}/verify", json=check, headers=auth(settings, Role.VILLAGE_COMMITTEE, VILLAGE))
    assert r.status_code == 200 and {m["kind"]: m["status"] for m in r.json()["measures"]}["就业帮扶"] == "verified"

    job = base["公益岗位帮扶"]
    cadre = auth(settings, Role.WORK_TEAM, VILLAGE, "李队员")
    assert (await client.post(f"{job}/implement", json=done, headers=cadre)).status_code == 200
    r = await client.post(f"{job}/verify", json=check, headers=cadre)
    assert r.status_code == 403 and r.json()["code"] == "segregation"
    r = await client.post(f"{job}/verify", json=check, headers=department(settings, "人社"))
    assert r.status_code == 200, r.text  # the department confirms from its own records what the cadre recorded


async def test_plans_are_reached_inside_ones_org_unit_by_every_role(
        client: httpx.AsyncClient, settings: Settings) -> None:
    hh = new_household()
    async with running(REVIEW, settings) as review:
        await decide(review, hh, measures=(MeasureKind.EMPLOYMENT,))
        plan = await plan_of(client, settings, hh)
    measure = f"/v1/plans/{hh}/measures/{plan['measures'][0]['measure_id']}"
    done = {"implemented_on": "2022-06-15", "evidence_ref": "签到表-0615"}
    elsewhere = {role: auth(settings, role, "110101", f"外县{role.value}")
                 for role in (Role.COUNTY_BUREAU, Role.INSPECTOR, Role.ADMIN)}
    for role, headers in elsewhere.items():
        assert (await client.get(f"/v1/plans/{hh}", headers=headers)).status_code == 403, role
        assert (await client.get("/v1/plans", headers=headers)).json()["data"] == [], role
        assert (await client.get("/v1/measures", headers=headers)).json()["data"] == [], role
    r = await client.post(f"/v1/plans/{hh}/measures", json={"kind": "产业帮扶"}, headers=elsewhere[Role.COUNTY_BUREAU])
    assert r.status_code == 403 and r.json()["code"] == "org_scope"
    r = await client.post(f"{measure}/implement", json=done, headers=department(settings, "人社", org="110101"))
    assert r.status_code == 403 and r.json()["code"] == "org_scope"
    r = await client.post("/v1/delivery-records", headers=department(settings, "人社", org="110101"), json={
        "records": [{"record_ref": "RS-1", "household_id": hh, "kind": "就业帮扶", "delivered_on": "2022-06-03"}]})
    assert r.status_code == 403 and r.json()["code"] == "org_scope"
    # the county's own roles reach it
    assert (await client.get(f"/v1/plans/{hh}", headers=auth(settings, Role.INSPECTOR, "533123"))).status_code == 200
    r = await client.post(f"{measure}/implement", json=done, headers=department(settings, "人社"))
    assert r.status_code == 200, r.text


async def test_a_department_batch_sees_its_own_items_and_reconciles_the_whole_batch_at_once(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """Two measures of one household in one call (the second item sees the first's result), an unknown household
    refused by item; the delivery check covers the batch (a record now matched is resolved, an implementation
    without a record is found), and the plan's and the mismatches' events are one append. The implementation's
    recorder is known to the plan the batch left, so the same department cannot verify it."""
    hh = new_household()
    async with running(REVIEW, settings) as review:
        await decide(review, hh, measures=(MeasureKind.EMPLOYMENT, MeasureKind.PUBLIC_WELFARE_JOB))
        plan = await plan_of(client, settings, hh)
    ids = {m["kind"]: m["measure_id"] for m in plan["measures"]}
    dept = department(settings, "人社")
    r = await client.post("/v1/delivery-records", headers=dept, json={"records": [
        {"record_ref": "RS-B1", "household_id": hh, "kind": "公益岗位帮扶", "delivered_on": "2022-06-03"}]})
    assert r.status_code == 200 and r.json()["found"] == 1, r.text

    done = {"implemented_on": "2022-06-15", "evidence_ref": "签到表-0615"}
    r = await client.post("/v1/batches/implementations", headers=dept, json={"items": [
        {"household_id": hh, "measure_id": ids["就业帮扶"], **done},
        {"household_id": "没有这户", "measure_id": ids["就业帮扶"], **done},
        {"household_id": hh, "measure_id": ids["公益岗位帮扶"], **done}]})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["recorded"] == 2
    assert [(f["index"], f["id"], f["problem"]["status"]) for f in answer["failed"]] == [
        (1, f"没有这户/{ids['就业帮扶']}", 404)]
    first, second = ({m["kind"]: m["status"] for m in d["measures"]} for d in answer["data"])
    assert first == {"就业帮扶": "implemented", "公益岗位帮扶": "planned"}
    assert second == {"就业帮扶": "implemented", "公益岗位帮扶": "implemented"}
    assert answer["data"][1]["version"] == plan["version"] + 2

    r = await client.get("/v1/mismatches", params={"household_id": hh}, headers=dept)
    assert [(m["mismatch"], m["kind"]) for m in r.json()["data"]] == [("未享受录入", "就业帮扶")]
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        appended = (await conn.execute(text(
            "SELECT type, xmin FROM support.events WHERE data->>'household_id' = :h AND type IN "
            "('MeasureImplemented', 'DeliveryMismatchFound', 'DeliveryMismatchResolved') ORDER BY position"),
            {"h": hh})).all()
    received, *batch = appended  # the department's records found 未录入 first, in their own transaction
    assert received[0] == "DeliveryMismatchFound" and sorted(t for t, _ in batch) == [
        "DeliveryMismatchFound", "DeliveryMismatchResolved", "MeasureImplemented", "MeasureImplemented"]
    assert {xmin for _, xmin in batch} != {received[1]} and len({xmin for _, xmin in batch}) == 1

    r = await client.post(f"/v1/plans/{hh}/measures/{ids['就业帮扶']}/verify", headers=dept,
                          json={"verified_on": "2022-06-20"})
    assert r.status_code == 403 and r.json()["code"] == "segregation", r.text
