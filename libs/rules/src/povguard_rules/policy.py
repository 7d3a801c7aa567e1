"""The assessment section of a campaign's policy file ([assessment] in policies/<campaign>.toml) and the whole
configuration one assessment runs under."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from povguard_platform.policy import Policy


class ScaleThresholds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_households: int = 20
    not_eliminated_share: float = 0.08
    income_fell_share: float = 0.15
    disaster_per_1000: float = 20
    epidemic_per_1000: float = 30
    unemployment_per_1000: float = 20

    def thresholds(self) -> dict[str, float]:
        return {"not_eliminated_share": self.not_eliminated_share, "income_fell_share": self.income_fell_share,
                "disaster_per_1000": self.disaster_per_1000, "epidemic_per_1000": self.epidemic_per_1000,
                "unemployment_per_1000": self.unemployment_per_1000}


class AssessmentPolicy(BaseModel):
    """[assessment]: the thresholds of every rule (see the comments in the policy file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count_industry_reward: bool = True
    count_employment_reward: bool = True
    count_insurance_claims: bool = True
    income_drop_share: float = 0.3
    rigid_spending_share: float = 0.5
    migrant_income_share: float = 0.6
    unstable_migrant_months: int = 6
    stable_margin: float = 0.1
    stable_monitoring_days: int = 183
    vehicle_value_limit: float = 50000
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
    def line(self) -> float:
        return self.policy.income.monitoring_line
