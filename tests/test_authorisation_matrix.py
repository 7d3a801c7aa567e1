"""The authorisation matrix: for every route of every service's OpenAPI document, which roles may call it and
whether the org scope applies; then every route is called as every role, from inside and from outside its org
unit, against every installed service running (real HTTP apps on one real PostgreSQL and NATS; the services are
those of the registry, `service_definitions()`).

A service or route missing from the table (or an entry for a route that is gone) fails the test: a new service or
route cannot be left out. What is checked:
- without a token: 401 (the health, readiness, metrics and AsyncAPI endpoints: 200 without one);
- a role the table does not name: 403 (or, in a batch, every item refused with 403);
- a named role from outside its org unit (another county, 110101): 403 or 404, or a list without anything of ours;
- a named role inside its org unit: neither 401 nor 403 nor a server error (422, 404, 409 are answers).
Administrators may call every route, always inside their own org unit."""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from intake_helpers import csv_bytes, household_body, member, template_rows, visit_form
from sqlalchemy import text
from support_helpers import decide

from povguard_audit.settings import audit_settings
from povguard_contracts.vocab import MeasureKind
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.serve import service_definitions
from povguard_platform.service import ServiceDef
from povguard_platform.settings import Settings
from povguard_platform.web import create_app
from povguard_reporting.settings import service_urls
from povguard_tools.testing import eventually, served

COUNTY, TOWN = "533123", "533123101"
VILLAGE = TOWN + "201"
DEPT = "人社"  # the department tokens answer for (the seeded plan's measure is 人社's 就业帮扶)
ROLES = [r for r in Role if r != Role.SYSTEM]
INSIDE = {Role.COLLECTOR: VILLAGE, Role.VILLAGE_CLERK: VILLAGE, Role.VILLAGE_COMMITTEE: VILLAGE,
          Role.WORK_TEAM: VILLAGE, Role.TOWNSHIP_REVIEWER: TOWN, Role.COUNTY_BUREAU: COUNTY, Role.DEPARTMENT: COUNTY,
          Role.INSPECTOR: COUNTY, Role.ADMIN: COUNTY}
ELSEWHERE = {VILLAGE: "110101001001", TOWN: "110101001", COUNTY: "110101"}
OUTSIDE = {role: ELSEWHERE[org] for role, org in INSIDE.items()}  # the same level in another county

# --- who may call what (administrators always: added to every entry) --------------------------------------------
CO, CL, VC, WT = Role.COLLECTOR, Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM
TR, CB, DE, IN = Role.TOWNSHIP_REVIEWER, Role.COUNTY_BUREAU, Role.DEPARTMENT, Role.INSPECTOR
ANY = frozenset(ROLES)
ADMIN_ONLY: frozenset[Role] = frozenset()
VILLAGE_ROLES = {CL, VC, WT}
REGISTRY_READERS = {CO, CL, VC, WT, TR, CB, IN}  # intake and assessment
COLLECTORS = {CO, CL}
EXPORTERS = {CL, TR, CB, IN}  # the registry with personal data: exports and an import's errors file
REVIEW_READERS = {CL, VC, WT, TR, CB, DE, IN}
SUPPORT_READERS = {CL, VC, WT, TR, CB, DE, IN}
PLANNERS = {CL, VC, WT, TR, CB}
DELIVERERS = {CL, VC, WT, DE}
LEDGER_READERS = {IN, CB}
OPERATORS = {IN}  # dead letters: read by inspectors, retried by administrators
FIGURE_READERS = ANY - {DE}  # reporting: every role but the departments' machine clients


@dataclass(frozen=True)
class Access:
    """Who may call a route. `scoped`: the org scope applies (False only where stated why). `batch`: answered 200
    with the refused items named (a refusal is every item refused 403/404)."""

    roles: frozenset[Role] | set[Role]
    scoped: bool = True
    batch: bool = False
    why_unscoped: str = ""
    public: bool = False  # no token needed

    @property
    def allowed(self) -> frozenset[Role]:
        return frozenset(self.roles) | {Role.ADMIN}


