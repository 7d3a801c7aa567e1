"""一户一策: a household's support plan, folded from its events, and the decisions that produce new ones. Pure: no
I/O. Commands check their preconditions and return past-tense events; state changes only by folding events."""

from __future__ import annotations

import calendar
import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from povguard_contracts.numbers import fen
from povguard_contracts.payload import EventPayload
from povguard_contracts.support import (
    CadreAssigned,
    DeliveryMismatchFound,
    DeliveryMismatchResolved,
    IncomeGoal,
    IncomeMeasured,
    MeasureAssigned,
    MeasureImplemented,
    MeasureVerified,
    PlanClosed,
    PlanCreated,
    PlanReopened,
)
from povguard_contracts.vocab import Department, MeasureKind, MonitoringStatus, RiskType
from povguard_platform.actor import Actor, Role
from povguard_platform.errors import DomainConflict, DomainForbidden, RuleViolations, Violation
from povguard_platform.policy import amount_violations
from povguard_rules import measures
from povguard_rules.measures import GAP_MEASURES, GAPS, SupportPolicy

YUAN = Decimal(1)
MONITORED = "监测对象"
THREE_YEAR = "三年帮扶目标"
INCOME_INCREASE = "户户增收"


class MeasureStatus(StrEnum):
    PLANNED = "planned"  # 计划
    IMPLEMENTED = "implemented"  # 已实施
    VERIFIED = "verified"  # 已核验


@dataclass
class Measure:
    measure_id: str
    kind: MeasureKind
    developmental: bool
    department: Department
    description: str = ""
    amount: Decimal | None = None
    planned_start: date | None = None
    planned_end: date | None = None
    source: str = ""
    status: MeasureStatus = MeasureStatus.PLANNED
    implemented_on: date | None = None
    implemented_amount: Decimal | None = None
    evidence_ref: str = ""
    verified_on: date | None = None
    verify_note: str = ""
    implemented_by: Actor | None = None  # who recorded the implementation (the event's actor)


@dataclass
class Plan:
    household_id: str = ""
    version: int = 0
    exists: bool = False
    open: bool = False
    village_code: str = ""
    township_code: str = ""
    basis: list[str] = field(default_factory=list)
    case_id: str | None = None
    outcome: str | None = None
    risks: list[RiskType] = field(default_factory=list)
    lead_department: Department | None = None
    cadre: str | None = None
    base_per_capita: Decimal = Decimal(0)
    base_source: str = ""
    goals: dict[int, Decimal] = field(default_factory=dict)
    created_on: date | None = None
    measures: dict[str, Measure] = field(default_factory=dict)
    incomes: list[IncomeMeasured] = field(default_factory=list)
    closed_reason: str | None = None
    closed_on: date | None = None
    reopened_reason: str | None = None

    @property
    def latest_income(self) -> IncomeMeasured | None:
        return max(self.incomes, key=lambda i: i.measured_on) if self.incomes else None


@dataclass(frozen=True)
class HouseholdFacts:
    """What assessment last said about the household: its risks, 三保障/water gaps, labour and income."""

    risks: frozenset[str] = frozenset()
    gaps: frozenset[str] = frozenset()
    no_labour: bool | None = None
    labour_capable_members: int | None = None
    per_capita: Decimal | None = None

    @property
    def labour_capable(self) -> bool | None:
        if self.no_labour is None and self.labour_capable_members is None:
            return None
        return not self.no_labour and (self.labour_capable_members or 0) > 0


# --- folding ---------------------------------------------------------------------------------------------------------


def apply(state: Plan, event: EventPayload) -> None:
    match event:
        case PlanCreated():
            state.household_id, state.exists, state.open = event.household_id, True, True
            state.village_code, state.township_code = event.village_code, event.township_code
            state.basis, state.case_id, state.outcome = list(event.basis), event.case_id, event.outcome
            state.risks, state.lead_department, state.cadre = list(event.risks), event.lead_department, event.cadre
            state.base_per_capita, state.base_source = event.base_per_capita, event.base_source
            state.goals = {g.year: g.per_capita for g in event.goals}
            state.created_on = event.created_on
        case CadreAssigned():
            state.cadre = event.cadre
        case MeasureAssigned():
            state.measures[event.measure_id] = Measure(
                measure_id=event.measure_id, kind=event.kind, developmental=event.developmental,
                department=event.department, description=event.description, amount=event.amount,
                planned_start=event.planned_start, planned_end=event.planned_end, source=event.source)
        case MeasureImplemented():
            m = state.measures[event.measure_id]
            m.status, m.implemented_on = MeasureStatus.IMPLEMENTED, event.implemented_on
            m.implemented_amount, m.evidence_ref = event.amount, event.evidence_ref
        case MeasureVerified():
            m = state.measures[event.measure_id]
            m.status, m.verified_on, m.verify_note = MeasureStatus.VERIFIED, event.verified_on, event.note
        case IncomeMeasured():
            state.incomes.append(event)
        case PlanClosed():
            state.open, state.closed_reason, state.closed_on = False, event.reason, event.closed_on
        case PlanReopened():
            state.open, state.reopened_reason = True, event.reason
        case DeliveryMismatchFound() | DeliveryMismatchResolved():
            pass
    state.version += 1


