"""Builders of the facts assessment consumes (as the contract payloads) and of households through intake."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from povguard_contracts.intake import (
    Guarantees,
    HouseholdRegistered,
    IncomeLines,
    Member,
    MemberFacts,
    Place,
    SpendingLines,
    VisitForm,
    VisitRecorded,
)
from povguard_contracts.vocab import HouseholdKind, MonitoringStatus
from povguard_rules.config import rules_for
from povguard_rules.policy import Rules

TOWN = "533123101"
VILLAGE = TOWN + "201"
GROUP = VILLAGE + "001"
_ids = itertools.count(1)


def rules() -> Rules:
    return rules_for("533123-2022")


def person(relation: str = "户主", birth: date = date(1975, 3, 9), **over: Any) -> MemberFacts:
    facts: dict[str, Any] = {
        "name": "岳老三", "id_number": "533123197503090011", "sex": "男", "birth_date": birth, "relation": relation,
        "education": "初中", "health": ["健康"], "labour_skill": "普通劳动力",
        "medical_insurance": "城乡居民基本医疗保险",
    }
    facts.update(over)
    return MemberFacts.model_validate(facts)


def family(n_adults: int = 2, n_children: int = 1, **adult: Any) -> list[Member]:
    members = [Member(member_id=f"m{i}", facts=person("户主" if i == 0 else "配偶", **adult)) for i in range(n_adults)]
    members += [Member(member_id=f"c{i}", facts=person("之子", birth=date(2012, 1, 1), education=None,
                                                       school_status="小学", labour_skill="无劳动力"))
                for i in range(n_children)]
    return members


def registered(hid: str = "h1", kind: HouseholdKind = HouseholdKind.LIFTED,
               status: MonitoringStatus = MonitoringStatus.NOT_MONITORED, members: list[Member] | None = None,
               **over: Any) -> HouseholdRegistered:
    return HouseholdRegistered(
        household_id=hid, code=f"HH{next(_ids):05d}",
        place=Place(county_code="533123", county="盈江县", township_code=TOWN, township="旧城镇", village_code=VILLAGE,
                    village="古里卡村", group_code=GROUP, group="一组"),
        kind=kind, lifted_year=2020 if kind is HouseholdKind.LIFTED else over.pop("lifted_year", None),
        category=over.pop("category", None), status=status, flags=[], members=members or family(), source="手工登记",
        **over)


def form(income: dict[str, Any] | None = None, spending: dict[str, Any] | None = None,
         guarantees: dict[str, bool] | None = None, **over: Any) -> VisitForm:
    g = {"food_and_clothing": True, "compulsory_education": True, "basic_medical": True, "housing_safe": True,
         "drinking_water_safe": True}
    g.update(guarantees or {})
    data: dict[str, Any] = {
        "visit_date": date(2022, 5, 8), "collector": "张采集",
        "income": IncomeLines.model_validate(income if income is not None else {"wages": 30000}),
        "spending": SpendingLines.model_validate(spending or {}),
        "guarantees": Guarantees.model_validate(g), "authorisation_signed": True, "application_signed": True,
        "previous_year_per_capita": None,
    }
    data.update(over)
    return VisitForm.model_validate(data)


def visit(hid: str = "h1", visit_id: str = "v1", **kw: Any) -> VisitRecorded:
    return VisitRecorded(household_id=hid, visit_id=visit_id, form=form(**kw))


# --- through the real stack ----------------------------------------------------------------------------------------

from dataclasses import dataclass  # noqa: E402

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402
from stdnum.cn import ric  # noqa: E402

from povguard_platform.actor import Actor, Role  # noqa: E402
from povguard_platform.auth import issue_token  # noqa: E402
from povguard_platform.service import ServiceRuntime  # noqa: E402
from povguard_platform.settings import Settings  # noqa: E402
from povguard_tools.testing import eventually  # noqa: E402

_order = itertools.count(11)


@dataclass
class Stack:
    settings: Settings
    intake: httpx.AsyncClient
    assess: httpx.AsyncClient
    runtime: ServiceRuntime
    admin: AsyncEngine  # the database's superuser: the tests look into both services' schemas

    def auth(self, role: Role = Role.VILLAGE_CLERK, org: str = VILLAGE, user: str = "王文书",
             dept: str | None = None) -> dict[str, str]:
        return {"Authorization": "Bearer " + issue_token(Actor(user=user, role=role, org=org, dept=dept),
                                                         self.settings)}

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.admin.connect() as conn:
            return list(await conn.execute(text(sql), params))

    async def register(self, kind: str = "脱贫户", **over: Any) -> str:
        body = household_body(kind=kind, **over)
        r = await self.intake.post("/v1/households", json=body, headers=self.auth())
        assert r.status_code == 201, r.text
        return str(r.json()["household_id"])

    async def visit(self, household_id: str, **over: Any) -> str:
        r = await self.intake.post(f"/v1/households/{household_id}/visits", json={"form": visit_body(**over)},
                                   headers=self.auth(Role.COLLECTOR, user="张采集"))
        assert r.status_code == 201, r.text
        return await self.last_visit(household_id)

    async def correct(self, household_id: str, visit_id: str, reason: str = "更正", **over: Any) -> str:
        r = await self.intake.post(f"/v1/households/{household_id}/visits/{visit_id}/corrections",
                                   json={"form": visit_body(**over), "reason": reason},
                                   headers=self.auth(Role.COLLECTOR, user="张采集"))
        assert r.status_code == 201, r.text
        return await self.last_visit(household_id)

    async def last_visit(self, household_id: str) -> str:
        [row] = await self.rows("SELECT data->>'visit_id' AS v FROM intake.events WHERE stream_id = :h "
                                "AND type IN ('VisitRecorded', 'VisitCorrected') ORDER BY version DESC LIMIT 1",
                                h=household_id)
        return str(row.v)

    async def proposal(self, household_id: str) -> dict[str, Any]:
        found: dict[str, Any] = {}

        async def ready() -> bool:
            rows = await self.rows("SELECT proposal FROM assessment.households WHERE household_id = :h",
                                   h=household_id)
            if rows and rows[0].proposal:
                found.update(rows[0].proposal)
            return bool(found)

        await eventually(ready)
        return found

    async def assessed_events(self, household_id: str) -> list[Any]:
        return await self.rows("SELECT type, data, policy, causation_id FROM assessment.events "
                               "WHERE stream_type = 'assessment' AND stream_id = :h ORDER BY version", h=household_id)


def make_id(birth: date, male: bool) -> str:
    body = f"533123{birth:%Y%m%d}{next(_order) % 500 * 2 + (1 if male else 0):03d}"
    return body + ric.calc_check_digit(body + "0")


def member_body(relation: str = "户主", birth: date = date(1975, 3, 9), male: bool = True, **over: Any
                ) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "name": "岳老三", "id_number": make_id(birth, male), "sex": "男" if male else "女",
        "birth_date": birth.isoformat(), "relation": relation, "education": "初中", "health": ["健康"],
        "labour_skill": "普通劳动力", "medical_insurance": "城乡居民基本医疗保险",
    }
    facts.update(over)
    return facts


def household_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": f"HH{next(_order):06d}",
        "place": {"county_code": "533123", "county": "盈江县", "township_code": TOWN, "township": "旧城镇",
                  "village_code": VILLAGE, "village": "古里卡村", "group_code": GROUP, "group": "一组"},
        "kind": "脱贫户", "lifted_year": 2020, "status": "未纳入监测", "flags": [],
        "members": [member_body(), member_body("配偶", birth=date(1978, 5, 1), male=False, name="李四妹"),
                    member_body("之子", birth=date(2012, 9, 1), education=None, school_status="小学",
                                labour_skill="无劳动力", name="岳小明")],
    }
    if over.get("kind") == "一般农户":
        body["lifted_year"] = None
    body.update(over)
    return body


def visit_body(**over: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "visit_date": "2022-05-08", "collector": "张采集", "income": {"wages": 30000},
        "spending": {"business_expense": 0, "medical_out_of_pocket": 0},
        "guarantees": {"food_and_clothing": True, "compulsory_education": True, "basic_medical": True,
                       "housing_safe": True, "drinking_water_safe": True},
        "previous_year_per_capita": 9000, "application_signed": True, "authorisation_signed": True,
    }
    form.update(over)
    return form
