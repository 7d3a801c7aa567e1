"""Builders for the support tests: tokens, and review/assessment events appended to those services' own stores (their
relays publish them to the bus, where the support consumer picks them up)."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import httpx
from sqlalchemy import text

from povguard_contracts.assessment import DetectedRisk, Evidence, IncomeAssessed, RiskAssessed
from povguard_contracts.payload import EventPayload
from povguard_contracts.review import CaseOpened, CountyDecided
from povguard_contracts.vocab import (
    Department,
    HouseholdKind,
    IncomeBand,
    MeasureKind,
    MonitoringCategory,
    MonitoringStatus,
    Outcome,
    RiskType,
)
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.service import ServiceRuntime
from povguard_platform.settings import Settings
from povguard_tools.testing import eventually

TOWN = "533123101"
VILLAGE = TOWN + "201"
OTHER_VILLAGE = TOWN + "202"
_n = itertools.count(1)
BUREAU = Actor(user="县乡村振兴局", role=Role.COUNTY_BUREAU, org="533123")


def auth(settings: Settings, role: Role = Role.WORK_TEAM, org: str = VILLAGE, user: str = "李队员",
         dept: str | None = None) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(Actor(user=user, role=role, org=org, dept=dept), settings)}


def department(settings: Settings, name: str, org: str = "533123", user: str | None = None) -> dict[str, str]:
    """A department's machine client: it serves the county (org) and answers for its department (dept)."""
    return auth(settings, Role.DEPARTMENT, org, user or f"{name}接口", dept=name)


async def append(runtime: ServiceRuntime, stream: StreamRef, township: str, *payloads: EventPayload) -> None:
    async with runtime.engine.begin() as conn:
        version = await runtime.store.stream_version(conn, stream)
        await runtime.store.append(conn, [NewEvent(stream, township, p) for p in payloads], {stream: version},
                                   Metadata(actor=BUREAU))


def new_household() -> str:
    return f"hh-{next(_n):05d}"


async def decide(review: ServiceRuntime, household_id: str, *, village: str = VILLAGE,
                 status: MonitoringStatus = MonitoringStatus.RISK_NOT_ELIMINATED,
                 outcome: Outcome = Outcome.NEWLY_IDENTIFIED, risks: tuple[RiskType, ...] = (),
                 measures: tuple[MeasureKind, ...] = (), open_case: bool = True, **over: Any) -> str:
    """A review case for the household: CaseOpened (with its village) then CountyDecided."""
    case_id = f"case-{next(_n):05d}"
    stream = StreamRef("case", case_id)
    decided = CountyDecided(
        case_id=case_id, household_id=household_id, outcome=outcome,
        kind=over.pop("kind", HouseholdKind.MONITORED),
        category=over.pop("category", MonitoringCategory.MARGINAL), status=status, risks=list(risks),
        lead_department=over.pop("lead_department", Department.AGRICULTURE), proposed_measures=list(measures),
        decided_on=over.pop("decided_on", date(2022, 5, 27)), **over)
    events: list[EventPayload] = [decided]
    if open_case:
        events.insert(0, CaseOpened(case_id=case_id, household_id=household_id, village_code=village,
                                    township_code=village[:9], outcome=outcome, risks=list(risks),
                                    source="研判建议"))
    await append(review, stream, village[:9], *events)
    return case_id


async def assess(assessment: ServiceRuntime, household_id: str, *, village: str = VILLAGE,
                 risks: tuple[RiskType, ...] = (), gaps: tuple[str, ...] = (), labour: int = 2,
                 per_capita: float | None = None) -> None:
    stream = StreamRef("assessment", household_id)
    events: list[EventPayload] = [RiskAssessed(
        household_id=household_id, village_code=village, visit_id="v1",
        risks=[DetectedRisk(type=r, evidence=[Evidence(rule_id="R", text="测试")]) for r in risks],
        gaps=list(gaps), no_labour=labour == 0, labour_capable_members=labour, rigid_spending=0)]
    if per_capita is not None:
        events.append(IncomeAssessed(
            household_id=household_id, village_code=village, visit_id="v1", household_size=4, size_basis="户籍",
            lines={}, net_income=per_capita * 4, per_capita=per_capita, band=IncomeBand.LINE_TO_7000))
    await append(assessment, stream, village[:9], *events)


async def plan_of(client: httpx.AsyncClient, settings: Settings, household_id: str,
                  **want: Any) -> dict[str, Any]:
    """Wait until the household's plan exists (and has the wanted field values), then return it."""
    found: dict[str, Any] = {}

    async def ready() -> bool:
        r = await client.get(f"/v1/plans/{household_id}", headers=auth(settings, Role.COUNTY_BUREAU, "533123"))
        if r.status_code != 200:
            return False
        found.update(r.json())
        return all(found.get(k) == v for k, v in want.items())

    await eventually(ready, within=20)
    return found


async def facts_known(client: httpx.AsyncClient, household_id: str) -> None:
    """Wait until support knows the household's assessed 三保障/water gaps."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]

    async def known() -> bool:
        async with runtime.engine.connect() as conn:
            rows = list(await conn.execute(text("SELECT gaps FROM support.facts WHERE household_id = :h"),
                                           {"h": household_id}))
        return bool(rows and rows[0].gaps)

    await eventually(known, within=20)
