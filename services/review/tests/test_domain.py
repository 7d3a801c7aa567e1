"""The pure case machine: working days of the notice, the order of stages, segregation of duties, the data lock,
what a proposal does to an open case, and how a decision maps the outcome to the household's kind and status."""

from __future__ import annotations

from datetime import date

import pytest
from review_helpers import proposal

from povguard_contracts.review import CaseOpened, CheckFinding, CountyDecided
from povguard_contracts.vocab import (
    Department,
    EliminationMethod,
    HouseholdKind,
    MonitoringCategory,
    MonitoringStatus,
    Outcome,
)
from povguard_platform.actor import Actor, Role
from povguard_platform.errors import DomainConflict, RuleViolations
from povguard_platform.errors import DomainForbidden as Forbidden
from povguard_platform.policy import load_policy
from povguard_review.domain import case as d
from povguard_review.domain.calendar import last_notice_day

TODAY, CALENDAR = date(2025, 1, 1), load_policy("533123-2022").calendar
VILLAGE = "533123101201"
ALL = [Department.PUBLIC_SECURITY, Department.HOUSING]


def opened(outcome: Outcome = Outcome.NEWLY_IDENTIFIED, **over: object) -> d.Case:
    before = d.before_from_outcome(outcome, MonitoringCategory.MARGINAL)
    data = {"case_id": "c1", "household_id": "h1", "village_code": VILLAGE, "township_code": VILLAGE[:9],
            "outcome": outcome, "category": MonitoringCategory.MARGINAL, "source": "研判建议", "collector": "张采集",
            "kind_before": before.kind, "status_before": before.status,
            "kind_before_monitoring": before.kind_before_monitoring, "lead_date": date(2022, 5, 8),
            "risks": ["因病"]}  # a monitoring object always has a 主要风险类型
    data.update(over)
    return d.fold([CaseOpened.model_validate(data)])


def actor(role: Role, user: str = "甲", org: str = VILLAGE) -> Actor:
    return Actor(user=user, role=role, org=org)


def test_notice_runs_five_official_working_days() -> None:
    assert last_notice_day(date(2022, 5, 16), 5) == date(2022, 5, 20)  # Monday to Friday
    assert last_notice_day(date(2022, 5, 17), 5) == date(2022, 5, 23)  # skips the weekend
    assert last_notice_day(date(2022, 5, 14), 5) == date(2022, 5, 20)  # a Saturday start counts from Monday
    # 国庆: 10-01..10-07 off, 10-08 and 10-09 (Sat, Sun) are make-up working days
    assert last_notice_day(date(2022, 9, 29), 5) == date(2022, 10, 10)
    assert last_notice_day(date(2022, 4, 29), 5) == date(2022, 5, 9)  # 劳动节, make-up Sat 05-07


def test_wrong_stage_is_a_conflict_naming_the_current_stage() -> None:
    case = opened()
    with pytest.raises(DomainConflict) as err:
        d.authorise(case, actor(Role.TOWNSHIP_REVIEWER, org=VILLAGE[:9]), d.Action.TOWNSHIP_REVIEW, date(2022, 5, 14),
                    today=TODAY, calendar=CALENDAR)
    assert err.value.extra["current_stage"] == "村民评议"


def test_one_person_one_level_and_the_collector_never_approves() -> None:
    case = opened()
    case = d.fold([(d.appraise(case, date(2022, 5, 14), date(2022, 5, 14), 5, 20, 20, 1, []),
                    actor(Role.VILLAGE_COMMITTEE, "甲"))], case)
    case = d.fold([(d.village_decide(case, date(2022, 5, 16), [d.MeasureKind.EMPLOYMENT], None, [], ""),
                    actor(Role.VILLAGE_COMMITTEE, "乙"))], case)
    case.stage = d.S.TOWNSHIP_REVIEW  # skip the notice for this unit test
    with pytest.raises(Forbidden) as err:  # 甲 acted at village level; now as a township reviewer
        d.authorise(case, actor(Role.TOWNSHIP_REVIEWER, "甲", VILLAGE[:9]), d.Action.TOWNSHIP_REVIEW,
                    date(2022, 5, 23), today=TODAY, calendar=CALENDAR)
    assert err.value.extra["code"] == "segregation"
    with pytest.raises(Forbidden):
        d.authorise(case, actor(Role.TOWNSHIP_REVIEWER, "张采集", VILLAGE[:9]), d.Action.TOWNSHIP_REVIEW,
                    date(2022, 5, 23), today=TODAY, calendar=CALENDAR)
    d.authorise(case, actor(Role.TOWNSHIP_REVIEWER, "丙", VILLAGE[:9]), d.Action.TOWNSHIP_REVIEW,
                date(2022, 5, 23), today=TODAY, calendar=CALENDAR)


