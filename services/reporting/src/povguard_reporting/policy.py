"""What the reporting service reads of the campaign's policy: the calendar, each review stage's deadline and who acts
at it, the 15-day identification limit, and the measure catalogue (which risks and gaps a measure kind answers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from pydantic import BaseModel, ConfigDict

from povguard_platform.policy import Policy, load_policy, policy_section
from povguard_rules.measures import SupportPolicy

# who acts at each open stage (seed §三(六)-(九)); the dashboard's "who must act"
ACTS_AT = {"村民评议": "村两委", "村两委决定": "村两委", "待公示": "村级数据员", "公示中": "村级数据员",
           "乡镇审核": "乡镇审核", "县级审定": "县乡村振兴局"}


class _ReviewSection(BaseModel):
    model_config = ConfigDict(extra="ignore")

    near_limit_days: int = 3
    stage_deadlines: dict[str, str] = {}


@dataclass(frozen=True)
class ReportingPolicy:
    policy: Policy
    stage_deadlines: dict[str, date]
    near_limit_days: int
    catalogue: SupportPolicy  # the measure catalogue, read as support reads it (缺什么补什么)

    @property
    def county_code(self) -> str:
        return self.policy.policy.county_code

    @property
    def county(self) -> str:
        return self.policy.policy.county


@lru_cache
def reporting_policy(campaign: str) -> ReportingPolicy:
    policy = load_policy(campaign)
    review = policy_section(campaign, "review", _ReviewSection)
    catalogue = policy_section(campaign, "support", SupportPolicy)
    deadlines = {stage: value for stage, key in review.stage_deadlines.items()
                 if isinstance(value := getattr(policy.calendar, key, None), date)}
    return ReportingPolicy(policy, deadlines, review.near_limit_days, catalogue)
