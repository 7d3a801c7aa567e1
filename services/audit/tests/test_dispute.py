"""Dispute replay: the household as of a past time from the ledger, the assessment recomputed by assessment's pure
domain under the recorded policy version, side by side with the proposal and decision recorded then — for a
household whose income changed after the decision."""

from __future__ import annotations

from datetime import date, timedelta

from audit_helpers import Stack, corrected, decided, emit, proposed, registered, settled, visit

from povguard_platform.envelope import StreamRef


async def test_dispute_replays_the_assessment_as_of_the_decision(full: Stack) -> None:
    hid = "hh-dispute"
    home = StreamRef("household", hid)
    [reg] = await emit(full.intake, home, [registered(hid)])
    await emit(full.intake, home, [visit(hid, "v1", 10000)])  # 2 persons: 5,000 each, under the 6,000 line
    await emit(full.assessment, StreamRef("assessment", hid),
               [proposed(hid, "新识别监测对象", 5000, visit_id="v1", category="脱贫不稳定户")])
    [decision] = await emit(full.review, StreamRef("case", "c-d"), [decided(
        hid, "c-d", "新识别监测对象", "风险未消除", date(2022, 5, 27), category="脱贫不稳定户")])
    for action in ("VisitRecorded", "OutcomeProposed", "CountyDecided"):  # services reach the ledger in any order
        await settled(full.client, 1, household=hid, action=action)
    # after the decision, the visit is corrected: income well above the line
    await emit(full.intake, home, [corrected(hid, "v2", "v1", 30000, "漏报：务工收入实为3万元")])
    # intake also records the decision (MonitoringStatusChanged): wait for the correction itself, not a count
    await settled(full.client, 1, household=hid, action="VisitCorrected")

    then = (await full.client.get(f"/v1/audit/households/{hid}/dispute",
                                  params={"as_of": decision.time.isoformat()})).json()
    assert then["facts"]["registered"] and then["facts"]["latest_visit"] == "v1"
    assert then["policy"] == {"recorded": "533123-2022@1", "applied": "533123-2022@1", "same_version": True}
    income = then["recomputed"]["income"]
    assert income["per_capita"] == 5000 and income["household_size"] == 2 and income["visit_id"] == "v1"
    assert then["recomputed"]["proposal"]["policy_ref"] == "533123-2022@1"
    assert [d["data"]["outcome"] for d in then["recorded"]["decisions"]] == ["新识别监测对象"]
    assert [p["data"]["per_capita"] for p in then["recorded"]["proposals"]] == [5000]
    assert then["comparison"]["per_capita"]["recomputed"] == 5000
    assert then["comparison"]["outcome"]["decided"] == "新识别监测对象"
    assert then["state"]["form"]["income"]["wages"] == 10000

    now = (await full.client.get(f"/v1/audit/households/{hid}/dispute",
                                 params={"as_of": (decision.time + timedelta(days=1)).isoformat()})).json()
    assert now["facts"]["latest_visit"] == "v2" and now["facts"]["superseded_visits"] == ["v1"]
    assert now["recomputed"]["income"]["per_capita"] == 15000  # what the facts say today ...
    assert [d["data"]["outcome"] for d in now["recorded"]["decisions"]] == ["新识别监测对象"]  # ... and the decision
    assert now["recomputed"]["proposal"]["outcome"] != "新识别监测对象"

    before = await full.client.get(f"/v1/audit/households/{hid}/dispute",
                                   params={"as_of": (reg.time - timedelta(seconds=1)).isoformat()})
    assert before.status_code == 404
