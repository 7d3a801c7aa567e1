"""The review service's own section of the campaign policy ([review] in policies/<campaign>.toml)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from povguard_contracts.review import CaseStage
from povguard_contracts.vocab import Department
from povguard_platform.policy import Calendar, Policy, load_policy, policy_section


class ReviewPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    check_departments: list[Department] = Field(min_length=1)
    notice_places: list[str] = Field(default_factory=lambda: ["村委会", "村民小组"])
    near_limit_days: int = Field(default=3, ge=0)
    stage_deadlines: dict[CaseStage, str]

    def deadline(self, calendar: Calendar, stage: CaseStage) -> date | None:
        key = self.stage_deadlines.get(stage)
        value = getattr(calendar, key) if key else None
        return value if isinstance(value, date) else None


def load(campaign: str) -> tuple[Policy, ReviewPolicy]:
    return load_policy(campaign), policy_section(campaign, "review", ReviewPolicy)
