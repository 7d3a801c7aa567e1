"""A household's state, folded from its events, and the decisions that turn commands into events."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from povguard_contracts.intake import (
    HouseholdRegistered,
    LeadOpened,
    Member,
    MemberAdded,
    MemberFacts,
    MemberRemoved,
    MemberUpdated,
    MonitoringStatusChanged,
    Place,
    PriorityFlagsSet,
    VisitCorrected,
    VisitForm,
    VisitRecorded,
)
from povguard_contracts.payload import EventPayload
from povguard_contracts.vocab import (
    JOIN_REASONS,
    LEAVE_REASONS,
    ChangeReason,
    HouseholdKind,
    LeadSource,
    MonitoringCategory,
    MonitoringStatus,
    PriorityGroup,
    Relation,
)
from povguard_intake.domain import rules
from povguard_intake.domain.idcard import normalise
from povguard_platform.errors import DomainNotFound, RuleViolations, Violation
from povguard_platform.ids import uuid7
from povguard_platform.policy import Policy


class Visit(BaseModel):
    model_config = ConfigDict(frozen=True)

    visit_id: str
    form: VisitForm
    corrects: str | None = None
    superseded_by: str | None = None
    reason: str = ""


class Lead(BaseModel):
    model_config = ConfigDict(frozen=True)

    lead_id: str
    source: LeadSource
    lead_date: date
    warning_id: str | None = None
    note: str = ""


class Household(BaseModel):
    """The current state of one household (农户), rebuilt from its events."""

    model_config = ConfigDict(frozen=True)

    household_id: str = ""
    code: str = ""
    place: Place | None = None
    kind: HouseholdKind = HouseholdKind.ORDINARY
    lifted_year: int | None = None
    category: MonitoringCategory | None = None
    status: MonitoringStatus = MonitoringStatus.NOT_MONITORED
    flags: list[PriorityGroup] = Field(default_factory=list)
    members: dict[str, MemberFacts] = Field(default_factory=dict)
    former_members: dict[str, MemberFacts] = Field(default_factory=dict)
    visits: dict[str, Visit] = Field(default_factory=dict)
    leads: list[Lead] = Field(default_factory=list)
    version: int = 0

    @property
    def exists(self) -> bool:
        return self.version > 0

    @property
    def latest_visit(self) -> Visit | None:
        current = [v for v in self.visits.values() if v.superseded_by is None]
        return max(current, key=lambda v: (v.form.visit_date, v.visit_id)) if current else None


def apply(state: Household, event: EventPayload) -> Household:
    """Fold one event into the state (never fails: events are facts)."""
    v = state.version + 1
    match event:
        case HouseholdRegistered():
            return Household(
                household_id=event.household_id, code=event.code, place=event.place, kind=event.kind,
                lifted_year=event.lifted_year, category=event.category, status=event.status, flags=event.flags,
                members={m.member_id: m.facts for m in event.members}, version=v)
        case MemberAdded():
            return state.model_copy(update={"members": {**state.members, event.member.member_id: event.member.facts},
                                            "version": v})
        case MemberUpdated():
            return state.model_copy(update={"members": {**state.members, event.member_id: event.facts},
                                            "version": v})
        case MemberRemoved():
            members = dict(state.members)
            gone = members.pop(event.member_id, None)
            former = {**state.former_members, event.member_id: gone} if gone else state.former_members
            return state.model_copy(update={"members": members, "former_members": former, "version": v})
        case PriorityFlagsSet():
            return state.model_copy(update={"flags": event.flags, "version": v})
        case VisitRecorded():
            visits = {**state.visits, event.visit_id: Visit(visit_id=event.visit_id, form=event.form)}
            return state.model_copy(update={"visits": visits, "version": v})
        case VisitCorrected():
            visits = dict(state.visits)
            old = visits.get(event.corrects)
            if old is not None:
                visits[event.corrects] = old.model_copy(update={"superseded_by": event.visit_id})
            visits[event.visit_id] = Visit(visit_id=event.visit_id, form=event.form, corrects=event.corrects,
                                           reason=event.reason)
            return state.model_copy(update={"visits": visits, "version": v})
        case LeadOpened():
            lead = Lead(lead_id=event.lead_id, source=event.source, lead_date=event.lead_date,
                        warning_id=event.warning_id, note=event.note)
            return state.model_copy(update={"leads": [*state.leads, lead], "version": v})
        case MonitoringStatusChanged():
            return state.model_copy(update={"kind": event.kind, "category": event.category,
                                            "status": event.status, "version": v})
    return state.model_copy(update={"version": v})


def fold(events: Iterable[EventPayload], state: Household | None = None) -> Household:
    state = state or Household()
    for event in events:
        state = apply(state, event)
    return state


# --- decisions ----------------------------------------------------------------------------------------------------


def _raise(violations: list[Violation]) -> None:
    if violations:
        raise RuleViolations(violations)


def register(
    *, code: str, place: Place, kind: HouseholdKind, lifted_year: int | None, category: MonitoringCategory | None,
    status: MonitoringStatus, flags: list[PriorityGroup], members: list[MemberFacts], source: str,
    policy: Policy, today: date, household_id: str | None = None,
) -> HouseholdRegistered:
    violations = rules.place_violations(place, policy)
    violations += rules.kind_violations(kind, lifted_year, category, status, policy)
    violations += rules.members_violations(members, "members", today)
    if len(set(flags)) != len(flags):
        violations.append(Violation("flags", "重点排查类型有重复项", "allowed_values"))
    _raise(violations)
    return HouseholdRegistered(
        household_id=household_id or str(uuid7()), code=code, place=place, kind=kind, lifted_year=lifted_year,
        category=category, status=status, flags=flags,
        members=[Member(member_id=str(uuid7()), facts=_normalised(m)) for m in members], source=source)


def _normalised(facts: MemberFacts) -> MemberFacts:
    return facts.model_copy(update={"id_number": normalise(facts.id_number)})


def _require(state: Household) -> None:
    if not state.exists:
        raise DomainNotFound(f"没有这一户（{state.household_id}）")


def _heads_after(members: dict[str, MemberFacts]) -> list[Violation]:
    heads = sum(1 for m in members.values() if m.relation == Relation.HEAD)
    if heads != 1:
        return [Violation("relation", f"变更后本户必须有且只有一名户主（将有 {heads} 名）", "one_head")]
    return []


def add_member(state: Household, facts: MemberFacts, reason: ChangeReason, effective: date, note: str,
               policy: Policy, today: date) -> MemberAdded:
    _require(state)
    violations = rules.member_violations(facts, "facts", today)
    if reason not in JOIN_REASONS:
        violations.append(Violation("reason", f"“{reason}”不是成员增加的原因", "allowed_values"))
    violations += rules.effective_date_violations(effective, policy, today)
    if any(normalise(m.id_number) == normalise(facts.id_number) for m in state.members.values()):
        violations.append(Violation("facts.id_number", "该身份证号码已是本户成员", "duplicate"))
    member = Member(member_id=str(uuid7()), facts=_normalised(facts))
    violations += [Violation("facts." + v.field, v.message, v.code)
                   for v in _heads_after({**state.members, member.member_id: member.facts})]
    _raise(violations)
    return MemberAdded(household_id=state.household_id, member=member, reason=reason, effective=effective, note=note)


def update_member(state: Household, member_id: str, facts: MemberFacts, reason: ChangeReason, effective: date,
                  note: str, policy: Policy, today: date) -> MemberUpdated:
    _require(state)
    if member_id not in state.members:
        raise DomainNotFound(f"本户没有成员 {member_id}")
    violations = rules.member_violations(facts, "facts", today)
    violations += rules.effective_date_violations(effective, policy, today)
    others = {k: m for k, m in state.members.items() if k != member_id}
    if any(normalise(m.id_number) == normalise(facts.id_number) for m in others.values()):
        violations.append(Violation("facts.id_number", "该身份证号码已是本户其他成员", "duplicate"))
    violations += [Violation("facts." + v.field, v.message, v.code)
                   for v in _heads_after({**others, member_id: facts})]
    _raise(violations)
    return MemberUpdated(household_id=state.household_id, member_id=member_id, facts=_normalised(facts),
                         reason=reason, effective=effective, note=note)


def remove_member(state: Household, member_id: str, reason: ChangeReason, effective: date, note: str,
                  policy: Policy, today: date) -> MemberRemoved:
    _require(state)
    if member_id not in state.members:
        raise DomainNotFound(f"本户没有成员 {member_id}")
    violations = rules.effective_date_violations(effective, policy, today)
    if reason not in LEAVE_REASONS:
        violations.append(Violation("reason", f"“{reason}”不是成员减少的原因", "allowed_values"))
    if state.members[member_id].relation == Relation.HEAD and len(state.members) > 1:
        violations.append(Violation("member_id", "户主不能直接减少：请先将另一名成员变更为户主", "one_head"))
    _raise(violations)
    return MemberRemoved(household_id=state.household_id, member_id=member_id, reason=reason, effective=effective,
                         note=note)


def set_flags(state: Household, flags: list[PriorityGroup], reason: str) -> PriorityFlagsSet:
    _require(state)
    if len(set(flags)) != len(flags):
        raise RuleViolations([Violation("flags", "重点排查类型有重复项", "allowed_values")])
    return PriorityFlagsSet(household_id=state.household_id, flags=flags, reason=reason)


def record_visit(state: Household, form: VisitForm, policy: Policy, today: date) -> VisitRecorded:
    _require(state)
    _raise(rules.visit_violations(form, policy, today))
    return VisitRecorded(household_id=state.household_id, visit_id=str(uuid7()), form=form)


def correct_visit(state: Household, visit_id: str, form: VisitForm, reason: str, policy: Policy,
                  today: date) -> VisitCorrected:
    _require(state)
    old = state.visits.get(visit_id)
    if old is None:
        raise DomainNotFound(f"本户没有调查记录 {visit_id}")
    violations = rules.visit_violations(form, policy, today)
    if old.superseded_by is not None:
        violations.append(Violation("visit_id", f"该记录已被 {old.superseded_by} 更正，请更正最新记录", "superseded"))
    if not reason.strip():
        violations.append(Violation("reason", "更正须说明原因", "required"))
    _raise(violations)
    return VisitCorrected(household_id=state.household_id, visit_id=str(uuid7()), corrects=visit_id, form=form,
                          reason=reason)


def open_lead(state: Household, source: LeadSource, lead_date: date, note: str, today: date,
              warning_id: str | None = None) -> LeadOpened:
    _require(state)
    if lead_date > today:
        raise RuleViolations([Violation("lead_date", "线索日期不能晚于今天", "date")])
    return LeadOpened(household_id=state.household_id, lead_id=str(uuid7()), source=source, lead_date=lead_date,
                      warning_id=warning_id, note=note)