INTEGRITY = "hashes and signatures of the whole ledger only, for anyone holding a token (witnesses included)"
PLATFORM = {
    **{f"GET {path}": Access(ANY, public=True) for path in ("/healthz", "/readyz", "/metrics", "/asyncapi.json")},
    "GET /v1/ops/dead-letters": Access(OPERATORS),
    "POST /v1/ops/dead-letters/{dead_letter_id}/retry": Access(ADMIN_ONLY),
}
TABLE: dict[str, dict[str, Access]] = {
    "intake": {
        **PLATFORM,
        "POST /v1/households": Access({CO, CL, CB}),
        "GET /v1/households": Access(REGISTRY_READERS),
        "GET /v1/households/{household_id}": Access(REGISTRY_READERS),
        "POST /v1/households/search": Access(REGISTRY_READERS),
        "GET /v1/households/{household_id}/history": Access(REGISTRY_READERS),
        "POST /v1/households/{household_id}/members": Access(COLLECTORS),
        "PUT /v1/households/{household_id}/members/{member_id}": Access(COLLECTORS),
        "POST /v1/households/{household_id}/members/{member_id}/removal": Access(COLLECTORS),
        "PUT /v1/households/{household_id}/flags": Access({CO, CL, VC, WT}),
        "POST /v1/households/{household_id}/visits": Access(COLLECTORS),
        "GET /v1/households/{household_id}/visits": Access(REGISTRY_READERS),
        "POST /v1/households/{household_id}/visits/{visit_id}/corrections": Access(COLLECTORS),
        "POST /v1/households/{household_id}/leads": Access({CO, CL, VC, WT}),
        "POST /v1/warnings": Access({DE, CB}),
        "GET /v1/warnings": Access(REGISTRY_READERS),
        "GET /v1/imports/template.xlsx": Access(REGISTRY_READERS, scoped=False,
                                                 why_unscoped="the empty template: no one's data"),
        "POST /v1/imports": Access({CL, CB}),
        "GET /v1/imports/{import_id}": Access(REGISTRY_READERS),
        "GET /v1/imports/{import_id}/errors.xlsx": Access(EXPORTERS),
        "GET /v1/exports/registry.xlsx": Access(EXPORTERS),
        "POST /v1/batches/visits": Access(COLLECTORS, batch=True),
        "POST /v1/batches/warnings": Access({DE, CB}, batch=True),
    },
    "assessment": {
        **PLATFORM,
        "GET /v1/assessments/{household_id}": Access(REGISTRY_READERS),
        "GET /v1/proposals": Access(REGISTRY_READERS),
        "GET /v1/bands": Access(REGISTRY_READERS),
        "GET /v1/data-problems/counts": Access(REGISTRY_READERS),
        "GET /v1/data-problems": Access(REGISTRY_READERS),
        "GET /v1/scale-risk": Access({TR, CB, IN}),  # per township: a village's roles reach none
    },
    "review": {
        **PLATFORM,
        "POST /v1/cases": Access(VILLAGE_ROLES),
        "GET /v1/cases": Access(REVIEW_READERS),
        "GET /v1/cases/{case_id}": Access(REVIEW_READERS),
        "GET /v1/queue": Access(ANY),
        "POST /v1/cases/{case_id}/appraisal": Access(VILLAGE_ROLES),
        "POST /v1/cases/{case_id}/village-decision": Access({VC}),
        "POST /v1/cases/{case_id}/notice": Access(VILLAGE_ROLES),
        "POST /v1/cases/{case_id}/objections": Access(ANY - {IN}),
        "POST /v1/cases/{case_id}/objections/{objection_id}/resolution": Access({VC, WT, TR}),
        "POST /v1/cases/{case_id}/notice/closure": Access(VILLAGE_ROLES),
        "POST /v1/cases/{case_id}/township-review": Access({TR}),
        "POST /v1/cases/{case_id}/department-checks": Access({DE}),
        "POST /v1/department-checks": Access({DE}, batch=True),
        "POST /v1/cases/{case_id}/decision": Access({CB}),
        "POST /v1/cases/{case_id}/return": Access({VC, TR, CB}),
        "POST /v1/cases/{case_id}/withdrawal": Access({VC, TR, CB}),
        "POST /v1/batches/appraisal": Access(VILLAGE_ROLES, batch=True),
        "POST /v1/batches/village-decision": Access({VC}, batch=True),
        "POST /v1/batches/notice": Access(VILLAGE_ROLES, batch=True),
        "POST /v1/batches/notice-closure": Access(VILLAGE_ROLES, batch=True),
        "POST /v1/batches/township-review": Access({TR}, batch=True),
        "POST /v1/batches/decision": Access({CB}, batch=True),
        "GET /v1/lists/overdue": Access(REVIEW_READERS),
        "GET /v1/lists/identification-limit": Access(REVIEW_READERS),
        "GET /v1/stats/stages": Access(REVIEW_READERS),
        "GET /v1/notices": Access(REVIEW_READERS),
        "GET /v1/notices/{village_code}": Access(REVIEW_READERS),
    },
    "support": {
        **PLATFORM,
        "GET /v1/plans/{household_id}": Access(SUPPORT_READERS),
        "PUT /v1/plans/{household_id}/cadre": Access(PLANNERS),
        "POST /v1/plans/{household_id}/measures": Access(PLANNERS),
        "POST /v1/plans/{household_id}/measures/{measure_id}/implement": Access(DELIVERERS),
        "POST /v1/plans/{household_id}/measures/{measure_id}/verify": Access(DELIVERERS),
        "POST /v1/plans/{household_id}/incomes": Access(VILLAGE_ROLES),
        "POST /v1/batches/plans": Access(PLANNERS, batch=True),
        "POST /v1/batches/implementations": Access(DELIVERERS, batch=True),
        "GET /v1/plans": Access(SUPPORT_READERS),
        "GET /v1/coverage-gaps": Access(SUPPORT_READERS),
        "GET /v1/safety-net-only": Access(SUPPORT_READERS),
        "GET /v1/measures": Access(SUPPORT_READERS),
        "POST /v1/delivery-records": Access({DE, CB}),
        "POST /v1/delivery-records.xlsx": Access({DE, CB}),
        "GET /v1/mismatches": Access(SUPPORT_READERS),
        "GET /v1/progress": Access(SUPPORT_READERS),
    },
    "audit": {
        **PLATFORM,
        "GET /v1/audit/checkpoints/latest": Access(ANY, scoped=False, why_unscoped=INTEGRITY),
        "POST /v1/audit/checkpoints": Access({CB}),
        "POST /v1/audit/checkpoints/{checkpoint_id}/cosignatures": Access(ANY, scoped=False, why_unscoped=INTEGRITY),
        "GET /v1/audit/proofs/inclusion": Access(ANY, scoped=False, why_unscoped=INTEGRITY),
        "GET /v1/audit/proofs/consistency": Access(ANY, scoped=False, why_unscoped=INTEGRITY),
        "GET /v1/audit/keys": Access(ANY, scoped=False, why_unscoped=INTEGRITY),
        "GET /v1/audit/entries": Access(LEDGER_READERS),
        "POST /v1/audit/entries/{index}/redaction": Access(ADMIN_ONLY),
        "GET /v1/audit/households/{household_id}/timeline": Access(LEDGER_READERS),
        "GET /v1/audit/households/{household_id}/dispute": Access(LEDGER_READERS),
        "GET /v1/audit/bundles": Access(LEDGER_READERS),
        "GET /v1/audit/witnesses": Access(ANY, scoped=False, why_unscoped=INTEGRITY),
        "POST /v1/audit/witnesses": Access(ADMIN_ONLY),
        "POST /v1/audit/rechecks": Access({CB}),
        "GET /v1/audit/findings": Access(LEDGER_READERS),
        # what an outsider needs: verifier keys, checkpoint and hash tiles (hashes and signatures only)
        "GET /.well-known/povguard-audit/keys": Access(ANY, public=True),
        "GET /v1/audit/log/checkpoint": Access(ANY, public=True),
        "GET /v1/audit/log/tile/{level}/{index}": Access(ANY, public=True),
        "GET /v1/audit/log/tile/entries/{index}": Access(LEDGER_READERS),
    },
    "reporting": {
        **PLATFORM,
        "GET /v1/dashboard/summary": Access(FIGURE_READERS),
        "GET /v1/dashboard/households": Access(FIGURE_READERS),
        "GET /v1/dashboard/households/{household_id}/history": Access(FIGURE_READERS),
        "GET /v1/reports/statistics.xlsx": Access(FIGURE_READERS),
        "GET /v1/reports/ledger.xlsx": Access(FIGURE_READERS),
        "GET /v1/exports/{table}.csv": Access(FIGURE_READERS),
        "GET /v1/operations": Access({CB, IN}),
        "POST /v1/operations/{service}/dead-letters/{dead_letter_id}/retry": Access(ADMIN_ONLY),
    },
}
SERVICES: dict[str, ServiceDef] = service_definitions()


