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


class ScaleRiskPublic(BaseModel):
    township_code: str
    households: int
    indicators: dict[str, Finite]
    thresholds: dict[str, Finite]
    names: dict[str, str]
    crossed: list[str]
    raised: list[str]
    raised_at: datetime | None
