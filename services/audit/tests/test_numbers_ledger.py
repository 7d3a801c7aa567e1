"""Whatever a service accepts, the audit ledger can record: the largest amounts the intake and support APIs accept (at
the policy's [bounds] max_line_amount on every line, the smallest previous income, a yuan and fen at the top) travel
through the real services, assessment computes its sums and ratios from them, and the ledger records every resulting
event with none dead-lettered. An amount beyond the bounds (1e16 used to be accepted, and the ledger's canonical JSON
then refused the event) is refused at the API and never reaches the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import intake_helpers as intake_h
import support_helpers as support_h
from audit_helpers import producer_only
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from povguard_assessment.service import SERVICE as ASSESSMENT
from povguard_audit.service import SERVICE as AUDIT
from povguard_contracts.vocab import MeasureKind
from povguard_intake.service import SERVICE as INTAKE
from povguard_platform.actor import Role
from povguard_platform.service import ServiceDef, ServiceRuntime
from povguard_platform.settings import Settings
from povguard_platform.web import create_app
from povguard_review.service import SERVICE as REVIEW
from povguard_support.service import SERVICE as SUPPORT
from povguard_tools.testing import eventually, running

MAX = 2000000  # policies/533123-2022.toml [bounds] max_line_amount
SERVICES = ("intake", "assessment", "support", "audit")


@asynccontextmanager
async def api(definition: ServiceDef, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(definition, settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://" + definition.name) as client:
        yield client


async def admin_rows(engine: AsyncEngine, sql: str) -> list[Any]:
    """Rows of another service's schema: only the database's administrator reads across services."""
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


async def rows(rt: ServiceRuntime, sql: str, **params: Any) -> list[Any]:
    async with rt.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


def largest_visit() -> dict[str, Any]:
    lines = ("wages", "public_welfare_job_income", "business", "property", "asset_dividend", "pension",
             "family_planning", "eco_compensation", "dibao", "tekun", "other_transfer", "industry_reward",
             "employment_reward", "insurance_claims")
    return intake_h.visit_form(
        income={k: MAX for k in lines},
        spending={"business_expense": "1999999.99", "medical_out_of_pocket": MAX,
                  "other_rigid": [{"kind": "因病", "amount": MAX} for _ in range(20)]},
        previous_year_per_capita=0.01, assets={"vehicles": [{"kind": "小型汽车", "value": MAX}]},
        risks_noted=["因病"], application_signed=True, authorisation_signed=True)


async def test_the_largest_accepted_amounts_are_recorded_by_the_ledger(settings: Settings,
                                                                      admin_engine: AsyncEngine) -> None:
    async with (api(INTAKE, settings) as intake, api(SUPPORT, settings) as support,
                running(ASSESSMENT, settings), running(producer_only(REVIEW), settings) as review,
                running(AUDIT, settings) as audit):
        clerk, collector = intake_h.auth(settings), intake_h.auth(settings, Role.COLLECTOR)
        body = intake_h.household_body()
        r = await intake.post("/v1/households", json=body, headers=clerk)
        assert r.status_code == 201, r.text
        hid = r.json()["household_id"]

        too_big = intake_h.visit_form(income={"wages": 1e16})
        r = await intake.post(f"/v1/households/{hid}/visits", json={"form": too_big}, headers=collector)
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["body.form.income.wages"]
        r = await intake.post(f"/v1/households/{hid}/visits", json={"form": largest_visit()}, headers=collector)
        assert r.status_code == 201, r.text
        department = intake_h.auth(settings, Role.DEPARTMENT, "533123", "医保接口", dept="医保")
        r = await intake.post("/v1/warnings", headers=department, json={
            "department": "医保", "kind": "大额医疗支出", "id_number": body["members"][0]["id_number"],
            "person_name": "岳老三", "amount": MAX, "occurred_on": "2022-04-20", "reported_on": "2022-05-05",
            "source_ref": "YB-MAX"})
        assert r.status_code == 201, r.text

        # a county decision gives the household a plan; its measure and measured income at the top too
        await support_h.decide(review, hid, village=intake_h.VILLAGE, measures=(MeasureKind.HEALTH,))
        await support_h.plan_of(support, settings, hid)
        cadre = support_h.auth(settings, Role.WORK_TEAM, intake_h.VILLAGE)
        r = await support.post(f"/v1/plans/{hid}/measures", json={"kind": "产业帮扶", "amount": 1e16}, headers=cadre)
        assert r.status_code == 422, r.text
        r = await support.post(f"/v1/plans/{hid}/measures", json={"kind": "产业帮扶", "amount": MAX}, headers=cadre)
        assert r.status_code == 201, r.text
        r = await support.post(f"/v1/plans/{hid}/incomes", json={"measured_on": "2022-07-02", "per_capita": MAX},
                               headers=cadre)
        assert r.status_code == 201, r.text

        wanted = {"HouseholdRegistered", "VisitRecorded", "WarningReceived", "LeadOpened", "IncomeAssessed",
                  "RiskAssessed", "OutcomeProposed", "CountyDecided", "PlanCreated", "MeasureAssigned",
                  "IncomeMeasured"}

        async def recorded() -> bool:
            found = await rows(audit, "SELECT DISTINCT action FROM audit.ledger WHERE household = :h", h=hid)
            return wanted <= {a for (a,) in found}

        await eventually(recorded, within=60)
        for schema in SERVICES:
            assert await admin_rows(admin_engine, f"SELECT consumer, error FROM {schema}.dead_letters") == [], schema
        [(income,)] = await admin_rows(admin_engine, "SELECT data FROM assessment.events WHERE type = 'IncomeAssessed'")
        assert income["previous_per_capita"] == 0.01 and income["change_ratio"] > 1_000_000  # 0.01 → millions
