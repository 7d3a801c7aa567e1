"""Request and response bodies of the support API."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from povguard_contracts.numbers import SignedYuan, Year, Yuan
from povguard_contracts.vocab import Department, MeasureKind
from povguard_platform.batch import MAX_ITEMS
from povguard_rules.measures import SupportPolicy
from povguard_support.domain import plan as domain
from povguard_support.domain.plan import HouseholdFacts, Measure, Plan


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class CadreAssign(_In):
    cadre: str = Field(min_length=1, max_length=64, description="一对一帮扶责任人")


class MeasureCreate(_In):
    kind: MeasureKind
    description: str = Field(default="", max_length=500)
    amount: Yuan | None = None
    planned_start: date | None = None
    planned_end: date | None = None
    department: Department | None = Field(default=None, description="default: the catalogue's department")


class MeasureImplement(_In):
    implemented_on: date
    amount: Yuan | None = None
    evidence_ref: str = Field(max_length=200, description="实施佐证材料编号")


class PlanEntry(_In):
    """一户一策 as the work team enters it: the responsible cadre and the measures the household's gaps call for."""

    household_id: str = Field(min_length=1, max_length=64)
    cadre: str | None = Field(default=None, min_length=1, max_length=64, description="一对一帮扶责任人")
    measures: list[MeasureCreate] = Field(default_factory=list, max_length=20)


class PlanEntries(_In):
    items: list[PlanEntry] = Field(min_length=1, max_length=MAX_ITEMS)


class Implementation(MeasureImplement):
    household_id: str = Field(min_length=1, max_length=64)
    measure_id: str = Field(min_length=1, max_length=64)


class Implementations(_In):
    """A department's implementation records for many measures (每项措施单独登记)."""

    items: list[Implementation] = Field(min_length=1, max_length=MAX_ITEMS)


class PlanState(BaseModel):
    household_id: str
    version: int = Field(description="the plan's version now (its ETag)")
    missing: list[str] = Field(description="needs still without a measure (缺什么补什么)")
    measures: list[MeasurePublic]


class MeasureVerify(_In):
    verified_on: date
    note: str = Field(default="", max_length=500)


class IncomeCreate(_In):
    measured_on: date
    per_capita: Yuan = Field(title="人均纯收入（测算）")
    note: str = Field(default="", max_length=500)


class MeasurePublic(BaseModel):
    measure_id: str
    household_id: str
    kind: str
    developmental: bool
    department: str
    status: str
    description: str
    amount: Yuan | None
    planned_start: date | None
    planned_end: date | None
    implemented_on: date | None
    implemented_amount: Yuan | None
    evidence_ref: str
    verified_on: date | None
    village_code: str = ""


class MeasuresPublic(BaseModel):
    data: list[MeasurePublic]
    next_cursor: str | None


class GoalPublic(BaseModel):
    year: Year
    per_capita: SignedYuan


class IncomePublic(BaseModel):
    measured_on: date
    per_capita: Yuan
    goal: SignedYuan | None
    expected: SignedYuan | None
    behind: bool
    note: str


class PlanPublic(BaseModel):
    household_id: str
    village_code: str
    township_code: str
    open: bool
    basis: list[str]
    case_id: str | None
    outcome: str | None
    risks: list[str]
    lead_department: str | None
    cadre: str | None
    base_per_capita: SignedYuan
    base_source: str
    goals: list[GoalPublic]
    created_on: date | None
    measures: list[MeasurePublic]
    incomes: list[IncomePublic]
    closed_reason: str | None
    closed_on: date | None
    reopened_reason: str | None
    needs: list[str] = Field(description="risk types and 三保障/water gaps of the household")
    missing: list[str] = Field(description="缺什么补什么: needs no measure answers")
    labour_capable: bool | None
    safety_net_only: bool = Field(description="一兜了之: can work, no developmental measure")
    behind: bool
    version: int


class PlanSummary(BaseModel):
    household_id: str
    village_code: str
    township_code: str
    open: bool
    basis: list[str]
    lead_department: str | None
    cadre: str | None
    measures: int
    developmental: int
    missing: list[str]
    labour_capable: bool | None
    safety_net_only: bool
    final_goal: SignedYuan | None
    latest_per_capita: Yuan | None
    latest_expected: SignedYuan | None
    behind: bool
    closed_reason: str | None


class PlansPublic(BaseModel):
    data: list[PlanSummary]
    next_cursor: str | None


def measure_public(m: Measure, household_id: str, village_code: str = "") -> MeasurePublic:
    return MeasurePublic(
        measure_id=m.measure_id, household_id=household_id, kind=m.kind.value, developmental=m.developmental,
        department=m.department.value, status=m.status.value, description=m.description, amount=m.amount,
        planned_start=m.planned_start, planned_end=m.planned_end, implemented_on=m.implemented_on,
        implemented_amount=m.implemented_amount, evidence_ref=m.evidence_ref, verified_on=m.verified_on,
        village_code=village_code)


def plan_public(plan: Plan, facts: HouseholdFacts | None, policy: SupportPolicy, village: str = "",
                township: str = "") -> PlanPublic:
    latest = plan.latest_income
    village = plan.village_code or village
    return PlanPublic(
        household_id=plan.household_id, village_code=village, township_code=plan.township_code or township,
        open=plan.open, basis=plan.basis, case_id=plan.case_id, outcome=plan.outcome,
        risks=[r.value for r in plan.risks], lead_department=plan.lead_department.value if plan.lead_department
        else None, cadre=plan.cadre, base_per_capita=plan.base_per_capita, base_source=plan.base_source,
        goals=[GoalPublic(year=y, per_capita=g) for y, g in sorted(plan.goals.items())], created_on=plan.created_on,
        measures=[measure_public(m, plan.household_id, village) for m in plan.measures.values()],
        incomes=[IncomePublic(measured_on=i.measured_on, per_capita=i.per_capita, goal=i.goal, expected=i.expected,
                              behind=i.behind, note=i.note) for i in sorted(plan.incomes, key=lambda i: i.measured_on)],
        closed_reason=None if plan.open else plan.closed_reason, closed_on=None if plan.open else plan.closed_on,
        reopened_reason=plan.reopened_reason, needs=domain.needs(plan, facts),
        missing=domain.uncovered(plan, facts, policy), labour_capable=facts.labour_capable if facts else None,
        safety_net_only=domain.safety_net_only(plan, facts), behind=latest.behind if latest else False,
        version=plan.version)
