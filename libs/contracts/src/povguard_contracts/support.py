"""Events of the support service that other services react to. A plan is a stream (type "plan", id = household id);
every event carries the household id."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.numbers import SignedYuan, Year, Yuan
from povguard_contracts.payload import EventPayload
from povguard_contracts.vocab import Department, MeasureKind, RiskType


class _Support(EventPayload):
    service = "support"
    household_id: str


@CATALOGUE.register
class MeasureImplemented(_Support):
    """A measure delivered (assessment: 帮扶消除 needs an implemented developmental measure)."""

    event_type = "MeasureImplemented"
    measure_id: str
    kind: MeasureKind
    developmental: bool
    department: Department
    implemented_on: date
    amount: Yuan | None = None
    evidence_ref: str = ""


# --- added by the support service (issue 6): the plan's own events ---------------------------------------------------


class IncomeGoal(BaseModel):
    """三年帮扶目标: the per-capita net income a household should reach in a year."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    year: Year
    per_capita: SignedYuan


@CATALOGUE.register
class PlanCreated(_Support):
    """一户一策: a plan for a confirmed monitoring object or an under-10,000 (三年目标 / 户户增收) household."""

    event_type = "PlanCreated"
    village_code: str = ""
    township_code: str = ""
    basis: list[str] = Field(description="监测对象 | 三年帮扶目标 | 户户增收")
    case_id: str | None = None
    outcome: str | None = None
    risks: list[RiskType] = Field(default_factory=list)
    lead_department: Department | None = None
    cadre: str | None = Field(default=None, description="一对一 responsible cadre")
    base_per_capita: SignedYuan = Field(description="人均纯收入 the goals start from")
    base_source: str = Field(default="收入评估", description="收入评估 (assessed income) or 监测范围 (income unknown)")
    goals: list[IncomeGoal] = Field(description="one per year, three years")
    created_on: date


@CATALOGUE.register
class CadreAssigned(_Support):
    """一对一: the responsible cadre of the plan (replaces the previous one)."""

    event_type = "CadreAssigned"
    cadre: str


@CATALOGUE.register
class MeasureAssigned(_Support):
    """A measure planned for the household, from the catalogue (kind → developmental, responsible department)."""

    event_type = "MeasureAssigned"
    measure_id: str
    kind: MeasureKind
    developmental: bool
    department: Department
    description: str = ""
    amount: Yuan | None = None
    planned_start: date | None = None
    planned_end: date | None = None
    source: str = Field(default="手工", description="县级审定 (proposed measure of the decision) or 手工")


@CATALOGUE.register
class MeasureVerified(_Support):
    event_type = "MeasureVerified"
    measure_id: str
    kind: MeasureKind
    department: Department
    verified_on: date
    note: str = ""


@CATALOGUE.register
class IncomeMeasured(_Support):
    """季度收入测算: a cadre's measured per-capita income, against the plan's goal for that year."""

    event_type = "IncomeMeasured"
    measured_on: date
    per_capita: Yuan
    goal: SignedYuan | None = None
    expected: SignedYuan | None = Field(default=None, description="where the household should be by measured_on")
    behind: bool = False
    note: str = ""


@CATALOGUE.register
class PlanClosed(_Support):
    event_type = "PlanClosed"
    reason: str
    case_id: str | None = None
    closed_on: date


@CATALOGUE.register
class PlanReopened(_Support):
    event_type = "PlanReopened"
    reason: str
    case_id: str | None = None
    reopened_on: date


@CATALOGUE.register
class DeliveryMismatchFound(_Support):
    """A department's delivery records and the plan disagree: 未录入 (delivered, not recorded as implemented) or
    未享受录入 (recorded as implemented, not in the department's records). Stream ("mismatch", mismatch_id)."""

    event_type = "DeliveryMismatchFound"
    mismatch_id: str
    mismatch: str = Field(description="未录入 | 未享受录入")
    department: Department
    kind: MeasureKind
    village_code: str = ""
    detail: str = ""


@CATALOGUE.register
class DeliveryMismatchResolved(_Support):
    event_type = "DeliveryMismatchResolved"
    mismatch_id: str
    mismatch: str
    department: Department
    kind: MeasureKind
    resolution: str
