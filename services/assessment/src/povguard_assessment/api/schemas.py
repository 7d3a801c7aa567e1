"""What the API answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from povguard_contracts.assessment import (
    DataProblemFound,
    IncomeAssessed,
    OutcomeProposed,
    RiskAssessed,
)
from povguard_contracts.numbers import Finite


class AssessmentPublic(BaseModel):
    household_id: str
    township_code: str
    village_code: str
    policy: str = Field(description="the policy version the assessment was made under")
    as_of: datetime | None = Field(default=None, description="recomputed from the facts known at this time")
    income: IncomeAssessed | None = Field(default=None, description="收入: each line, 家庭纯收入, 人均纯收入, band")
    risk: RiskAssessed | None = Field(default=None, description="风险 with evidence, 三保障/饮水 gaps, labour")
    proposal: OutcomeProposed | None = Field(default=None, description="研判建议 with rule ids and 中文 rationale")
    held: bool = False
    hold_reason: str | None = None
    elimination_conditions: dict[str, bool] = Field(default_factory=dict, description="风险消除的各项条件")
    problems: list[DataProblemFound] = Field(default_factory=list, description="open data-quality problems")


class ProposalsPage(BaseModel):
    data: list[OutcomeProposed]
    next_cursor: str | None


class BandCount(BaseModel):
    level: str = Field(description="village | township")
    code: str
    band: str
    households: int
    persons: int


class ProblemCount(BaseModel):
    village_code: str
    kind: str
    open: int
    cleared: int


class ProblemItem(BaseModel):
    problem_id: str
    household_id: str
    village_code: str
    kind: str
    rule_id: str
    member_id: str | None
    text: str
    open: bool
    found_at: datetime
    cleared_at: datetime | None


class ProblemsPage(BaseModel):
    data: list[ProblemItem]
    next_cursor: str | None


class VillageScale(BaseModel):
    village_code: str
    households: int
    indicators: dict[str, Finite]
    counts: dict[str, int]
    crossed: list[str]


class ScaleRiskPublic(BaseModel):
    """规模性返贫风险 of a township (seed §二(四)): each indicator's share and count against the policy's rate and
    minimum count, and the villages where one crosses."""

    township_code: str
    households: int
    indicators: dict[str, Finite]
    counts: dict[str, int]
    thresholds: dict[str, Finite]
    min_counts: dict[str, int]
    names: dict[str, str]
    crossed: list[str]
    villages: list[VillageScale] = Field(description="every village of the township, with its own crossings")
    raised: list[str] = Field(description="what the last alert raised: indicators, `<行政村代码>:<indicator>`")
    raised_at: datetime | None
