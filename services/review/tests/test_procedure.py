"""The procedure through the HTTP API against real PostgreSQL and NATS: stage order (409 naming the current stage),
segregation of duties, org scope, the notice's working days and objections, department checks and the decision,
returns and withdrawals, the data lock, deadlines, the 15-day list, queues and counts."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
from review_helpers import (
    APPRAISAL,
    DECISION,
    DEPARTMENTS,
    OTHER_TOWN,
    OTHER_VILLAGE,
    TOWN,
    VILLAGE,
    auth,
    committee,
    county,
    department,
    events,
    new_case,
    open_case,
    step,
    township,
    walk,
)

from povguard_platform.actor import Role
from povguard_platform.settings import Settings


async def test_no_stage_can_be_skipped_and_the_conflict_names_the_current_stage(
        client: httpx.AsyncClient, settings: Settings) -> None:
    case_id = await new_case(client, settings)
    base = f"/v1/cases/{case_id}"
    r = await client.post(f"{base}/township-review", json={"acted_on": "2022-05-23", "spot_checked": False},
                          headers=township(settings))
    assert r.status_code == 409 and r.json()["current_stage"] == "村民评议", r.text
    r = await client.post(f"{base}/notice", json={"acted_on": "2022-05-16"}, headers=committee(settings))
    assert r.status_code == 409 and r.json()["current_stage"] == "村民评议"
    await step(client, f"{base}/appraisal", APPRAISAL, committee(settings))
    r = await client.post(f"{base}/appraisal", json=APPRAISAL, headers=committee(settings))  # not twice
    assert r.status_code == 409 and r.json()["current_stage"] == "村两委决定"
    r = await client.post(f"{base}/decision", json={"acted_on": "2022-05-25"}, headers=county(settings))
    assert r.status_code == 409 and r.json()["current_stage"] == "村两委决定"
    r = await client.post(f"{base}/department-checks", json={"acted_on": "2022-05-24"},
                          headers=department(settings, "公安"))
    assert r.status_code == 409 and r.json()["current_stage"] == "村两委决定"


async def test_one_person_cannot_act_at_two_levels_and_the_collector_cannot_approve(
        client: httpx.AsyncClient, settings: Settings) -> None:
    case_id = await new_case(client, settings, collector="张采集")
    base = f"/v1/cases/{case_id}"
    await step(client, f"{base}/appraisal", APPRAISAL, committee(settings))
    # the collector of the visit, even as a member of the 村两委, may not approve
    r = await client.post(f"{base}/village-decision", json=DECISION,
                          headers=auth(settings, Role.VILLAGE_COMMITTEE, VILLAGE, "张采集"))
    assert r.status_code == 403 and r.json()["code"] == "segregation"
    await walk(client, settings, case_id, until="乡镇审核")
    # 李主任 acted for the village; the same person as a township reviewer is refused
    r = await client.post(f"{base}/township-review", json={"acted_on": "2022-05-23", "spot_checked": True},
                          headers=auth(settings, Role.TOWNSHIP_REVIEWER, TOWN, "李主任"))
    assert r.status_code == 403 and r.json()["code"] == "segregation"
    await step(client, f"{base}/township-review", {"acted_on": "2022-05-23", "spot_checked": True},
               township(settings, user="赵审核"))
    for name in DEPARTMENTS:
        await step(client, f"{base}/department-checks", {"acted_on": "2022-05-24"}, department(settings, name))
    r = await client.post(f"{base}/decision", json={"acted_on": "2022-05-25", "lead_department": "人社"},
                          headers=auth(settings, Role.COUNTY_BUREAU, "533123", "赵审核"))
    assert r.status_code == 403 and r.json()["code"] == "segregation"
    r = await client.post(f"{base}/decision", json={"acted_on": "2022-05-25", "lead_department": "人社"},
                          headers=auth(settings, Role.COUNTY_BUREAU, "533123", "张采集"))
    assert r.status_code == 403
    await step(client, f"{base}/decision", {"acted_on": "2022-05-25", "lead_department": "人社"}, county(settings))


async def test_org_scope_village_own_households_township_own_villages_county_all(
        client: httpx.AsyncClient, settings: Settings) -> None:
    r = await open_case(client, settings, village=VILLAGE, headers=committee(settings, OTHER_VILLAGE))
    assert r.status_code == 403
    case_id = await new_case(client, settings)
    base = f"/v1/cases/{case_id}"
    r = await client.post(f"{base}/appraisal", json=APPRAISAL, headers=committee(settings, OTHER_VILLAGE))
    assert r.status_code == 403 and r.json()["code"] == "org_scope"
    assert (await client.get(base, headers=committee(settings, OTHER_VILLAGE))).status_code == 403
    await walk(client, settings, case_id, until="乡镇审核")
    r = await client.post(f"{base}/township-review", json={"acted_on": "2022-05-23", "spot_checked": True},
                          headers=township(settings, OTHER_TOWN))
    assert r.status_code == 403
    # a department may only answer for itself
    await step(client, f"{base}/township-review", {"acted_on": "2022-05-23", "spot_checked": True},
               township(settings))
    r = await client.post(f"{base}/department-checks", json={"acted_on": "2022-05-24", "department": "民政"},
                          headers=department(settings, "公安"))
    assert r.status_code == 403
    # the county acts on every village
    listed = await client.get("/v1/cases", headers=county(settings))
    assert [c["case_id"] for c in listed.json()["data"]] == [case_id]
    assert (await client.get("/v1/cases", headers=committee(settings, OTHER_VILLAGE))).json()["data"] == []


async def test_notice_runs_its_working_days_and_objections_are_resolved(
        client: httpx.AsyncClient, settings: Settings) -> None:
    case_id = await new_case(client, settings)
    base = f"/v1/cases/{case_id}"
    await walk(client, settings, case_id, until="待公示")
    started = await step(client, f"{base}/notice", {"acted_on": "2022-05-17"}, committee(settings))
    assert started["case"]["notice"]["ends_on"] == "2022-05-23"  # Tue..Mon: the weekend does not count
    assert started["case"]["notice"]["places"] == ["村委会", "村民小组"]
    # too early to close: the weekend does not count
    r = await client.post(f"{base}/notice/closure", json={"acted_on": "2022-05-22"}, headers=committee(settings))
    assert r.status_code == 409 and r.json()["code"] == "notice_running"
    # any role of the village's org unit records an objection, with a reason; who raised it may be from anywhere
    # (raised_by), but a token of another township reaches no case here
    r = await client.post(f"{base}/objections", json={"acted_on": "2022-05-18", "reason": "该户家有货车"},
                          headers=auth(settings, Role.COLLECTOR, OTHER_TOWN, "王某"))
    assert r.status_code == 403 and r.json()["code"] == "org_scope"
    villager = auth(settings, Role.COLLECTOR, VILLAGE, "王某")
    r = await client.post(f"{base}/objections", json={"acted_on": "2022-05-18", "reason": ""}, headers=villager)
    assert r.status_code == 422
    first = await step(client, f"{base}/objections", {"acted_on": "2022-05-18", "reason": "该户家有货车",
                                                      "raised_by": "王某"}, villager, 201)
    r = await client.post(f"{base}/notice/closure", json={"acted_on": "2022-05-24"}, headers=committee(settings))
    assert r.status_code == 409 and r.json()["code"] == "objections_open"
    dismissed = await step(client, f"{base}/objections/{first['objection_id']}/resolution",
                           {"acted_on": "2022-05-19", "upheld": False, "finding": "货车已于2021年出售，有过户记录"},
                           township(settings))
    assert dismissed["case"]["objections"][first["objection_id"]]["finding"].startswith("货车已于")
    assert dismissed["case"]["stage"] == "公示中"
    # an objection after the notice period is refused
    r = await client.post(f"{base}/objections", json={"acted_on": "2022-05-24", "reason": "迟到的异议"},
                          headers=villager)
    assert r.status_code == 409
    second = await step(client, f"{base}/objections", {"acted_on": "2022-05-20", "reason": "其子在县城有商铺"},
                        villager, 201)
    upheld = await step(client, f"{base}/objections/{second['objection_id']}/resolution",
                        {"acted_on": "2022-05-21", "upheld": True, "finding": "核实其子经营商铺一间"},
                        township(settings))
    assert upheld["events"] == ["ObjectionResolved", "CaseReturned"]
    assert upheld["case"]["stage"] == "村民评议"  # back to the village with the finding
    detail = (await client.get(base, headers=committee(settings))).json()
    returned = next(h for h in detail["history"] if h["type"] == "CaseReturned")
    assert "核实其子经营商铺一间" in returned["data"]["reason"]
    assert [h["type"] for h in detail["history"]][:2] == ["CaseOpened", "AppraisalHeld"]


async def test_income_increase_targets_are_not_noticed(client: httpx.AsyncClient, settings: Settings) -> None:
    case_id = await new_case(client, settings, outcome="万元以下户户增收帮扶对象", category=None, risks=[])
    case = await walk(client, settings, case_id, until="乡镇审核")
    assert case["notice"] is None
    r = await client.post(f"/v1/cases/{case_id}/notice", json={"acted_on": "2022-05-17"}, headers=committee(settings))
    assert r.status_code == 409 and r.json()["current_stage"] == "乡镇审核"
    decided = await walk(client, settings, case_id)
    assert decided["decision"]["income_increase_target"] is True
    assert decided["decision"]["kind"] == "一般农户" and decided["decision"]["status"] == "未纳入监测"


async def test_department_checks_and_the_decision(client: httpx.AsyncClient, settings: Settings) -> None:
    clear = await new_case(client, settings)
    decided = await walk(client, settings, clear)
    d = decided["decision"]
    assert (d["kind"], d["status"], d["lead_department"]) == ("监测对象", "风险未消除", "人社")
    assert d["category"] == "边缘易致贫户"
    assert d["proposed_measures"] == ["就业帮扶", "健康帮扶"]
    # the county cannot decide before every department has answered
    partial = await new_case(client, settings)
    await walk(client, settings, partial, until="县级审定")
    await step(client, f"/v1/cases/{partial}/department-checks", {"acted_on": "2022-05-24"},
               department(settings, "公安"))
    r = await client.post(f"/v1/cases/{partial}/decision", json={"acted_on": "2022-05-25", "lead_department": "人社"},
                          headers=county(settings))
    assert r.status_code == 409 and "民政" in r.json()["missing"]
    # a hit blocks a new identification
    hit = {"公安": [{"kind": "车辆", "detail": "名下登记小轿车一辆"}]}
    blocked = await walk(client, settings, await new_case(client, settings), hit=hit)
    assert blocked["decision"]["outcome"] == "无变化" and blocked["decision"]["refused"] is True
    assert blocked["decision"]["status"] == "未纳入监测" and "车辆" in blocked["decision"]["findings"][0]
    # and proposes removal for an existing monitoring object: back to the village, proposing 整户清退
    monitored = await new_case(client, settings, outcome="风险未消除拟进一步帮扶", category="脱贫不稳定户")
    back = await walk(client, settings, monitored, hit={"市场监管": [{"kind": "经营实体", "detail": "户主为公司股东"}]})
    assert back["stage"] == "村民评议" and back["outcome"] == "识别不精准整户清退"
    removed = await walk(client, settings, monitored)
    assert removed["decision"]["status"] == "整户清退" and removed["decision"]["kind"] == "脱贫户"
    decided_events = await events(client, "CountyDecided")
    assert len(decided_events) == 3


async def test_return_and_withdraw_are_recorded(client: httpx.AsyncClient, settings: Settings) -> None:
    case_id = await new_case(client, settings)
    base = f"/v1/cases/{case_id}"
    await walk(client, settings, case_id, until="乡镇审核")
    r = await client.post(f"{base}/return", json={"acted_on": "2022-05-23", "to_stage": "乡镇审核", "reason": "x"},
                          headers=township(settings))
    assert r.status_code == 422  # not to the same or a later stage
    back = await step(client, f"{base}/return", {"acted_on": "2022-05-23", "to_stage": "村两委决定",
                                                 "reason": "帮扶措施与风险不匹配"}, township(settings))
    assert back["case"]["stage"] == "村两委决定" and back["case"]["village_decision"] is None
    # the village cannot withdraw a case that the township holds; here it is back at the village
    gone = await step(client, f"{base}/withdrawal", {"acted_on": "2022-05-24", "reason": "农户撤回申请"},
                      committee(settings))
    assert gone["case"]["stage"] == "已撤回"
    r = await client.post(f"{base}/appraisal", json=APPRAISAL | {"acted_on": "2022-05-24"},
                          headers=committee(settings))
    assert r.status_code == 409 and r.json()["current_stage"] == "已撤回"
    types = [h["type"] for h in (await client.get(base, headers=county(settings))).json()["history"]]
    assert types[-2:] == ["CaseReturned", "CaseWithdrawn"]
    # the household may get a new case now
    await new_case(client, settings, household_id=gone["case"]["household_id"], outcome="风险再标注")


async def test_after_the_data_lock_only_a_county_administrator_with_a_reason(
        client: httpx.AsyncClient, settings: Settings) -> None:
    case_id = await new_case(client, settings)
    base = f"/v1/cases/{case_id}"
    late = APPRAISAL | {"acted_on": "2022-06-09"}
    r = await client.post(f"{base}/appraisal", json=late, headers=committee(settings))
    assert r.status_code == 409 and r.json()["code"] == "data_locked"
    admin = auth(settings, Role.ADMIN, "533123", "县管理员")
    r = await client.post(f"{base}/appraisal", json=late, headers=admin)
    assert r.status_code == 422
    done = await step(client, f"{base}/appraisal", late | {"override_reason": "问题清零：补录5月14日评议"}, admin)
    assert done["case"]["appraisal"]["override_reason"] == "问题清零：补录5月14日评议"
    r = await client.post(f"{base}/village-decision", json=DECISION | {"acted_on": "2099-01-01"},
                          headers=committee(settings))
    assert r.status_code == 422  # never in the future


async def test_overdue_and_fifteen_day_lists_per_township_and_village(
        client: httpx.AsyncClient, settings: Settings) -> None:
    waiting = await new_case(client, settings, lead_date="2022-05-01", acted_on="2022-05-02")
    other = await new_case(client, settings, village=OTHER_VILLAGE, lead_date="2022-05-10", acted_on="2022-05-10")
    done = await new_case(client, settings, lead_date="2022-05-01", acted_on="2022-05-02")
    await walk(client, settings, done)
    overdue = (await client.get("/v1/lists/overdue", params={"as_of": "2022-05-17"},
                                headers=township(settings))).json()
    [town] = overdue["townships"]
    assert town["township_code"] == TOWN and town["count"] == 2 and overdue["count"] == 2
    assert {v["village_code"]: v["count"] for v in town["villages"]} == {VILLAGE: 1, OTHER_VILLAGE: 1}
    assert {c["village_code"]: c["case_id"] for c in overdue["data"]} == {VILLAGE: waiting, OTHER_VILLAGE: other}
    assert next(c for c in overdue["data"] if c["case_id"] == waiting)["deadline"] == "2022-05-16"  # 评议 by 05-16
    assert overdue["next_cursor"] is None
    # cursor paging: one case a page, the totals on every page, the pages together are the list
    first = (await client.get("/v1/lists/overdue", params={"as_of": "2022-05-17", "limit": 1},
                              headers=township(settings))).json()
    assert first["count"] == 2 and len(first["data"]) == 1 and first["next_cursor"]
    second = (await client.get("/v1/lists/overdue", params={"as_of": "2022-05-17", "limit": 1,
                                                            "cursor": first["next_cursor"]},
                               headers=township(settings))).json()
    assert second["next_cursor"] is None
    assert [c["case_id"] for c in first["data"] + second["data"]] == [c["case_id"] for c in overdue["data"]]
    bad = await client.get("/v1/lists/overdue", params={"cursor": "not-a-cursor"}, headers=township(settings))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"
    assert (await client.get("/v1/lists/overdue", params={"as_of": "2022-05-16"},
                             headers=township(settings))).json()["count"] == 0
    limit = (await client.get("/v1/lists/identification-limit", params={"as_of": "2022-05-17"},
                              headers=county(settings))).json()
    # 05-01 + 15 = 05-16 < 05-17: past the limit; the decided one is not listed
    assert [(c["case_id"], c["past"], c["days_left"]) for c in limit["data"]] == [(waiting, True, -1)]
    limit = (await client.get("/v1/lists/identification-limit", params={"as_of": "2022-05-23"},
                              headers=county(settings))).json()
    near = [c["case_id"] for c in limit["data"] if not c["past"]]
    assert near == [other] and limit["count"] == 2  # limit 05-25: two days left
    counts = (await client.get("/v1/stats/stages", headers=county(settings))).json()
    assert counts["townships"] == [{"township_code": TOWN, "stages": {"村民评议": 2, "已审定": 1}, "total": 3}]


async def test_work_queues_say_what_is_waiting_for_me(client: httpx.AsyncClient, settings: Settings) -> None:
    at_village = await new_case(client, settings)
    at_county = await new_case(client, settings)
    await walk(client, settings, at_county, until="县级审定")
    await step(client, f"/v1/cases/{at_county}/department-checks", {"acted_on": "2022-05-24"},
               department(settings, "公安"))

    async def queue(headers: dict[str, str]) -> list[str]:
        r = await client.get("/v1/queue", headers=headers)
        assert r.status_code == 200, r.text
        return [c["case_id"] for c in r.json()["data"]]

    assert await queue(committee(settings)) == [at_village]
    assert await queue(committee(settings, OTHER_VILLAGE)) == []
    assert await queue(county(settings)) == [at_county]
    assert await queue(department(settings, "公安")) == []  # already answered
    assert await queue(department(settings, "民政")) == [at_county]
    assert await queue(township(settings)) == []


async def test_a_department_answers_many_cases_in_one_call(client: httpx.AsyncClient, settings: Settings) -> None:
    """Each case is still its own action: one at the wrong stage is refused and named, the others are recorded."""
    ready = [await new_case(client, settings) for _ in range(2)]
    for case_id in ready:
        await walk(client, settings, case_id, until="县级审定")
    early = await new_case(client, settings)
    body = {"acted_on": "2022-05-24", "results": [
        {"case_id": ready[0], "findings": []},
        {"case_id": ready[1], "findings": [{"kind": "车辆", "detail": "登记小型轿车一辆"}]},
        {"case_id": early, "findings": []}]}
    r = await client.post("/v1/department-checks", json=body, headers=department(settings, "公安"))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["recorded"] == 2
    assert [(f["index"], f["id"], f["problem"]["status"]) for f in answer["failed"]] == [(2, early, 409)]
    assert answer["failed"][0]["problem"]["current_stage"] == "村民评议"
    checked = (await client.get(f"/v1/cases/{ready[1]}", headers=county(settings))).json()["checks"]
    assert checked["公安"]["findings"][0]["kind"] == "车辆"
    other = await client.post("/v1/department-checks", params={"department": "民政"}, json=body,
                              headers=department(settings, "公安"))
    assert other.status_code == 403


async def test_one_appraisal_meeting_records_many_households(client: httpx.AsyncClient, settings: Settings) -> None:
    """批量评议: each case is its own action (a case at another stage is refused and named, with its stage); a bad
    field anywhere refuses the whole request, names the item and field, and writes nothing."""
    cases = [await new_case(client, settings) for _ in range(3)]
    await walk(client, settings, cases[2], until="村两委决定")
    items = [APPRAISAL | {"case_id": c} for c in cases]
    bad = await client.post("/v1/batches/appraisal", headers=committee(settings),
                            json={"items": [items[0], items[1] | {"votes_for": -1, "meeting_date": "昨天"}]})
    assert bad.status_code == 422, bad.text
    assert {e["field"] for e in bad.json()["errors"]} == {"body.items.1.votes_for", "body.items.1.meeting_date"}
    assert (await client.get(f"/v1/cases/{cases[0]}", headers=county(settings))).json()["stage"] == "村民评议"

    r = await client.post("/v1/batches/appraisal", json={"items": items}, headers=committee(settings))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["recorded"] == 2
    assert [(d["case_id"], d["stage"], d["events"]) for d in answer["data"]] == [
        (cases[0], "村两委决定", ["AppraisalHeld"]), (cases[1], "村两委决定", ["AppraisalHeld"])]
    [failed] = answer["failed"]
    assert (failed["index"], failed["id"], failed["problem"]["status"]) == (2, cases[2], 409)
    assert failed["problem"]["current_stage"] == "村两委决定"
    history = (await client.get(f"/v1/cases/{cases[2]}", headers=county(settings))).json()["history"]
    assert [e["type"] for e in history].count("AppraisalHeld") == 1  # the refused item left nothing behind

    other_village = await client.post("/v1/batches/appraisal", json={"items": [items[0]]},
                                      headers=committee(settings, OTHER_VILLAGE))
    assert other_village.status_code == 200
    assert other_village.json()["failed"][0]["problem"]["status"] == 403


async def test_a_county_session_takes_cases_through_the_remaining_stages_in_batches(
        client: httpx.AsyncClient, settings: Settings) -> None:
    """两委决定 → 公示 → 公示期满 → 乡镇审核 → 县级审定, each as one call for several cases."""
    cases = [await new_case(client, settings) for _ in range(2)]
    for c in cases:
        await walk(client, settings, c, until="村两委决定")

    async def batch(step_name: str, body: dict[str, Any], headers: dict[str, str]) -> list[str]:
        r = await client.post(f"/v1/batches/{step_name}", json={"items": [body | {"case_id": c} for c in cases]},
                              headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["failed"] == [], r.text
        return [d["stage"] for d in r.json()["data"]]

    assert await batch("village-decision", DECISION, committee(settings)) == ["待公示"] * 2
    assert await batch("notice", {"acted_on": "2022-05-16"}, committee(settings)) == ["公示中"] * 2
    ends = (await client.get(f"/v1/cases/{cases[0]}", headers=county(settings))).json()["notice"]["ends_on"]
    after = (date.fromisoformat(ends) + timedelta(days=1)).isoformat()
    assert await batch("notice-closure", {"acted_on": after}, committee(settings)) == ["乡镇审核"] * 2
    assert await batch("township-review", {"acted_on": after, "spot_checked": False, "opinion": "同意"},
                       township(settings)) == ["县级审定"] * 2
    for name in DEPARTMENTS:
        r = await client.post("/v1/department-checks", headers=department(settings, name), json={
            "acted_on": after, "results": [{"case_id": c} for c in cases]})
        assert r.json()["recorded"] == 2, r.text
    assert await batch("decision", {"acted_on": after, "lead_department": "人社", "elimination_method": "帮扶消除"},
                       county(settings)) == ["已审定"] * 2
