"""Anomaly findings on the real contract events of intake, assessment, review and support, appended to those
services' own stores and carried to the ledger over the bus: changes after the data lock (an administrator's
override included), 数字式增收, elimination within two months of identification, and one person at two review
levels of one case (written straight into the review store, as a tampering DBA would: the review service refuses it).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from audit_helpers import (
    Stack,
    appraisal,
    corrected,
    decided,
    emit,
    entries,
    findings,
    income,
    proposed,
    settled,
    township_reviewed,
    village_decided,
    visit,
)
from sqlalchemy import text

from povguard_contracts.intake import PriorityFlagsSet
from povguard_contracts.support import MeasureImplemented
from povguard_platform.actor import Actor, Role
from povguard_platform.envelope import StreamRef

CLERK = Actor(user="王五", role=Role.VILLAGE_COMMITTEE, org="533123101201")


def today() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


async def test_campaign_work_dated_after_the_data_lock_is_found(full: Stack) -> None:
    hid, case = "hh-lock", StreamRef("case", "c-lock")
    await emit(full.intake, StreamRef("household", hid), [
        visit(hid, "v1", 9000, date(2022, 5, 8)),    # dated before the lock (recorded today): not a change after it
        visit(hid, "v2", 9000, date(2022, 6, 9)),    # dated the day after the lock
        PriorityFlagsSet(household_id=hid, flags=[], reason="更正"),  # no business date: year-round work, not flagged
    ])
    await emit(full.review, case, [
        appraisal(hid, "c-lock", date(2022, 5, 15)),
        township_reviewed(hid, "c-lock", date(2022, 6, 20), override_reason="县管理员：乡镇审核补录，经局长批准"),
    ])
    await emit(full.support, StreamRef("plan", hid), [
        MeasureImplemented(household_id=hid, measure_id=f"m{d}", kind="产业帮扶", developmental=True,
                           department="农业农村", implemented_on=date(2022, 6, d)) for d in (8, 9)])  # lock day: ok
    await settled(full.client, 7, household=hid)

    found = [f for f in await findings(full.client, "after_data_lock") if f["household"] == hid]
    by_type = {(f["evidence"]["event_type"], f["evidence"]["date"]): f["evidence"] for f in found}
    assert set(by_type) == {
        ("VisitRecorded", "2022-06-09"), ("TownshipReviewed", "2022-06-20"), ("MeasureImplemented", "2022-06-09")}
    assert {e["basis"] for e in by_type.values()} == {"form.visit_date", "acted_on", "implemented_on"}
    override = by_type[("TownshipReviewed", "2022-06-20")]
    assert override["override_reason"] == "县管理员：乡镇审核补录，经局长批准"
    assert override["data_lock"] == "2022-06-08" and override["days_after_lock"] == 12
    assert all("override_reason" not in e for k, e in by_type.items() if k[0] != "TownshipReviewed")
    audit = full.client.app.state.runtime
    async with audit.engine.connect() as conn:  # each finding is an AnomalyFound event too
        n = (await conn.execute(text(
            "SELECT count(*) FROM audit.events WHERE type = 'AnomalyFound' AND data->>'kind' = 'after_data_lock' "
            "AND data->>'household_id' = :h"), {"h": hid})).scalar_one()
    assert n == 3


async def _income_path(full: Stack, hid: str, before: float, after: float, correction: bool) -> None:
    """IncomeAssessed below the line, then (through a corrected visit, or a new one) just above it; each step waits
    for the ledger, since the rule reads the household's history as the ledger ordered it."""
    stream = StreamRef("assessment", hid)
    await emit(full.assessment, stream, [income(hid, "v1", before)])
    await settled(full.client, 1, household=hid)
    if correction:
        await emit(full.intake, StreamRef("household", hid),
                   [corrected(hid, "v2", "v1", after * 2, "补录务工收入")])
        await settled(full.client, 2, household=hid)
    await emit(full.assessment, stream, [income(hid, "v2", after)])
    await settled(full.client, 3 if correction else 2, household=hid)


