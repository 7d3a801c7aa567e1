"""Through the real stack: events appended to the intake, assessment, review and support stores travel over NATS to the
reporting consumer (their own consumers are left out, so the figures are exactly what the test appended); the figures,
the statistics files, the scopes and the audit of personal data are then checked through the reporting API."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from assessment_helpers import family, registered, visit
from openpyxl import load_workbook
from sqlalchemy import text

from povguard_assessment.service import SERVICE as ASSESSMENT
from povguard_contracts.assessment import DataProblemFound, DetectedRisk, Evidence, IncomeAssessed, RiskAssessed
from povguard_contracts.intake import Place
from povguard_contracts.payload import EventPayload
from povguard_contracts.review import AppraisalHeld, CaseOpened, CountyDecided
from povguard_contracts.support import MeasureAssigned, PlanCreated
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
from povguard_intake.service import SERVICE as INTAKE
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.service import ServiceDef, ServiceRuntime
from povguard_platform.settings import Settings
from povguard_platform.web import create_app
from povguard_reporting import queries
from povguard_reporting.policy import reporting_policy
from povguard_reporting.service import SERVICE
from povguard_review.service import SERVICE as REVIEW
from povguard_support.service import SERVICE as SUPPORT
from povguard_tools.testing import eventually, running

TOWN, OTHER_TOWN = "533123101", "533123102"
V1, V2, V3 = TOWN + "201", TOWN + "202", OTHER_TOWN + "201"
BUREAU = Actor(user="县乡村振兴局", role=Role.COUNTY_BUREAU, org="533123")


def auth(settings: Settings, role: Role = Role.COUNTY_BUREAU, org: str = "533123") -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(Actor(user="读者", role=role, org=org), settings)}


def place(village: str) -> Place:
    return Place(county_code="533123", county="盈江县", township_code=village[:9],
                 township={TOWN: "旧城镇", OTHER_TOWN: "那邦镇"}[village[:9]], village_code=village,
                 village=f"村{village[-3:]}", group_code=village + "001", group="一组")


async def append(runtime: ServiceRuntime, stream: StreamRef, township: str, *payloads: EventPayload) -> None:
    async with runtime.engine.begin() as conn:
        version = await runtime.store.stream_version(conn, stream)
        await runtime.store.append(conn, [NewEvent(stream, township, p) for p in payloads], {stream: version},
                                   Metadata(actor=BUREAU))


@pytest.fixture
async def sources(settings: Settings) -> AsyncIterator[dict[str, ServiceRuntime]]:
    """The four source services with their relays but without their consumers (no reactions of their own)."""
    async with AsyncExitStack() as stack:
        found = {}
        for definition in (INTAKE, ASSESSMENT, REVIEW, SUPPORT):
            quiet: ServiceDef = dataclasses.replace(definition, consumers=(), background=())
            found[definition.name] = await stack.enter_async_context(running(quiet, settings))
        yield found


async def summary(client: httpx.AsyncClient, settings: Settings, **params: Any) -> dict[str, Any]:
    r = await client.get("/v1/dashboard/summary", params=params, headers=auth(settings))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def campaign(s: dict[str, ServiceRuntime]) -> datetime:
    """Three households: hh1 in V1 visited, assessed, decided a new monitoring object with a plan; hh2 in V1 with a
    data problem; hh3 in another township, only registered. Returns a moment between registration and the rest."""
    for hid, village in (("hh1", V1), ("hh2", V1), ("hh3", V3)):
        await append(s["intake"], StreamRef("household", hid), village[:9],
                     registered(hid, kind=HouseholdKind.ORDINARY, members=family(2, 2 if hid == "hh1" else 1))
                     .model_copy(update={"place": place(village)}))
    between = datetime.now(UTC)
    await append(s["intake"], StreamRef("household", "hh1"), TOWN, visit("hh1"))
    await append(s["assessment"], StreamRef("assessment", "hh1"), TOWN, RiskAssessed(
        household_id="hh1", village_code=V1, visit_id="v1", gaps=["住房安全"], no_labour=False,
        labour_capable_members=2, rigid_spending=0,
        risks=[DetectedRisk(type=RiskType.ILLNESS, evidence=[Evidence(rule_id="R", text="测试")])]),
        IncomeAssessed(household_id="hh1", village_code=V1, visit_id="v1", household_size=4, size_basis="户籍",
                       lines={}, net_income=22000, per_capita=5500, band=IncomeBand.UNDER_LINE))
    await append(s["assessment"], StreamRef("assessment", "hh2"), TOWN, DataProblemFound(
        household_id="hh2", village_code=V1, problem_id="p1", kind="完整性", rule_id="DQ-C-INCOME", text="缺收入"))
    await append(s["review"], StreamRef("case", "c1"), TOWN,
                 CaseOpened(case_id="c1", household_id="hh1", village_code=V1, township_code=TOWN,
                            outcome=Outcome.NEWLY_IDENTIFIED, risks=[RiskType.ILLNESS], source="研判建议",
                            lead_date=date(2022, 5, 8)),
                 AppraisalHeld(case_id="c1", household_id="hh1", acted_on=date(2022, 5, 15),
                               meeting_date=date(2022, 5, 15), party_members_present=9, household_heads_present=20,
                               votes_for=28, votes_against=1),
                 CountyDecided(case_id="c1", household_id="hh1", outcome=Outcome.NEWLY_IDENTIFIED,
                               kind=HouseholdKind.MONITORED, category=MonitoringCategory.MARGINAL,
                               status=MonitoringStatus.RISK_NOT_ELIMINATED, risks=[RiskType.ILLNESS],
                               decided_on=date(2022, 5, 27)))
    await append(s["support"], StreamRef("plan", "hh1"), TOWN,
                 PlanCreated(household_id="hh1", village_code=V1, township_code=TOWN, basis=["监测对象"],
                             risks=[RiskType.ILLNESS], base_per_capita=5500, goals=[], created_on=date(2022, 5, 28)),
                 MeasureAssigned(household_id="hh1", measure_id="m1", kind=MeasureKind.HEALTH, developmental=False,
                                 department=Department.HEALTH))
    return between


async def published(s: dict[str, ServiceRuntime]) -> bool:
    """Every event of every source is on the bus (each relay's checkpoint at its store's last position)."""
    for runtime in s.values():
        async with runtime.engine.connect() as conn:
            behind = (await conn.execute(text(f"""
                SELECT (SELECT coalesce(max(position), 0) FROM {runtime.schema}.events)
                     > (SELECT position FROM {runtime.schema}.relay_checkpoint)"""))).scalar_one()
        if behind:
            return False
    return True


@pytest.fixture
async def caught_up(settings: Settings, sources: dict[str, ServiceRuntime],
                    ) -> AsyncIterator[tuple[httpx.AsyncClient, datetime]]:
    """The campaign, and reporting started only once all of it is on the bus: it takes every event in one batch
    (so a figure as of a moment between them shows that versions are per event, not per batch)."""
    between = await campaign(sources)
    await eventually(lambda: published(sources), within=30)
    app = create_app(SERVICE, settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                                   base_url="http://s") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client, between


async def test_figures_follow_every_service_as_of_any_time_and_rebuild_identically(
        caught_up: tuple[httpx.AsyncClient, datetime], settings: Settings,
        sources: dict[str, ServiceRuntime]) -> None:
    client, between = caught_up

    async def settled() -> bool:
        s = await summary(client, settings)
        return bool(s["support"]["measures"] == 1 and s["problems"]["open"] == 1 and s["totals"]["households"] == 3)
    await eventually(settled, within=30)

    county = await summary(client, settings)
    t = county["totals"]
    assert (t["households"], t["persons"], t["visited"], t["assessed"], t["decided"]) == (3, 10, 1, 1, 1)
    assert [(c["code"], c["name"], c["households"], c["visited"]) for c in county["children"]] == [
        (TOWN, "旧城镇", 2, 1), (OTHER_TOWN, "那邦镇", 1, 0)]
    assert county["org"]["path"] == [{"code": "533123", "name": "盈江县"}]
    assert county["outcomes"]["decided"] == {"新识别监测对象": {"households": 1, "persons": 4}}
    assert county["outcomes"]["new_categories"] == {"边缘易致贫户": 1}
    assert county["outcomes"]["new_risks"] == {"因病": 1}
    assert county["stages"]["all"] == {"已审定": 1} and county["stages"]["open"] == {}
    assert {b["band"]: (b["households"], b["persons"]) for b in county["bands"]}["监测范围以下"] == (1, 4)
    # 缺什么补什么: 健康帮扶 answers 因病 but not the 住房安全 gap; the household can work and has no developmental
    # measure: 一兜了之
    support = county["support"]
    assert (support["plans"], support["households_missing"], support["safety_net_only"]) == (1, 1, 1)
    assert support["missing_by_need"] == {"住房安全": 1} and support["by_kind"] == {"健康帮扶": 1}
    assert county["problems"]["by_rule"] == [{"rule": "DQ-C-INCOME", "kind": "完整性", "open": 1, "cleared": 0}]
    # what the figures count, exactly: each source's last event (its time and its position in that store)
    last = {name: await last_event(runtime) for name, runtime in sources.items()}
    assert county["data_as_of"] == last

    # drill down: a township's villages, a village's households (never an ID number), a household's history
    town = await summary(client, settings, org=TOWN)
    assert [(c["code"], c["households"], c["problems_open"]) for c in town["children"]] == [(V1, 2, 1)]
    r = await client.get("/v1/dashboard/households", params={"org": V1}, headers=auth(settings))
    assert [h["household_id"] for h in r.json()["data"]] == ["hh1", "hh2"] and "19750309" not in r.text
    r = await client.get("/v1/dashboard/households/hh1/history", headers=auth(settings))
    assert [e["type"] for e in r.json()["events"]][:2] == ["HouseholdRegistered", "VisitRecorded"]
    assert "head_id" not in str(r.json())

    # as of a past moment: the same query over the versions valid then; as of yesterday: nothing yet
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    policy = reporting_policy(settings.campaign)
    async with runtime.engine.connect() as conn:
        then = await queries.summary(conn, queries.Scope("533123", between), policy)
    assert (then["totals"]["households"], then["totals"]["visited"], then["totals"]["decided"]) == (3, 0, 0)
    assert then["data_as_of"] == {"intake": await last_event(sources["intake"], "HouseholdRegistered")}
    yesterday = (await summary(client, settings, as_of=(date.today() - timedelta(days=2)).isoformat()))["totals"]
    assert yesterday["households"] == 0

    # rebuild from the log: the same figures, the same versions
    async with runtime.engine.connect() as conn:
        versions = (await conn.execute(text("SELECT household_id, valid_from, valid_to, state FROM "
                                            "reporting.households ORDER BY 1, 2"))).all()
    async with runtime.engine.begin() as conn:
        assert SERVICE.rebuild is not None
        assert await SERVICE.rebuild(runtime, conn) >= 12
    async with runtime.engine.connect() as conn:
        again = (await conn.execute(text("SELECT household_id, valid_from, valid_to, state FROM "
                                         "reporting.households ORDER BY 1, 2"))).all()
    assert again == versions
    assert {**await summary(client, settings), "version": 0} == {**county, "version": 0}


async def test_statistics_and_ledger_files_scopes_and_audited_personal_data(
        client: httpx.AsyncClient, settings: Settings, sources: dict[str, ServiceRuntime]) -> None:
    await campaign(sources)
    await eventually(lambda: _plans(client, settings), within=30)

    r = await client.get("/v1/reports/statistics.xlsx", headers=auth(settings))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws["A1"].value == "防止返贫监测帮扶集中排查情况统计表" and "截至：" in ws["A2"].value
    assert "填报单位：盈江县" in ws["A2"].value
    merged = {str(m) for m in ws.merged_cells.ranges}
    assert "A3:A4" in merged and "D3:H3" in merged  # 序号 over both header rows; 排查情况 over its five columns
    header = {ws.cell(3, c).value: c for c in range(1, ws.max_column + 1) if ws.cell(3, c).value}
    new = header["新识别监测对象"]
    assert ws.cell(4, new).value == "户数" and ws.cell(4, new + 1).value == "人数"
    rows = {(ws.cell(r, 2).value, ws.cell(r, 3).value): r for r in range(5, ws.max_row + 1)}
    total, subtotal = rows[("合计", None)], rows[("旧城镇", "小计")]
    assert ws.cell(total, 4).value == 3 and ws.cell(total, 5).value == 10
    assert ws.cell(subtotal, 4).value == 2
    assert ws.cell(subtotal, new).value == 1 and ws.cell(subtotal, new + 1).value == 4
    assert ws.cell(rows[("旧城镇", "村201")], 7).value == 1  # 入户调查户数 of the village

    # the ledger: ID numbers masked unless asked for by a role that may see them, and then audited
    r = await client.get("/v1/reports/ledger.xlsx", headers=auth(settings))
    ledger = load_workbook(io.BytesIO(r.content)).active
    assert ledger["A1"].value == "防止返贫监测集中排查工作台账" and ledger.cell(4, 7).value == "证件号码"
    assert ledger.cell(5, 7).value == "533123********0011" and not ledger.cell(5, 15).value
    assert ledger.cell(5, 16).value == "新识别监测对象" and ledger.cell(5, 18).value == "健康帮扶"
    committee = auth(settings, Role.VILLAGE_COMMITTEE, V1)
    r = await client.get("/v1/reports/ledger.xlsx", params={"include_personal": "true"}, headers=committee)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    r = await client.get("/v1/reports/ledger.xlsx", params={"include_personal": "true", "purpose": "上报州局"},
                         headers=auth(settings))
    assert load_workbook(io.BytesIO(r.content)).active.cell(5, 7).value == "533123197503090011"
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        exported = (await conn.execute(text("SELECT type, data, actor FROM reporting.events"))).all()
    assert [(e.type, e.data["report"], e.data["purpose"], e.data["households"], e.actor["role"]) for e in exported] \
        == [("ReportExported", "附件2-2", "上报州局", 1, "county_bureau")]

    # CSV for other systems; org scope; every bad field named
    r = await client.get("/v1/exports/progress.csv", params={"org": TOWN}, headers=auth(settings))
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("代码,单位,农户户数") and lines[1].startswith(f"{TOWN},合计,2,")
    clerk = auth(settings, Role.VILLAGE_CLERK, V1)
    assert (await client.get("/v1/dashboard/summary", headers=clerk)).json()["org"]["code"] == V1
    assert (await client.get("/v1/dashboard/summary", params={"org": TOWN}, headers=clerk)).status_code == 403
    r = await client.get("/v1/reports/statistics.xlsx", params={"org": "53x", "as_of": "yesterday"},
                         headers=auth(settings))
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"query.org", "query.as_of"}
    assert (await client.get("/v1/dashboard/summary")).status_code == 401


async def last_event(runtime: ServiceRuntime, of_type: str | None = None) -> dict[str, Any]:
    """A source's last event (of a type): its time and position, as the figures' data_as_of names it."""
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(text(f"""SELECT time, position FROM {runtime.schema}.events
                                           WHERE CAST(:t AS text) IS NULL OR type = :t
                                           ORDER BY position DESC LIMIT 1"""), {"t": of_type})).one()
    return {"time": row.time.isoformat(), "position": row.position}


async def _plans(client: httpx.AsyncClient, settings: Settings) -> bool:
    s = await summary(client, settings)
    return bool(s["support"]["measures"] == 1 and s["totals"]["households"] == 3)