def fold(events: Iterable[EventPayload], state: Plan | None = None) -> Plan:
    state = copy.deepcopy(state) if state is not None else Plan()
    for event in events:
        apply(state, event)
    return state


# --- creating, closing, reopening (from county decisions) -----------------------------------------------------------


def income_goals(base: Decimal, start_year: int, policy: SupportPolicy, floor: Decimal) -> list[IncomeGoal]:
    """三年帮扶目标: the last year reaches at least `floor` (10000) and at least `base` grown by the policy's yearly
    growth; the years before it step evenly from `base`, each rounded half up to the yuan."""
    n = policy.goal_years
    final = max(floor, base * (1 + policy.goal_growth) ** n)
    return [IncomeGoal(year=start_year + i,
                       per_capita=(base + (final - base) * (i + 1) / n).quantize(YUAN, ROUND_HALF_UP))
            for i in range(n)]


def plan_basis(status: MonitoringStatus, three_year_target: bool, income_increase_target: bool) -> list[str]:
    """Why a household gets a plan (empty: it gets none)."""
    if status in (MonitoringStatus.RISK_ELIMINATED, MonitoringStatus.REMOVED):
        return []
    basis = []
    if status == MonitoringStatus.RISK_NOT_ELIMINATED:
        basis.append(MONITORED)
    if three_year_target:
        basis.append(THREE_YEAR)
    if income_increase_target:
        basis.append(INCOME_INCREASE)
    return basis


@dataclass(frozen=True)
class NewPlan:
    household_id: str
    village_code: str
    township_code: str
    basis: list[str]
    decided_on: date
    case_id: str | None = None
    outcome: str | None = None
    risks: Sequence[RiskType] = ()
    lead_department: Department | None = None
    proposed_measures: Sequence[MeasureKind] = ()
    cadre: str | None = None


def create(plan: Plan, cmd: NewPlan, facts: HouseholdFacts | None, policy: SupportPolicy, monitoring_line: Decimal,
           goal_floor: Decimal, measure_ids: Sequence[str]) -> list[EventPayload]:
    """PlanCreated, a MeasureAssigned for each measure the decision proposed, then one for each 三保障/water gap the
    household has that none of them answers (缺什么补什么; one id per measure, proposed first)."""
    if plan.exists:
        raise DomainConflict(f"户 {cmd.household_id} 已有帮扶计划", household_id=cmd.household_id)
    if not cmd.basis:
        raise DomainConflict("该户不是监测对象或万元以下帮扶对象，不制定帮扶计划")
    known = facts.per_capita if facts is not None else None
    base = known if known is not None else monitoring_line
    created = PlanCreated(
        household_id=cmd.household_id, village_code=cmd.village_code, township_code=cmd.township_code,
        basis=cmd.basis, case_id=cmd.case_id, outcome=cmd.outcome, risks=list(cmd.risks),
        lead_department=cmd.lead_department, cadre=cmd.cadre, base_per_capita=fen(base),
        base_source="收入评估" if known is not None else "监测范围",
        goals=income_goals(base, cmd.decided_on.year, policy, goal_floor), created_on=cmd.decided_on)
    events: list[EventPayload] = [created]
    decided = list(dict.fromkeys(cmd.proposed_measures))
    sources = [*(("县级审定", k) for k in decided),
               *(("缺什么补什么", k) for k in gap_measures(decided, facts, policy))]
    for (source, kind), measure_id in zip(sources, measure_ids, strict=False):
        entry = policy.entry(kind)
        events.append(MeasureAssigned(
            household_id=cmd.household_id, measure_id=measure_id, kind=kind, developmental=entry.developmental,
            department=entry.department, planned_start=cmd.decided_on, source=source))
    return events