async def test_paper_income_raised_just_above_the_line_before_elimination(full: Stack) -> None:
    now = today()
    await _income_path(full, "hh-paper", 5200, 6150, correction=True)      # within 5 % above 6000: found
    await _income_path(full, "hh-real", 5200, 6900, correction=False)      # well above the line: not found
    await _income_path(full, "hh-late", 5200, 6100, correction=False)      # decided 90 days later: not found
    await _income_path(full, "hh-proposed", 5900, 6010, correction=False)  # the proposal is enough: found
    for hid, on in (("hh-paper", now), ("hh-real", now), ("hh-late", now + timedelta(days=90))):
        await emit(full.review, StreamRef("case", f"c-{hid}"),
                   [decided(hid, f"c-{hid}", "拟风险消除", "风险已消除", on, elimination_method="帮扶消除")])
    await emit(full.assessment, StreamRef("assessment", "hh-proposed"),
               [proposed("hh-proposed", "拟风险消除", 6010)])
    await settled(full.client, 4, household="hh-paper")
    await settled(full.client, 3, household="hh-real")
    await settled(full.client, 3, household="hh-late")
    await settled(full.client, 3, household="hh-proposed")

    found = {f["household"]: f for f in await findings(full.client, "paper_income")}
    assert set(found) == {"hh-paper", "hh-proposed"}
    paper = found["hh-paper"]["evidence"]
    assert paper["per_capita_before"] == 5200 and paper["per_capita_after"] == 6150
    assert paper["monitoring_line"] == 6000 and paper["margin"] == 0.05 and paper["decision"] == "CountyDecided"
    assert paper["days_before_decision"] == 0 and paper["window_days"] == 60
    assert paper["visit_correction"]["reason"] == "补录务工收入" and paper["visit_correction"]["corrects"] == "v1"
    ledger_types = [e["entry"]["action"] for e in await entries(full.client, household="hh-paper")]
    assert [ledger_types[i] for i in range(4)] == ["IncomeAssessed", "VisitCorrected", "IncomeAssessed",
                                                    "CountyDecided"]
    assert found["hh-proposed"]["evidence"]["decision"] == "OutcomeProposed"
    assert "visit_correction" not in found["hh-proposed"]["evidence"]


async def test_elimination_within_two_months_of_identification(full: Stack) -> None:
    for hid, eliminated in (("hh-quick", date(2022, 7, 1)), ("hh-slow", date(2022, 9, 15))):
        await emit(full.review, StreamRef("case", f"c1-{hid}"), [
            decided(hid, f"c1-{hid}", "新识别监测对象", "风险未消除", date(2022, 5, 27), category="边缘易致贫户")])
        await settled(full.client, 1, household=hid)
        await emit(full.review, StreamRef("case", f"c2-{hid}"), [
            decided(hid, f"c2-{hid}", "拟风险消除", "风险已消除", eliminated, elimination_method="自然消除")])
        await settled(full.client, 2, household=hid)

    found = await findings(full.client, "quick_elimination")
    assert [f["household"] for f in found] == ["hh-quick"]
    e = found[0]["evidence"]
    assert (e["identified_on"], e["eliminated_on"], e["days"], e["threshold_days"]) == (
        "2022-05-27", "2022-07-01", 35, 61)
    assert (e["identified_case"], e["eliminated_case"]) == ("c1-hh-quick", "c2-hh-quick")


async def test_one_person_at_two_review_levels_written_past_the_review_service(full: Stack) -> None:
    other = Actor(user="李四", role=Role.TOWNSHIP_REVIEWER, org="533123101")
    reviewer_as_clerk = Actor(user="王五", role=Role.TOWNSHIP_REVIEWER, org="533123101")
    # the same person holds the appraisal and the village decision (one level) and then the township review
    await emit(full.review, StreamRef("case", "c-dba"), [appraisal("hh-dba", "c-dba", date(2022, 5, 15)),
                                                         village_decided("hh-dba", "c-dba", date(2022, 5, 16))],
               actor=CLERK)
    await settled(full.client, 2, household="hh-dba")
    assert await findings(full.client, "two_review_levels") == []  # two acts at one level are allowed
    await emit(full.review, StreamRef("case", "c-dba"), [township_reviewed("hh-dba", "c-dba", date(2022, 5, 22))],
               actor=reviewer_as_clerk)
    # a case where the levels are held by different people
    await emit(full.review, StreamRef("case", "c-ok"), [appraisal("hh-ok", "c-ok", date(2022, 5, 15))], actor=CLERK)
    await emit(full.review, StreamRef("case", "c-ok"), [township_reviewed("hh-ok", "c-ok", date(2022, 5, 22))],
               actor=other)
    await settled(full.client, 3, household="hh-dba")
    await settled(full.client, 2, household="hh-ok")

    found = await findings(full.client, "two_review_levels")
    assert len(found) == 1
    f = found[0]
    assert f["household"] == "hh-dba" and f["actor"] == "王五"
    assert f["evidence"]["case"] == "c-dba" and f["evidence"]["levels"] == ["township", "village"]
    acts = [e["entry"]["index"] for e in await entries(full.client, household="hh-dba")]
    assert f["evidence"]["entries"] == acts