def test_dates_never_in_the_future_nor_before_the_last_step_and_the_data_lock() -> None:
    case = opened()
    committee = actor(Role.VILLAGE_COMMITTEE)
    with pytest.raises(RuleViolations):
        d.authorise(case, committee, d.Action.APPRAISE, date(2026, 1, 1), today=TODAY, calendar=CALENDAR)
    with pytest.raises(DomainConflict) as err:
        d.authorise(case, committee, d.Action.APPRAISE, date(2022, 6, 9), today=TODAY, calendar=CALENDAR)
    assert err.value.extra["code"] == "data_locked"
    admin = actor(Role.ADMIN, "管理员", "533123")
    with pytest.raises(RuleViolations):
        d.authorise(case, admin, d.Action.APPRAISE, date(2022, 6, 9), today=TODAY, calendar=CALENDAR)
    d.authorise(case, admin, d.Action.APPRAISE, date(2022, 6, 9), today=TODAY, calendar=CALENDAR,
                override_reason="问题清零：补录评议记录")
    case.last_acted_on = date(2022, 5, 16)
    with pytest.raises(RuleViolations):
        d.authorise(case, committee, d.Action.APPRAISE, date(2022, 5, 15), today=TODAY, calendar=CALENDAR)


def test_a_changed_proposal_updates_the_case_only_before_the_appraisal() -> None:
    case = opened()
    changed = proposal("h1", "新识别监测对象", category="突发严重困难户")
    [update] = d.on_proposal(case, changed)
    assert update.event_type == "ProposalUpdated"
    assert d.on_proposal(case, proposal("h1", category="边缘易致贫户", risks=["因病"])) == []  # same: nothing
    case.stage = d.S.VILLAGE_DECISION
    [noted] = d.on_proposal(case, changed)
    assert noted.event_type == "ProposalChangeRecorded"
    assert not d.opens_case(proposal("h2", "无变化"), None)
    assert not d.opens_case(proposal("h2", held=True, hold_reason="未签授权承诺书"), None)
    assert not d.opens_case(proposal("h2"), Outcome.NEWLY_IDENTIFIED)  # repeats the decided case
    assert d.opens_case(proposal("h2"), None)


def _decide(case: d.Case, **kw: object) -> object:
    for dep in ALL:
        case.checks.setdefault(dep, d.Check(department=dep, hit=False, checked_on=date(2022, 5, 24)))
    args: dict[str, object] = {"lead_department": Department.HUMAN_RESOURCES, "elimination_method": None,
                               "measures": [], "opinion": ""}
    args.update(kw)
    return d.county_decide(case, date(2022, 5, 25), ALL, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("outcome", "kind", "status"), [
    (Outcome.NEWLY_IDENTIFIED, HouseholdKind.MONITORED, MonitoringStatus.RISK_NOT_ELIMINATED),
    (Outcome.RE_MARKED, HouseholdKind.MONITORED, MonitoringStatus.RISK_NOT_ELIMINATED),
    (Outcome.ELIMINATION_ROLLED_BACK, HouseholdKind.MONITORED, MonitoringStatus.RISK_NOT_ELIMINATED),
    (Outcome.FURTHER_SUPPORT, HouseholdKind.MONITORED, MonitoringStatus.RISK_NOT_ELIMINATED),
    (Outcome.REMOVED_WRONGLY_IDENTIFIED, HouseholdKind.ORDINARY, MonitoringStatus.REMOVED),
    (Outcome.INCOME_INCREASE_TARGET, HouseholdKind.ORDINARY, MonitoringStatus.NOT_MONITORED),
])
def test_the_decision_maps_the_outcome_to_kind_and_status(outcome: Outcome, kind: HouseholdKind,
                                                          status: MonitoringStatus) -> None:
    decided = _decide(opened(outcome))
    assert isinstance(decided, CountyDecided)
    assert (decided.outcome, decided.kind, decided.status) == (outcome, kind, status)
    assert decided.income_increase_target == (outcome == Outcome.INCOME_INCREASE_TARGET)