def gap_measures(kinds: Iterable[MeasureKind], facts: HouseholdFacts | None, policy: SupportPolicy
                 ) -> list[MeasureKind]:
    """The measure each 三保障/water gap of the household calls for when none of `kinds` answers it."""
    gaps = facts.gaps if facts is not None else frozenset()
    return list(dict.fromkeys(GAP_MEASURES[g] for g in measures.uncovered([g for g in GAPS if g in gaps], kinds,
                                                                          policy)))


def close(plan: Plan, reason: str, on: date, case_id: str | None = None) -> PlanClosed | None:
    """Close an open plan (风险已消除, 整户清退); nothing to do for a closed or missing one."""
    if not plan.exists or not plan.open:
        return None
    return PlanClosed(household_id=plan.household_id, reason=reason, case_id=case_id, closed_on=on)


def reopen(plan: Plan, reason: str, on: date, case_id: str | None = None) -> PlanReopened | None:
    if not plan.exists or plan.open:
        return None
    return PlanReopened(household_id=plan.household_id, reason=reason, case_id=case_id, reopened_on=on)


# --- measures ---------------------------------------------------------------------------------------------------------


def _require(plan: Plan) -> None:
    if not plan.exists:
        from povguard_platform.errors import DomainNotFound

        raise DomainNotFound(f"户 {plan.household_id} 没有帮扶计划")


def assign_cadre(plan: Plan, cadre: str) -> CadreAssigned:
    _require(plan)
    if not cadre.strip():
        raise RuleViolations([Violation("cadre", "须填写帮扶责任人", "required")])
    return CadreAssigned(household_id=plan.household_id, cadre=cadre.strip())


def assign(plan: Plan, measure_id: str, kind: MeasureKind, policy: SupportPolicy, *, max_amount: Decimal,
           description: str = "", amount: Decimal | None = None, planned_start: date | None = None,
           planned_end: date | None = None, department: Department | None = None) -> MeasureAssigned:
    """Plan a measure; its department and whether it is developmental come from the catalogue unless the
    department is named. `max_amount`: the policy's bound for one amount ([bounds] max_line_amount)."""
    _require(plan)
    if not plan.open:
        raise DomainConflict(f"帮扶计划已关闭（{plan.closed_reason}），不能新增措施", household_id=plan.household_id)
    violations = amount_violations(amount, max_amount, "amount")
    if planned_start and planned_end and planned_end < planned_start:
        violations.append(Violation("planned_end", "计划完成日期不能早于开始日期", "date"))
    if violations:
        raise RuleViolations(violations)
    entry = policy.entry(kind)
    return MeasureAssigned(household_id=plan.household_id, measure_id=measure_id, kind=kind,
                           developmental=entry.developmental, department=department or entry.department,
                           description=description, amount=amount, planned_start=planned_start,
                           planned_end=planned_end)


def measure(plan: Plan, measure_id: str) -> Measure:
    _require(plan)
    found = plan.measures.get(measure_id)
    if found is None:
        from povguard_platform.errors import DomainNotFound

        raise DomainNotFound(f"帮扶计划中没有措施 {measure_id}")
    return found


def implement(plan: Plan, measure_id: str, on: date, amount: Decimal | None, evidence_ref: str,
              today: date, max_amount: Decimal) -> MeasureImplemented:
    """planned → implemented, with the date, the amount and a reference to the evidence."""
    m = measure(plan, measure_id)
    if m.status != MeasureStatus.PLANNED:
        raise DomainConflict(f"措施 {measure_id} 当前为 {m.status.value}，只有 planned 的措施可以登记实施",
                             current_status=m.status.value)
    violations = []
    if not evidence_ref.strip():
        violations.append(Violation("evidence_ref", "须提供实施佐证材料编号", "required"))
    if on > today:
        violations.append(Violation("implemented_on", "实施日期不能晚于今天", "date"))
    violations += amount_violations(amount, max_amount, "amount")
    if violations:
        raise RuleViolations(violations)
    return MeasureImplemented(household_id=plan.household_id, measure_id=measure_id, kind=m.kind,
                              developmental=m.developmental, department=m.department, implemented_on=on,
                              amount=amount, evidence_ref=evidence_ref.strip())


