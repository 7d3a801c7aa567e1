"""Events of the assessment service: the judgements a reviewer checks line by line. Streams are one per household
(stream type "assessment", id = household id); every event carries the household id and its village code."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.numbers import Count, Finite, Ratio, SignedYuan, Yuan
from povguard_contracts.payload import EventPayload
from povguard_contracts.vocab import (
    EliminationMethod,
    IncomeBand,
    MonitoringCategory,
    Outcome,
    RiskType,
)


class _Assessment(EventPayload):
    service = "assessment"
    household_id: str
    village_code: str = Field(pattern=r"^\d{12}$")


class Evidence(BaseModel):
    """Why a rule fired: the rule id, the facts it looked at, in Chinese for the reviewer."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    rule_id: str
    text: str
    # amounts and shares as Decimals (numbers in JSON); counts as ints; older events' floats stay floats
    facts: dict[str, bool | Count | SignedYuan | Ratio | Finite | str | None] = Field(default_factory=dict)


class DetectedRisk(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    type: RiskType
    evidence: list[Evidence]


@CATALOGUE.register
class IncomeAssessed(_Assessment):
    """家庭纯收入 and 人均纯收入 for the accounting window, by the formula of DOMAIN.md."""

    event_type = "IncomeAssessed"
    visit_id: str
    household_size: Count = Field(title="家庭人口数")
    size_basis: str = Field(description="how household size was counted")
    lines: dict[str, Yuan] = Field(description="each income and spending line used")
    net_income: SignedYuan = Field(title="家庭纯收入")
    per_capita: SignedYuan = Field(title="人均纯收入")
    band: IncomeBand
    previous_per_capita: Yuan | None = None
    change_ratio: Ratio | None = Field(default=None, description="per_capita / previous - 1")


@CATALOGUE.register
class RiskAssessed(_Assessment):
    event_type = "RiskAssessed"
    visit_id: str
    risks: list[DetectedRisk] = Field(title="返贫致贫风险")
    gaps: list[str] = Field(description="三保障 and water gaps: 两不愁, 义务教育, 基本医疗, 住房安全, 饮水安全")
    no_labour: bool = Field(title="整户无劳动力")
    labour_capable_members: Count
    rigid_spending: Yuan = Field(title="刚性支出合计")
    consistency: list[Evidence] = Field(default_factory=list, description="consistency rules broken")


@CATALOGUE.register
class OutcomeProposed(_Assessment):
    """The proposal for this household in this campaign (one of the eight outcomes, or 无变化)."""

    event_type = "OutcomeProposed"
    township_code: str
    outcome: Outcome
    category: MonitoringCategory | None = None
    risks: list[RiskType] = Field(default_factory=list)
    rule_ids: list[str]
    rationale: str = Field(description="human-readable, in Chinese")
    per_capita: SignedYuan | None = None
    band: IncomeBand | None = None
    lead_date: date | None = Field(default=None, description="the 15-day identification clock starts here")
    visit_id: str | None = None
    collector: str | None = Field(default=None, description="who collected the visit (may not approve it)")
    three_year_target: bool = Field(default=False, description="脱贫户/监测对象 under 10,000: 三年帮扶目标")
    income_increase_target: bool = Field(default=False, description="一般农户 7,000–10,000: 户户增收")
    held: bool = Field(default=False, description="not to proceed to review yet (e.g. no signed authorisation)")
    hold_reason: str | None = None
    policy_ref: str
    elimination_method: EliminationMethod | None = Field(
        default=None, description="拟风险消除: 帮扶消除 (a developmental measure implemented) or 自然消除")


@CATALOGUE.register
class DataProblemFound(_Assessment):
    """数据质量问题 (completeness, accuracy, timeliness), per household and person."""

    event_type = "DataProblemFound"
    problem_id: str = Field(description="stable per (household, rule, member): found again → same id")
    kind: str = Field(description="完整性 | 准确性 | 及时性")
    rule_id: str
    member_id: str | None = None
    text: str


@CATALOGUE.register
class DataProblemCleared(_Assessment):
    event_type = "DataProblemCleared"
    problem_id: str
    rule_id: str


@CATALOGUE.register
class ScaleRiskRaised(EventPayload):
    """规模性返贫风险 alert for a township (seed §二(四)): an indicator of the township or of one of its villages
    crossed its configured rate with at least its minimum count. v2: per-village crossings and the counts."""

    event_type = "ScaleRiskRaised"
    event_version = 2
    service = "assessment"
    township_code: str
    indicators: dict[str, Finite]
    counts: dict[str, Count] = Field(default_factory=dict)
    thresholds: dict[str, Finite]
    min_counts: dict[str, Count] = Field(default_factory=dict)
    crossed: list[str]
    villages: dict[str, list[str]] = Field(default_factory=dict, description="行政村代码 → its crossed indicators")
    as_of: date


@CATALOGUE.upcaster("ScaleRiskRaised", 1)
def _scale_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v1 judged the township alone, on shares without a minimum count."""
    return {**data, "counts": {}, "min_counts": {}, "villages": {}}
