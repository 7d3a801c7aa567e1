"""/v1/plans: a household's plan (一户一策), its responsible cadre, its measures (planned → implemented → verified),
quarterly income measurement; lists of plans, coverage gaps (缺什么补什么) and 一兜了之."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import text

from povguard_platform.actor import Actor
from povguard_platform.api import ExpectedVersion
from povguard_platform.auth import org_prefix
from povguard_platform.batch import BatchResult, failure
from povguard_platform.ids import uuid7
from povguard_platform.problems import NotFound
from povguard_platform.service import Runtime
from povguard_support.api.deps import (
    Cadre,
    Deliverer,
    Planner,
    Reader,
    SupportDep,
    in_scope,
    may_deliver,
)
from povguard_support.api.schemas import (
    CadreAssign,
    Implementation,
    Implementations,
    IncomeCreate,
    MeasureCreate,
    MeasureImplement,
    MeasureVerify,
    PlanEntries,
    PlanEntry,
    PlanPublic,
    PlansPublic,
    PlanState,
    PlanSummary,
    measure_public,
    plan_public,
)
from povguard_support.domain import plan as domain
from povguard_support.domain.plan import HouseholdFacts, Plan
from povguard_support.handlers import Known, Step, Support
from povguard_support.projections import Place, load_facts

router = APIRouter(prefix="/v1", tags=["plans"])


async def _public(runtime: Runtime, support: Support, plan: Plan, response: Response) -> PlanPublic:
    async with runtime.read() as conn:
        facts, place = (await load_facts(conn, [plan.household_id])).get(plan.household_id, (None, None))
    response.headers["ETag"] = f'"{plan.version}"'
    return plan_public(plan, facts, support.catalogue, place.village_code if place else "",
                       place.township_code if place else "")


@router.get("/plans/{household_id}", operation_id="get_plan", summary="一户一策：该户帮扶计划、措施、目标与进度")
async def get_plan(household_id: str, runtime: Runtime, support: SupportDep, actor: Reader,
                   response: Response) -> PlanPublic:
    async with runtime.read() as conn:
        plan = await support.load(conn, household_id)
    if not plan.exists:
        raise NotFound(f"户 {household_id} 没有帮扶计划")
    in_scope(actor, support.county)(plan)
    return await _public(runtime, support, plan, response)


@router.put("/plans/{household_id}/cadre", operation_id="assign_cadre", summary="明确一对一帮扶责任人")
async def assign_cadre(household_id: str, body: CadreAssign, runtime: Runtime, support: SupportDep, actor: Planner,
                       expected: ExpectedVersion, response: Response) -> PlanPublic:
    async with runtime.engine.begin() as conn:
        plan = await support.change(conn, household_id, actor, expected,
                                    _cadre(body.cadre), in_scope(actor, support.county))
    return await _public(runtime, support, plan, response)


@router.post("/plans/{household_id}/measures", status_code=status.HTTP_201_CREATED, operation_id="assign_measure",
             summary="制定帮扶措施（类型、责任部门、金额、计划日期）",
             responses={409: {"description": "the plan is closed"}})
async def assign_measure(household_id: str, body: MeasureCreate, runtime: Runtime, support: SupportDep,
                         actor: Planner, expected: ExpectedVersion, response: Response) -> PlanPublic:
    measure_id = str(uuid7())
    async with runtime.engine.begin() as conn:
        plan = await support.change(
            conn, household_id, actor, expected,
            _measure(support, body, measure_id),
            in_scope(actor, support.county))
    response.headers["Location"] = f"/v1/plans/{household_id}/measures/{measure_id}"
    return await _public(runtime, support, plan, response)


def _delivery_check(actor: Actor, measure_id: str, county: str) -> Any:
    def check(plan: Plan) -> None:
        may_deliver(actor, plan, domain.measure(plan, measure_id), county)

    return check


@router.post("/plans/{household_id}/measures/{measure_id}/implement", operation_id="implement_measure",
             summary="登记措施实施（日期、金额、佐证）：planned → implemented",
             responses={409: {"description": "the measure is not planned"}})
async def implement_measure(household_id: str, measure_id: str, body: MeasureImplement, runtime: Runtime,
                            support: SupportDep, actor: Deliverer, expected: ExpectedVersion,
                            response: Response) -> PlanPublic:
    today = support.today()
    async with runtime.engine.begin() as conn:
        plan = await support.change(
            conn, household_id, actor, expected,
            lambda p: domain.implement(p, measure_id, body.implemented_on, body.amount, body.evidence_ref, today,
                                       support.max_amount),
            _delivery_check(actor, measure_id, support.county))
    return await _public(runtime, support, plan, response)


@router.post("/plans/{household_id}/measures/{measure_id}/verify", operation_id="verify_measure",
             summary="核验措施：implemented → verified",
             responses={409: {"description": "the measure is not implemented"}})
async def verify_measure(household_id: str, measure_id: str, body: MeasureVerify, runtime: Runtime,
                         support: SupportDep, actor: Deliverer, expected: ExpectedVersion,
                         response: Response) -> PlanPublic:
    today = support.today()
    async with runtime.engine.begin() as conn:
        plan = await support.change(
            conn, household_id, actor, expected,
            lambda p: domain.verify(p, measure_id, body.verified_on, body.note, today, actor),
            _delivery_check(actor, measure_id, support.county))
    return await _public(runtime, support, plan, response)


@router.post("/plans/{household_id}/incomes", status_code=status.HTTP_201_CREATED, operation_id="measure_income",
             summary="季度收入测算：记录测算的人均纯收入，对照帮扶目标")
async def measure_income(household_id: str, body: IncomeCreate, runtime: Runtime, support: SupportDep,
                         actor: Cadre, expected: ExpectedVersion, response: Response) -> PlanPublic:
    today = support.today()

    def check(plan: Plan) -> None:
        in_scope(actor, support.county)(plan)

    async with runtime.engine.begin() as conn:
        plan = await support.change(
            conn, household_id, actor, expected,
            lambda p: domain.measure_income(p, body.measured_on, body.per_capita, body.note, support.catalogue,
                                            today, support.max_amount), check)
    return await _public(runtime, support, plan, response)


# --- 批量 (one call for a work team's day of entries or a department's day of records) ---------------------------


@router.post("/batches/plans", operation_id="enter_plans",
             summary="批量录入一户一策：每户的帮扶责任人和措施（每户单独校验，一户不成不影响其他）")
async def enter_plans(body: PlanEntries, runtime: Runtime, support: SupportDep,
                      actor: Planner) -> BatchResult[PlanState]:
    scope = in_scope(actor, support.county)

    def steps(entry: PlanEntry) -> list[Step]:
        return ([_cadre(entry.cadre)] if entry.cadre is not None else []) + [
            _measure(support, m, str(uuid7())) for m in entry.measures]

    async with runtime.engine.begin() as conn:
        done, refused, known = await support.change_many(
            conn, actor, [(entry.household_id, scope, steps(entry)) for entry in body.items])
    return _batch(support, done, refused, known, [entry.household_id for entry in body.items])


def _cadre(cadre: str) -> Step:
    return lambda p: domain.assign_cadre(p, cadre)


def _measure(support: Support, m: MeasureCreate, measure_id: str) -> Step:
    return lambda p: domain.assign(p, measure_id, m.kind, support.catalogue, description=m.description,
                                   amount=m.amount, max_amount=support.max_amount, planned_start=m.planned_start,
                                   planned_end=m.planned_end, department=m.department)


@router.post("/batches/implementations", operation_id="implement_measures",
             summary="行业部门批量登记措施实施（日期、金额、佐证）：每项措施单独校验")
async def implement_measures(body: Implementations, runtime: Runtime, support: SupportDep,
                             actor: Deliverer) -> BatchResult[PlanState]:
    today = support.today()

    def step(item: Implementation) -> Step:
        return lambda p: domain.implement(p, item.measure_id, item.implemented_on, item.amount, item.evidence_ref,
                                          today, support.max_amount)

    async with runtime.engine.begin() as conn:
        done, refused, known = await support.change_many(conn, actor, [
            (item.household_id, _delivery_check(actor, item.measure_id, support.county), [step(item)])
            for item in body.items])
    return _batch(support, done, refused, known, [f"{item.household_id}/{item.measure_id}" for item in body.items])


def _batch(support: Support, done: list[tuple[int, Plan]], refused: list[tuple[int, Exception]], known: Known,
           keys: list[str]) -> BatchResult[PlanState]:
    """The answer to a batch: each applied item's plan as it left it, each refused one's problem details."""
    return BatchResult[PlanState](recorded=len(done), data=[_state(support, plan, *known.get(plan.household_id,
                                                                                              (None, None)))
                                                            for _, plan in done],
                                  failed=[failure(index, keys[index], exc) for index, exc in refused])


def _state(support: Support, plan: Plan, facts: HouseholdFacts | None, place: Place | None) -> PlanState:
    village = plan.village_code or (place.village_code if place else "")
    return PlanState(household_id=plan.household_id, version=plan.version,
                     missing=domain.uncovered(plan, facts, support.catalogue),
                     measures=[measure_public(m, plan.household_id, village) for m in plan.measures.values()])


# --- lists ------------------------------------------------------------------------------------------------------------


async def _plans(runtime: Runtime, actor: Actor, where: str, params: dict[str, Any], cursor: str | None,
                 limit: int) -> PlansPublic:
    async with runtime.read() as conn:
        rows = await conn.execute(text(f"""
            SELECT household_id, village_code, township_code, open, basis, lead_department, cadre, measures,
                   developmental, missing, labour_capable, safety_net_only, final_goal, latest_per_capita,
                   latest_expected, behind, closed_reason
            FROM support.plans
            WHERE village_code LIKE :prefix AND household_id > :cursor AND {where}
            ORDER BY household_id LIMIT :n"""),
            {"prefix": org_prefix(actor) + "%", "cursor": cursor or "", "n": limit + 1, **params})
        items = [PlanSummary(
            household_id=r.household_id, village_code=r.village_code, township_code=r.township_code, open=r.open,
            basis=r.basis, lead_department=r.lead_department, cadre=r.cadre, measures=r.measures,
            developmental=r.developmental, missing=r.missing, labour_capable=r.labour_capable,
            safety_net_only=r.safety_net_only, final_goal=r.final_goal, latest_per_capita=r.latest_per_capita,
            latest_expected=r.latest_expected, behind=r.behind, closed_reason=r.closed_reason) for r in rows]
    more = len(items) > limit
    items = items[:limit]
    return PlansPublic(data=items, next_cursor=items[-1].household_id if more else None)


Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/plans", operation_id="list_plans", summary="帮扶计划列表（按村、乡镇；可只看进度滞后的）")
async def list_plans(runtime: Runtime, actor: Reader, village: str | None = None,
                     open: bool | None = None, behind: bool | None = None,
                     cursor: str | None = None, limit: Limit = 100) -> PlansPublic:
    return await _plans(runtime, actor, """(CAST(:village AS text) IS NULL OR village_code LIKE :village || '%')
        AND (CAST(:open AS boolean) IS NULL OR open = :open)
        AND (CAST(:behind AS boolean) IS NULL OR behind = :behind)""",
                        {"village": village, "open": open, "behind": behind}, cursor, limit)


@router.get("/coverage-gaps", operation_id="coverage_gaps",
            summary="缺什么补什么：有风险或三保障、饮水短板未对应措施的帮扶计划，列出所缺")
async def coverage_gaps(runtime: Runtime, actor: Reader, village: str | None = None, cursor: str | None = None,
                        limit: Limit = 100) -> PlansPublic:
    return await _plans(runtime, actor, """open AND missing <> '{}'
        AND (CAST(:village AS text) IS NULL OR village_code LIKE :village || '%')""", {"village": village},
                        cursor, limit)


@router.get("/safety-net-only", operation_id="safety_net_only",
            summary="一兜了之：有劳动能力却没有开发式帮扶措施（产业、就业、金融、公益岗位）的帮扶计划")
async def safety_net_only(runtime: Runtime, actor: Reader, village: str | None = None, cursor: str | None = None,
                          limit: Limit = 100) -> PlansPublic:
    return await _plans(runtime, actor, """open AND safety_net_only
        AND (CAST(:village AS text) IS NULL OR village_code LIKE :village || '%')""", {"village": village},
                        cursor, limit)
