"""Every rule of the pure domain with worked examples: amounts in, band and outcome out (policy 533123-2022:
monitoring line 6,000 yuan, bands at 7,000/8,000/9,000/10,000). The default family is three people: two adults of
ordinary labour capacity and a ten-year-old at primary school."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from assessment_helpers import family, form, person, registered, rules, visit

from povguard_assessment.domain.scale import AreaCounts, crossed, flatten, indicators, should_raise, village_crossings
from povguard_assessment.handlers import decode_fact
from povguard_contracts.assessment import (
    DataProblemCleared,
    DataProblemFound,
    IncomeAssessed,
    OutcomeProposed,
    RiskAssessed,
)
from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.intake import (
    LeadOpened,
    Member,
    MemberAdded,
    MemberUpdated,
    MonitoringStatusChanged,
    VisitCorrected,
    VisitRecorded,
    WarningReceived,
)
from povguard_contracts.payload import EventPayload
from povguard_contracts.review import CountyDecided
from povguard_contracts.support import MeasureImplemented
from povguard_contracts.vocab import (
    Department,
    EliminationMethod,
    HouseholdKind,
    IncomeBand,
    LeadSource,
    MeasureKind,
    MonitoringCategory,
    MonitoringStatus,
    Outcome,
    RiskType,
    WarningKind,
)
from povguard_rules.assess import Previous, assess, changes
from povguard_rules.facts import HouseholdFacts, VisitsDeadlinePassed, fold
from povguard_rules.income import assess_income, band_of
from povguard_rules.policy import AssessmentPolicy, Rules, ScaleThresholds

MONITORED = {"kind": HouseholdKind.MONITORED, "status": MonitoringStatus.RISK_NOT_ELIMINATED,
             "category": MonitoringCategory.MARGINAL}


def run(*events: EventPayload | VisitsDeadlinePassed, policy: Rules | None = None) -> OutcomeProposed:
    a = assess(fold("h1", events), policy or rules())
    assert a is not None and a.proposal is not None
    return a.proposal


def monitored_since(day: date, status: MonitoringStatus = MonitoringStatus.RISK_NOT_ELIMINATED,
                    kind: HouseholdKind = HouseholdKind.MONITORED) -> MonitoringStatusChanged:
    return MonitoringStatusChanged(household_id="h1", kind=kind, category=MonitoringCategory.MARGINAL, status=status,
                                   decided_on=day)


# --- income -----------------------------------------------------------------------------------------------------

def test_net_income_counts_every_line_once_and_rewards_as_transfers() -> None:
    f = form(income={"wages": 12000, "public_welfare_job_income": 3000, "business": 6000, "property": 600,
                     "asset_dividend": 500, "pension": 1200, "dibao": 1800, "eco_compensation": 300,
                     "other_transfer": 100, "industry_reward": 500, "employment_reward": 200, "insurance_claims": 400},
             spending={"business_expense": 2000, "medical_out_of_pocket": 5000})
    r = rules()
    result = assess_income(f.income, f.spending, 3, None, r.policy.income, r.section)
    # transfers 1200+1800+300+100 + rewards 500+200 + claims 400 = 4500; the 其中 lines are not added again;
    # 合规自付支出 is not deducted: 12000+6000+600+4500-2000 = 21100 → 7033.33 per person
    assert result.transfers == 4500 and result.net_income == 21100
    assert result.per_capita == Decimal("7033.33") and result.band is IncomeBand.B7000_8000
    assert result.lines["合规自付支出"] == 5000 and result.lines["其中：公益性岗位收入"] == 3000
    not_counted = AssessmentPolicy(count_industry_reward=False, count_employment_reward=False,
                                   count_insurance_claims=False)
    other = assess_income(f.income, f.spending, 3, 8000, r.policy.income, not_counted)
    assert other.net_income == 20000 and other.per_capita == Decimal("6666.67")
    assert other.band is IncomeBand.LINE_TO_7000 and other.change_ratio == Decimal("-0.1667")


def test_income_is_exact_in_fen_and_rounds_half_up() -> None:
    """Decimal arithmetic: 0.10 + 0.20 is 0.30 (a float sum is 0.30000000000000004); 人均 rounds half up (四舍五入)
    to the fen; and the event carries exactly those figures through JSON."""
    f = form(income={"wages": "0.10", "business": "0.20"}, spending={"business_expense": "0.25"})
    r = rules()
    result = assess_income(f.income, f.spending, 2, None, r.policy.income, r.section)
    assert result.net_income == Decimal("0.05") and result.per_capita == Decimal("0.03")  # 0.025 → 0.03
    f = form(income={"wages": "7000.10", "pension": "0.20", "dibao": "0.10"})
    result = assess_income(f.income, f.spending, 1, Decimal("10000.00"), r.policy.income, r.section)
    assert result.transfers == Decimal("0.30") and result.per_capita == Decimal("7000.40")
    assert result.change_ratio == Decimal("-0.3000") and result.band is IncomeBand.B7000_8000
    a = assess(fold("h1", [registered(), visit(income={"wages": "20000.01"})]), rules())
    assert a is not None and a.income is not None
    decoded = IncomeAssessed.model_validate_json(a.income.model_dump_json())
    assert (decoded.net_income, decoded.per_capita) == (Decimal("20000.01"), Decimal("6666.67"))


@pytest.mark.parametrize(("per_capita", "band"), [
    ("0", IncomeBand.UNDER_LINE), ("5999.99", IncomeBand.UNDER_LINE), ("6000", IncomeBand.LINE_TO_7000),
    ("6999.99", IncomeBand.LINE_TO_7000), ("7000", IncomeBand.B7000_8000), ("8999.99", IncomeBand.B8000_9000),
    ("9000", IncomeBand.B9000_10000), ("9999.99", IncomeBand.B9000_10000), ("10000", IncomeBand.OVER_10000)])
def test_bands_at_their_edges(per_capita: str, band: IncomeBand) -> None:
    assert band_of(Decimal(per_capita), rules().policy.income) is band


def test_band_follows_a_configured_line_above_7000() -> None:
    income = rules().policy.income.model_copy(update={"monitoring_line": Decimal(8050)})
    assert band_of(Decimal(8000), income) is IncomeBand.UNDER_LINE
    assert band_of(Decimal(8050), income) is IncomeBand.B8000_9000


def test_household_size_counts_current_members_and_a_removal_reassesses() -> None:
    from povguard_contracts.intake import MemberRemoved
    from povguard_contracts.vocab import ChangeReason

    a = assess(fold("h1", [registered(), visit(income={"wages": 21000})]), rules())
    assert a is not None and a.income is not None
    assert (a.income.household_size, a.income.per_capita, a.income.band) == (3, 7000, IncomeBand.B7000_8000)
    assert "在册" in a.income.size_basis
    gone = MemberRemoved(household_id="h1", member_id="c0", reason=ChangeReason.DEATH, effective=date(2022, 5, 1))
    b = assess(fold("h1", [registered(), visit(income={"wages": 21000}), gone]), rules())
    assert b is not None and b.income is not None and (b.income.household_size, b.income.per_capita) == (2, 10500)


# --- new identification and categories ---------------------------------------------------------------------------

def test_lifted_household_under_the_line_is_newly_identified_as_unstable() -> None:
    p = run(registered(), visit(income={"wages": 15000}, spending={"medical_out_of_pocket": 3000},
                               risks_noted=[RiskType.ILLNESS]))
    assert (p.outcome, p.category, p.per_capita, p.band) == (
        Outcome.NEWLY_IDENTIFIED, MonitoringCategory.UNSTABLE_LIFTED, 5000, IncomeBand.UNDER_LINE)
    assert p.risks == [RiskType.ILLNESS] and "OUT-NEW-UNSTABLE" in p.rule_ids and p.three_year_target
    assert "低于监测范围6000元" in p.rationale and not p.held
    assert p.lead_date == date(2022, 5, 8) and p.visit_id == "v1" and p.collector == "张采集"
    assert p.policy_ref == "533123-2022@1"


def test_ordinary_household_under_the_line_is_marginal_even_without_a_named_risk() -> None:
    p = run(registered(kind=HouseholdKind.ORDINARY), visit(income={"wages": 15000}))
    assert (p.outcome, p.category) == (Outcome.NEWLY_IDENTIFIED, MonitoringCategory.MARGINAL)
    assert "须入户核实" in p.rationale and "OUT-NEW-MARGINAL" in p.rule_ids


def test_sudden_hardship_above_the_line_from_medical_spending() -> None:
    sick = [*family(2, 0), Member(member_id="g", facts=person("之父", health=["患有大病"], labour_skill="丧失劳动力"))]
    p = run(registered(kind=HouseholdKind.ORDINARY, members=sick),
            visit(income={"wages": 36000}, spending={"medical_out_of_pocket": 25000}, risks_noted=[RiskType.ILLNESS]))
    # 36000 / 3 = 12000 per person, above 10000; rigid 25000 ≥ 50% of 36000; after it 12000 - 8333 = 3667 < 6000
    assert (p.outcome, p.category, p.band) == (Outcome.NEWLY_IDENTIFIED, MonitoringCategory.SUDDEN_HARDSHIP,
                                               IncomeBand.OVER_10000)
    assert "OUT-NEW-SUDDEN" in p.rule_ids and not p.three_year_target and "3667" in p.rationale


def test_sharp_fall_alone_is_not_hardship_when_enough_is_left() -> None:
    p = run(registered(kind=HouseholdKind.ORDINARY), visit(income={"wages": 21000}, previous_year_per_capita=12000))
    # 7000 per person, 42% below last year, but above the line with no rigid spending: 户户增收 target
    assert p.outcome is Outcome.INCOME_INCREASE_TARGET and p.income_increase_target


def test_no_signed_authorisation_holds_the_identification() -> None:
    p = run(registered(), visit(income={"wages": 15000}, authorisation_signed=False, risks_noted=["缺劳动力"]))
    assert p.outcome is Outcome.NEWLY_IDENTIFIED and p.held and p.hold_reason == "未签署授权承诺书"
    assert "HOLD-AUTH" in p.rule_ids


def test_lead_date_is_the_earliest_open_lead_of_the_campaign() -> None:
    old = LeadOpened(household_id="h1", lead_id="l0", source=LeadSource.DEPARTMENT, lead_date=date(2021, 12, 1))
    lead = LeadOpened(household_id="h1", lead_id="l1", source=LeadSource.SELF_REPORT, lead_date=date(2022, 5, 2))
    later = LeadOpened(household_id="h1", lead_id="l2", source=LeadSource.CADRE, lead_date=date(2022, 5, 5))
    p = run(registered(), old, later, lead, visit(income={"wages": 15000}))
    assert p.lead_date == date(2022, 5, 2)


# --- targets for households that are not monitoring objects ------------------------------------------------------

@pytest.mark.parametrize(("wages", "outcome", "target"), [
    (20999.97, Outcome.NO_CHANGE, False), (21000, Outcome.INCOME_INCREASE_TARGET, True),
    (29999.97, Outcome.INCOME_INCREASE_TARGET, True), (30000, Outcome.NO_CHANGE, False)])
def test_ordinary_household_income_increase_target_between_7000_and_10000(wages: float, outcome: Outcome,
                                                                          target: bool) -> None:
    p = run(registered(kind=HouseholdKind.ORDINARY), visit(income={"wages": wages}))
    assert p.outcome is outcome and p.income_increase_target is target and p.category is None
    assert not p.three_year_target


def test_lifted_household_under_10000_gets_a_three_year_target() -> None:
    p = run(registered(), visit(income={"wages": 24000}))
    assert (p.outcome, p.per_capita, p.three_year_target) == (Outcome.NO_CHANGE, 8000, True)
    assert "TARGET-3Y" in p.rule_ids and not p.income_increase_target
    assert not run(registered(), visit(income={"wages": 30000})).three_year_target


def test_natural_change_in_the_campaign() -> None:
    from povguard_contracts.vocab import ChangeReason

    baby = MemberAdded(household_id="h1", member=Member(member_id="b", facts=person(
        "之孙子", birth=date(2022, 4, 15), education=None, school_status="学龄前儿童", labour_skill="无劳动力")),
        reason=ChangeReason.BIRTH, effective=date(2022, 4, 15))
    p = run(registered(kind=HouseholdKind.ORDINARY), baby, visit(income={"wages": 48000}))
    assert (p.outcome, p.per_capita) == (Outcome.NATURAL_CHANGE, 12000) and "新生儿" in p.rationale


# --- monitoring objects: elimination, further support, removal -----------------------------------------------------

def test_stable_income_proposes_natural_elimination() -> None:
    p = run(registered(**MONITORED), monitored_since(date(2021, 6, 1)), visit(income={"wages": 21000}))
    # 7000 ≥ 6000 × 1.1, 三保障 and water secured, labour force present, monitored > 183 days
    assert (p.outcome, p.elimination_method) == (Outcome.RISK_ELIMINATION, EliminationMethod.NATURAL)
    assert p.three_year_target and "OUT-ELIMINATE" in p.rule_ids


def test_elimination_after_a_developmental_measure_is_supported() -> None:
    measure = MeasureImplemented(household_id="h1", measure_id="m1", kind=MeasureKind.INDUSTRY, developmental=True,
                                 department=Department.AGRICULTURE, implemented_on=date(2022, 1, 10))
    p = run(registered(**MONITORED), monitored_since(date(2021, 6, 1)), measure, visit(income={"wages": 21000}))
    assert (p.outcome, p.elimination_method) == (Outcome.RISK_ELIMINATION, EliminationMethod.SUPPORTED)


@pytest.mark.parametrize(("since", "kw", "missing"), [
    (date(2021, 6, 1), {"income": {"wages": 19500}}, "收入稳定高于监测范围"),  # 6500 < 6600
    (date(2021, 6, 1), {"income": {"wages": 21000}, "previous_year_per_capita": 5000}, "收入稳定高于监测范围"),
    (date(2021, 6, 1), {"income": {"wages": 21000}, "guarantees": {"housing_safe": False}}, "三保障和饮水安全"),
    (date(2021, 6, 1), {"income": {"wages": 21000}, "spending": {"medical_out_of_pocket": 12000}}, "无大额刚性支出"),
    (date(2022, 3, 1), {"income": {"wages": 21000}}, "监测满半年"),
])
def test_unmet_elimination_condition_means_further_support(since: date, kw: dict[str, object], missing: str) -> None:
    p = run(registered(**MONITORED), monitored_since(since), visit(**kw))
    assert p.outcome is Outcome.FURTHER_SUPPORT and missing in p.rationale and "OUT-FURTHER" in p.rule_ids


def test_household_without_labour_force_is_never_proposed_for_elimination() -> None:
    old = [Member(member_id=f"o{i}", facts=person(birth=date(1940, 1, 1), labour_skill="丧失劳动力")) for i in range(2)]
    p = run(registered(members=old, **MONITORED), monitored_since(date(2021, 6, 1)),
            visit(income={"pension": 9000, "dibao": 9000}))
    assert (p.outcome, p.per_capita) == (Outcome.FURTHER_SUPPORT, 9000)
    assert p.rule_ids[0] == "OUT-NOLABOUR-KEEP" and RiskType.LACK_OF_LABOUR in p.risks


def test_monitoring_object_with_contradicting_assets_is_proposed_for_removal() -> None:
    assets = {"vehicles": [{"kind": "小轿车", "value": 120000}]}
    p = run(registered(**MONITORED), visit(income={"wages": 27000}, assets=assets))
    assert p.outcome is Outcome.REMOVED_WRONGLY_IDENTIFIED and "小轿车" in p.rationale


# --- 回头看 of households already 风险已消除 -----------------------------------------------------------------------

def _eliminated(*events: EventPayload) -> OutcomeProposed:
    decided = CountyDecided(case_id="k1", household_id="h1", outcome=Outcome.RISK_ELIMINATION,
                            kind=HouseholdKind.MONITORED, status=MonitoringStatus.RISK_ELIMINATED,
                            category=MonitoringCategory.MARGINAL, risks=[RiskType.ILLNESS],
                            decided_on=date(2021, 11, 1))
    return run(registered(**MONITORED), decided,
               monitored_since(date(2021, 11, 1), MonitoringStatus.RISK_ELIMINATED), *events)


def test_lookback_stable_keeps_elimination() -> None:
    p = _eliminated(visit(income={"wages": 27000}))
    assert (p.outcome, p.rule_ids[0]) == (Outcome.NO_CHANGE, "OUT-LOOKBACK-STABLE")


def test_lookback_unstable_income_rolls_back() -> None:
    p = _eliminated(visit(income={"wages": 16500}))
    assert (p.outcome, p.rule_ids[0], p.per_capita) == (Outcome.ELIMINATION_ROLLED_BACK, "OUT-LOOKBACK-UNSTABLE", 5500)


def test_lookback_without_labour_rolls_back() -> None:
    lost = MemberUpdated(household_id="h1", member_id="m0", facts=person(labour_skill="丧失劳动力"),
                         reason="信息更正", effective=date(2022, 5, 1))
    lost2 = lost.model_copy(update={"member_id": "m1"})
    p = _eliminated(lost, lost2, visit(income={"wages": 27000}))
    assert (p.outcome, p.rule_ids[0]) == (Outcome.ELIMINATION_ROLLED_BACK, "OUT-LOOKBACK-NOLABOUR")


def test_lookback_new_risk_re_marks() -> None:
    flood = {"other_rigid": [{"kind": "因自然灾害", "amount": 20000}]}
    p = _eliminated(visit(income={"wages": 27000}, spending=flood, authorisation_signed=False))
    # 9000 per person, but 20000 of disaster spending ≥ 50% of 27000 leaves 2333 per person; 因自然灾害 is new
    assert (p.outcome, p.category) == (Outcome.RE_MARKED, MonitoringCategory.SUDDEN_HARDSHIP)
    assert p.rule_ids[0] == "OUT-LOOKBACK-NEWRISK" and RiskType.NATURAL_DISASTER in p.risks
    assert p.held and p.hold_reason == "未签署授权承诺书"


# --- risks, evidence and consistency -----------------------------------------------------------------------------

def test_illness_needs_out_of_pocket_spending() -> None:
    a = assess(fold("h1", [registered(), visit(income={"wages": 30000}, risks_noted=[RiskType.ILLNESS])]), rules())
    assert a is not None and a.risk is not None
    assert a.risk.risks == [] and a.risk.consistency[0].rule_id == "CONS-ILL"
    assert any(p.rule_id == "DQ-A-RISK" for p in a.problems.values())


def test_unstable_employment_needs_labour_and_is_found_from_wages() -> None:
    old = [Member(member_id="o", facts=person(labour_skill="无劳动力"))]
    a = assess(fold("h1", [registered(members=old), visit(risks_noted=[RiskType.UNSTABLE_EMPLOYMENT])]), rules())
    assert a is not None and a.risk is not None and a.risk.no_labour
    assert [r.type for r in a.risk.risks] == [RiskType.LACK_OF_LABOUR]
    assert a.risk.consistency[0].rule_id == "CONS-EMPLOY"
    migrant = family(1, 0, migrant_months=3, migrant_place="省外")
    b = assess(fold("h1", [registered(members=migrant), visit(income={"wages": 9000, "pension": 1000})]), rules())
    assert b is not None and b.risk is not None
    [employ] = b.risk.risks
    assert employ.type is RiskType.UNSTABLE_EMPLOYMENT and employ.evidence[0].facts["工资性收入占比"] == Decimal("0.9")


def test_gaps_rigid_spending_warnings_and_income_drop_are_evidence() -> None:
    uninsured = [*family(2, 0), Member(member_id="x", facts=person("之父", medical_insurance="未参加"))]
    flood = WarningReceived(warning_id="w1", department=Department.EMERGENCY, kind=WarningKind.DISASTER,
                            id_number=None, person_name=None, household_id="h1", member_id=None, amount=8000,
                            occurred_on=date(2021, 7, 1), source_ref="YJ1")
    a = assess(fold("h1", [registered(members=uninsured), flood,
                           visit(income={"wages": 30000}, guarantees={"drinking_water_safe": False},
                                 spending={"other_rigid": [{"kind": "因意外事故", "amount": 16000}]},
                                 previous_year_per_capita=16000)]), rules())
    assert a is not None and a.risk is not None and a.income is not None
    assert a.risk.gaps == ["饮水安全", "基本医疗"]
    # the uninsured member is 因病 (RISK-GAP-MEDICAL), unsafe water 其他 (RISK-GAP-WATER)
    assert [r.type for r in a.risk.risks] == [RiskType.ILLNESS, RiskType.NATURAL_DISASTER, RiskType.ACCIDENT,
                                              RiskType.OTHER]
    assert a.risk.risks[0].evidence[0].rule_id == "RISK-GAP-MEDICAL"
    assert [e.rule_id for e in a.risk.risks[-1].evidence] == ["RISK-GAP-WATER"]
    assert a.risk.risks[1].evidence[0].facts["warning_id"] == "w1"
    assert a.risk.rigid_spending == 16000
    assert {e.rule_id for e in a.risk.consistency} == {"RISK-RIGID", "RISK-DROP"}  # 16000 ≥ 15000; 10000 vs 16000
    assert a.income.change_ratio == -0.375
    # 10000 per person, rigid leaves 4667 < 6000: sudden hardship for this 脱贫户
    assert a.proposal is not None and a.proposal.category is MonitoringCategory.SUDDEN_HARDSHIP


# --- data problems -----------------------------------------------------------------------------------------------

def test_data_problems_found_per_member_and_cleared_when_fixed() -> None:
    child = Member(member_id="c0", facts=person("之子", birth=date(2012, 1, 1), labour_skill="无劳动力",
                                                medical_insurance="未参加"))  # aged 10, out of school
    events: list[EventPayload | VisitsDeadlinePassed] = [registered(members=[*family(2, 0), child])]
    r = rules()
    before = assess(fold("h1", [*events, VisitsDeadlinePassed(household_id="h1", deadline=date(2022, 5, 12))]), r)
    assert before is not None and [p.rule_id for p in before.problems.values()] == ["DQ-T-NOVISIT"]
    events.append(visit(income={}, visit_date=date(2022, 5, 20)))
    a = assess(fold("h1", events), r)
    assert a is not None
    got = {(p.kind, p.rule_id, p.member_id) for p in a.problems.values()}
    assert got == {("完整性", "DQ-C-INCOME", None), ("完整性", "DQ-C-PREVIOUS", None), ("及时性", "DQ-T-LATE", None),
                   ("准确性", "DQ-A-MEDICAL", "c0"), ("准确性", "DQ-A-SCHOOL", "c0")}
    fixed = child.facts.model_copy(update={"medical_insurance": "城乡居民基本医疗保险", "education": None,
                                           "school_status": "小学"})
    events += [MemberUpdated(household_id="h1", member_id="c0", facts=fixed, reason="信息更正",
                             effective=date(2022, 5, 21)),
               VisitCorrected(household_id="h1", visit_id="v2", corrects="v1", reason="补录收入",
                              form=form(income={"wages": 30000}, previous_year_per_capita=9000))]
    b = assess(fold("h1", events), r)
    assert b is not None
    emitted = changes(Previous(problems={k: v.model_dump(mode="json") for k, v in a.problems.items()}), b)
    cleared = {e.rule_id for e in emitted if isinstance(e, DataProblemCleared)}
    assert cleared == {"DQ-C-INCOME", "DQ-C-PREVIOUS", "DQ-T-LATE", "DQ-A-MEDICAL", "DQ-A-SCHOOL"}
    assert not [e for e in emitted if isinstance(e, DataProblemFound)]


def test_category_must_match_kind_and_status() -> None:
    a = assess(fold("h1", [registered(kind=HouseholdKind.ORDINARY, category=MonitoringCategory.MARGINAL),
                           visit()]), rules())
    assert a is not None and "DQ-A-CATEGORY" in {p.rule_id for p in a.problems.values()}
    b = assess(fold("h1", [registered(kind=HouseholdKind.MONITORED, status=MonitoringStatus.RISK_NOT_ELIMINATED),
                           visit()]), rules())
    assert b is not None and "DQ-C-CATEGORY" in {p.rule_id for p in b.problems.values()}


# --- determinism and idempotence ---------------------------------------------------------------------------------

def test_same_facts_same_events_and_no_op_changes_emit_nothing() -> None:
    events = [registered(), visit(income={"wages": 15000}, risks_noted=[RiskType.ILLNESS])]
    r = rules()
    a, b = assess(fold("h1", events), r), assess(fold("h1", events), r)
    assert a is not None and b is not None
    first = changes(Previous(), a)
    assert [type(e).__name__ for e in first][:3] == ["IncomeAssessed", "RiskAssessed", "OutcomeProposed"]
    assert [e.model_dump() for e in first] == [e.model_dump() for e in changes(Previous(), b)]
    previous = Previous(a.income.model_dump(mode="json") if a.income else None,
                        a.risk.model_dump(mode="json") if a.risk else None,
                        a.proposal.model_dump(mode="json") if a.proposal else None,
                        {k: v.model_dump(mode="json") for k, v in a.problems.items()})
    assert changes(previous, b) == []
    # a new flag changes nothing assessed: still nothing to emit
    state: HouseholdFacts = fold("h1", events)
    c = assess(replace(state, code="other"), r)
    assert c is not None and changes(previous, c) == []
    # a member added (with labour capacity) changes income (size), the labour count and the proposal
    from povguard_contracts.vocab import ChangeReason

    more = fold("h1", [*events, MemberAdded(household_id="h1", member=Member(member_id="z", facts=person("之女")),
                                             reason=ChangeReason.MARRIAGE_IN, effective=date(2022, 5, 9))])
    d = assess(more, r)
    assert d is not None
    assert [type(e) for e in changes(previous, d)] == [IncomeAssessed, RiskAssessed, OutcomeProposed]


# --- scale risk --------------------------------------------------------------------------------------------------

def test_scale_risk_indicators_are_rates_with_a_minimum_count() -> None:
    t = ScaleThresholds(relocation_sites=["533123101201"])
    small = AreaCounts(households=46, disaster=0, unemployment=1, industry_failure=0, relocation_households=0,
                       relocation_unemployed=0, monitoring_objects=2, not_eliminated=2)
    # one unemployment warning in 46 households and two monitoring objects at risk: shares high, counts too few
    assert indicators(small)["unemployment"] == 0.0217 and indicators(small)["not_eliminated"] == 1.0
    assert crossed(small, t) == []
    hit = AreaCounts(households=20, disaster=6, unemployment=0, industry_failure=3, relocation_households=10,
                     relocation_unemployed=3, monitoring_objects=12, not_eliminated=11)
    assert indicators(hit) == {"disaster": 0.3, "unemployment": 0.0, "industry_failure": 0.15,
                               "relocation_employment": 0.3, "not_eliminated": 0.9167}
    assert crossed(hit, t) == ["disaster", "industry_failure", "relocation_employment", "not_eliminated"]
    assert village_crossings({"533123101201": hit, "533123101202": small}, t) == {
        "533123101201": ["disaster", "industry_failure", "relocation_employment", "not_eliminated"]}
    assert flatten(["disaster"], {"533123101201": ["disaster"]}) == ["disaster", "533123101201:disaster"]
    assert should_raise([], ["disaster"]) and not should_raise(["disaster"], ["disaster"])
    assert should_raise(["disaster"], ["disaster", "533123101201:disaster"])


def test_stored_facts_decode_from_their_text_as_from_dicts_old_numbers_included() -> None:
    """The consumer decodes assessment.facts straight from `data::text` (decode_fact): the same payloads as the
    driver's dicts validated, and an old number today's bounds refuse (three places, beyond 10亿) read as stored."""
    old = visit().model_dump(mode="json")
    old["form"]["income"].update(wages=1234.567, business=10**16)
    for fact in (registered(), visit(), old):
        data = fact if isinstance(fact, dict) else fact.model_dump(mode="json")
        type_ = "VisitRecorded" if fact is old else type(fact).__name__
        raw = json.dumps(data, ensure_ascii=False)
        assert decode_fact(type_, 1, raw) == CATALOGUE.decode_data(type_, 1, json.loads(raw))
    decoded = decode_fact("VisitRecorded", 1, json.dumps(old))
    assert isinstance(decoded, VisitRecorded)
    assert decoded.form.income.wages == Decimal("1234.57") and decoded.form.income.business == Decimal(10**16)
