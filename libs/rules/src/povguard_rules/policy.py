"""The assessment section of a campaign's policy file ([assessment] in policies/<campaign>.toml) and the whole
configuration one assessment runs under."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from povguard_contracts.numbers import Finite, Yuan
from povguard_platform.policy import Policy


class ScaleThresholds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    min_households: int = 20
    not_eliminated_share: Finite = 0.08
    income_fell_share: Finite = 0.15
    disaster_per_1000: Finite = 20
    epidemic_per_1000: Finite = 30
    unemployment_per_1000: Finite = 20

    def thresholds(self) -> dict[str, float]:
        return {"not_eliminated_share": self.not_eliminated_share, "income_fell_share": self.income_fell_share,
                "disaster_per_1000": self.disaster_per_1000, "epidemic_per_1000": self.epidemic_per_1000,
                "unemployment_per_1000": self.unemployment_per_1000}


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
