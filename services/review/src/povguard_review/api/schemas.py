"""Request bodies of the review API: every stage action is dated (`acted_on`) and may carry the county
administrator's reason for acting after the data lock."""

from __future__ import annotations

from datetime import date
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from povguard_contracts.numbers import Count
from povguard_contracts.review import CaseStage, CheckFinding, Opinion
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
from povguard_platform.batch import MAX_ITEMS


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StageAction(_Body):
    acted_on: date = Field(title="办理日期", description="the day the action was taken; never in the future")
    override_reason: str | None = Field(default=None, max_length=500,
                                        description="数据锁定后由县级管理员修改时必填")


class CaseCreate(_Body):
    """By hand, from the village analysis meeting's 重点排查名单."""

    household_id: str = Field(min_length=1, max_length=64, description="a registered household (户籍登记)")
    village_code: str | None = Field(default=None, pattern=r"^\d{12}$",
                                     description="optional: the case's village is the registry's; if given, it must "
                                                 "be the same")
    outcome: Outcome
    category: MonitoringCategory | None = None
    risks: list[RiskType] = Field(default_factory=list, max_length=5)
    lead_date: date = Field(title="线索日期", description="the 15-day identification clock starts here")
    acted_on: date
    kind_before: HouseholdKind | None = None
    status_before: MonitoringStatus | None = None
    kind_before_monitoring: HouseholdKind | None = None
    collector: str | None = None
    three_year_target: bool = False
    note: str = Field(default="", max_length=500)


class AppraisalBody(StageAction):
    meeting_date: date = Field(title="评议会日期")
    party_members_present: Count = Field(title="到会党员人数")
    household_heads_present: Count = Field(title="到会户主人数")
    votes_for: Count = Field(title="赞成票")
    votes_against: Count = Field(title="反对票")
    opinions: list[Opinion] = Field(default_factory=list, title="意见及答复")


class VillageDecisionBody(StageAction):
    proposed_measures: list[MeasureKind] = Field(default_factory=list, title="帮扶措施")
    category: MonitoringCategory | None = None
    risks: list[RiskType] = Field(default_factory=list, max_length=5)
    opinion: str = Field(default="", max_length=1000)


class NoticeBody(StageAction):
    places: list[str] | None = Field(default=None, description="default: 村委会 and 村民小组")


class ObjectionBody(StageAction):
    reason: str = Field(min_length=1, max_length=1000, title="异议理由")
    raised_by: str | None = Field(default=None, max_length=30, title="反映人（可匿名）")


class ResolutionBody(StageAction):
    upheld: bool = Field(title="异议是否成立")
    finding: str = Field(min_length=1, max_length=1000, title="调查核实结果或答复")


class TownshipReviewBody(StageAction):
    spot_checked: bool = Field(title="是否抽查")
    proposed_measures: list[MeasureKind] = Field(default_factory=list)
    opinion: str = Field(default="", max_length=1000)


class CheckBody(StageAction):
    department: Department | None = Field(default=None, description="the department's own (from its token)")
    findings: list[CheckFinding] = Field(default_factory=list, description="empty: clear (无异常)")


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: str
    findings: list[CheckFinding] = Field(default_factory=list, description="empty: clear (无异常)")


class CheckBatch(StageAction):
    """One department's answers for many cases at once (how a department's system reports a day's comparisons)."""

    results: list[CheckResult] = Field(min_length=1, max_length=MAX_ITEMS)


class DecisionBody(StageAction):
    lead_department: Department | None = None
    elimination_method: EliminationMethod | None = None
    proposed_measures: list[MeasureKind] = Field(default_factory=list)
    opinion: str = Field(default="", max_length=1000)


class ReturnBody(StageAction):
    to_stage: CaseStage
    reason: str = Field(min_length=1, max_length=1000)


class WithdrawBody(StageAction):
    reason: str = Field(min_length=1, max_length=1000)


# --- 批量办理 -------------------------------------------------------------------------------------------------------
class _OnCase(BaseModel):
    case_id: str = Field(min_length=1, max_length=64)


class StageItem(StageAction, _OnCase):
    pass


class AppraisalItem(AppraisalBody, _OnCase):
    pass


class VillageDecisionItem(VillageDecisionBody, _OnCase):
    pass


class NoticeItem(NoticeBody, _OnCase):
    pass


class TownshipReviewItem(TownshipReviewBody, _OnCase):
    pass


class DecisionItem(DecisionBody, _OnCase):
    pass


class CheckItem(CheckBody, _OnCase):
    pass


Item = TypeVar("Item", bound=StageAction)


class Batch(_Body, Generic[Item]):
    """Many cases at once: each item is the body of the one-case action plus its case_id."""

    items: list[Item] = Field(min_length=1, max_length=MAX_ITEMS)


class StepDone(BaseModel):
    case_id: str
    stage: CaseStage = Field(description="the stage the case is at now")
    events: list[str]
