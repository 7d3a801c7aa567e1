"""Builders for the review tests: tokens per role, proposals, hand-opened cases and a walk through the stages."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from povguard_contracts.assessment import OutcomeProposed
from povguard_contracts.intake import HouseholdRegistered
from povguard_contracts.vocab import HouseholdKind, MonitoringCategory, Outcome
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import issue_token
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.policy import load_policy, policy_section
from povguard_platform.service import ServiceRuntime
from povguard_platform.settings import Settings
from povguard_review.domain.case import before_from_outcome
from povguard_review.policy import ReviewPolicy
from povguard_review.projections import save_households

COUNTY = "533123"
TOWN = "533123101"
VILLAGE = TOWN + "201"
OTHER_VILLAGE = TOWN + "202"
OTHER_TOWN = "533123102"
DEPARTMENTS = [d.value for d in policy_section("533123-2022", "review", ReviewPolicy).check_departments]
CALENDAR = load_policy("533123-2022").calendar
_n = itertools.count(1)


def auth(settings: Settings, role: Role = Role.VILLAGE_COMMITTEE, org: str = VILLAGE,
         user: str = "李主任", dept: str | None = None) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(Actor(user=user, role=role, org=org, dept=dept), settings)}


def committee(settings: Settings, org: str = VILLAGE) -> dict[str, str]:
    return auth(settings, Role.VILLAGE_COMMITTEE, org, "李主任")


def township(settings: Settings, org: str = TOWN, user: str = "赵审核") -> dict[str, str]:
    return auth(settings, Role.TOWNSHIP_REVIEWER, org, user)


def county(settings: Settings, user: str = "钱局长") -> dict[str, str]:
    return auth(settings, Role.COUNTY_BUREAU, COUNTY, user)


def department(settings: Settings, name: str, org: str = COUNTY) -> dict[str, str]:
    """A department's machine client: it serves the county (org) and answers for its department (dept)."""
    return auth(settings, Role.DEPARTMENT, org, f"{name}接口", dept=name)


def household_id() -> str:
    return f"hh-{next(_n):05d}"


def registration(household: str, village: str = VILLAGE, outcome: str = "新识别监测对象",
                 category: str | None = "边缘易致贫户") -> HouseholdRegistered:
    """The household as the registry would have it before a case with this outcome (kind and status as review
    infers them for an unregistered household)."""
    before = before_from_outcome(Outcome(outcome), MonitoringCategory(category) if category else None)
    member = {"name": "王户主", "id_number": "533123197503090011", "sex": "男", "birth_date": "1975-03-09",
              "relation": "户主", "education": "初中", "health": ["健康"], "labour_skill": "普通劳动力",
              "medical_insurance": "城乡居民基本医疗保险"}
    return HouseholdRegistered.model_validate({
        "household_id": household, "code": f"C{household}", "kind": before.kind, "status": before.status, "flags": [],
        "lifted_year": 2020 if before.kind == HouseholdKind.LIFTED else None,
        "place": {"county_code": COUNTY, "county": "盈江县", "township_code": village[:9], "township": "旧城镇",
                  "village_code": village, "village": "古里卡村", "group_code": village + "001", "group": "一组"},
        "members": [{"member_id": "m1", "facts": member}], "source": "手工登记"})


