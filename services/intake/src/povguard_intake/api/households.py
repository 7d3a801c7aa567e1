"""/v1/households: the registry (农户信息) — register, read (masked unless asked and allowed), list by village or
township, members' natural changes (自然变更), flags, visits (附件2-1) and leads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import text

from povguard_contracts.vocab import HouseholdKind, MonitoringStatus, PriorityGroup
from povguard_intake.api.deps import (
    PERSONAL_DATA_ROLES,
    PERSONAL_FIELDS,
    Collector,
    IntakeDep,
    Reader,
    Registrar,
    VillageWorker,
    masked_facts,
    scope,
)
from povguard_intake.api.listing import listed, shown, stored_state
from povguard_intake.api.schemas import (
    FlagsUpdate,
    HistoryEntry,
    HouseholdCreate,
    HouseholdPublic,
    HouseholdsPublic,
    IdNumberQuery,
    LeadCreate,
    LeadPublic,
    MemberCreate,
    MemberPublic,
    MemberRemoval,
    MemberUpdate,
    VisitCorrection,
    VisitCreate,
    VisitSummary,
)
from povguard_intake.domain import household as domain
from povguard_intake.domain.household import Household, Visit
from povguard_intake.domain.idcard import id_number_problems, mask, normalise
from povguard_intake.handlers import RegisterCommand, household_stream
from povguard_platform.actor import Actor
from povguard_platform.api import ExpectedVersion, Int64, RequiredVersion, json_response
from povguard_platform.auth import require_org
from povguard_platform.errors import DomainNotFound
from povguard_platform.personal import mask_personal
from povguard_platform.problems import Forbidden, InvalidInput, NotFound
from povguard_platform.service import Runtime

router = APIRouter(prefix="/v1/households", tags=["households"])


def public(state: Household, *, personal: bool) -> HouseholdPublic:
    assert state.place is not None
    members = [MemberPublic(member_id=k, facts=m.model_dump(mode="json") if personal else masked_facts(m))
               for k, m in state.members.items()]
    visits = [VisitSummary(visit_id=v.visit_id, visit_date=v.form.visit_date, collector=v.form.collector,
                           corrects=v.corrects, superseded_by=v.superseded_by) for v in state.visits.values()]
    leads = [LeadPublic(**lead.model_dump()) for lead in state.leads]
    return HouseholdPublic(
        household_id=state.household_id, code=state.code, place=state.place, kind=state.kind,
        lifted_year=state.lifted_year, category=state.category, status=state.status, flags=state.flags,
        members=members, visits=visits, leads=leads, version=state.version,
        personal_data="shown" if personal else "masked")


def _etag(response: Response, state: Household) -> None:
    response.headers["ETag"] = f'"{state.version}"'


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="register_household",
             summary="登记农户 (register a household with its members)",
             responses={409: {"description": "户编号 already registered, or an ID number already belongs to another "
                                              "household (the problem names it)"}})
async def register_household(body: HouseholdCreate, runtime: Runtime, intake: IntakeDep, actor: Registrar,
                             response: Response) -> HouseholdPublic:
    require_org(actor, body.place.group_code)
    cmd = RegisterCommand(code=body.code, place=body.place, kind=body.kind, lifted_year=body.lifted_year,
                          category=body.category, status=body.status, flags=body.flags, members=body.members)
    async with runtime.engine.begin() as conn:
        registered = await intake.register(conn, cmd, actor)
    _etag(response, registered.state)
    response.headers["Location"] = f"/v1/households/{registered.state.household_id}"
    return public(registered.state, personal=False)


@router.get("", operation_id="list_households", summary="按村或乡镇列出农户（脱敏）", response_model=HouseholdsPublic)
async def list_households(
    runtime: Runtime, actor: Reader,
    org: Annotated[str, Query(pattern=r"^\d{6,15}$", description="县、乡镇、行政村或村民小组代码")],
    kind: HouseholdKind | None = None,
    status_: Annotated[MonitoringStatus | None, Query(alias="status")] = None,
    flag: Annotated[list[PriorityGroup] | None, Query(description="having all of these flags")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    require_org(actor, org)
    async with runtime.read(replica=True) as conn:  # a list: the replica's (one household: the primary's)
        rows = (await conn.execute(text("""
            SELECT state::text FROM intake.households
            WHERE group_code LIKE :prefix AND (CAST(:kind AS text) IS NULL OR kind = :kind)
              AND (CAST(:status AS text) IS NULL OR status = :status)
              AND flags @> CAST(:flags AS text[]) AND household_id > :cursor
            ORDER BY household_id LIMIT :n"""),
            {"prefix": org + "%", "kind": kind.value if kind else None, "status": status_.value if status_ else None,
             "flags": [f.value for f in flag or []], "cursor": cursor or "", "n": limit + 1})).scalars().all()
    page = [listed(state) for state in rows[:limit]]
    return json_response({"data": page, "next_cursor": page[-1]["household_id"] if len(rows) > limit else None})


_CURRENT = text("SELECT state::text FROM intake.households WHERE household_id = :id")


async def _read(runtime: Runtime, intake: IntakeDep, actor: Actor, household_id: str, include_personal: bool,
                purpose: str, as_of: datetime | None = None, version: int | None = None) -> dict[str, Any]:
    """A household as `HouseholdPublic`'s JSON: as it stands, from its row in the registry's read model (written
    in the same transaction as its events: one indexed row, not its stream decoded and folded, and not validated
    again, see listing.py); as it stood, folded from its events."""
    if include_personal and actor.role not in PERSONAL_DATA_ROLES:
        raise Forbidden(f"role {actor.role.value} may not see personal data (身份证号码、电话、健康状况)")
    # an unmasked read is recorded in the same transaction as the read itself; a masked one only reads
    async with runtime.engine.begin() if include_personal else runtime.read() as conn:
        if as_of is None and version is None:
            stored = (await conn.execute(_CURRENT, {"id": household_id})).scalar_one_or_none()
            if stored is None:
                raise DomainNotFound(f"没有这一户（{household_id}）")
            current = stored_state(stored)
            place = current["place"]
            require_org(actor, place["group_code"])  # what scope(actor) checks on a Household
            if include_personal:
                await intake.record_access(conn, household_id, PERSONAL_FIELDS, purpose, actor,
                                           place["township_code"])
            return shown(current, personal=include_personal)
        state = await intake.load(conn, household_id, as_of=as_of, to_version=version)
        scope(actor)(state)
        if include_personal:
            assert state.place is not None
            await intake.record_access(conn, household_id, PERSONAL_FIELDS, purpose, actor, state.place.township_code)
    view: dict[str, Any] = public(state, personal=include_personal).model_dump(mode="json")
    return view


@router.get("/{household_id}", operation_id="get_household",
            summary="读取一户；include_personal=true 显示个人信息并记入审计", response_model=HouseholdPublic,
            responses={404: {"description": "no such household"}})
async def get_household(
    household_id: str, runtime: Runtime, intake: IntakeDep, actor: Reader,
    include_personal: Annotated[bool, Query(description="show ID numbers, phones and health (audited)")] = False,
    purpose: Annotated[str, Query(max_length=100, description="why personal data is read (recorded)")] = "核查",
    as_of: Annotated[datetime | None, Query(description="the household as it stood at this time")] = None,
    version: Annotated[Int64 | None, Query(ge=1, description="the household as of this version")] = None,
) -> Response:
    view = await _read(runtime, intake, actor, household_id, include_personal, purpose, as_of, version)
    return json_response(view, {"ETag": f'"{view["version"]}"'})


@router.post("/search", operation_id="find_household_by_id_number",
             summary="按成员身份证号码查找农户（记入审计）", response_model=HouseholdPublic)
async def find_by_id_number(body: IdNumberQuery, runtime: Runtime, intake: IntakeDep, actor: Reader,
                            ) -> Response:
    problems = id_number_problems(body.id_number)
    if problems:
        raise InvalidInput("; ".join(problems))
    async with runtime.read() as conn:
        row = await conn.execute(text("SELECT household_id FROM intake.member_index WHERE id_number = :n"),
                                 {"n": normalise(body.id_number)})
        household_id = row.scalar_one_or_none()
    if household_id is None:
        raise NotFound(f"身份证号码 {mask(normalise(body.id_number))} 不是任何在册农户的成员")
    return json_response(await _read(runtime, intake, actor, household_id, actor.role in PERSONAL_DATA_ROLES,
                                     "按身份证号码查找"))


@router.get("/{household_id}/history", operation_id="household_history",
            summary="一户的全部变更记录（事件），个人信息脱敏")
async def history(household_id: str, runtime: Runtime, intake: IntakeDep, actor: Reader) -> list[HistoryEntry]:
    async with runtime.read() as conn:
        state = await intake.load(conn, household_id)
        scope(actor)(state)
        events = await intake.store.load(conn, household_stream(household_id))
    return [HistoryEntry(version=e.version, type=e.type, time=e.time.isoformat(), actor=e.actor.model_dump(),
                         data=mask_personal(e.data)) for e in events]


@router.post("/{household_id}/members", status_code=status.HTTP_201_CREATED, operation_id="add_member",
             summary="增加成员（新生儿、婚入、迁入…）")
async def add_member(household_id: str, body: MemberCreate, runtime: Runtime, intake: IntakeDep, actor: Collector,
                     expected: ExpectedVersion, response: Response) -> HouseholdPublic:
    async with runtime.engine.begin() as conn:
        state = await intake.add_member(conn, household_id, body.facts, body.reason, body.effective, body.note,
                                        actor, expected, scope(actor))
    _etag(response, state)
    return public(state, personal=False)


@router.put("/{household_id}/members/{member_id}", operation_id="update_member",
            summary="变更成员信息（须说明原因）")
async def update_member(household_id: str, member_id: str, body: MemberUpdate, runtime: Runtime,
                        intake: IntakeDep, actor: Collector, expected: RequiredVersion,
                        response: Response) -> HouseholdPublic:
    async with runtime.engine.begin() as conn:
        state = await intake.update_member(conn, household_id, member_id, body.facts, body.reason, body.effective,
                                           body.note, actor, expected, scope(actor))
    _etag(response, state)
    return public(state, personal=False)


@router.post("/{household_id}/members/{member_id}/removal", operation_id="remove_member",
             summary="减少成员（死亡、婚出、迁出、分户）")
async def remove_member(household_id: str, member_id: str, body: MemberRemoval, runtime: Runtime,
                        intake: IntakeDep, actor: Collector, expected: RequiredVersion,
                        response: Response) -> HouseholdPublic:
    async with runtime.engine.begin() as conn:
        state = await intake.change(
            conn, household_id, actor, expected,
            lambda s: domain.remove_member(s, member_id, body.reason, body.effective, body.note, intake.policy,
                                           intake.today()),
            scope(actor))
    _etag(response, state)
    return public(state, personal=False)


@router.put("/{household_id}/flags", operation_id="set_priority_flags", summary="调整重点排查类型")
async def set_flags(household_id: str, body: FlagsUpdate, runtime: Runtime, intake: IntakeDep,
                    actor: VillageWorker, expected: ExpectedVersion, response: Response) -> HouseholdPublic:
    async with runtime.engine.begin() as conn:
        state = await intake.change(conn, household_id, actor, expected,
                                    lambda s: domain.set_flags(s, body.flags, body.reason),
                                    scope(actor))
    _etag(response, state)
    return public(state, personal=False)


@router.post("/{household_id}/visits", status_code=status.HTTP_201_CREATED, operation_id="record_visit",
             summary="录入入户调查信息采集表（附件2-1）")
async def record_visit(household_id: str, body: VisitCreate, runtime: Runtime, intake: IntakeDep,
                       actor: Collector, expected: ExpectedVersion, response: Response) -> HouseholdPublic:
    async with runtime.engine.begin() as conn:
        state = await intake.change(conn, household_id, actor, expected,
                                    lambda s: domain.record_visit(s, body.form, intake.policy, intake.today()),
                                    scope(actor))
    _etag(response, state)
    return public(state, personal=False)


@router.post("/{household_id}/visits/{visit_id}/corrections", status_code=status.HTTP_201_CREATED,
             operation_id="correct_visit", summary="更正采集表（新记录说明更正了哪一条及原因）")
async def correct_visit(household_id: str, visit_id: str, body: VisitCorrection, runtime: Runtime,
                        intake: IntakeDep, actor: Collector, expected: ExpectedVersion,
                        response: Response) -> HouseholdPublic:
    async with runtime.engine.begin() as conn:
        state = await intake.change(
            conn, household_id, actor, expected,
            lambda s: domain.correct_visit(s, visit_id, body.form, body.reason, intake.policy, intake.today()),
            scope(actor))
    _etag(response, state)
    return public(state, personal=False)


@router.get("/{household_id}/visits", operation_id="list_visits", summary="一户的采集表（含被更正的记录）")
async def list_visits(household_id: str, runtime: Runtime, intake: IntakeDep, actor: Reader) -> list[Visit]:
    async with runtime.read() as conn:
        state = await intake.load(conn, household_id)
    scope(actor)(state)
    return sorted(state.visits.values(), key=lambda v: v.visit_id)


@router.post("/{household_id}/leads", status_code=status.HTTP_201_CREATED, operation_id="open_lead",
             summary="登记线索（农户自主申报、干部排查）；15天识别时限起算")
async def open_lead(household_id: str, body: LeadCreate, runtime: Runtime, intake: IntakeDep,
                    actor: VillageWorker, response: Response) -> LeadPublic:
    async with runtime.engine.begin() as conn:
        state = await intake.change(
            conn, household_id, actor, None,
            lambda s: domain.open_lead(s, body.source, body.lead_date, body.note, intake.today()),
            scope(actor))
    _etag(response, state)
    return LeadPublic(**state.leads[-1].model_dump())
