"""Assessment through the real stack (intake's HTTP API → events on NATS → assessment's consumer → assessment
events, read models and API), against real PostgreSQL and NATS."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from assessment_helpers import TOWN, VILLAGE, Stack

from povguard_assessment.consumers import ASSESS
from povguard_assessment.handlers import DECODED, Assessor
from povguard_platform.actor import Role
from povguard_platform.consumer import event_from_json
from povguard_rules.config import rules_for
from povguard_rules.policy import ScaleLimit, ScaleThresholds
from povguard_tools.testing import eventually


async def test_visit_to_held_proposal_then_correction_and_as_of(stack: Stack) -> None:
    hid = await stack.register()
    v1 = await stack.visit(hid, income={"wages": 15000}, authorisation_signed=False, risks_noted=["缺劳动力"])
    p = await stack.proposal(hid)
    assert (p["outcome"], p["category"], p["per_capita"], p["band"]) == ("新识别监测对象", "脱贫不稳定户", 5000,
                                                                        "监测范围以下")
    assert p["held"] and p["hold_reason"] == "未签署授权承诺书"
    assert (p["visit_id"], p["collector"], p["lead_date"], p["policy_ref"]) == (v1, "张采集", "2022-05-08",
                                                                              "533123-2022@1")
    events = await stack.assessed_events(hid)
    assert [e.type for e in events] == ["IncomeAssessed", "RiskAssessed", "OutcomeProposed"]
    assert {e.policy for e in events} == {"533123-2022@1"} and all(e.causation_id for e in events)
    r = await stack.assess.get(f"/v1/assessments/{hid}", headers=stack.auth())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["held"] and body["hold_reason"] == "未签署授权承诺书"
    assert body["income"]["net_income"] == 15000 and body["income"]["household_size"] == 3
    assert "低于监测范围" in body["proposal"]["rationale"]
    first_seen = datetime.now(UTC)

    v2 = await stack.correct(hid, v1, income={"wages": 27000}, authorisation_signed=True)

    async def corrected() -> bool:
        rows = await stack.rows("SELECT proposal FROM assessment.households WHERE household_id = :h", h=hid)
        return bool(rows[0].proposal["visit_id"] == v2)

    await eventually(corrected)
    # the registration was decoded when the first visit re-assessed the household and is shared since (facts are
    # append-only); the correction is a fact of its own, so the re-assessment above saw it
    [reg] = await stack.rows("SELECT event_id, CAST(xmin AS text) AS xmin FROM assessment.facts "
                             "WHERE household_id = :h AND type = 'HouseholdRegistered'", h=hid)
    assert DECODED.get(str(reg.event_id), reg.xmin) is not None
    now = (await stack.assess.get(f"/v1/assessments/{hid}", headers=stack.auth())).json()
    assert now["proposal"]["outcome"] == "无变化" and now["proposal"]["three_year_target"] and not now["held"]
    # as_of: recomputed from the facts known then
    past = (await stack.assess.get(f"/v1/assessments/{hid}", params={"as_of": first_seen.isoformat()},
                                   headers=stack.auth())).json()
    assert past["proposal"]["outcome"] == "新识别监测对象" and past["held"] and past["as_of"]
    assert past["proposal"]["visit_id"] == v1
    # scope: another village may not read it; the inspector may
    other = await stack.assess.get(f"/v1/assessments/{hid}", headers=stack.auth(org="533123102201"))
    assert other.status_code == 403
    ok = await stack.assess.get(f"/v1/assessments/{hid}", headers=stack.auth(Role.INSPECTOR, org="533123"))
    assert ok.status_code == 200
    # inspectors and administrators reach their own county only, like every role
    for role in (Role.INSPECTOR, Role.ADMIN):
        r = await stack.assess.get(f"/v1/assessments/{hid}", headers=stack.auth(role, org="110101"))
        assert r.status_code == 403 and r.json()["code"] == "org_scope", role
        r = await stack.assess.get("/v1/proposals", params={"org": "533123"}, headers=stack.auth(role, org="110101"))
        assert r.status_code == 403, role


async def test_redelivery_and_no_op_changes_emit_nothing(stack: Stack) -> None:
    hid = await stack.register()
    await stack.visit(hid, income={"wages": 15000})
    await stack.proposal(hid)
    before = await stack.assessed_events(hid)
    # a change that assessment does not judge on (priority flags), the same visit event redelivered to the handler
    # and a re-assessment with nothing new: no new event
    r = await stack.intake.put(f"/v1/households/{hid}/flags", json={"flags": ["2020年脱贫户"], "reason": "补标"},
                               headers=stack.auth())
    assert r.status_code == 200, r.text
    [row] = await stack.rows("SELECT * FROM intake.events WHERE stream_id = :h AND type = 'VisitRecorded'", h=hid)
    recorded = event_from_json({**row._asdict(), "id": str(row.id), "source": "intake", "stream_type": row.stream_type,
                                "stream_id": row.stream_id, "time": row.time.isoformat(),
                                "correlation_id": None, "causation_id": None})
    assessor = Assessor(stack.runtime.store, rules_for("533123-2022"))
    async with stack.runtime.engine.begin() as conn:
        await assessor.consume(conn, recorded)
        await assessor.reassess(conn, hid, recorded)
    # the flags change is on the stream, but assessment's JetStream consumers filter it out: never fetched
    js, stream = stack.runtime.js, stack.runtime.settings.stream_name
    assert js is not None and not ASSESS.handles("PriorityFlagsSet")

    async def flags_published() -> bool:
        info = await js.stream_info(stream, subjects_filter="ev.intake.PriorityFlagsSet.>")
        return bool(info.state.subjects)

    async def caught_up() -> bool:
        return all([await c.pending() == 0 for c in stack.runtime.consumers])

    await eventually(flags_published)
    await eventually(caught_up)
    assert [e.type for e in await stack.assessed_events(hid)] == [e.type for e in before]


async def test_data_problems_found_and_cleared_per_village(stack: Stack) -> None:
    hid = await stack.register()
    await eventually(lambda: stack.rows("SELECT 1 FROM assessment.households WHERE household_id = :h", h=hid))
    assessor = Assessor(stack.runtime.store, rules_for("533123-2022"))
    async with stack.runtime.engine.begin() as conn:
        assert await assessor.sweep_deadlines(conn, date(2022, 5, 1)) == 0  # before the deadline: nothing
        assert await assessor.sweep_deadlines(conn, date(2022, 5, 13)) == 1
        assert await assessor.sweep_deadlines(conn, date(2022, 5, 14)) == 0  # recorded once
    counts = (await stack.assess.get("/v1/data-problems/counts", params={"org": VILLAGE},
                                     headers=stack.auth())).json()
    assert counts == [{"village_code": VILLAGE, "kind": "及时性", "open": 1, "cleared": 0}]
    items = (await stack.assess.get("/v1/data-problems", params={"org": VILLAGE}, headers=stack.auth())).json()
    assert [i["rule_id"] for i in items["data"]] == ["DQ-T-NOVISIT"]
    # a clean visit clears it: 问题清零, the village's open count goes to zero
    await stack.visit(hid)

    async def cleared() -> bool:
        r = await stack.assess.get("/v1/data-problems/counts", params={"org": TOWN}, headers=stack.auth(
            Role.TOWNSHIP_REVIEWER, org=TOWN))
        return bool(r.json() == [{"village_code": VILLAGE, "kind": "及时性", "open": 0, "cleared": 1}])

    await eventually(cleared)
    types = [e.type for e in await stack.assessed_events(hid)]
    assert types[0] == "DataProblemFound" and "DataProblemCleared" in types


async def test_proposals_bands_scale_and_rebuild(stack: Stack) -> None:
    ids = [await stack.register("一般农户") for _ in range(3)]
    await stack.visit(ids[0], income={"wages": 24000})  # 8000: 户户增收
    await stack.visit(ids[1], income={"wages": 25500})  # 8500
    await stack.visit(ids[2], income={"wages": 12000})  # 4000: 边缘易致贫户
    for hid in ids:
        await stack.proposal(hid)
    r = await stack.intake.post("/v1/warnings", headers=stack.auth(Role.DEPARTMENT, org="533123", dept="应急"), json={
        "department": "应急", "kind": "受灾", "household_id": ids[0], "occurred_on": "2021-07-01",
        "reported_on": "2022-05-01", "source_ref": "YJ-1", "amount": 3000})
    assert r.status_code == 201, r.text
    await eventually(lambda: stack.rows("SELECT 1 FROM assessment.warnings"))

    page = (await stack.assess.get("/v1/proposals", params={"org": TOWN, "limit": 2},
                                   headers=stack.auth(Role.TOWNSHIP_REVIEWER, org=TOWN))).json()
    assert len(page["data"]) == 2 and page["next_cursor"]
    rest = (await stack.assess.get("/v1/proposals", params={"org": TOWN, "cursor": page["next_cursor"]},
                                   headers=stack.auth(Role.TOWNSHIP_REVIEWER, org=TOWN))).json()
    assert len(rest["data"]) == 1 and rest["next_cursor"] is None
    only = (await stack.assess.get("/v1/proposals", params={"org": VILLAGE, "outcome": "万元以下户户增收帮扶对象"},
                                   headers=stack.auth())).json()
    assert sorted(p["household_id"] for p in only["data"]) == sorted(ids[:2])
    bands = (await stack.assess.get("/v1/bands", params={"org": TOWN},
                                    headers=stack.auth(Role.COUNTY_BUREAU, org="533123"))).json()
    township = {b["band"]: (b["households"], b["persons"]) for b in bands if b["level"] == "township"}
    assert township == {"8000-9000元": (2, 6), "监测范围以下": (1, 3)}
    assert {b["code"] for b in bands if b["level"] == "village"} == {VILLAGE}

    # scale risk with minimum counts of one: the township and its village cross: the one monitoring object
    # (proposed) is at risk, 1 of 3 households hit by a disaster
    rules = rules_for("533123-2022")
    from dataclasses import replace

    one = ScaleLimit(rate=0.3, min_count=1)
    small = replace(rules, section=rules.section.model_copy(update={"scale": ScaleThresholds(
        disaster=one, not_eliminated=one)}))
    assessor = Assessor(stack.runtime.store, small)
    async with stack.runtime.engine.begin() as conn:
        await assessor.check_scale(conn, TOWN, None)
        await assessor.check_scale(conn, TOWN, None)  # nothing new crossed: no second alert
    alerts = await stack.rows("SELECT data FROM assessment.events WHERE type = 'ScaleRiskRaised'")
    assert len(alerts) == 1
    assert alerts[0].data["crossed"] == ["disaster", "not_eliminated"]
    assert alerts[0].data["villages"] == {VILLAGE: ["disaster", "not_eliminated"]}
    assert alerts[0].data["indicators"]["disaster"] == 0.3333 and alerts[0].data["indicators"]["not_eliminated"] == 1
    scale = (await stack.assess.get("/v1/scale-risk", params={"org": TOWN},
                                    headers=stack.auth(Role.TOWNSHIP_REVIEWER, org=TOWN))).json()
    assert scale[0]["raised"] == ["disaster", "not_eliminated", f"{VILLAGE}:disaster", f"{VILLAGE}:not_eliminated"]
    assert scale[0]["households"] == 3 and scale[0]["counts"]["not_eliminated"] == 1

    # rebuild: drop the read models and replay: identical
    async def snapshot() -> list[list[Any]]:
        out = []
        for table, key in (("households", "household_id"), ("problems", "problem_id"), ("warnings", "warning_id"),
                           ("scale", "township_code")):
            out.append([tuple(r) for r in await stack.rows(f"SELECT * FROM assessment.{table} ORDER BY {key}")])
        return out

    before = await snapshot()
    events_before = await stack.rows("SELECT count(*) FROM assessment.events")
    async with stack.runtime.engine.begin() as conn:
        assert await assessor.rebuild(conn) == 3
    assert await snapshot() == before
    assert await stack.rows("SELECT count(*) FROM assessment.events") == events_before


async def test_member_level_problems_cleared_by_member_corrections(stack: Stack) -> None:
    """DQ-A-MEDICAL and DQ-A-SCHOOL name a member: a correction of that member's record (信息更正) clears them
    (问题清零) without a new visit."""
    from assessment_helpers import member_body

    members = [member_body(medical_insurance="未参加"),
               member_body("之子", birth=date(2012, 9, 1), education="小学", labour_skill="无劳动力", name="岳小明")]
    hid = await stack.register(members=members)
    await stack.visit(hid)

    async def open_rules() -> set[str]:
        items = (await stack.assess.get("/v1/data-problems", params={"org": VILLAGE, "open": "true"},
                                        headers=stack.auth())).json()
        return {i["rule_id"] for i in items["data"] if i["household_id"] == hid}

    async def found() -> bool:
        return {"DQ-A-MEDICAL", "DQ-A-SCHOOL"} <= await open_rules()

    await eventually(found)
    household = (await stack.intake.get(f"/v1/households/{hid}", headers=stack.auth())).json()
    ids = {m["facts"]["relation"]: m["member_id"] for m in household["members"]}
    fixes = {"户主": {**members[0], "medical_insurance": "城乡居民基本医疗保险"},
             "之子": {**members[1], "education": None, "school_status": "七至九年级"}}
    for relation, facts in fixes.items():
        collector = {**stack.auth(Role.COLLECTOR, user="张采集"), "If-Match": "*"}
        r = await stack.intake.put(f"/v1/households/{hid}/members/{ids[relation]}", headers=collector, json={
            "facts": facts, "reason": "信息更正", "effective": "2022-06-01", "note": "问题清零：成员信息更正"})
        assert r.status_code == 200, r.text

    async def cleared() -> bool:
        return not {"DQ-A-MEDICAL", "DQ-A-SCHOOL"} & await open_rules()

    await eventually(cleared)
    types = [e.type for e in await stack.assessed_events(hid)]
    assert types.count("DataProblemCleared") >= 2


async def test_the_deadline_sweep_goes_a_chunk_at_a_time_and_a_visit_meanwhile_wins(stack: Stack) -> None:
    """A county's unvisited households are swept a chunk to a transaction (all at once held gigabytes at 70,000
    households); a household visited between the read of the due list and its chunk gets no lateness fact."""
    from povguard_assessment.service import sweep_in_chunks

    async def registered() -> str:
        hid = await stack.register()
        await eventually(lambda: stack.rows("SELECT 1 FROM assessment.households WHERE household_id = :h", h=hid))
        return hid

    ids = [await registered() for _ in range(5)]
    assessor = Assessor(stack.runtime.store, rules_for("533123-2022"))
    late = date(2022, 5, 13)
    async with stack.runtime.engine.connect() as conn:
        before = await assessor.past_deadline(conn, late)
    assert set(ids) <= set(before)
    swept = await sweep_in_chunks(stack.runtime, assessor, chunk=2, today=late)
    assert swept == [2] * (len(before) // 2) + [1] * (len(before) % 2)  # five or more, two to a transaction
    assert await sweep_in_chunks(stack.runtime, assessor, chunk=2, today=late) == []  # recorded once

    hid = await registered()
    async with stack.runtime.engine.connect() as conn:
        due = await assessor.past_deadline(conn, late)
    assert hid in due
    await stack.visit(hid)  # visited after the due list was read, before its chunk
    await eventually(lambda: stack.rows("SELECT 1 FROM assessment.facts WHERE household_id = :h "
                                        "AND type = 'VisitRecorded'", h=hid))
    async with stack.runtime.engine.begin() as conn:
        assert await assessor.sweep_deadlines(conn, late, due) == 0
    facts = {r[0] for r in await stack.rows("SELECT household_id FROM assessment.facts "
                                            "WHERE type = 'VisitsDeadlinePassed'")}
    assert set(ids) <= facts and hid not in facts