def note_implementers(plan: Plan, implemented: Iterable[tuple[str, Actor]]) -> None:
    """Who recorded each implementation (measure id, the event's actor), for the verification's separation."""
    for measure_id, actor in implemented:
        if measure_id in plan.measures:
            plan.measures[measure_id].implemented_by = actor


def verify(plan: Plan, measure_id: str, on: date, note: str, today: date, verifier: Actor) -> MeasureVerified:
    """implemented → verified, by someone other than who recorded the implementation. Verifying is the check that
    the household really received the measure (未享受录入 is its failure): the person who recorded it cannot
    confirm it, and a department that recorded its own delivery is checked from the village side (the cadres who
    visit the household), not by itself again through another of its accounts."""
    m = measure(plan, measure_id)
    if m.status != MeasureStatus.IMPLEMENTED:
        raise DomainConflict(f"措施 {measure_id} 当前为 {m.status.value}，只有 implemented 的措施可以核验",
                             current_status=m.status.value)
    by = m.implemented_by
    if by is not None and by.user == verifier.user:
        raise DomainForbidden(f"{verifier.user} 登记了该措施的实施，不能再核验（实施与核验须由不同的人）",
                              code="segregation")
    if by is not None and by.role == Role.DEPARTMENT and verifier.role == Role.DEPARTMENT:
        raise DomainForbidden(f"责任部门（{m.department.value}）登记的实施由村级干部到户核验，不能由部门自己核验",
                              code="segregation")
    assert m.implemented_on is not None
    violations = []
    if on < m.implemented_on:
        violations.append(Violation("verified_on", "核验日期不能早于实施日期", "date"))
    if on > today:
        violations.append(Violation("verified_on", "核验日期不能晚于今天", "date"))
    if violations:
        raise RuleViolations(violations)
    return MeasureVerified(household_id=plan.household_id, measure_id=measure_id, kind=m.kind,
                           department=m.department, verified_on=on, note=note)


# --- the two rules: 缺什么补什么 and 一兜了之 ----------------------------------------------------------------------


def needs(plan: Plan, facts: HouseholdFacts | None) -> list[str]:
    """Every risk type (decided or assessed) and every 三保障/water gap the household has."""
    if facts is None:
        return measures.needs(r.value for r in plan.risks)
    return measures.needs((r.value for r in plan.risks), facts.risks, facts.gaps)


def uncovered(plan: Plan, facts: HouseholdFacts | None, policy: SupportPolicy) -> list[str]:
    """缺什么补什么 (the shared rule): the household's risks and gaps that no measure of the plan answers."""
    return measures.uncovered(needs(plan, facts), (m.kind for m in plan.measures.values()), policy)


def safety_net_only(plan: Plan, facts: HouseholdFacts | None) -> bool:
    """一兜了之 (the shared rule): a household that can work but has no developmental measure."""
    return measures.safety_net_only(facts.labour_capable if facts else None,
                                    (m.developmental for m in plan.measures.values()))


# --- 季度收入测算 ----------------------------------------------------------------------------------------------------


def expected_income(plan: Plan, day: date) -> tuple[Decimal, Decimal] | None:
    """(goal of the year, where the household should be by `day`): from the previous year's goal (or the base, in
    the first year) towards this year's goal, pro rata by day of the year. After the last year: the last goal."""
    if not plan.goals:
        return None
    first, last = min(plan.goals), max(plan.goals)
    if day.year > last:
        return plan.goals[last], plan.goals[last]
    if day.year < first:
        return plan.goals[first], plan.base_per_capita
    goal = plan.goals[day.year]
    previous = plan.goals.get(day.year - 1, plan.base_per_capita)
    days = 366 if calendar.isleap(day.year) else 365
    return goal, fen(previous + (goal - previous) * day.timetuple().tm_yday / days)


def measure_income(plan: Plan, on: date, per_capita: Decimal, note: str, policy: SupportPolicy,
                   today: date, max_amount: Decimal) -> IncomeMeasured:
    _require(plan)
    violations = amount_violations(per_capita, max_amount, "per_capita")
    if on > today:
        violations.append(Violation("measured_on", "测算日期不能晚于今天", "date"))
    if violations:
        raise RuleViolations(violations)
    target = expected_income(plan, on)
    goal, expected = target if target else (None, None)
    behind = expected is not None and per_capita < expected * (1 - policy.behind_tolerance)
    return IncomeMeasured(household_id=plan.household_id, measured_on=on, per_capita=per_capita, goal=goal,
                          expected=expected, behind=behind, note=note)
