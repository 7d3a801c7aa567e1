"""A review case (审核案件): its state folded from events, and the rules that decide which events an action
produces. No I/O here: the handlers load the case, call one of these functions and append what it returns.

Rules kept here (each raises before anything is written):
- stages in order: each action is allowed only at its stage, otherwise a conflict naming the current stage;
- who may act: the role of the action, inside the org unit of the household (village → its own, township → its
  villages, county → all);
- segregation of duties: one person acts at one level (村 / 乡镇 / 县) of a case only, and the collector of the visit
  cannot approve it (村两委决定, 乡镇审核, 县级审定);
- dates: an action is dated `acted_on`, never in the future nor before the case's last action; after the data lock
  only a county administrator may act, with a recorded reason;
- 识别时间不能超过15天: past the case's identification limit (lead date + the policy's days) an action needs a
  recorded reason too (except a villager's objection during the notice); the event records the limit it passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from povguard_contracts.assessment import OutcomeProposed
from povguard_contracts.payload import EventPayload
from povguard_contracts.review import (
    AppraisalHeld,
    CaseOpened,
    CaseReturned,
    CaseStage,
    CaseWithdrawn,
    CheckFinding,
    CountyDecided,
    DepartmentCheckRecorded,
    NoticeClosed,
    NoticeStarted,
    ObjectionRaised,
    ObjectionResolved,
    Opinion,
    ProposalChangeRecorded,
    ProposalUpdated,
    TownshipReviewed,
    VillageDecided,
)
from povguard_contracts.vocab import (
    NOTICED_OUTCOMES,
    Department,
    EliminationMethod,
    HouseholdKind,
    MeasureKind,
    MonitoringCategory,
    MonitoringStatus,
    Outcome,
    RiskType,
)
from povguard_platform.actor import Actor, Role
from povguard_platform.errors import DomainConflict, DomainForbidden, RuleViolations, Violation
from povguard_platform.policy import Calendar
from povguard_review.domain.calendar import last_notice_day

S = CaseStage
ORDER = [S.APPRAISAL, S.VILLAGE_DECISION, S.NOTICE_PENDING, S.NOTICE, S.TOWNSHIP_REVIEW, S.COUNTY_REVIEW, S.DECIDED]
OPEN_STAGES = frozenset(ORDER[:-1])


class Level(StrEnum):
    VILLAGE = "村"
    TOWNSHIP = "乡镇"
    COUNTY = "县"


RANK = {Level.VILLAGE: 1, Level.TOWNSHIP: 2, Level.COUNTY: 3}
STAGE_LEVEL = {S.APPRAISAL: Level.VILLAGE, S.VILLAGE_DECISION: Level.VILLAGE, S.NOTICE_PENDING: Level.VILLAGE,
               S.NOTICE: Level.VILLAGE, S.TOWNSHIP_REVIEW: Level.TOWNSHIP, S.COUNTY_REVIEW: Level.COUNTY}
ROLE_LEVEL = {Role.VILLAGE_CLERK: Level.VILLAGE, Role.VILLAGE_COMMITTEE: Level.VILLAGE, Role.WORK_TEAM: Level.VILLAGE,
              Role.TOWNSHIP_REVIEWER: Level.TOWNSHIP, Role.COUNTY_BUREAU: Level.COUNTY}
VILLAGE_ROLES = frozenset({Role.VILLAGE_CLERK, Role.VILLAGE_COMMITTEE, Role.WORK_TEAM})
# outcomes after which the household is a monitoring object whose risk is not eliminated
MONITORED_OUTCOMES = frozenset({Outcome.NEWLY_IDENTIFIED, Outcome.RE_MARKED, Outcome.ELIMINATION_ROLLED_BACK,
                                Outcome.FURTHER_SUPPORT})


# outcomes that identify a monitoring object (anew or again): the national form needs its 主要风险类型 (one kept
# under support or rolled back keeps the risk types it was identified with)
IDENTIFYING_OUTCOMES = frozenset({Outcome.NEWLY_IDENTIFIED, Outcome.RE_MARKED})
NO_RISK_TYPE = "监测对象须确定主要风险类型（全国防返贫监测信息系统必填，须入户核实后标注）"


class Action(StrEnum):
    APPRAISE = "村民评议"
    VILLAGE_DECIDE = "村两委决定"
    START_NOTICE = "开始公示"
    RAISE_OBJECTION = "提出异议"
    RESOLVE_OBJECTION = "处理异议"
    CLOSE_NOTICE = "结束公示"
    TOWNSHIP_REVIEW = "乡镇审核"
    DEPARTMENT_CHECK = "部门比对"
    COUNTY_DECIDE = "县级审定"
    RETURN = "退回"
    WITHDRAW = "撤回"


@dataclass(frozen=True)
class Rule:
    stages: frozenset[CaseStage]
    roles: frozenset[Role]  # ADMIN may always act (as a county administrator), inside its org unit
    level_action: bool = True  # counts for segregation of duties
    approval: bool = False  # the collector of the visit may not do it
    limited: bool = True  # held to the identification limit (a villager's objection is a right, not a delay)


_ANY = frozenset(r for r in Role if r not in (Role.SYSTEM, Role.INSPECTOR))
RULES: dict[Action, Rule] = {
    Action.APPRAISE: Rule(frozenset({S.APPRAISAL}), VILLAGE_ROLES),
    Action.VILLAGE_DECIDE: Rule(frozenset({S.VILLAGE_DECISION}), frozenset({Role.VILLAGE_COMMITTEE}), approval=True),
    Action.START_NOTICE: Rule(frozenset({S.NOTICE_PENDING}), VILLAGE_ROLES),
    Action.RAISE_OBJECTION: Rule(frozenset({S.NOTICE}), _ANY, level_action=False, limited=False),
    Action.RESOLVE_OBJECTION: Rule(frozenset({S.NOTICE}), frozenset({Role.VILLAGE_COMMITTEE, Role.WORK_TEAM,
                                                                     Role.TOWNSHIP_REVIEWER})),
    Action.CLOSE_NOTICE: Rule(frozenset({S.NOTICE}), VILLAGE_ROLES),
    Action.TOWNSHIP_REVIEW: Rule(frozenset({S.TOWNSHIP_REVIEW}), frozenset({Role.TOWNSHIP_REVIEWER}), approval=True),
    Action.DEPARTMENT_CHECK: Rule(frozenset({S.COUNTY_REVIEW}), frozenset({Role.DEPARTMENT}), level_action=False),
    Action.COUNTY_DECIDE: Rule(frozenset({S.COUNTY_REVIEW}), frozenset({Role.COUNTY_BUREAU}), approval=True),
    Action.RETURN: Rule(OPEN_STAGES - {S.APPRAISAL}, frozenset({Role.VILLAGE_COMMITTEE, Role.TOWNSHIP_REVIEWER,
                                                               Role.COUNTY_BUREAU})),
    Action.WITHDRAW: Rule(OPEN_STAGES, frozenset({Role.VILLAGE_COMMITTEE, Role.TOWNSHIP_REVIEWER,
                                                  Role.COUNTY_BUREAU})),
}


class Objection(BaseModel):
    objection_id: str
    raised_on: date
    reason: str
    raised_by: str | None = None
    resolved_on: date | None = None
    upheld: bool | None = None
    finding: str | None = None

    @property
    def open(self) -> bool:
        return self.resolved_on is None


class Check(BaseModel):
    department: Department
    hit: bool
    findings: list[CheckFinding] = Field(default_factory=list)
    checked_on: date


class LateAction(BaseModel):
    """An action taken past the case's identification limit, and why (the event's override_reason)."""

    event_type: str
    acted_on: date
    limit: date
    days_past: int
    reason: str | None = None


class Case(BaseModel):
    """The state of one case, as folded from its events (and kept as the read model's `state`)."""

    case_id: str = ""
    household_id: str = ""
    village_code: str = ""
    township_code: str = ""
    version: int = 0
    stage: CaseStage = S.APPRAISAL
    outcome: Outcome = Outcome.NO_CHANGE
    category: MonitoringCategory | None = None
    risks: list[RiskType] = Field(default_factory=list)
    lead_date: date | None = None
    source: str = ""
    collector: str | None = None
    kind_before: HouseholdKind | None = None
    status_before: MonitoringStatus | None = None
    kind_before_monitoring: HouseholdKind | None = None
    three_year_target: bool = False
    income_increase_target: bool = False
    opened_on: date | None = None
    last_acted_on: date | None = None
    people: dict[str, Level] = Field(default_factory=dict, description="who acted, at which level")
    appraisal: AppraisalHeld | None = None
    village_decision: VillageDecided | None = None
    notice: NoticeStarted | None = None
    notice_closed_on: date | None = None
    objections: dict[str, Objection] = Field(default_factory=dict)
    township_review: TownshipReviewed | None = None
    checks: dict[Department, Check] = Field(default_factory=dict)
    decision: CountyDecided | None = None
    withdrawn: CaseWithdrawn | None = None
    returns: int = 0
    proposal_changes: list[ProposalChangeRecorded] = Field(default_factory=list)
    late_actions: list[LateAction] = Field(default_factory=list, description="actions past the identification limit")

    @property
    def open(self) -> bool:
        return self.stage in OPEN_STAGES

    @property
    def noticed(self) -> bool:
        return self.outcome in NOTICED_OUTCOMES

    def open_objections(self) -> list[Objection]:
        return [o for o in self.objections.values() if o.open]

    def measures(self) -> list[MeasureKind]:
        for source in (self.township_review, self.village_decision):
            if source is not None and source.proposed_measures:
                return list(source.proposed_measures)
        return []


# --- folding --------------------------------------------------------------------------------------------------------


def _clear_from(case: Case, stage: CaseStage) -> None:
    """Forget what the stages from `stage` on produced (a return sends the case back through them)."""
    at = ORDER.index(stage)
    if at <= ORDER.index(S.APPRAISAL):
        case.appraisal = None
    if at <= ORDER.index(S.VILLAGE_DECISION):
        case.village_decision = None
    if at <= ORDER.index(S.NOTICE):
        case.notice, case.notice_closed_on = None, None
    if at <= ORDER.index(S.TOWNSHIP_REVIEW):
        case.township_review = None


def apply(case: Case, event: EventPayload) -> None:
    """Apply one event to the case (in place). Its lists, dicts and objections are replaced, never changed in
    place: a shallow copy of a case (`fold`) can then be changed without touching the original."""
    case.version += 1
    if isinstance(event, CaseOpened):
        case.case_id, case.household_id = event.case_id, event.household_id
        case.village_code, case.township_code = event.village_code, event.township_code
        case.outcome, case.category, case.risks = event.outcome, event.category, list(event.risks)
        case.lead_date, case.source, case.collector = event.lead_date, event.source, event.collector
        case.kind_before, case.status_before = event.kind_before, event.status_before
        case.kind_before_monitoring = event.kind_before_monitoring
        case.three_year_target, case.income_increase_target = event.three_year_target, event.income_increase_target
        case.opened_on, case.stage = event.opened_on, S.APPRAISAL
        return
    if isinstance(event, ProposalUpdated):
        case.outcome, case.category, case.risks = event.outcome, event.category, list(event.risks)
        case.lead_date = event.lead_date or case.lead_date
        return
    if isinstance(event, ProposalChangeRecorded):
        case.proposal_changes = [*case.proposal_changes, event]
        return
    acted_on = getattr(event, "acted_on", None)
    if acted_on is not None:
        case.last_acted_on = max(acted_on, case.last_acted_on or acted_on)
    limit = getattr(event, "past_identification_limit", None)
    on = acted_on or getattr(event, "decided_on", None)
    if limit is not None and on is not None:
        case.late_actions = [*case.late_actions, LateAction(
            event_type=event.event_type, acted_on=on, limit=limit, days_past=(on - limit).days,
            reason=getattr(event, "override_reason", None))]
    if isinstance(event, AppraisalHeld):
        case.appraisal, case.stage = event, S.VILLAGE_DECISION
    elif isinstance(event, VillageDecided):
        case.village_decision = event
        case.category = event.category or case.category
        case.risks = list(event.risks) or case.risks
        case.stage = S.NOTICE_PENDING if event.noticed else S.TOWNSHIP_REVIEW
    elif isinstance(event, NoticeStarted):
        case.notice, case.stage = event, S.NOTICE
    elif isinstance(event, ObjectionRaised):
        case.objections = {**case.objections, event.objection_id: Objection(
            objection_id=event.objection_id, raised_on=event.acted_on, reason=event.reason, raised_by=event.raised_by)}
    elif isinstance(event, ObjectionResolved):
        resolved = case.objections[event.objection_id].model_copy(
            update={"resolved_on": event.acted_on, "upheld": event.upheld, "finding": event.finding})
        case.objections = {**case.objections, event.objection_id: resolved}
    elif isinstance(event, NoticeClosed):
        case.notice_closed_on, case.stage = event.acted_on, S.TOWNSHIP_REVIEW
    elif isinstance(event, TownshipReviewed):
        case.township_review, case.stage = event, S.COUNTY_REVIEW
    elif isinstance(event, DepartmentCheckRecorded):
        case.checks = {**case.checks, event.department: Check(
            department=event.department, hit=event.hit, findings=list(event.findings), checked_on=event.acted_on)}
    elif isinstance(event, CaseReturned):
        case.returns += 1
        _clear_from(case, event.to_stage)
        if event.proposed_outcome is not None:
            case.outcome = event.proposed_outcome
        case.stage = event.to_stage
    elif isinstance(event, CaseWithdrawn):
        case.withdrawn, case.stage = event, S.WITHDRAWN
    elif isinstance(event, CountyDecided):
        case.decision, case.stage = event, S.DECIDED


LEVEL_EVENTS = (AppraisalHeld, VillageDecided, NoticeStarted, NoticeClosed, ObjectionResolved, TownshipReviewed,
                CountyDecided, CaseReturned, CaseWithdrawn)


def apply_by(case: Case, event: EventPayload, actor: Actor | None) -> None:
    """Apply an event and remember at which level its actor acted (segregation of duties)."""
    level = _level(actor, case) if actor is not None else None
    apply(case, event)
    if actor is not None and level is not None and isinstance(event, LEVEL_EVENTS) and actor.user not in case.people:
        case.people = {**case.people, actor.user: level}


def fold(events: Iterable[EventPayload | tuple[EventPayload, Actor]], case: Case | None = None) -> Case:
    """Fold events (or (event, actor) pairs, as recorded) into a copy of `case`, which is left as it was. The copy
    is shallow: `apply` replaces what it changes, and the events a case keeps are never changed."""
    state = case.model_copy() if case is not None else Case()
    for item in events:
        if isinstance(item, tuple):
            apply_by(state, item[0], item[1])
        else:
            apply(state, item)
    return state


# --- who may act ----------------------------------------------------------------------------------------------------


def _level(actor: Actor, case: Case) -> Level | None:
    if actor.role == Role.ADMIN:
        return STAGE_LEVEL.get(case.stage)
    return ROLE_LEVEL.get(actor.role)


def authorise(case: Case, actor: Actor, action: Action, acted_on: date, *, today: date, calendar: Calendar,
              override_reason: str | None = None) -> Level | None:
    """Check every rule of who may do `action` on `case` on `acted_on`; returns the level the actor acts at."""
    rule = RULES[action]
    if actor.role != Role.ADMIN and actor.role not in rule.roles:
        raise DomainForbidden(f"角色 {actor.role.value} 不能{action.value}；可由："
                        + "、".join(sorted(r.value for r in rule.roles)) + " 办理", code="role")
    if not actor.covers(case.village_code):  # every role, administrators too: the actor's org unit
        raise DomainForbidden(f"单位 {actor.org} 不能办理 {case.village_code} 的案件（不在本单位范围内）",
                              code="org_scope")
    if case.stage not in rule.stages:
        raise DomainConflict(f"案件当前处于「{case.stage.value}」阶段，不能{action.value}",
                             current_stage=case.stage.value, code="wrong_stage",
                             allowed_stages=[s.value for s in [*ORDER, S.WITHDRAWN] if s in rule.stages])
    level = _level(actor, case)
    if rule.level_action and level is not None:
        acted = case.people.get(actor.user)
        if acted is not None and acted != level:
            raise DomainForbidden(f"{actor.user} 已在本案件{acted.value}级办理过，"
                            f"不能再在{level.value}级办理（分级审核、不得兼任）", code="segregation")
        if action == Action.RETURN or action == Action.WITHDRAW:
            stage_level = STAGE_LEVEL[case.stage]
            if RANK[level] < RANK[stage_level]:
                raise DomainForbidden(f"案件已在{stage_level.value}级，{level.value}级不能{action.value}", code="level")
    if rule.approval and case.collector is not None and actor.user == case.collector:
        raise DomainForbidden(f"{actor.user} 是本户入户调查的信息采集员，不能审核本户（采集与审核分离）",
                              code="segregation")
    violations: list[Violation] = []
    if acted_on > today:
        violations.append(Violation("acted_on", f"办理日期 {acted_on} 不能晚于今天（{today}）", "date"))
    if case.last_acted_on is not None and acted_on < case.last_acted_on:
        violations.append(Violation("acted_on", f"办理日期不能早于本案件上一步的日期 {case.last_acted_on}", "date"))
    if violations:
        raise RuleViolations(violations)
    data_lock, reasons = calendar.data_lock, []
    if acted_on > data_lock:
        if actor.role != Role.ADMIN:
            raise DomainConflict(f"数据已于 {data_lock} 24:00 锁定：只有县级管理员可修改，并须说明理由",
                                 code="data_locked", data_lock=data_lock.isoformat())
        reasons.append("数据锁定后修改")
    limit = past_limit(case, action, acted_on, calendar.identification_max_days)
    if limit is not None:
        reasons.append(f"识别时间不能超过{calendar.identification_max_days}天（线索日期 {case.lead_date}，"
                       f"时限 {limit}），{acted_on} 已超期 {(acted_on - limit).days} 天，超期办理")
    if reasons and not (override_reason or "").strip():
        raise RuleViolations([Violation("override_reason", "；".join(reasons) + "须说明理由", "required")])
    return level


def past_limit(case: Case, action: Action, acted_on: date, max_days: int) -> date | None:
    """The identification limit `action` on `acted_on` passes, if it does (None: within it, no lead date, or an
    action the limit does not hold)."""
    limit = identification_limit(case, max_days)
    return limit if limit is not None and RULES[action].limited and acted_on > limit else None


def mark_past_limit(events: Sequence[EventPayload], limit: date | None) -> list[EventPayload]:
    """The events of an action past the limit, each recording the limit it passed (its reason is already there)."""
    if limit is None:
        return list(events)
    return [e.model_copy(update={"past_identification_limit": limit})
            if "past_identification_limit" in type(e).model_fields else e for e in events]


# --- proposals ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Before:
    """What the household was when the case opened (from the registry when known, else from the proposal)."""

    kind: HouseholdKind
    status: MonitoringStatus
    kind_before_monitoring: HouseholdKind | None


def before_from_outcome(outcome: Outcome, category: MonitoringCategory | None,
                        lifted_year: int | None = None, kind: HouseholdKind | None = None,
                        status: MonitoringStatus | None = None) -> Before:
    if category == MonitoringCategory.UNSTABLE_LIFTED or lifted_year is not None:
        origin: HouseholdKind | None = HouseholdKind.LIFTED
    elif category == MonitoringCategory.MARGINAL:
        origin = HouseholdKind.ORDINARY
    elif kind in (HouseholdKind.LIFTED, HouseholdKind.ORDINARY):
        origin = kind
    elif kind == HouseholdKind.MONITORED:
        # known to the registry: a household lifted from poverty carries its 脱贫年度 on the form, so a monitoring
        # object without one was an ordinary household before monitoring
        origin = HouseholdKind.ORDINARY
    else:
        origin = None  # not in the registry and 突发严重困难户: must be given by hand for a removal
    if kind is None:
        if outcome in (Outcome.NEWLY_IDENTIFIED, Outcome.INCOME_INCREASE_TARGET):
            kind = origin or HouseholdKind.ORDINARY
        elif outcome == Outcome.NATURAL_CHANGE:
            kind = origin or HouseholdKind.MONITORED
        else:
            kind = HouseholdKind.MONITORED
    if status is None:
        if kind != HouseholdKind.MONITORED:
            status = MonitoringStatus.NOT_MONITORED
        elif outcome in (Outcome.RE_MARKED, Outcome.ELIMINATION_ROLLED_BACK):
            status = MonitoringStatus.RISK_ELIMINATED
        else:
            status = MonitoringStatus.RISK_NOT_ELIMINATED
    return Before(kind, status, origin)


def open_case(case_id: str, proposal: OutcomeProposed, before: Before, opened_on: date) -> CaseOpened:
    return CaseOpened(
        case_id=case_id, household_id=proposal.household_id, village_code=proposal.village_code,
        township_code=proposal.township_code, outcome=proposal.outcome, category=proposal.category,
        risks=list(proposal.risks), lead_date=proposal.lead_date, source="研判建议",
        proposal_visit_id=proposal.visit_id, collector=proposal.collector,
        three_year_target=proposal.three_year_target,
        income_increase_target=(proposal.income_increase_target
                                or proposal.outcome == Outcome.INCOME_INCREASE_TARGET),
        kind_before=before.kind, status_before=before.status, kind_before_monitoring=before.kind_before_monitoring,
        opened_on=opened_on)


def on_proposal(case: Case | None, proposal: OutcomeProposed) -> Sequence[EventPayload]:
    """What a proposal does to the household's open case (the caller opens a new case when there is none)."""
    if case is None or not case.open:
        return []
    same = (proposal.outcome == case.outcome and proposal.category == case.category
            and list(proposal.risks) == case.risks)
    if same and not proposal.held:
        return []
    if case.stage == S.APPRAISAL and not proposal.held and proposal.outcome != Outcome.NO_CHANGE:
        return [ProposalUpdated(case_id=case.case_id, household_id=case.household_id, outcome=proposal.outcome,
                                category=proposal.category, risks=list(proposal.risks), lead_date=proposal.lead_date,
                                rationale=proposal.rationale)]
    return [ProposalChangeRecorded(case_id=case.case_id, household_id=case.household_id, outcome=proposal.outcome,
                                   category=proposal.category, risks=list(proposal.risks), held=proposal.held,
                                   rationale=proposal.rationale, stage=case.stage)]


def opens_case(proposal: OutcomeProposed, last_closed_outcome: Outcome | None) -> bool:
    """A proposal opens a case unless it changes nothing, is held (no signed authorisation), or repeats the outcome
    of the household's last closed case in this campaign."""
    return (proposal.outcome != Outcome.NO_CHANGE and not proposal.held
            and proposal.outcome != last_closed_outcome)


# --- stage actions --------------------------------------------------------------------------------------------------


def _ids(case: Case) -> dict[str, str]:
    return {"case_id": case.case_id, "household_id": case.household_id}


def appraise(case: Case, acted_on: date, meeting_date: date, party_members_present: int,
             household_heads_present: int, votes_for: int, votes_against: int, opinions: list[Opinion],
             override_reason: str | None = None) -> AppraisalHeld:
    violations = []
    if meeting_date > acted_on:
        violations.append(Violation("meeting_date", "评议会日期不能晚于登记日期", "date"))
    if votes_for + votes_against > party_members_present + household_heads_present:
        violations.append(Violation("votes_for", "表决票数不能多于到会党员和户主人数", "count"))
    if party_members_present + household_heads_present == 0:
        violations.append(Violation("household_heads_present", "评议会须有党员或户主到会", "count"))
    if violations:
        raise RuleViolations(violations)
    return AppraisalHeld(**_ids(case), acted_on=acted_on, override_reason=override_reason, meeting_date=meeting_date,
                         party_members_present=party_members_present,
                         household_heads_present=household_heads_present, votes_for=votes_for,
                         votes_against=votes_against, opinions=opinions)


def village_decide(case: Case, acted_on: date, measures: list[MeasureKind], category: MonitoringCategory | None,
                   risks: list[RiskType], opinion: str, override_reason: str | None = None) -> VillageDecided:
    violations = []
    if case.outcome in MONITORED_OUTCOMES and not measures:
        violations.append(Violation("proposed_measures", "风险未消除的户须逐户提出帮扶措施（缺什么补什么）",
                                    "required"))
    if case.outcome in IDENTIFYING_OUTCOMES and not (risks or case.risks):
        violations.append(Violation("risks", NO_RISK_TYPE, "required"))
    if violations:
        raise RuleViolations(violations)
    return VillageDecided(**_ids(case), acted_on=acted_on, override_reason=override_reason, category=category,
                          risks=risks, proposed_measures=measures, opinion=opinion, noticed=case.noticed)


def start_notice(case: Case, acted_on: date, places: list[str], working_days: int,
                 override_reason: str | None = None) -> NoticeStarted:
    return NoticeStarted(**_ids(case), acted_on=acted_on, override_reason=override_reason, places=places,
                         working_days=working_days, ends_on=last_notice_day(acted_on, working_days))


def raise_objection(case: Case, acted_on: date, objection_id: str, reason: str, raised_by: str | None,
                    override_reason: str | None = None) -> ObjectionRaised:
    assert case.notice is not None
    if acted_on < case.notice.acted_on or acted_on > case.notice.ends_on:
        raise DomainConflict(f"公示期为 {case.notice.acted_on} 至 {case.notice.ends_on}，{acted_on} 不在公示期内",
                             code="outside_notice", current_stage=case.stage.value)
    if not reason.strip():
        raise RuleViolations([Violation("reason", "异议须说明理由", "required")])
    return ObjectionRaised(**_ids(case), acted_on=acted_on, override_reason=override_reason,
                           objection_id=objection_id, reason=reason, raised_by=raised_by)


def resolve_objection(case: Case, acted_on: date, objection_id: str, upheld: bool, finding: str,
                      override_reason: str | None = None) -> list[EventPayload]:
    objection = case.objections.get(objection_id)
    if objection is None:
        from povguard_platform.errors import DomainNotFound

        raise DomainNotFound(f"本案件没有异议 {objection_id}")
    if not objection.open:
        raise DomainConflict(f"异议 {objection_id} 已于 {objection.resolved_on} 处理", code="already_resolved",
                             current_stage=case.stage.value)
    if not finding.strip():
        raise RuleViolations([Violation("finding", "须写明调查核实结果或答复", "required")])
    events: list[EventPayload] = [ObjectionResolved(**_ids(case), acted_on=acted_on, override_reason=override_reason,
                                                    objection_id=objection_id, upheld=upheld, finding=finding)]
    if upheld:
        events.append(CaseReturned(**_ids(case), acted_on=acted_on, override_reason=override_reason,
                                   from_stage=case.stage, to_stage=S.APPRAISAL, reason=f"异议成立：{finding}",
                                   objection_id=objection_id))
    return events


def close_notice(case: Case, acted_on: date, override_reason: str | None = None) -> NoticeClosed:
    assert case.notice is not None
    if acted_on <= case.notice.ends_on:
        raise DomainConflict(f"公示须满 {case.notice.working_days} 个工作日（至 {case.notice.ends_on}），"
                             f"{acted_on} 还不能结束公示", code="notice_running",
                             ends_on=case.notice.ends_on.isoformat(),
                             current_stage=case.stage.value)
    pending = case.open_objections()
    if pending:
        raise DomainConflict(f"还有 {len(pending)} 条异议未处理，不能结束公示", code="objections_open",
                             objections=[o.objection_id for o in pending], current_stage=case.stage.value)
    return NoticeClosed(**_ids(case), acted_on=acted_on, override_reason=override_reason)


def township_review(case: Case, acted_on: date, spot_checked: bool, measures: list[MeasureKind], opinion: str,
                    override_reason: str | None = None) -> TownshipReviewed:
    return TownshipReviewed(**_ids(case), acted_on=acted_on, override_reason=override_reason,
                            spot_checked=spot_checked, proposed_measures=measures or case.measures(), opinion=opinion)


def department_check(case: Case, acted_on: date, department: Department, required: Sequence[Department],
                     findings: list[CheckFinding], override_reason: str | None = None) -> DepartmentCheckRecorded:
    if department not in required:
        raise RuleViolations([Violation("department", f"{department.value} 不在县级联审比对部门之列", "department")])
    return DepartmentCheckRecorded(**_ids(case), acted_on=acted_on, override_reason=override_reason,
                                   department=department, hit=bool(findings), findings=findings)


def county_decide(case: Case, acted_on: date, required: Sequence[Department], *,
                  lead_department: Department | None, elimination_method: EliminationMethod | None,
                  measures: list[MeasureKind], opinion: str, override_reason: str | None = None,
                  ) -> EventPayload:
    """县级审定: a CountyDecided, or (a department hit on an existing monitoring object) a return to the village
    proposing 识别不精准整户清退."""
    missing = [d for d in required if d not in case.checks]
    if missing:
        raise DomainConflict("还有部门未反馈比对结果：" + "、".join(d.value for d in missing),
                             code="checks_missing", missing=[d.value for d in missing],
                             current_stage=case.stage.value)
    hits = [f"{c.department.value}：{f.kind}（{f.detail}）" for c in case.checks.values() if c.hit for f in c.findings]
    kind_before = case.kind_before or HouseholdKind.ORDINARY
    status_before = case.status_before or MonitoringStatus.NOT_MONITORED
    common = {**_ids(case), "decided_on": acted_on, "override_reason": override_reason, "opinion": opinion,
              "findings": hits, "three_year_target": case.three_year_target}
    if hits and case.outcome != Outcome.REMOVED_WRONGLY_IDENTIFIED:
        if kind_before != HouseholdKind.MONITORED:
            return CountyDecided(**common, outcome=Outcome.NO_CHANGE, kind=kind_before, status=status_before,
                                 category=None, refused=True)
        return CaseReturned(**_ids(case), acted_on=acted_on, override_reason=override_reason, from_stage=case.stage,
                            to_stage=S.APPRAISAL, proposed_outcome=Outcome.REMOVED_WRONGLY_IDENTIFIED,
                            reason="部门比对发现问题，拟识别不精准整户清退：" + "；".join(hits))
    measures = measures or case.measures()
    violations: list[Violation] = []
    if case.outcome in MONITORED_OUTCOMES:
        if lead_department is None:
            violations.append(Violation("lead_department", "须确定牵头帮扶部门", "required"))
        if case.category is None:
            violations.append(Violation("category", "须确定监测对象类别", "required"))
        if case.outcome in IDENTIFYING_OUTCOMES and not case.risks:  # e.g. lost by a later proposal update
            violations.append(Violation("risks", NO_RISK_TYPE, "required"))
        if violations:
            raise RuleViolations(violations)
        return CountyDecided(**common, outcome=case.outcome, kind=HouseholdKind.MONITORED, category=case.category,
                             status=MonitoringStatus.RISK_NOT_ELIMINATED, risks=case.risks,
                             lead_department=lead_department, proposed_measures=measures)
    if case.outcome == Outcome.RISK_ELIMINATION:
        if elimination_method is None:
            raise RuleViolations([Violation("elimination_method", "风险消除须写明方式：帮扶消除或自然消除",
                                            "required")])
        return CountyDecided(**common, outcome=case.outcome, kind=HouseholdKind.MONITORED, category=case.category,
                             status=MonitoringStatus.RISK_ELIMINATED, risks=case.risks,
                             elimination_method=elimination_method, lead_department=lead_department,
                             proposed_measures=measures)
    if case.outcome == Outcome.REMOVED_WRONGLY_IDENTIFIED:
        if case.kind_before_monitoring is None:
            raise RuleViolations([Violation("kind_before_monitoring",
                                            "整户清退须知道该户纳入监测前的户类型（脱贫户或一般农户）", "required")])
        return CountyDecided(**common, outcome=case.outcome, kind=case.kind_before_monitoring, category=None,
                             status=MonitoringStatus.REMOVED)
    # 户户增收 and 自然变更: kind and status unchanged
    return CountyDecided(**common, outcome=case.outcome, kind=kind_before, category=case.category,
                         status=status_before, risks=case.risks, lead_department=lead_department,
                         proposed_measures=measures,
                         income_increase_target=case.outcome == Outcome.INCOME_INCREASE_TARGET)


def return_case(case: Case, acted_on: date, to_stage: CaseStage, reason: str,
                override_reason: str | None = None) -> CaseReturned:
    if to_stage not in ORDER or ORDER.index(to_stage) >= ORDER.index(case.stage):
        raise RuleViolations([Violation("to_stage", f"只能退回到「{case.stage.value}」之前的阶段", "stage")])
    if to_stage == S.NOTICE:
        raise RuleViolations([Violation("to_stage", "不能退回到公示中：退回到待公示后重新公示", "stage")])
    if not reason.strip():
        raise RuleViolations([Violation("reason", "退回须说明理由", "required")])
    return CaseReturned(**_ids(case), acted_on=acted_on, override_reason=override_reason, from_stage=case.stage,
                        to_stage=to_stage, reason=reason)


def withdraw(case: Case, acted_on: date, reason: str, override_reason: str | None = None) -> CaseWithdrawn:
    if not reason.strip():
        raise RuleViolations([Violation("reason", "撤回须说明理由", "required")])
    return CaseWithdrawn(**_ids(case), acted_on=acted_on, override_reason=override_reason, from_stage=case.stage,
                         reason=reason)


# --- deadlines ------------------------------------------------------------------------------------------------------


def identification_limit(case: Case, max_days: int) -> date | None:
    return case.lead_date + timedelta(days=max_days) if case.lead_date else None


def held_to(case: Case, planned: date | None) -> date | None:
    """The deadline a case is held to in its stage: during 公示 the last day its own notice computes (five working
    days by the holiday calendar), since closing is refused before it; otherwise the plan's date for the stage."""
    if case.stage == CaseStage.NOTICE and case.notice is not None:
        return case.notice.ends_on
    return planned


def notice_misses_plan(case: Case, planned_end: date) -> bool:
    """A notice whose own end falls after the plan's `notice_end`: flagged from the day it starts."""
    return case.notice is not None and case.notice.ends_on > planned_end
