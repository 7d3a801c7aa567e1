"""A household as assessment knows it: a pure fold of the events it consumed from intake, review and support
(services share only contracts, so this is assessment's own fold, not intake's)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from povguard_contracts.intake import (
    HouseholdRegistered,
    LeadOpened,
    MemberAdded,
    MemberFacts,
    MemberRemoved,
    MemberUpdated,
    MonitoringStatusChanged,
    VisitCorrected,
    VisitForm,
    VisitRecorded,
    WarningReceived,
)
from povguard_contracts.payload import EventPayload
from povguard_contracts.review import CountyDecided
from povguard_contracts.support import MeasureImplemented
from povguard_contracts.vocab import (
    DEVELOPMENTAL_MEASURES,
    ChangeReason,
    EliminationMethod,
    HouseholdKind,
    MeasureKind,
    MonitoringCategory,
    MonitoringStatus,
    Outcome,
    RiskType,
    WarningKind,
)

NATURAL_REASONS = frozenset({ChangeReason.BIRTH, ChangeReason.DEATH, ChangeReason.MARRIAGE_IN,
                             ChangeReason.MARRIAGE_OUT, ChangeReason.SPLIT, ChangeReason.MOVE_IN,
                             ChangeReason.MOVE_OUT})


class VisitsDeadlinePassed(BaseModel):
    """A fact of assessment's own: the campaign's visit deadline passed (recorded by the deadline sweep, so that
    replay stays a pure function of recorded facts, never of the clock)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: str = "VisitsDeadlinePassed"
    household_id: str
    deadline: date


@dataclass(frozen=True, slots=True)
class MemberChange:
    member_id: str
    reason: ChangeReason
    effective: date
    added: bool


@dataclass(frozen=True, slots=True)
class SeenWarning:
    warning_id: str
    kind: WarningKind
    occurred_on: date
    amount: Decimal | None


@dataclass(frozen=True, slots=True)
class Measure:
    measure_id: str
    kind: MeasureKind
    developmental: bool
    implemented_on: date


@dataclass
class HouseholdFacts:
    household_id: str
    registered: bool = False
    code: str = ""
    township_code: str = ""
    village_code: str = ""
    group_code: str = ""
    kind: HouseholdKind = HouseholdKind.ORDINARY
    lifted_year: int | None = None
    category: MonitoringCategory | None = None
    status: MonitoringStatus = MonitoringStatus.NOT_MONITORED
    status_since: date | None = None
    members: dict[str, MemberFacts] = field(default_factory=dict)
    changes: list[MemberChange] = field(default_factory=list)
    visits: dict[str, VisitForm] = field(default_factory=dict)
    superseded: set[str] = field(default_factory=set)
    leads: list[tuple[str, date]] = field(default_factory=list)
    warnings: dict[str, SeenWarning] = field(default_factory=dict)
    measures: dict[str, Measure] = field(default_factory=dict)
    decided_outcome: Outcome | None = None
    decided_risks: list[RiskType] = field(default_factory=list)
    decided_method: EliminationMethod | None = None
    decided_on: date | None = None
    deadlines: set[date] = field(default_factory=set)

    @property
    def latest_visit(self) -> tuple[str, VisitForm] | None:
        current = [(vid, form) for vid, form in self.visits.items() if vid not in self.superseded]
        return max(current, key=lambda v: (v[1].visit_date, v[0])) if current else None

    @property
    def developmental_measure(self) -> Measure | None:
        found = [m for m in self.measures.values() if m.developmental or m.kind in DEVELOPMENTAL_MEASURES]
        return min(found, key=lambda m: (m.implemented_on, m.measure_id)) if found else None


Fact = EventPayload | VisitsDeadlinePassed


def apply(state: HouseholdFacts, event: Fact) -> HouseholdFacts:
    """Fold one consumed fact into the state (in place; never fails: events are facts)."""
    match event:
        case HouseholdRegistered():
            state.registered = True
            state.code, state.kind, state.lifted_year = event.code, event.kind, event.lifted_year
            state.category, state.status = event.category, event.status
            p = event.place
            state.township_code, state.village_code, state.group_code = p.township_code, p.village_code, p.group_code
            state.members = {m.member_id: m.facts for m in event.members}
        case MemberAdded():
            state.members[event.member.member_id] = event.member.facts
            state.changes.append(MemberChange(event.member.member_id, event.reason, event.effective, True))
        case MemberUpdated():
            state.members[event.member_id] = event.facts
        case MemberRemoved():
            state.members.pop(event.member_id, None)
            state.changes.append(MemberChange(event.member_id, event.reason, event.effective, False))
        case VisitRecorded():
            state.visits[event.visit_id] = event.form
        case VisitCorrected():
            state.superseded.add(event.corrects)
            state.visits[event.visit_id] = event.form
        case LeadOpened():
            state.leads.append((event.lead_id, event.lead_date))
        case MonitoringStatusChanged():
            state.kind, state.category, state.status = event.kind, event.category, event.status
            state.status_since = event.decided_on
        case WarningReceived():
            state.warnings[event.warning_id] = SeenWarning(event.warning_id, event.kind, event.occurred_on,
                                                           event.amount)
        case CountyDecided():
            state.decided_outcome, state.decided_risks = event.outcome, list(event.risks)
            state.decided_method, state.decided_on = event.elimination_method, event.decided_on
            if state.status_since is None or event.decided_on > state.status_since:
                state.status_since = event.decided_on
        case MeasureImplemented():
            state.measures[event.measure_id] = Measure(event.measure_id, event.kind, event.developmental,
                                                       event.implemented_on)
        case VisitsDeadlinePassed():
            state.deadlines.add(event.deadline)
    return state


def fold(household_id: str, events: Iterable[Fact]) -> HouseholdFacts:
    state = HouseholdFacts(household_id)
    for event in events:
        apply(state, event)
    return state