@functools.cache
def routes(service: str) -> frozenset[str]:
    """Every route of a service's OpenAPI document, as 'METHOD /path'."""
    doc = create_app(SERVICES[service], Settings(environment="test")).openapi()
    return frozenset(f"{method.upper()} {path}" for path, ops in doc["paths"].items() for method in ops)


def test_every_route_of_every_service_has_an_entry() -> None:
    assert set(SERVICES) - set(TABLE) == set(), "services without rows in the authorisation matrix"
    assert set(TABLE) - set(SERVICES) == set(), "rows for services that are gone"
    for name in SERVICES:
        found, table = routes(name), set(TABLE[name])
        assert found - table == set(), f"{name}: routes without an entry in the authorisation matrix"
        assert table - found == set(), f"{name}: entries for routes that are gone"
        for key, access in TABLE[name].items():
            assert access.scoped or access.why_unscoped, f"{name} {key}: unscoped without saying why"


# --- the running system, seeded with one household's data in VILLAGE -------------------------------------------


@dataclass
class Seed:
    household: str = ""
    members: list[str] = field(default_factory=list)
    id_number: str = ""
    visit: str = ""
    import_id: str = ""
    case: str = ""
    measure: str = ""
    checkpoint: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)  # per service
    body: dict[str, Any] = field(default_factory=dict)

    def markers(self) -> list[str]:
        """What a list must not show an outsider: the household, its case, its township."""
        return [self.household, self.case, TOWN]


