"""识别时间不能超过15天 (seed §三(一)), counted from the lead date: past the limit an action is refused unless it
says why (422 naming `override_reason`), the reason and the limit it passed are recorded in the event, and the
15-day list shows every case acted on late, closed ones included, with its reasons."""

from __future__ import annotations

import httpx
from review_helpers import DEPARTMENTS, committee, county, department, events, new_case, step, township, walk

from povguard_platform.settings import Settings

LEAD = "2022-05-08"  # limit: 2022-05-23 (lead date + identification_max_days = 15)
REASON = "县级联审部门反馈滞后，经县乡村振兴局同意延期审定"


async def at_county_review(client: httpx.AsyncClient, settings: Settings) -> str:
    """A case through the village and the township and every department check, all within its limit."""
    case_id = await new_case(client, settings, lead_date=LEAD, acted_on="2022-05-09")
    case = await walk(client, settings, case_id, until="县级审定")
    assert case["identification_limit"] == "2022-05-23"
    for name in DEPARTMENTS:
        await step(client, f"/v1/cases/{case_id}/department-checks", {"acted_on": "2022-05-23"},
                   department(settings, name))  # on the last day of the limit: no reason needed
    return case_id


async def test_a_decision_past_the_limit_needs_a_reason_that_the_event_records(
        client: httpx.AsyncClient, settings: Settings) -> None:
    case_id = await at_county_review(client, settings)
    late = {"acted_on": "2022-06-01", "lead_department": "人社"}  # 24 days after the lead
    r = await client.post(f"/v1/cases/{case_id}/decision", json=late, headers=county(settings))
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "body.override_reason" and "2022-05-23" in error["message"], error
    r = await client.post(f"/v1/cases/{case_id}/decision", json=late | {"override_reason": "  "},
                          headers=county(settings))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.override_reason"

    done = await step(client, f"/v1/cases/{case_id}/decision", late | {"override_reason": REASON}, county(settings))
    assert done["case"]["stage"] == "已审定"
    [decided] = [e for e in await events(client, "CountyDecided") if e["case_id"] == case_id]
    assert decided["override_reason"] == REASON and decided["past_identification_limit"] == "2022-05-23"
    # the actions within the limit carry neither
    checks = [e for e in await events(client, "DepartmentCheckRecorded") if e["case_id"] == case_id]
    assert checks and all(e.get("past_identification_limit") is None and e["override_reason"] is None
                          for e in checks)
    assert done["case"]["late_actions"] == [{
        "event_type": "CountyDecided", "acted_on": "2022-06-01", "limit": "2022-05-23", "days_past": 9,
        "reason": REASON}]

    listed = (await client.get("/v1/lists/identification-limit", params={"as_of": "2022-06-02"},
                               headers=county(settings))).json()
    [item] = [i for i in listed["data"] if i["case_id"] == case_id]  # decided, yet listed: it was decided late
    assert item["open"] is False and item["acted_past_limit"] is True
    assert item["late_actions"] == done["case"]["late_actions"]


async def test_every_stage_action_past_the_limit_needs_a_reason_except_a_villagers_objection(
        client: httpx.AsyncClient, settings: Settings) -> None:
    case_id = await new_case(client, settings, lead_date="2022-04-30", acted_on="2022-05-01")  # limit 05-15
    base = f"/v1/cases/{case_id}"
    # appraisal 05-14; decision and notice 05-16, past the limit: the walk gives its reasons (review_helpers.walk)
    await walk(client, settings, case_id, until="公示中")
    # anyone may object during the notice whatever the limit: the public's right is not the reviewers' delay
    raised = await step(client, f"{base}/objections", {"acted_on": "2022-05-17", "reason": "该户有货车"},
                        committee(settings), expect=201)
    resolution = {"acted_on": "2022-05-18", "upheld": False, "finding": "经核实车辆已于2021年出售"}
    r = await client.post(f"{base}/objections/{raised['objection_id']}/resolution", json=resolution,
                          headers=township(settings))
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["body.override_reason"]
    await step(client, f"{base}/objections/{raised['objection_id']}/resolution",
               resolution | {"override_reason": "异议调查需入户核实车辆登记"}, township(settings))
    case = (await client.get(base, headers=county(settings))).json()
    assert [(a["event_type"], a["acted_on"]) for a in case["late_actions"]] == [
        ("VillageDecided", "2022-05-16"), ("NoticeStarted", "2022-05-16"), ("ObjectionResolved", "2022-05-18")]
    assert case["late_actions"][-1]["reason"] == "异议调查需入户核实车辆登记"

    # a batch names the item whose reason is missing
    r = await client.post("/v1/batches/notice-closure", json={"items": [{"case_id": case_id,
                                                                         "acted_on": "2022-05-24"}]},
                          headers=committee(settings))
    [failed] = r.json()["failed"]
    assert [e["field"] for e in failed["problem"]["errors"]] == ["body.items.0.override_reason"]