def test_elimination_needs_its_method() -> None:
    with pytest.raises(RuleViolations):
        _decide(opened(Outcome.RISK_ELIMINATION))
    decided = _decide(opened(Outcome.RISK_ELIMINATION), elimination_method=EliminationMethod.NATURAL)
    assert isinstance(decided, CountyDecided)
    assert decided.status == MonitoringStatus.RISK_ELIMINATED and decided.elimination_method == "自然消除"


def test_a_department_hit_refuses_identification_and_proposes_removal_of_a_monitoring_object() -> None:
    hit = [CheckFinding(kind="车辆", detail="登记小轿车一辆")]
    new = opened()
    new.checks[Department.PUBLIC_SECURITY] = d.Check(department=Department.PUBLIC_SECURITY, hit=True, findings=hit,
                                                     checked_on=date(2022, 5, 24))
    refused = _decide(new)
    assert isinstance(refused, CountyDecided) and refused.refused and refused.outcome == Outcome.NO_CHANGE
    assert refused.status == MonitoringStatus.NOT_MONITORED and "车辆" in refused.findings[0]
    monitored = opened(Outcome.FURTHER_SUPPORT)
    monitored.checks[Department.PUBLIC_SECURITY] = new.checks[Department.PUBLIC_SECURITY]
    returned = _decide(monitored)
    assert returned.event_type == "CaseReturned"
    assert returned.proposed_outcome == Outcome.REMOVED_WRONGLY_IDENTIFIED  # type: ignore[attr-defined]


def test_what_a_household_was_before_monitoring_comes_from_the_registry() -> None:
    """A 脱贫户 carries its 脱贫年度; a registered monitoring object without one was an ordinary household, so a
    removal (整户清退) can send it back; a stranger of unknown origin cannot be decided without being told."""
    sudden = MonitoringCategory.SUDDEN_HARDSHIP
    removal = Outcome.REMOVED_WRONGLY_IDENTIFIED
    assert d.before_from_outcome(removal, sudden, 2019, HouseholdKind.MONITORED).kind_before_monitoring == \
        HouseholdKind.LIFTED
    assert d.before_from_outcome(removal, sudden, None, HouseholdKind.MONITORED).kind_before_monitoring == \
        HouseholdKind.ORDINARY
    assert d.before_from_outcome(removal, sudden).kind_before_monitoring is None


def test_folding_leaves_the_case_it_starts_from_as_it_was() -> None:
    """`fold` copies a case shallowly: every event replaces what it changes (objections, checks, people, late
    actions, proposal changes), so the state a batch decided from is never touched by what it decided."""
    committee, villager = actor(Role.VILLAGE_COMMITTEE, "甲"), actor(Role.COLLECTOR, "乙")
    case = opened(lead_date=date(2022, 4, 1))  # every step past the 15-day limit: late actions accrue
    case.stage = d.S.NOTICE_PENDING
    case = d.fold([(d.start_notice(case, date(2022, 5, 16), ["村委会"], 5), committee)], case)
    case = d.fold([(d.raise_objection(case, date(2022, 5, 17), "o1", "反映有车", "村民"), villager)], case)
    before = case.model_dump()
    resolution = d.resolve_objection(case, date(2022, 5, 18), "o1", False, "车辆已报废", "统一办理")
    change = d.on_proposal(case, proposal("h1", "识别不精准整户清退"))
    after = d.fold([(e, committee) for e in d.mark_past_limit(resolution, date(2022, 4, 16))]
                   + [(e, villager) for e in change], case)
    assert case.model_dump() == before
    assert case.objections["o1"].open and not after.objections["o1"].open
    assert len(after.late_actions) == len(case.late_actions) + 1 and len(after.proposal_changes) == 1
    after.stage = d.S.COUNTY_REVIEW
    checked = d.fold([(d.department_check(after, date(2022, 5, 24), Department.HOUSING, ALL, []),
                       actor(Role.DEPARTMENT, "住建接口"))], after)
    assert list(checked.checks) == [Department.HOUSING] and after.checks == {}
    withdrawn = d.fold([(d.withdraw(case, date(2022, 5, 24), "迁出"), actor(Role.VILLAGE_COMMITTEE, "丁"))], case)
    assert withdrawn.people == {**case.people, "丁": d.Level.VILLAGE} and "丁" not in case.people