_users = itertools.count(1)


def token(settings: Settings, role: Role, org: str) -> dict[str, str]:
    """A fresh user per call: no segregation-of-duties rule ever sees one person act twice."""
    actor = Actor(user=f"{role.value}-{next(_users)}", role=role, org=org, dept=DEPT if role == DE else None)
    return {"Authorization": "Bearer " + issue_token(actor, settings)}


@pytest.fixture
async def system(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    audit_settings.cache_clear()
    async with AsyncExitStack() as stack:
        clients = {}
        for name, service in SERVICES.items():
            app = create_app(service, settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}"))
            client.app = app  # type: ignore[attr-defined]
            clients[name] = client
            # also on a real server: reporting's 运行 page asks every service over HTTP with the caller's token
            monkeypatch.setenv(f"{name.upper()}_URL", await stack.enter_async_context(served(app)))
        service_urls.cache_clear()
        stack.callback(service_urls.cache_clear)
        yield clients


async def seed(c: dict[str, httpx.AsyncClient], settings: Settings) -> Seed:
    s = Seed()
    clerk, bureau = token(settings, CL, VILLAGE), token(settings, CB, COUNTY)
    body = household_body()
    r = await c["intake"].post("/v1/households", json=body, headers=clerk)
    assert r.status_code == 201, r.text
    s.household, s.body = r.json()["household_id"], body
    s.members = [m["member_id"] for m in r.json()["members"]]
    s.id_number = body["members"][0]["id_number"]
    imported = await c["intake"].post("/v1/imports", files={"file": ("v.csv", csv_bytes(template_rows(
        household_body())))}, headers=clerk)
    assert imported.status_code == 202, imported.text
    s.import_id = imported.json()["import_id"]

    async def opened() -> bool:  # once review's registry has the household (from intake's event)
        r = await c["review"].post("/v1/cases", headers=token(settings, VC, VILLAGE), json={
            "household_id": s.household, "outcome": "新识别监测对象", "category": "边缘易致贫户", "risks": ["因病"],
            "lead_date": "2022-05-08", "acted_on": "2022-05-09", "collector": "张采集"})
        if r.status_code in (201, 409):
            s.case = r.json()["case_id"]
        return r.status_code in (201, 409)

    await eventually(opened, within=30)
    r = await c["intake"].post(f"/v1/households/{s.household}/visits", json={"form": visit_form()}, headers=clerk)
    assert r.status_code == 201, r.text
    s.visit = r.json()["visits"][-1]["visit_id"]
    await decide(c["review"].app.state.runtime, s.household, measures=(MeasureKind.EMPLOYMENT,))  # type: ignore

    async def planned() -> bool:
        r = await c["support"].get(f"/v1/plans/{s.household}", headers=bureau)
        if r.status_code == 200 and r.json()["measures"]:
            s.measure = r.json()["measures"][0]["measure_id"]
        return bool(s.measure)

    async def ledgered() -> bool:
        r = await c["audit"].get("/v1/audit/entries", params={"household": s.household}, headers=bureau)
        return bool(r.json()["data"])

    async def reported() -> bool:
        r = await c["reporting"].get("/v1/dashboard/households", params={"org": VILLAGE}, headers=bureau)
        return s.household in r.text

    await eventually(planned, within=30)
    await eventually(ledgered, within=30)
    await eventually(reported, within=30)
    signed = await c["audit"].post("/v1/audit/checkpoints", headers=bureau)
    assert signed.status_code == 201, signed.text
    s.checkpoint = signed.json()["id"]
    for name, client in c.items():  # a failed event of the village's township in every service's dead letters
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        async with runtime.engine.begin() as conn:
            s.dead_letters[name] = (await conn.execute(text(f"""
                INSERT INTO {runtime.schema}.dead_letters (consumer, event_id, subject, event, error, attempts)
                VALUES (:c, gen_random_uuid(), :s, CAST(:e AS jsonb), 'matrix', 1) RETURNING id"""),
                {"c": runtime.definition.consumers[0].name, "s": f"ev.{name}.X.{TOWN}",
                 "e": f'{{"township": "{TOWN}", "type": "X", "data": {{}}}}'})).scalar_one()
    # seeded: the relays and consumers stop here, so that the matrix (the HTTP edge) has the cores to itself
    for client in c.values():
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        runtime.stop.set()
        await asyncio.wait(runtime.tasks, timeout=5)
    return s


# --- one request per route: a body that passes validation, so that what answers is the authorisation ---------


Request = dict[str, Any]
ON, EARLY = "2022-05-10", "2022-05-01"  # EARLY: before the case opened, so a stage action in its stage is 422


def requests(s: Seed, service: str) -> dict[str, Callable[[], Request]]:
    """Per route template: the request's arguments (`path` overrides a path parameter's seeded value)."""
    h, m = s.household, s.members
    case, plan = "/v1/cases/{case_id}", "/v1/plans/{household_id}"
    spouse = {**s.body["members"][1], "phone": "13900001111"}
    appraisal = {"acted_on": EARLY, "meeting_date": EARLY, "party_members_present": 10,
                 "household_heads_present": 30, "votes_for": 38, "votes_against": 2}
    warning = {"department": DEPT, "kind": "失业", "household_id": h, "occurred_on": "2022-04-01",
               "reported_on": "2022-05-01"}
    refs = itertools.count(1)
    return {
        "GET /v1/ops/dead-letters": lambda: {},
        "POST /v1/ops/dead-letters/{dead_letter_id}/retry": lambda: {
            "path": {"dead_letter_id": str(s.dead_letters[service])}},
        # intake
        "POST /v1/households": lambda: {"json": s.body},
        "GET /v1/households": lambda: {"params": {"org": VILLAGE}},
        "POST /v1/households/search": lambda: {"json": {"id_number": s.id_number}},
        "POST /v1/households/{household_id}/members": lambda: {"json": {
            "facts": member("之女", name="岳小红"), "reason": "新生儿", "effective": ON}},
        "PUT /v1/households/{household_id}/members/{member_id}": lambda: {
            "path": {"member_id": m[1]}, "json": {"facts": spouse, "effective": ON}, "headers": {"If-Match": "*"}},
        "POST /v1/households/{household_id}/members/{member_id}/removal": lambda: {
            "path": {"member_id": m[2]}, "json": {"reason": "迁出", "effective": ON}, "headers": {"If-Match": "*"}},
        "PUT /v1/households/{household_id}/flags": lambda: {"json": {"flags": ["2020年脱贫户"], "reason": "核实"}},
        "POST /v1/households/{household_id}/visits": lambda: {"json": {"form": visit_form()}},
        "POST /v1/households/{household_id}/visits/{visit_id}/corrections": lambda: {
            "json": {"form": visit_form(), "reason": "更正收入"}},
        "POST /v1/households/{household_id}/leads": lambda: {"json": {"source": "干部排查", "lead_date": ON}},
        "POST /v1/warnings": lambda: {"json": {**warning, "source_ref": f"RS-{next(refs)}"}},
        "POST /v1/imports": lambda: {"files": {"file": ("v.csv", csv_bytes(template_rows(household_body())))}},
        "GET /v1/exports/registry.xlsx": lambda: {"params": {"org": VILLAGE}},
        "POST /v1/batches/visits": lambda: {"json": {"items": [{"household_id": h, "form": visit_form()}]}},
        "POST /v1/batches/warnings": lambda: {"json": {"items": [{**warning, "source_ref": f"RS-{next(refs)}"}]}},
        # assessment
        "GET /v1/proposals": lambda: {"params": {"org": VILLAGE}},
        "GET /v1/bands": lambda: {"params": {"org": VILLAGE}},
        "GET /v1/data-problems/counts": lambda: {"params": {"org": VILLAGE}},
        "GET /v1/data-problems": lambda: {"params": {"org": VILLAGE}},
        "GET /v1/scale-risk": lambda: {"params": {"org": TOWN}},
        # review
        "POST /v1/cases": lambda: {"json": {"household_id": h, "outcome": "新识别监测对象", "category": "边缘易致贫户",
                                            "lead_date": EARLY, "acted_on": ON}},
        f"POST {case}/appraisal": lambda: {"json": appraisal},
        f"POST {case}/village-decision": lambda: {"json": {"acted_on": EARLY}},
        f"POST {case}/notice": lambda: {"json": {"acted_on": EARLY}},
        f"POST {case}/objections": lambda: {"json": {"acted_on": EARLY, "reason": "该户有货车"}},
        f"POST {case}/objections/{{objection_id}}/resolution": lambda: {"json": {"acted_on": EARLY, "upheld": False,
                                                                 "finding": "已核实"}},
        f"POST {case}/notice/closure": lambda: {"json": {"acted_on": EARLY}},
        f"POST {case}/township-review": lambda: {"json": {"acted_on": EARLY, "spot_checked": False}},
        f"POST {case}/department-checks": lambda: {"json": {"acted_on": EARLY, "department": DEPT}},
        "POST /v1/department-checks": lambda: {"params": {"department": DEPT},
                                               "json": {"acted_on": EARLY, "results": [{"case_id": s.case}]}},
        f"POST {case}/decision": lambda: {"json": {"acted_on": EARLY}},
        f"POST {case}/return": lambda: {"json": {"acted_on": EARLY, "to_stage": "村民评议", "reason": "退回"}},
        f"POST {case}/withdrawal": lambda: {"json": {"acted_on": EARLY, "reason": "撤回"}},
        "POST /v1/batches/appraisal": lambda: {"json": {"items": [{**appraisal, "case_id": s.case}]}},
        "POST /v1/batches/village-decision": lambda: {"json": {"items": [{"acted_on": EARLY, "case_id": s.case}]}},
        "POST /v1/batches/notice": lambda: {"json": {"items": [{"acted_on": EARLY, "case_id": s.case}]}},
        "POST /v1/batches/notice-closure": lambda: {"json": {"items": [{"acted_on": EARLY, "case_id": s.case}]}},
        "POST /v1/batches/township-review": lambda: {"json": {"items": [
            {"acted_on": EARLY, "case_id": s.case, "spot_checked": False}]}},
        "POST /v1/batches/decision": lambda: {"json": {"items": [{"acted_on": EARLY, "case_id": s.case}]}},
        "GET /v1/notices/{village_code}": lambda: {"path": {"village_code": VILLAGE}},
        # support
        f"PUT {plan}/cadre": lambda: {"json": {"cadre": "张帮扶"}},
        f"POST {plan}/measures": lambda: {"json": {"kind": "产业帮扶"}},
        f"POST {plan}/measures/{{measure_id}}/implement": lambda: {"json": {
            "implemented_on": ON, "evidence_ref": "培训签到表"}},
        f"POST {plan}/measures/{{measure_id}}/verify": lambda: {"json": {"verified_on": ON}},
        f"POST {plan}/incomes": lambda: {"json": {"measured_on": ON, "per_capita": 8000}},
        "POST /v1/batches/plans": lambda: {"json": {"items": [{"household_id": h, "cadre": "张帮扶"}]}},
        "POST /v1/batches/implementations": lambda: {"json": {"items": [
            {"household_id": h, "measure_id": s.measure, "implemented_on": ON, "evidence_ref": "发放凭证"}]}},
        "POST /v1/delivery-records": lambda: {"json": {"department": DEPT, "records": [
            {"record_ref": "RS-1", "household_id": h, "kind": "就业帮扶", "delivered_on": ON}]}},
        "POST /v1/delivery-records.xlsx": lambda: {"files": {"file": ("r.xlsx", b"not a workbook")},
                                                   "data": {"department": DEPT}},
        # audit
        "POST /v1/audit/checkpoints/{checkpoint_id}/cosignatures": lambda: {
            "path": {"checkpoint_id": str(s.checkpoint)}, "json": {"line": "— witness AAAA"}},
        "GET /v1/audit/proofs/inclusion": lambda: {"params": {"index": 0}},
        "GET /v1/audit/log/tile/{level}/{index}": lambda: {"path": {"level": "0", "index": "000.p/1"}},
        "GET /v1/audit/log/tile/entries/{index}": lambda: {"path": {"index": "000.p/1"}},
        "GET /v1/audit/proofs/consistency": lambda: {"params": {"first": 1, "second": 2}},
        "POST /v1/audit/entries/{index}/redaction": lambda: {"path": {"index": "0"}, "params": {"reason": "更正"}},
        "GET /v1/audit/households/{household_id}/dispute": lambda: {"params": {"as_of": "2030-01-01T00:00:00Z"}},
        "GET /v1/audit/bundles": lambda: {"params": {"household": h, "payloads": "true"}},
        "POST /v1/audit/witnesses": lambda: {"json": {"vkey": "not+a+key"}},
        # reporting: an org unit asked for explicitly, so that an outsider's answer is a refusal
        **{f"GET {route}": lambda: {"params": {"org": VILLAGE}} for route in (
            "/v1/dashboard/summary", "/v1/dashboard/households", "/v1/reports/statistics.xlsx",
            "/v1/reports/ledger.xlsx")},
        "GET /v1/exports/{table}.csv": lambda: {"path": {"table": "ledger"}, "params": {"org": VILLAGE}},
        "GET /v1/operations": lambda: {"params": {"org": TOWN}},
        "POST /v1/operations/{service}/dead-letters/{dead_letter_id}/retry": lambda: {
            "path": {"service": "intake", "dead_letter_id": str(s.dead_letters["intake"])}},
    }


def resolve(key: str, s: Seed, spec: dict[str, Callable[[], Request]]) -> tuple[str, str, Request]:
    """The method, concrete path and request arguments of a route."""
    method, path = key.split(" ", 1)
    args = spec.get(key, dict)()
    values = {"household_id": s.household, "member_id": s.members[0], "visit_id": s.visit, "import_id": s.import_id,
              "case_id": s.case, "objection_id": "x", "measure_id": s.measure, "village_code": VILLAGE,
              **args.pop("path", {})}
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a parameter of {key}"
    return method, path, args


def refused(r: httpx.Response, access: Access, markers: list[str] | None = None) -> bool:
    if r.status_code in (403, 404):
        return True
    if access.batch and r.status_code == 200:
        answer = r.json()
        return (answer.get("recorded") == 0 and bool(answer["failed"])
                and all(f["problem"]["status"] in (403, 404) for f in answer["failed"]))
    return markers is not None and r.status_code == 200 and not any(x in r.text for x in markers)


def reached(r: httpx.Response, access: Access) -> bool:
    if r.status_code in (401, 403) or r.status_code >= 500:
        return False
    if access.batch and r.status_code == 200:
        return not any(f["problem"]["status"] in (401, 403) for f in r.json()["failed"])
    return True


async def outside_import_refused_every_row(client: httpx.AsyncClient, r: httpx.Response,
                                           headers: dict[str, str]) -> bool:
    """An import from outside is accepted as a file, and every household in it refused (not in the org unit)."""
    if r.status_code != 202:
        return refused(r, Access(ADMIN_ONLY))
    status: dict[str, Any] = {}

    async def done() -> bool:
        status.update((await client.get(f"/v1/imports/{r.json()['import_id']}", headers=headers)).json())
        return status.get("status") != "running"

    await eventually(done)
    return bool(status["imported"] == 0 and status["refused"] == status["households"] > 0)


OutsideCheck = Callable[[httpx.AsyncClient, httpx.Response, dict[str, str]], Awaitable[bool]]
OUTSIDE_CHECKS: dict[str, OutsideCheck] = {"intake POST /v1/imports": outside_import_refused_every_row}


async def check_service(name: str, client: httpx.AsyncClient, s: Seed, settings: Settings) -> tuple[int, list[Any]]:
    """Every route of one service as every role, inside and outside its org unit: (calls made, what was wrong)."""
    spec, calls, wrong = requests(s, name), 0, []
    for key in sorted(routes(name)):
        access = TABLE[name][key]  # a route without an entry fails here (and in the test above)
        method, path, args = resolve(key, s, spec)

        async def call(headers: dict[str, str] | None, method: str = method, path: str = path,
                       args: Request = args) -> httpx.Response:
            nonlocal calls
            calls += 1
            extra = {k: v for k, v in args.items() if k != "headers"}
            return await client.request(method, path, headers={**(headers or {}), **args.get("headers", {})},
                                        **extra)

        anonymous = await call(None)
        if access.public:
            if anonymous.status_code != 200:
                wrong.append((name, key, "no token", anonymous.status_code))
            continue
        if anonymous.status_code != 401:
            wrong.append((name, key, "no token", anonymous.status_code))
        for role in ROLES:
            inside = await call(token(settings, role, INSIDE[role]))
            if role not in access.allowed:
                if not refused(inside, access):
                    wrong.append((name, key, f"{role.value} not allowed", inside.status_code))
                continue
            if not reached(inside, access):
                wrong.append((name, key, f"{role.value} inside", inside.status_code, inside.text[:300]))
            outsider = token(settings, role, OUTSIDE[role])
            outside = await call(outsider)
            if not access.scoped:
                ok = reached(outside, access)
            elif f"{name} {key}" in OUTSIDE_CHECKS:
                ok = await OUTSIDE_CHECKS[f"{name} {key}"](client, outside, outsider)
            else:
                ok = refused(outside, access, s.markers() if method == "GET" else None)
            if not ok:
                wrong.append((name, key, f"{role.value} outside", outside.status_code, outside.text[:300]))
    return calls, wrong


@pytest.mark.timeout(360)  # six services seeded over the bus, then some 1,500 calls on a shared machine
async def test_every_route_as_every_role_inside_and_outside_its_org_unit(
        system: dict[str, httpx.AsyncClient], settings: Settings) -> None:
    s = await seed(system, settings)
    assert set(requests(s, "intake")) <= set().union(*map(routes, SERVICES)), "arguments for a route that is gone"
    started = time.monotonic()
    # the services answer independently (their relays and consumers are stopped): checked side by side
    done = await asyncio.gather(*(check_service(name, system[name], s, settings) for name in SERVICES))
    calls, wrong = sum(n for n, _ in done), [w for _, found in done for w in found]
    print(f"authorisation matrix: {calls} calls in {time.monotonic() - started:.1f}s")
    assert wrong == [], "\n".join(map(str, wrong))
    assert calls > 1000
