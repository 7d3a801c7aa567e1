"""The rules in force for a campaign: the shared policy and the [assessment] section of policies/<campaign>.toml."""

from __future__ import annotations

from functools import lru_cache

from povguard_platform.policy import load_policy, policy_section
from povguard_rules.policy import AssessmentPolicy, Rules


@lru_cache
def rules_for(campaign: str) -> Rules:
    return Rules(load_policy(campaign), policy_section(campaign, "assessment", AssessmentPolicy))
