"""Builders of real contract events (intake, assessment, review, support) for the audit service's tests, and a way to
append them to the producing service's own store as that service (or a tampering DBA) would."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from povguard_contracts.assessment import IncomeAssessed, OutcomeProposed
from povguard_contracts.intake import (
    Guarantees,
    HouseholdRegistered,
    IncomeLines,
    Member,
    MemberFacts,
    Place,
    SpendingLines,
    VisitCorrected,
    VisitForm,
    VisitRecorded,
)
from povguard_contracts.payload import EventPayload
from povguard_contracts.review import AppraisalHeld, CountyDecided, TownshipReviewed, VillageDecided
from povguard_platform.actor import Actor, Role
from povguard_platform.envelope import Metadata, NewEvent, RecordedEvent, StreamRef
from povguard_platform.service import ServiceDef, ServiceRuntime

TOWN = "533123101"
VILLAGE = TOWN + "201"
POLICY = "533123-2022@1"
COUNTY = Actor(user="周审定", role=Role.COUNTY_BUREAU, org="533123")


def producer_only(definition: ServiceDef) -> ServiceDef:
    """The service with its store, migrations and relay but none of its consumers or sweeps: the test appends the
    events it would have published, so nothing else reacts and the ledger holds exactly what the test wrote."""
    return dataclasses.replace(definition, consumers=(), background=())


async def emit(rt: ServiceRuntime, stream: StreamRef, payloads: list[EventPayload], actor: Actor = COUNTY,
               policy: str | None = POLICY) -> list[RecordedEvent]:
    """Append to the service's own store at the stream's current version (each payload in its own append)."""
    out: list[RecordedEvent] = []
    async with rt.engine.begin() as conn:
        for payload in payloads:
            version = await rt.store.stream_version(conn, stream)
            out += await rt.store.append(conn, [NewEvent(stream, TOWN, payload)], {stream: version},
                                         Metadata(actor=actor, policy=policy))
    return out


def member(member_id: str, relation: str, birth: date) -> Member:
    return Member(member_id=member_id, facts=MemberFacts.model_validate({
        "name": "岳老三", "id_number": "533123197503090011", "sex": "男", "birth_date": birth, "relation": relation,
        "education": "初中", "health": ["健康"], "labour_skill": "普通劳动力",
        "medical_insurance": "城乡居民基本医疗保险"}))


def registered(hid: str) -> HouseholdRegistered:
    return HouseholdRegistered(
        household_id=hid, code="HH00001",
        place=Place(county_code="533123", county="盈江县", township_code=TOWN, township="旧城镇",
                    village_code=VILLAGE, village="古里卡村", group_code=VILLAGE + "001", group="一组"),
        kind="脱贫户", lifted_year=2020, status="未纳入监测", flags=[], source="手工登记",
        members=[member("m0", "户主", date(1975, 3, 9)), member("m1", "配偶", date(1977, 6, 1))])


def form(wages: float, visit_date: date = date(2022, 5, 8)) -> VisitForm:
    return VisitForm(
        visit_date=visit_date, collector="张采集", income=IncomeLines(wages=wages), spending=SpendingLines(),
        guarantees=Guarantees(food_and_clothing=True, compulsory_education=True, basic_medical=True,
                              housing_safe=True, drinking_water_safe=True),
        application_signed=True, authorisation_signed=True)


def visit(hid: str, visit_id: str, wages: float, visit_date: date = date(2022, 5, 8)) -> VisitRecorded:
    return VisitRecorded(household_id=hid, visit_id=visit_id, form=form(wages, visit_date))


def corrected(hid: str, visit_id: str, corrects: str, wages: float, reason: str) -> VisitCorrected:
    return VisitCorrected(household_id=hid, visit_id=visit_id, corrects=corrects, form=form(wages), reason=reason)


def income(hid: str, visit_id: str, per_capita: float) -> IncomeAssessed:
    return IncomeAssessed(household_id=hid, village_code=VILLAGE, visit_id=visit_id, household_size=2,
                          size_basis="在册成员", lines={"wages": per_capita * 2}, net_income=per_capita * 2,
                          per_capita=per_capita, band="监测范围以下" if per_capita < 6000 else "监测范围至7000元")


def proposed(hid: str, outcome: str, per_capita: float | None = None, **kw: Any) -> OutcomeProposed:
    return OutcomeProposed(household_id=hid, village_code=VILLAGE, township_code=TOWN, outcome=outcome,
                           rule_ids=["test"], rationale="测试", per_capita=per_capita, policy_ref=POLICY, **kw)


def decided(hid: str, case_id: str, outcome: str, status: str, decided_on: date, **kw: Any) -> CountyDecided:
    kind = "监测对象" if status != "未纳入监测" else "脱贫户"
    return CountyDecided(case_id=case_id, household_id=hid, outcome=outcome, kind=kind, status=status,
                         decided_on=decided_on, **kw)


def appraisal(hid: str, case_id: str, acted_on: date) -> AppraisalHeld:
    return AppraisalHeld(case_id=case_id, household_id=hid, acted_on=acted_on, meeting_date=acted_on,
                         party_members_present=9, household_heads_present=40, votes_for=45, votes_against=1)


def village_decided(hid: str, case_id: str, acted_on: date) -> VillageDecided:
    return VillageDecided(case_id=case_id, household_id=hid, acted_on=acted_on, noticed=True, opinion="同意")


def township_reviewed(hid: str, case_id: str, acted_on: date, override_reason: str | None = None
                      ) -> TownshipReviewed:
    return TownshipReviewed(case_id=case_id, household_id=hid, acted_on=acted_on, spot_checked=True,
                            override_reason=override_reason)


@dataclasses.dataclass
class Stack:
    """The producing services' runtimes and the audit service's HTTP client (its ledger consumer running)."""

    intake: ServiceRuntime
    assessment: ServiceRuntime
    review: ServiceRuntime
    support: ServiceRuntime
    client: Any  # httpx.AsyncClient


async def entries(client: Any, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/v1/audit/entries", params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def settled(client: Any, n: int, **params: Any) -> None:
    """Wait until the ledger holds n entries (of a household, ...): events of different services reach the ledger
    in no guaranteed order, so a test that needs an order waits for each step."""
    from povguard_tools.testing import eventually

    async def done() -> bool:
        return len(await entries(client, **params)) >= n

    await eventually(done)


async def findings(client: Any, kind: str) -> list[dict[str, Any]]:
    r = await client.get("/v1/audit/findings", params={"kind": kind, "limit": 200})
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data
