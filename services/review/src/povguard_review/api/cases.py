"""/v1/cases: opening by hand, case detail with its full history, the stage actions, objections, department checks
and the county decision; /v1/queue: what is waiting for me."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from sqlalchemy import text

from povguard_contracts.review import CaseOpened
from povguard_contracts.vocab import Department, Outcome
from povguard_platform.actor import Actor, Role
from povguard_platform.auth import department_of, org_prefix, require_org
from povguard_platform.batch import BatchResult, failure
from povguard_platform.errors import RuleViolations, Violation
from povguard_platform.ids import uuid7
from povguard_platform.problems import Forbidden
from povguard_platform.service import Runtime
from povguard_review.api.deps import Acting, Opener, Reader, ReviewDep, case_public, check_read
from povguard_review.api.schemas import (
    AppraisalBody,
    AppraisalItem,
    Batch,
    CaseCreate,
    CheckBatch,
    CheckBody,
    CheckItem,
    DecisionBody,
    DecisionItem,
    NoticeBody,
    NoticeItem,
    ObjectionBody,
    ResolutionBody,
    ReturnBody,
    StageAction,
    StageItem,
    StepDone,
    TownshipReviewBody,
    TownshipReviewItem,
    VillageDecisionBody,
    VillageDecisionItem,
    WithdrawBody,
)
from povguard_review.domain import case as domain
from povguard_review.domain.case import Action, Case
from povguard_review.handlers import Decide, Review

router = APIRouter(prefix="/v1", tags=["cases"])
S = domain.S
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "wrong stage (the problem names `current_stage`), data lock, open objections"}}


def _done(case: Case, events: list[Any], review: Review) -> dict[str, Any]:
    return {"case": case_public(case, review), "events": [e.event_type for e in events]}


@router.post("/cases", status_code=status.HTTP_201_CREATED, operation_id="open_case",
             summary="按村级分析研判会确定的重点排查名单手工建案", responses=_CONFLICT)
async def open_case(body: CaseCreate, runtime: Runtime, review: ReviewDep, actor: Opener) -> dict[str, Any]:
    """The case's village is the household's, as the registry has it (intake's HouseholdRegistered), never the
    request's: a clerk cannot open a case for another village's household, nor for a household that is not
    registered."""
    async with runtime.read() as conn:
        village = await review.village_of(conn, body.household_id)
    if village is None:
        raise RuleViolations([Violation(
            "household_id", f"户 {body.household_id} 不是在册农户（登记中没有这一户，或刚登记尚未同步）",
            "unknown_household")])
    if body.village_code is not None and body.village_code != village:
        raise RuleViolations([Violation("village_code", f"该户在册于行政村 {village}，不是 {body.village_code}",
                                        "registry")])
    require_org(actor, village)
    violations = []
    if body.acted_on > review.today():
        violations.append(Violation("acted_on", "日期不能晚于今天", "date"))
    if body.lead_date > body.acted_on:
        violations.append(Violation("lead_date", "线索日期不能晚于建案日期", "date"))
    if body.outcome == Outcome.NO_CHANGE:
        violations.append(Violation("outcome", "无变化不建案", "outcome"))
    if violations:
        raise RuleViolations(violations)
    if body.acted_on > review.policy.calendar.data_lock and actor.role != Role.ADMIN:
        from povguard_platform.errors import DomainConflict

        raise DomainConflict(f"数据已于 {review.policy.calendar.data_lock} 24:00 锁定", code="data_locked")
    async with runtime.engine.begin() as conn:
        before = await review.before(conn, body.household_id, body.outcome, body.category)
        opened = CaseOpened(
            case_id=str(uuid7()), household_id=body.household_id, village_code=village,
            township_code=village[:9], outcome=body.outcome, category=body.category, risks=body.risks,
            lead_date=body.lead_date, source="重点排查名单", collector=body.collector,
            three_year_target=body.three_year_target,
            income_increase_target=body.outcome == Outcome.INCOME_INCREASE_TARGET,
            kind_before=body.kind_before or before.kind, status_before=body.status_before or before.status,
            kind_before_monitoring=body.kind_before_monitoring or before.kind_before_monitoring,
            opened_on=body.acted_on)
        case = await review.open(conn, opened, actor)
    return case_public(case, review)


@router.get("/cases", operation_id="list_cases", summary="案件列表（本单位范围内）")
async def list_cases(
    runtime: Runtime, review: ReviewDep, actor: Reader,
    village: str | None = None, stage: str | None = None, household_id: str | None = None,
    open_only: bool = False, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    async with runtime.read() as conn:
        rows = await conn.execute(text("""
            SELECT state FROM review.cases
            WHERE village_code LIKE :prefix AND (CAST(:village AS text) IS NULL OR village_code = :village)
              AND (CAST(:stage AS text) IS NULL OR stage = :stage) AND (NOT :open_only OR open)
              AND (CAST(:hh AS text) IS NULL OR household_id = :hh) AND case_id > :cursor
            ORDER BY case_id LIMIT :n"""),
            {"prefix": org_prefix(actor) + "%", "village": village, "stage": stage, "open_only": open_only,
             "hh": household_id, "cursor": cursor or "", "n": limit + 1})
        cases = [Case.model_validate(r[0]) for r in rows]
    more = len(cases) > limit
    cases = cases[:limit]
    return {"data": [case_public(c, review) for c in cases], "next_cursor": cases[-1].case_id if more else None}


@router.get("/cases/{case_id}", operation_id="get_case", summary="案件详情及全部办理记录")
async def get_case(case_id: str, runtime: Runtime, review: ReviewDep, actor: Reader) -> dict[str, Any]:
    async with runtime.read() as conn:
        case = await review.load(conn, case_id)
        check_read(actor, case)
        events = await review.history(conn, case_id)
    data = case_public(case, review)
    data["history"] = [{"version": e.version, "type": e.type, "time": e.time.isoformat(),
                        "actor": e.actor.model_dump(mode="json"), "policy": e.policy, "data": e.data}
                       for e in events]
    return data


@router.get("/queue", operation_id="work_queue", summary="待我办理：按角色和单位列出等待办理的案件")
async def work_queue(runtime: Runtime, review: ReviewDep, actor: Acting,
                     limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> dict[str, Any]:
    stages = {
        Role.VILLAGE_CLERK: [S.APPRAISAL, S.NOTICE_PENDING, S.NOTICE],
        Role.WORK_TEAM: [S.APPRAISAL, S.NOTICE_PENDING, S.NOTICE],
        Role.VILLAGE_COMMITTEE: [S.APPRAISAL, S.VILLAGE_DECISION, S.NOTICE_PENDING, S.NOTICE],
        Role.TOWNSHIP_REVIEWER: [S.TOWNSHIP_REVIEW],
        Role.COUNTY_BUREAU: [S.COUNTY_REVIEW],
        Role.DEPARTMENT: [S.COUNTY_REVIEW],
        Role.ADMIN: list(domain.OPEN_STAGES),
    }.get(actor.role, [])
    own = department_of(actor)
    department = own.value if own else None
    level = domain.ROLE_LEVEL.get(actor.role)
    async with runtime.read() as conn:
        rows = await conn.execute(text("""
            SELECT state FROM review.cases
            WHERE open AND village_code LIKE :prefix
              AND (stage = ANY(:stages) OR (:township AND stage = :notice AND open_objections > 0))
              AND (CAST(:dept AS text) IS NULL OR NOT (CAST(:dept AS text) = ANY(checked)))
              AND (state->'people'->>:user IS NULL OR state->'people'->>:user = :level)
            ORDER BY lead_date NULLS LAST, case_id LIMIT :n"""),
            {"prefix": org_prefix(actor) + "%", "stages": [s.value for s in stages],
             "township": actor.role == Role.TOWNSHIP_REVIEWER, "notice": S.NOTICE.value, "dept": department,
             "user": actor.user, "level": level.value if level else "", "n": limit})
        cases = [Case.model_validate(r[0]) for r in rows]
    return {"role": actor.role.value, "org": actor.org, "count": len(cases),
            "data": [case_public(c, review) for c in cases]}



async def _act(runtime: Runtime, review: Review, case_id: str, actor: Actor, action: Action, body: Any,
               decide: Decide) -> dict[str, Any]:
    async with runtime.engine.begin() as conn:
        case, events = await review.act(conn, case_id, actor, action, body.acted_on, decide, body.override_reason)
    return _done(case, events, review)


async def _act_many(runtime: Runtime, review: Review, actor: Actor, action: Action, items: Sequence[Any],
                    decide: Callable[[Any], Decide], field: str = "items") -> BatchResult[StepDone]:
    """批量办理: the same action on many cases in one call, each case its own action under the same rules, all
    that was decided written together."""
    async with runtime.engine.begin() as conn:
        done, refused = await review.act_many(conn, actor, action, [
            (item.case_id, item.acted_on, decide(item), item.override_reason) for item in items])
    return BatchResult[StepDone](
        recorded=len(done), data=[StepDone(case_id=case.case_id, stage=case.stage, events=[e.event_type for e in ev])
                                  for _, case, ev in done],
        failed=[failure(index, items[index].case_id, exc, field) for index, exc in refused])


# What each stage action decides, given its body: shared by the one-case routes and the batch routes.
def _appraise(b: AppraisalBody) -> Decide:
    return lambda c: domain.appraise(c, b.acted_on, b.meeting_date, b.party_members_present,
                                     b.household_heads_present, b.votes_for, b.votes_against, b.opinions,
                                     b.override_reason)


def _village_decide(b: VillageDecisionBody) -> Decide:
    return lambda c: domain.village_decide(c, b.acted_on, b.proposed_measures, b.category, b.risks, b.opinion,
                                           b.override_reason)


def _start_notice(review: Review, b: NoticeBody) -> Decide:
    places, days = b.places or review.rules.notice_places, review.policy.calendar.notice_working_days
    return lambda c: domain.start_notice(c, b.acted_on, places, days, b.override_reason)


def _close_notice(b: StageAction) -> Decide:
    return lambda c: domain.close_notice(c, b.acted_on, b.override_reason)


def _township_review(b: TownshipReviewBody) -> Decide:
    return lambda c: domain.township_review(c, b.acted_on, b.spot_checked, b.proposed_measures, b.opinion,
                                            b.override_reason)


def _county_decide(review: Review, b: DecisionBody) -> Decide:
    return lambda c: domain.county_decide(
        c, b.acted_on, review.rules.check_departments, lead_department=b.lead_department,
        elimination_method=b.elimination_method, measures=b.proposed_measures, opinion=b.opinion,
        override_reason=b.override_reason)


@router.post("/cases/{case_id}/appraisal", operation_id="hold_appraisal", summary="村民及党员公开评议",
             responses=_CONFLICT)
async def appraisal(case_id: str, body: AppraisalBody, runtime: Runtime, review: ReviewDep,
                    actor: Acting) -> dict[str, Any]:
    return await _act(runtime, review, case_id, actor, Action.APPRAISE, body, _appraise(body))


@router.post("/cases/{case_id}/village-decision", operation_id="village_decide", summary="村两委研究决定及帮扶措施",
             responses=_CONFLICT)
async def village_decision(case_id: str, body: VillageDecisionBody, runtime: Runtime, review: ReviewDep,
                           actor: Acting) -> dict[str, Any]:
    return await _act(runtime, review, case_id, actor, Action.VILLAGE_DECIDE, body, _village_decide(body))


@router.post("/cases/{case_id}/notice", operation_id="start_notice", summary="开始公示（村委会和村民小组，5个工作日）",
             responses=_CONFLICT)
async def start_notice(case_id: str, body: NoticeBody, runtime: Runtime, review: ReviewDep,
                       actor: Acting) -> dict[str, Any]:
    return await _act(runtime, review, case_id, actor, Action.START_NOTICE, body, _start_notice(review, body))


@router.post("/cases/{case_id}/objections", status_code=status.HTTP_201_CREATED, operation_id="raise_objection",
             summary="公示期内提出异议（任何持有令牌的人，须说明理由）", responses=_CONFLICT)
async def raise_objection(case_id: str, body: ObjectionBody, runtime: Runtime, review: ReviewDep,
                          actor: Acting) -> dict[str, Any]:
    objection_id = str(uuid7())
    result = await _act(runtime, review, case_id, actor, Action.RAISE_OBJECTION, body,
                        lambda c: domain.raise_objection(c, body.acted_on, objection_id, body.reason, body.raised_by,
                                                         body.override_reason))
    result["objection_id"] = objection_id
    return result


@router.post("/cases/{case_id}/objections/{objection_id}/resolution", operation_id="resolve_objection",
             summary="异议调查处理：成立则退回村级，不成立则记录答复", responses=_CONFLICT)
async def resolve_objection(case_id: str, objection_id: str, body: ResolutionBody, runtime: Runtime,
                            review: ReviewDep, actor: Acting) -> dict[str, Any]:
    return await _act(runtime, review, case_id, actor, Action.RESOLVE_OBJECTION, body,
                      lambda c: domain.resolve_objection(c, body.acted_on, objection_id, body.upheld, body.finding,
                                                         body.override_reason))


@router.post("/cases/{case_id}/notice/closure", operation_id="close_notice",
             summary="公示期满且无未处理异议后结束公示", responses=_CONFLICT)
async def close_notice(case_id: str, body: StageAction, runtime: Runtime, review: ReviewDep,
                       actor: Acting) -> dict[str, Any]:
    return await _act(runtime, review, case_id, actor, Action.CLOSE_NOTICE, body, _close_notice(body))


@router.post("/cases/{case_id}/township-review", operation_id="township_review", summary="乡镇审核（含抽查）",
             responses=_CONFLICT)
async def township_review(case_id: str, body: TownshipReviewBody, runtime: Runtime, review: ReviewDep,
                          actor: Acting) -> dict[str, Any]:
    return await _act(runtime, review, case_id, actor, Action.TOWNSHIP_REVIEW, body, _township_review(body))


@router.post("/cases/{case_id}/department-checks", operation_id="record_department_check",
             summary="行业部门反馈比对结果（机器客户端；无异常或发现的问题）", responses=_CONFLICT)
async def department_check(case_id: str, body: CheckBody, runtime: Runtime, review: ReviewDep,
                           actor: Acting) -> dict[str, Any]:
    department = _checking_department(actor, body.department)
    return await _act(runtime, review, case_id, actor, Action.DEPARTMENT_CHECK, body,
                      lambda c: domain.department_check(c, body.acted_on, department, review.rules.check_departments,
                                                        body.findings, body.override_reason))


def _checking_department(actor: Actor, named: Department | None) -> Department:
    """A department's machine client answers for its own department only; others must name one."""
    own = department_of(actor)
    if own is not None:
        if named is not None and named != own:
            raise Forbidden(f"部门账号 {own.value} 只能反馈本部门的比对结果", code="department")
        return own
    if named is None:
        raise RuleViolations([Violation("department", "须写明部门", "required")])
    return named


@router.post("/department-checks", operation_id="record_department_checks",
             summary="行业部门批量反馈比对结果：每个案件单独办理，一件失败不影响其他")
async def department_checks(body: CheckBatch, runtime: Runtime, review: ReviewDep, actor: Acting,
                            department: Department | None = None) -> BatchResult[StepDone]:
    """How a department's system reports a day's comparisons; the answer lists the cases refused and why."""
    checking = _checking_department(actor, department)

    def decide(item: CheckItem) -> Decide:
        return lambda c: domain.department_check(c, body.acted_on, checking, review.rules.check_departments,
                                                 item.findings, item.override_reason)

    items = [CheckItem(case_id=r.case_id, findings=r.findings, acted_on=body.acted_on,
                       override_reason=r.override_reason or body.override_reason) for r in body.results]
    return await _act_many(runtime, review, actor, Action.DEPARTMENT_CHECK, items, decide, "results")


@router.post("/cases/{case_id}/decision", operation_id="county_decide",
             summary="县级审定：发出户状态决定（部门比对发现问题时：新识别不予纳入，已是监测对象的退回拟清退）",
             responses=_CONFLICT)
async def decision(case_id: str, body: DecisionBody, runtime: Runtime, review: ReviewDep,
                   actor: Acting) -> dict[str, Any]:
    return await _act(runtime, review, case_id, actor, Action.COUNTY_DECIDE, body, _county_decide(review, body))


@router.post("/cases/{case_id}/return", operation_id="return_case", summary="退回到前一阶段（须说明理由）",
             responses=_CONFLICT)
async def return_case(case_id: str, body: ReturnBody, runtime: Runtime, review: ReviewDep,
                      actor: Acting) -> dict[str, Any]:
    return await _act(runtime, review, case_id, actor, Action.RETURN, body, lambda c: domain.return_case(
        c, body.acted_on, body.to_stage, body.reason, body.override_reason))


@router.post("/cases/{case_id}/withdrawal", operation_id="withdraw_case", summary="撤回案件（须说明理由）",
             responses=_CONFLICT)
async def withdraw(case_id: str, body: WithdrawBody, runtime: Runtime, review: ReviewDep,
                   actor: Acting) -> dict[str, Any]:
    return await _act(runtime, review, case_id, actor, Action.WITHDRAW, body,
                      lambda c: domain.withdraw(c, body.acted_on, body.reason, body.override_reason))


# --- 批量办理: one call for what one meeting, one notice board or one reviewer's session covers -------------------
_BATCH = "批量办理：每个案件单独按同样规则办理，一件不成不影响其他（失败的列出原因）"


@router.post("/batches/appraisal", operation_id="hold_appraisals", summary="批量：村民评议（一次评议会评议多户）",
             description=_BATCH)
async def appraisals(body: Batch[AppraisalItem], runtime: Runtime, review: ReviewDep,
                     actor: Acting) -> BatchResult[StepDone]:
    return await _act_many(runtime, review, actor, Action.APPRAISE, body.items, _appraise)


@router.post("/batches/village-decision", operation_id="village_decide_many", summary="批量：村两委研究决定",
             description=_BATCH)
async def village_decisions(body: Batch[VillageDecisionItem], runtime: Runtime, review: ReviewDep,
                            actor: Acting) -> BatchResult[StepDone]:
    return await _act_many(runtime, review, actor, Action.VILLAGE_DECIDE, body.items, _village_decide)


@router.post("/batches/notice", operation_id="start_notices", summary="批量：开始公示（同一张公示榜）",
             description=_BATCH)
async def start_notices(body: Batch[NoticeItem], runtime: Runtime, review: ReviewDep,
                        actor: Acting) -> BatchResult[StepDone]:
    return await _act_many(runtime, review, actor, Action.START_NOTICE, body.items,
                           lambda item: _start_notice(review, item))


@router.post("/batches/notice-closure", operation_id="close_notices", summary="批量：公示期满结束公示",
             description=_BATCH)
async def close_notices(body: Batch[StageItem], runtime: Runtime, review: ReviewDep,
                        actor: Acting) -> BatchResult[StepDone]:
    return await _act_many(runtime, review, actor, Action.CLOSE_NOTICE, body.items, _close_notice)


@router.post("/batches/township-review", operation_id="township_review_many", summary="批量：乡镇审核",
             description=_BATCH)
async def township_reviews(body: Batch[TownshipReviewItem], runtime: Runtime, review: ReviewDep,
                           actor: Acting) -> BatchResult[StepDone]:
    return await _act_many(runtime, review, actor, Action.TOWNSHIP_REVIEW, body.items, _township_review)


@router.post("/batches/decision", operation_id="county_decide_many", summary="批量：县级审定",
             description=_BATCH)
async def county_decisions(body: Batch[DecisionItem], runtime: Runtime, review: ReviewDep,
                           actor: Acting) -> BatchResult[StepDone]:
    return await _act_many(runtime, review, actor, Action.COUNTY_DECIDE, body.items,
                           lambda item: _county_decide(review, item))
