"""三保障/water gaps and risk types through the real stack: intake's HTTP API → NATS → assessment's consumer →
assessment's API (real PostgreSQL and NATS)."""

from __future__ import annotations

from datetime import date

from assessment_helpers import VILLAGE, Stack, member_body


async def test_lifted_household_at_12000_with_a_dropout_is_proposed_with_schooling_risk(stack: Stack) -> None:
    dropout = member_body("之子", birth=date(2012, 9, 1), name="岳小明", education="小学", labour_skill="无劳动力")
    kids = await stack.register(members=[member_body(), member_body("配偶", male=False, name="李四妹"), dropout])
    await stack.visit(kids, income={"wages": 36000})  # 12,000 per person; the form even says 义务教育有保障
    p = await stack.proposal(kids)
    assert (p["outcome"], p["category"], p["risks"], p["held"]) == ("新识别监测对象", "脱贫不稳定户", ["因学"], False)
    body = (await stack.assess.get(f"/v1/assessments/{kids}", headers=stack.auth())).json()
    assert body["risk"]["gaps"] == ["义务教育"]

    water = await stack.register()
    await stack.visit(water, income={"wages": 36000}, guarantees={
        "food_and_clothing": True, "compulsory_education": True, "basic_medical": True, "housing_safe": True,
        "drinking_water_safe": False})
    p = await stack.proposal(water)
    assert (p["outcome"], p["risks"]) == ("新识别监测对象", ["其他"]) and "饮水安全" in p["rationale"]


async def test_under_the_line_without_a_risk_type_is_held_with_a_data_problem(stack: Stack) -> None:
    hid = await stack.register()
    await stack.visit(hid, income={"wages": 15000})  # 5,000 per person, no risk the collector could name
    p = await stack.proposal(hid)
    assert (p["outcome"], p["risks"], p["held"], p["hold_reason"]) == ("新识别监测对象", [], True, "未确定主要风险类型")
    r = await stack.assess.get("/v1/data-problems", params={"org": VILLAGE}, headers=stack.auth())
    assert r.status_code == 200, r.text
    mine = [x for x in r.json()["data"] if x["household_id"] == hid and x["rule_id"] == "DQ-C-RISKTYPE"]
    assert len(mine) == 1 and "须入户查明" in mine[0]["text"]
