"""缺什么补什么 and 一兜了之 are one rule (`povguard_rules.measures`): the support service, which records plans, and
the reporting service, which counts them, say the same of every household. Assessment's and review's events are
appended to their own stores (relays only); support (with its consumer) makes the plans; reporting follows
everything over NATS; both are asked over their HTTP APIs."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from support_helpers import VILLAGE, assess, auth, decide, facts_known

from povguard_assessment.service import SERVICE as ASSESSMENT
from povguard_contracts.vocab import MeasureKind, RiskType
from povguard_platform.actor import Role
from povguard_platform.service import ServiceDef, ServiceRuntime
from povguard_platform.settings import Settings
from povguard_platform.web import create_app
from povguard_reporting.service import SERVICE as REPORTING
from povguard_review.service import SERVICE as REVIEW
from povguard_support.service import SERVICE as SUPPORT
from povguard_tools.testing import eventually, running

# household → (assessed risks, gaps, labour-capable members; decided risks, decided measures)
HOUSEHOLDS: dict[str, tuple[tuple[RiskType, ...], tuple[str, ...], int, tuple[RiskType, ...], tuple[MeasureKind, ...]]]
HOUSEHOLDS = {
    "agree-1": ((RiskType.ILLNESS, RiskType.SCHOOLING), ("住房安全", "饮水安全"), 2, (RiskType.ILLNESS,),
                (MeasureKind.HEALTH,)),
    "agree-2": ((RiskType.UNSTABLE_EMPLOYMENT,), (), 1, (RiskType.UNSTABLE_EMPLOYMENT,), (MeasureKind.EMPLOYMENT,)),
    "agree-3": ((RiskType.DISABILITY, RiskType.NATURAL_DISASTER), ("义务教育",), 0, (RiskType.DISABILITY,), ()),
}


@dataclasses.dataclass
class Services:
    support: httpx.AsyncClient
    reporting: httpx.AsyncClient
    assessment: ServiceRuntime
    review: ServiceRuntime


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with AsyncExitStack() as stack:
        quiet = {}
        for definition in (ASSESSMENT, REVIEW):  # their events only, no reactions of their own
            bare: ServiceDef = dataclasses.replace(definition, consumers=(), background=())
            quiet[definition.name] = await stack.enter_async_context(running(bare, settings))
        clients = {}
        for definition in (SUPPORT, REPORTING):
            app = create_app(definition, settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{definition.name}"))
            client.app = app  # type: ignore[attr-defined]
            clients[definition.name] = client
        yield Services(clients["support"], clients["reporting"], quiet["assessment"], quiet["review"])


async def support_says(s: Services, settings: Settings) -> dict[str, tuple[list[str], bool]]:
    found = {}
    for household in HOUSEHOLDS:
        r = await s.support.get(f"/v1/plans/{household}", headers=auth(settings, Role.COUNTY_BUREAU, "533123"))
        if r.status_code == 200:
            found[household] = (r.json()["missing"], r.json()["safety_net_only"])
    return found


async def reporting_says(s: Services, settings: Settings) -> dict[str, tuple[list[str], bool]]:
    r = await s.reporting.get("/v1/dashboard/households", params={"org": VILLAGE},
                              headers=auth(settings, Role.COUNTY_BUREAU, "533123"))
    assert r.status_code == 200, r.text
    return {h["household_id"]: (h["missing"], h["safety_net_only"]) for h in r.json()["data"] if h["plan_open"]}


async def both_say(s: Services, settings: Settings, expected: dict[str, tuple[list[str], bool]]) -> None:
    said: dict[str, Any] = {}

    async def agreed() -> bool:
        said["support"], said["reporting"] = await support_says(s, settings), await reporting_says(s, settings)
        return said["support"] == said["reporting"] == expected

    try:
        await eventually(agreed, within=60)
    except AssertionError as timeout:
        raise AssertionError(f"expected {expected}; support {said['support']}; reporting {said['reporting']}"
                             ) from timeout


async def test_reporting_counts_what_support_records(services: Services, settings: Settings) -> None:
    s = services
    for household, (risks, gaps, labour, _, _) in HOUSEHOLDS.items():
        await assess(s.assessment, household, risks=risks, gaps=gaps, labour=labour)
    for household in HOUSEHOLDS:
        if HOUSEHOLDS[household][1]:
            await facts_known(s.support, household)  # the plan's gap measures follow the gaps known
    for household, (_, _, _, decided, measures) in HOUSEHOLDS.items():
        await decide(s.review, household, risks=decided, measures=measures)

    # agree-1: 健康帮扶 (decided) answers 因病; support adds 住房安全保障 and 饮水安全保障 for the gaps; 因学 stays
    # uncovered; it can work and has no developmental measure. agree-2: 就业帮扶 answers everything. agree-3: no
    # labour; 义务教育保障 added for its gap; 因残 and 因自然灾害 uncovered.
    await both_say(s, settings, {"agree-1": (["因学"], True), "agree-2": ([], False),
                                 "agree-3": (["因残", "因自然灾害"], False)})

    # a measure added through support's API: both follow it
    r = await s.support.post("/v1/plans/agree-1/measures", json={"kind": MeasureKind.PUBLIC_WELFARE_JOB.value},
                             headers=auth(settings, Role.WORK_TEAM, VILLAGE))
    assert r.status_code == 201, r.text
    r = await s.support.post("/v1/plans/agree-3/measures", json={"kind": MeasureKind.HEALTH.value},
                             headers=auth(settings, Role.WORK_TEAM, VILLAGE))
    assert r.status_code == 201, r.text
    await both_say(s, settings, {"agree-1": (["因学"], False), "agree-2": ([], False),
                                 "agree-3": (["因自然灾害"], False)})
