"""The pure domain: goals, the two rules, the measure state machine, progress and the delivery comparison."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from povguard_contracts.vocab import Department, MeasureKind, RiskType
from povguard_platform.actor import Actor, Role
from povguard_platform.errors import DomainConflict, RuleViolations
from povguard_platform.policy import policy_section
from povguard_rules.measures import SupportPolicy
from povguard_support.domain import delivery
from povguard_support.domain import plan as domain
from povguard_support.domain.plan import HouseholdFacts, MeasureStatus, Plan

POLICY = policy_section("533123-2022", "support", SupportPolicy)
TODAY = date(2022, 12, 31)
MAX = Decimal(2_000_000)  # [bounds] max_line_amount
CADRE = Actor(user="李队员", role=Role.WORK_TEAM, org="533123101201")


def new_plan(measures: tuple[MeasureKind, ...] = (), risks: tuple[RiskType, ...] = (),
             base: int | None = 6500) -> Plan:
    cmd = domain.NewPlan(household_id="h1", village_code="533123101201", township_code="533123101",
                         basis=[domain.MONITORED], decided_on=date(2022, 5, 27), risks=risks,
                         proposed_measures=measures)
    facts = HouseholdFacts(per_capita=Decimal(base)) if base is not None else None
    events = domain.create(Plan(), cmd, facts, POLICY, Decimal(6000), Decimal(10000),
                           [f"m{i}" for i in range(len(measures))])
    return domain.fold(events)


def test_catalogue_covers_every_measure_kind_and_marks_the_four_developmental_ones() -> None:
    assert {k for k, e in POLICY.measures.items() if e.developmental} == {
        MeasureKind.INDUSTRY, MeasureKind.EMPLOYMENT, MeasureKind.FINANCE, MeasureKind.PUBLIC_WELFARE_JOB}
    assert POLICY.entry(MeasureKind.HEALTH).department == Department.HEALTH


def test_three_year_goals_step_from_the_assessed_income_to_at_least_10000() -> None:
    plan = new_plan(base=6500)
    # 6500 → max(10000, 6500 × 1.08³ = 8188) = 10000, in three even steps
    assert plan.goals == {2022: 7667, 2023: 8833, 2024: 10000}
    assert plan.base_source == "收入评估"
    unknown = new_plan(base=None)
    assert unknown.base_per_capita == 6000 and unknown.base_source == "监测范围"
    rich = domain.income_goals(Decimal(9800), 2022, POLICY, Decimal(10000))
    assert rich[-1].per_capita == Decimal(12345)  # 9800 × 1.08³ = 12345.1776, to the yuan


def test_every_risk_and_gap_needs_a_matching_measure() -> None:
    plan = new_plan(measures=(MeasureKind.HEALTH,), risks=(RiskType.ILLNESS, RiskType.SCHOOLING))
    facts = HouseholdFacts(risks=frozenset({"因病"}), gaps=frozenset({"住房安全"}), labour_capable_members=2,
                           no_labour=False)
    assert domain.uncovered(plan, facts, POLICY) == ["住房安全", "因学"]
    plan = domain.fold([domain.assign(plan, "m9", MeasureKind.COMPULSORY_EDUCATION, POLICY, max_amount=MAX),
                        domain.assign(plan, "m10", MeasureKind.HOUSING, POLICY, max_amount=MAX)], plan)
    assert domain.uncovered(plan, facts, POLICY) == []


def test_a_household_that_can_work_needs_a_developmental_measure() -> None:
    plan = new_plan(measures=(MeasureKind.SOCIAL_SECURITY, MeasureKind.HEALTH))
    can_work = HouseholdFacts(no_labour=False, labour_capable_members=1)
    assert domain.safety_net_only(plan, can_work)
    assert not domain.safety_net_only(plan, HouseholdFacts(no_labour=True, labour_capable_members=0))
    assert not domain.safety_net_only(plan, None)  # labour not known yet: not flagged
    plan = domain.fold([domain.assign(plan, "m9", MeasureKind.PUBLIC_WELFARE_JOB, POLICY, max_amount=MAX)], plan)
    assert not domain.safety_net_only(plan, can_work)


def test_a_measure_moves_planned_implemented_verified_and_never_out_of_order() -> None:
    plan = new_plan(measures=(MeasureKind.INDUSTRY,))
    with pytest.raises(DomainConflict):
        domain.verify(plan, "m0", date(2022, 7, 1), "", TODAY, CADRE)
    with pytest.raises(RuleViolations) as refused:
        domain.implement(plan, "m0", date(2022, 6, 1), Decimal(3000), " ", TODAY, MAX)
    assert refused.value.violations[0].field == "evidence_ref"
    with pytest.raises(RuleViolations) as refused:
        domain.implement(plan, "m0", date(2022, 6, 1), MAX + Decimal("0.01"), "凭证-001", TODAY, MAX)
    assert [v.field for v in refused.value.violations] == ["amount"]
    done = domain.implement(plan, "m0", date(2022, 6, 1), Decimal("3000.50"), "凭证-001", TODAY, MAX)
    assert done.amount == Decimal("3000.50")
    assert done.developmental and done.department == Department.AGRICULTURE
    plan = domain.fold([done], plan)
    with pytest.raises(DomainConflict):
        domain.implement(plan, "m0", date(2022, 6, 2), Decimal(3000), "凭证-002", TODAY, MAX)
    with pytest.raises(RuleViolations):
        domain.verify(plan, "m0", date(2022, 5, 31), "", TODAY, CADRE)  # before it was implemented
    plan = domain.fold([domain.verify(plan, "m0", date(2022, 7, 1), "到户核实", TODAY, CADRE)], plan)
    assert plan.measures["m0"].status == MeasureStatus.VERIFIED


def test_closed_plans_take_no_new_measures_and_reopen_on_roll_back() -> None:
    plan = new_plan()
    closed = domain.close(plan, "风险已消除（帮扶消除）", date(2022, 12, 1))
    assert closed is not None
    plan = domain.fold([closed], plan)
    assert domain.close(plan, "again", date(2022, 12, 2)) is None
    with pytest.raises(DomainConflict):
        domain.assign(plan, "m1", MeasureKind.INDUSTRY, POLICY, max_amount=MAX)
    reopened = domain.reopen(plan, "风险消除不稳定回退", date(2023, 5, 27))
    assert reopened is not None and domain.fold([reopened], plan).open


def test_income_progress_is_pro_rata_towards_the_goal_of_the_year() -> None:
    plan = new_plan(base=6500)  # goals 2022: 7667, 2023: 8833
    goal, expected = domain.expected_income(plan, date(2023, 7, 2)) or (0, 0)
    assert goal == 8833 and expected == Decimal("8251.60")  # 7667 + 1166 × 183/365 = 8251.597, to the fen
    behind = domain.measure_income(plan, date(2023, 7, 2), Decimal(7500), "", POLICY, TODAY.replace(year=2023), MAX)
    assert behind.behind  # 7500 < 8252 × 0.95
    fine = domain.measure_income(plan, date(2023, 7, 2), Decimal(8000), "", POLICY, TODAY.replace(year=2023), MAX)
    assert not fine.behind  # within the 5% tolerance


def test_delivery_comparison_lists_both_kinds_and_resolves_what_agrees() -> None:
    dept = Department.HUMAN_RESOURCES
    delivered = {("a", MeasureKind.EMPLOYMENT), ("c", MeasureKind.EMPLOYMENT)}
    recorded = {("b", MeasureKind.PUBLIC_WELFARE_JOB), ("c", MeasureKind.EMPLOYMENT)}
    found, _ = delivery.reconcile(dept, delivered, recorded, {})
    assert {(m.household_id, m.mismatch) for m in found} == {("a", "未录入"), ("b", "未享受录入")}
    open_ = {m.mismatch_id: m for m in found}
    found2, resolved2 = delivery.reconcile(dept, delivered, recorded | {("a", MeasureKind.EMPLOYMENT)}, open_)
    assert found2 == [] and [(m.household_id, m.mismatch) for m in resolved2] == [("a", "未录入")]
