"""The assessment section of a campaign's policy file ([assessment] in policies/<campaign>.toml) and the whole
configuration one assessment runs under."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from povguard_contracts.numbers import Yuan
from povguard_platform.policy import Policy


class ScaleLimit(BaseModel):
    """One indicator's threshold: the share of the area's households it counts (of its monitoring objects for
    not_eliminated) and the fewest such households that make it a scale risk (one warning in a small township is
    not one)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    rate: float = Field(ge=0, le=1, allow_inf_nan=False)
    min_count: int = Field(ge=1, le=1_000_000)


class ScaleThresholds(BaseModel):
    """[assessment.scale]: the indicators of seed §二(四), per township and per village."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    disaster: ScaleLimit = ScaleLimit(rate=0.05, min_count=3)
    unemployment: ScaleLimit = ScaleLimit(rate=0.10, min_count=5)
    industry_failure: ScaleLimit = ScaleLimit(rate=0.05, min_count=3)
    relocation_employment: ScaleLimit = ScaleLimit(rate=0.10, min_count=3)
    not_eliminated: ScaleLimit = ScaleLimit(rate=0.9, min_count=10)
    # 行政村代码 of the 易地扶贫搬迁集中安置点 (their households are counted for relocation_employment)
    relocation_sites: list[Annotated[str, Field(pattern=r"^\d{12}$")]] = Field(default=[], max_length=10_000)

    def limits(self) -> dict[str, ScaleLimit]:
        return {"disaster": self.disaster, "unemployment": self.unemployment,
                "industry_failure": self.industry_failure, "relocation_employment": self.relocation_employment,
                "not_eliminated": self.not_eliminated}

    def thresholds(self) -> dict[str, float]:
        return {k: v.rate for k, v in self.limits().items()}

    def min_counts(self) -> dict[str, int]:
        return {k: v.min_count for k, v in self.limits().items()}


class AssessmentPolicy(BaseModel):
    """[assessment]: the thresholds of every rule (see the comments in the policy file)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    count_industry_reward: bool = True
    count_employment_reward: bool = True
    count_insurance_claims: bool = True
    # shares weigh amounts: Decimals, so that no float enters the income arithmetic
    income_drop_share: Decimal = Field(default=Decimal("0.3"), ge=0, le=1)
    rigid_spending_share: Decimal = Field(default=Decimal("0.5"), ge=0, le=100)
    migrant_income_share: Decimal = Field(default=Decimal("0.6"), ge=0, le=1)
    unstable_migrant_months: int = 6
    stable_margin: Decimal = Field(default=Decimal("0.1"), ge=0, le=10)
    stable_monitoring_days: int = 183
    vehicle_value_limit: Yuan = Decimal(50000)
    labour_min_age: int = 16
    compulsory_school_ages: tuple[int, int] = (6, 15)
    scale: ScaleThresholds = ScaleThresholds()


@dataclass(frozen=True)
class Rules:
    """Everything an assessment depends on besides the facts: the campaign policy and the assessment section."""

    policy: Policy
    section: AssessmentPolicy

    @property
    def ref(self) -> str:
        return self.policy.ref

    @property
    def line(self) -> Decimal:
        return self.policy.income.monitoring_line
