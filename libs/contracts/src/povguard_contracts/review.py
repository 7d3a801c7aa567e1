"""Events of the review service that other services react to. A case is a stream (type "case", id = case id);
every event carries the household id. The review service adds its own stage events in this module."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.numbers import Count
from povguard_contracts.payload import EventPayload
from povguard_contracts.vocab import (
    Department,
    EliminationMethod,
    HouseholdKind,
    MeasureKind,
    MonitoringCategory,
    MonitoringStatus,
    Outcome,
    RiskType,
)


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
    # added by the review service (issue 5): what the household was before, so that a decision can restore it
    kind_before: HouseholdKind | None = Field(default=None, description="户类型 when the case was opened")
    status_before: MonitoringStatus | None = Field(default=None, description="监测状态 when the case was opened")
    kind_before_monitoring: HouseholdKind | None = Field(
        default=None, description="脱贫户 or 一般农户: what a monitoring object was before (for 整户清退)")
    opened_on: date | None = None


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
    # added by the review service (issue 5)
    refused: bool = Field(default=False, description="a department hit blocked a new identification: 无变化")
    findings: list[str] = Field(default_factory=list, description="department check findings behind the decision")
    opinion: str = ""
    override_reason: str | None = Field(default=None, description="county administrator's reason after the data lock")


# --- added by the review service (issue 5): the stages of the procedure --------------------------------------------


class CaseStage(StrEnum):
    """Where a case stands: each stage waits for one action (seed §三(六)-(九))."""

    APPRAISAL = "村民评议"
    VILLAGE_DECISION = "村两委决定"
    NOTICE_PENDING = "待公示"
    NOTICE = "公示中"
    TOWNSHIP_REVIEW = "乡镇审核"
    COUNTY_REVIEW = "县级审定"
    DECIDED = "已审定"
    WITHDRAWN = "已撤回"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class _Stage(_Review):
    """A person's action on a case: dated (`acted_on`, never in the future), and after the data lock only by a
    county administrator with a recorded reason."""

    acted_on: date
    override_reason: str | None = None


@CATALOGUE.register
class ProposalUpdated(_Review):
    """A changed assessment proposal taken into the case before the village appraisal."""

    event_type = "ProposalUpdated"
    outcome: Outcome
    category: MonitoringCategory | None = None
    risks: list[RiskType] = Field(default_factory=list)
    lead_date: date | None = None
    rationale: str = ""


@CATALOGUE.register
class ProposalChangeRecorded(_Review):
    """A changed proposal that arrived after the appraisal (or says 无变化 / held): kept for the reviewers, the
    case itself is not changed."""

    event_type = "ProposalChangeRecorded"
    outcome: Outcome
    category: MonitoringCategory | None = None
    risks: list[RiskType] = Field(default_factory=list)
    held: bool = False
    rationale: str = ""
    stage: CaseStage


class Opinion(_Value):
    opinion: str = Field(min_length=1, max_length=500, title="意见")
    answer: str = Field(min_length=1, max_length=500, title="答复")


@CATALOGUE.register
class AppraisalHeld(_Stage):
    """村民及党员公开评议: the meeting, who came, the vote, opinions and answers."""

    event_type = "AppraisalHeld"
    meeting_date: date
    party_members_present: Count
    household_heads_present: Count
    votes_for: Count
    votes_against: Count
    opinions: list[Opinion] = Field(default_factory=list)


@CATALOGUE.register
class VillageDecided(_Stage):
    """村两委 decision with the proposed measures per household."""

    event_type = "VillageDecided"
    category: MonitoringCategory | None = None
    risks: list[RiskType] = Field(default_factory=list)
    proposed_measures: list[MeasureKind] = Field(default_factory=list)
    opinion: str = ""
    noticed: bool = Field(description="False for 户户增收 targets: no public notice")


@CATALOGUE.register
class NoticeStarted(_Stage):
    """公示 posted at the village committee and the village group for `working_days` official working days."""

    event_type = "NoticeStarted"
    places: list[str]
    working_days: Count
    ends_on: date = Field(description="the last working day of the notice")


@CATALOGUE.register
class ObjectionRaised(_Stage):
    event_type = "ObjectionRaised"
    objection_id: str
    reason: str
    raised_by: str | None = Field(default=None, description="name given by the objector (may be anonymous)")


@CATALOGUE.register
class ObjectionResolved(_Stage):
    """Investigated: upheld (the case returns to the village with the finding) or dismissed (with the answer)."""

    event_type = "ObjectionResolved"
    objection_id: str
    upheld: bool
    finding: str


@CATALOGUE.register
class NoticeClosed(_Stage):
    event_type = "NoticeClosed"


@CATALOGUE.register
class TownshipReviewed(_Stage):
    """乡镇审核 with the spot-check flag and the measures."""

    event_type = "TownshipReviewed"
    spot_checked: bool
    proposed_measures: list[MeasureKind] = Field(default_factory=list)
    opinion: str = ""


class CheckFinding(_Value):
    kind: str = Field(min_length=1, max_length=30, description="车辆, 房产, 国家公职人员, 经营实体, 户口, ...")
    detail: str = Field(min_length=1, max_length=500)


@CATALOGUE.register
class DepartmentCheckRecorded(_Stage):
    """A department's answer in the county joint check: clear (no findings) or a hit."""

    event_type = "DepartmentCheckRecorded"
    department: Department
    hit: bool
    findings: list[CheckFinding] = Field(default_factory=list)


@CATALOGUE.register
class CaseReturned(_Stage):
    """Back to an earlier stage with a reason (an upheld objection, a reviewer's return, a department hit)."""

    event_type = "CaseReturned"
    from_stage: CaseStage
    to_stage: CaseStage
    reason: str
    proposed_outcome: Outcome | None = Field(default=None, description="the outcome the case now proposes")
    objection_id: str | None = None


@CATALOGUE.register
class CaseWithdrawn(_Stage):
    event_type = "CaseWithdrawn"
    from_stage: CaseStage
    reason: str