async def known(client: httpx.AsyncClient, household: str, village: str = VILLAGE, outcome: str = "新识别监测对象",
                category: str | None = "边缘易致贫户") -> None:
    """The household in review's registry read model, as review's consumer of intake's HouseholdRegistered writes
    it (tests that go through the bus register with intake: test_flow)."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.begin() as conn:
        await save_households(conn, [registration(household, village, outcome, category)])


async def open_case(client: httpx.AsyncClient, settings: Settings, *, village: str = VILLAGE,
                    headers: dict[str, str] | None = None, registered: bool = True, **over: Any) -> httpx.Response:
    """Open a case by hand for a household registered in `village` (unless `registered` is false)."""
    body: dict[str, Any] = {"household_id": household_id(), "outcome": "新识别监测对象",
                            "category": "边缘易致贫户", "risks": ["因病"], "lead_date": "2022-05-08",
                            "acted_on": "2022-05-09", "collector": "张采集"}
    body.update(over)
    if registered:
        await known(client, body["household_id"], village, body["outcome"], body["category"])
    return await client.post("/v1/cases", json=body, headers=headers or committee(settings, village))


async def new_case(client: httpx.AsyncClient, settings: Settings, **over: Any) -> str:
    r = await open_case(client, settings, **over)
    assert r.status_code == 201, r.text
    case_id: str = r.json()["case_id"]
    return case_id


APPRAISAL = {"acted_on": "2022-05-14", "meeting_date": "2022-05-14", "party_members_present": 12,
             "household_heads_present": 40, "votes_for": 48, "votes_against": 2,
             "opinions": [{"opinion": "该户务工收入是否核实？", "answer": "已核实工资流水"}]}
DECISION = {"acted_on": "2022-05-16", "proposed_measures": ["就业帮扶", "健康帮扶"], "opinion": "同意"}


async def step(client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str],
               expect: int = 200) -> dict[str, Any]:
    r = await client.post(path, json=body, headers=headers)
    assert r.status_code == expect, r.text
    data: dict[str, Any] = r.json()
    return data


async def walk(client: httpx.AsyncClient, settings: Settings, case_id: str, until: str = "已审定",
               village: str = VILLAGE, hit: dict[str, Any] | None = None) -> dict[str, Any]:
    """Take a case through the stages with a different person at each level, stopping when it reaches `until`.
    Each step is dated on the campaign calendar, or on the case's last date when that is later."""
    base = f"/v1/cases/{case_id}"
    case = (await client.get(base, headers=county(settings))).json()

    def on(default: str) -> str:
        last = case["last_acted_on"]
        return max(default, last) if last else default

    while case["stage"] != until:
        stage = case["stage"]
        if stage == "村民评议":
            day = on("2022-05-14")
            case = (await step(client, f"{base}/appraisal", APPRAISAL | {"acted_on": day, "meeting_date": day},
                               committee(settings, village)))["case"]
        elif stage == "村两委决定":
            case = (await step(client, f"{base}/village-decision", DECISION | {"acted_on": on("2022-05-16")},
                               committee(settings, village)))["case"]
        elif stage == "待公示":
            case = (await step(client, f"{base}/notice", {"acted_on": on("2022-05-16")},
                               committee(settings, village)))["case"]
        elif stage == "公示中":
            after = (date.fromisoformat(case["notice"]["ends_on"]) + timedelta(days=1)).isoformat()
            case = (await step(client, f"{base}/notice/closure", {"acted_on": after},
                               committee(settings, village)))["case"]
        elif stage == "乡镇审核":
            case = (await step(client, f"{base}/township-review",
                               {"acted_on": on("2022-05-23"), "spot_checked": True, "opinion": "抽查属实"},
                               township(settings, village[:9])))["case"]
        elif stage == "县级审定":
            for name in DEPARTMENTS:
                if name in case["checks"]:
                    continue
                findings = (hit or {}).get(name, [])
                case = (await step(client, f"{base}/department-checks",
                                   {"acted_on": on("2022-05-24"), "findings": findings},
                                   department(settings, name)))["case"]
            result = await step(client, f"{base}/decision",
                                {"acted_on": on("2022-05-25"), "lead_department": "人社",
                                 "elimination_method": "帮扶消除"}, county(settings))
            case = result["case"]
            if case["stage"] != "已审定":
                return case
        else:
            raise AssertionError(f"cannot walk from {stage}")
    return case


def proposal(household: str, outcome: str = "新识别监测对象", village: str = VILLAGE, **over: Any) -> OutcomeProposed:
    data: dict[str, Any] = {"household_id": household, "village_code": village, "township_code": village[:9],
                            "outcome": outcome, "category": "边缘易致贫户", "risks": ["因病"], "rule_ids": ["R1"],
                            "rationale": "人均纯收入低于监测范围", "lead_date": "2022-05-08", "visit_id": "v1",
                            "collector": "张采集", "policy_ref": "533123-2022@1"}
    data.update(over)
    return OutcomeProposed.model_validate(data)


async def propose(assessment: ServiceRuntime, *proposals: OutcomeProposed) -> None:
    """Append proposals to the assessment service's own store; its relay publishes them to the bus."""
    actor = Actor(user="povguard", role=Role.SYSTEM, org="system")
    async with assessment.engine.begin() as conn:
        for p in proposals:
            stream = StreamRef("assessment", p.household_id)
            version = await assessment.store.stream_version(conn, stream)
            await assessment.store.append(conn, [NewEvent(stream, p.township_code, p)], {stream: version},
                                          Metadata(actor=actor))


async def cases_of(client: httpx.AsyncClient, household: str) -> list[dict[str, Any]]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(text("SELECT state FROM review.cases WHERE household_id = :h ORDER BY case_id"),
                                  {"h": household})
        return [r[0] for r in rows]


async def events(client: httpx.AsyncClient, event_type: str) -> list[dict[str, Any]]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.engine.connect() as conn:
        rows = await conn.execute(text("SELECT data FROM review.events WHERE type = :t ORDER BY position"),
                                  {"t": event_type})
        return [r[0] for r in rows]
