"""缺什么补什么 for 三保障 and water: a plan created from a county decision carries the measure each gap calls for when
nothing decided answers it (through the real stack: assessment and review events over NATS to support's API)."""

from __future__ import annotations

import httpx
from support_helpers import assess, decide, facts_known, new_household, plan_of

from povguard_assessment.service import SERVICE as ASSESSMENT
from povguard_contracts.vocab import MeasureKind, RiskType
from povguard_platform.settings import Settings
from povguard_review.service import SERVICE as REVIEW
from povguard_tools.testing import running


async def test_plan_carries_a_measure_for_every_gap(client: httpx.AsyncClient, settings: Settings) -> None:
    hh = new_household()
    async with running(REVIEW, settings) as review, running(ASSESSMENT, settings) as assessment:
        await assess(assessment, hh, risks=(RiskType.SCHOOLING, RiskType.OTHER), gaps=("义务教育", "饮水安全"),
                     labour=2, per_capita=12000)
        await facts_known(client, hh)
        await decide(review, hh, risks=(RiskType.SCHOOLING, RiskType.OTHER), measures=(MeasureKind.EMPLOYMENT,))
        plan = await plan_of(client, settings, hh)
    kinds = [m["kind"] for m in plan["measures"]]
    assert kinds == ["就业帮扶", "义务教育保障", "饮水安全保障"]
    assert plan["missing"] == [] and not plan["safety_net_only"]
