"""Events of the review service that other services react to. A case is a stream (type "case", id = case id);
every event carries the household id. The review service adds its own stage events in this module."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from povguard_platform.catalogue import CATALOGUE
from povguard_platform.contracts.vocab import (
    Department,
    EliminationMethod,
    HouseholdKind,
    MeasureKind,
    MonitoringCategory,
    MonitoringStatus,
    Outcome,
    RiskType,
)
from povguard_platform.envelope import EventPayload


class _Review(EventPayload):
    service = "review"
    case_id: str
    household_id: str


@CATALOGUE.register
class CaseOpened(_Review):
    event_type = "CaseOpened"
    village_code: str
    township_code: str
    outcome: Outcome
    category: MonitoringCategory | None = None
    risks: list[RiskType] = Field(default_factory=list)
    lead_date: date | None = None
    source: str = Field(description="研判建议 (assessment proposal) or 重点排查名单 (by hand)")
    proposal_visit_id: str | None = None
    collector: str | None = None
    three_year_target: bool = False
    income_increase_target: bool = False


@CATALOGUE.register
class CountyDecided(_Review):
    """县级审定: the decision, the household's kind and status that follow from it, and the lead department.
    Intake records the status; support creates, closes or reopens the plan."""

    event_type = "CountyDecided"
    outcome: Outcome
    kind: HouseholdKind
    category: MonitoringCategory | None = None
    status: MonitoringStatus
    risks: list[RiskType] = Field(default_factory=list)
    elimination_method: EliminationMethod | None = None
    lead_department: Department | None = None
    proposed_measures: list[MeasureKind] = Field(default_factory=list)
    three_year_target: bool = False
    income_increase_target: bool = False
    decided_on: date
