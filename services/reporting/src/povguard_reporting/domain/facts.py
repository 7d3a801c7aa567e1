"""What the reporting service keeps of each event it consumes: a small fact (the fields a figure is made of), so its
log stays compact and every read model can be rebuilt from the log alone.

A fact is a JSON object: `t` the event type, `h` the household (None for township- or county-level facts), and the
event's own fields under short names. Audit's events are not in the shared contracts; their few fields are read as
published (AsyncAPI of the audit service)."""

from __future__ import annotations

from typing import Any

from povguard_contracts.assessment import (
    DataProblemCleared,
    DataProblemFound,
    IncomeAssessed,
    OutcomeProposed,
    RiskAssessed,
    ScaleRiskRaised,
)
from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.intake import (
    HouseholdRegistered,
    LeadOpened,
    MemberAdded,
    MemberRemoved,
    MonitoringStatusChanged,
    PriorityFlagsSet,
    VisitCorrected,
    VisitRecorded,
    WarningMatched,
    WarningReceived,
)
from povguard_contracts.payload import EventPayload
from povguard_contracts.review import (
    AppraisalHeld,
    CaseOpened,
    CaseReturned,
    CaseWithdrawn,
    CountyDecided,
    NoticeClosed,
    NoticeStarted,
    ProposalUpdated,
    TownshipReviewed,
    VillageDecided,
)
from povguard_contracts.support import (
    CadreAssigned,
    DeliveryMismatchFound,
    DeliveryMismatchResolved,
    IncomeMeasured,
    MeasureAssigned,
    MeasureImplemented,
    MeasureVerified,
    PlanClosed,
    PlanCreated,
    PlanReopened,
)
from povguard_contracts.vocab import Relation

Fact = dict[str, Any]

CONTRACT_TYPES: tuple[type[EventPayload], ...] = (
    HouseholdRegistered, MemberAdded, MemberRemoved, PriorityFlagsSet, VisitRecorded, VisitCorrected, LeadOpened,
    MonitoringStatusChanged, WarningReceived, WarningMatched,
    IncomeAssessed, RiskAssessed, OutcomeProposed, DataProblemFound, DataProblemCleared, ScaleRiskRaised,
    CaseOpened, ProposalUpdated, AppraisalHeld, VillageDecided, NoticeStarted, NoticeClosed, TownshipReviewed,
    CaseReturned, CaseWithdrawn, CountyDecided,
    PlanCreated, CadreAssigned, MeasureAssigned, MeasureImplemented, MeasureVerified, PlanClosed, PlanReopened,
    IncomeMeasured, DeliveryMismatchFound, DeliveryMismatchResolved,
)
AUDIT_TYPES = ("CheckpointSigned", "AnomalyFound")
HANDLED = frozenset([c.event_type for c in CONTRACT_TYPES] + list(AUDIT_TYPES))


def fact_of(event_type: str, type_version: int, data: dict[str, Any]) -> Fact | None:
    """The fact an event contributes (None for an event no figure uses)."""
    if event_type in AUDIT_TYPES:
        return _audit(event_type, data)
    if event_type not in HANDLED:
        return None

    payload = CATALOGUE.payload_class(event_type).model_validate(CATALOGUE.upcast(event_type, type_version, data))
    return _contract(payload)


def _audit(event_type: str, data: dict[str, Any]) -> Fact:
    if event_type == "CheckpointSigned":
        return {"t": event_type, "h": None, "size": int(data.get("tree_size", 0)), "root": data.get("root_hash", "")}
    return {"t": event_type, "h": data.get("household_id"), "kind": data.get("kind", ""),
            "actor": data.get("actor")}


def _contract(p: EventPayload) -> Fact | None:
    t = p.event_type
    if isinstance(p, HouseholdRegistered):
        head = next((m.facts for m in p.members if m.facts.relation == Relation.HEAD), None)
        pl = p.place
        return {"t": t, "h": p.household_id, "code": p.code, "town": pl.township_code, "village": pl.village_code,
                "group": pl.group_code, "town_name": pl.township, "village_name": pl.village, "group_name": pl.group,
                "county": pl.county_code, "county_name": pl.county, "kind": p.kind.value,
                "category": p.category.value if p.category else None, "status": p.status.value,
                "persons": len(p.members), "flags": [f.value for f in p.flags],
                "head": head.name if head else None, "head_id": head.id_number if head else None}
    if isinstance(p, MemberAdded):
        return {"t": t, "h": p.household_id, "delta": 1}
    if isinstance(p, MemberRemoved):
        return {"t": t, "h": p.household_id, "delta": -1}
    if isinstance(p, PriorityFlagsSet):
        return {"t": t, "h": p.household_id, "flags": [f.value for f in p.flags]}
    if isinstance(p, VisitRecorded | VisitCorrected):
        return {"t": t, "h": p.household_id, "date": p.form.visit_date.isoformat(), "collector": p.form.collector}
    if isinstance(p, LeadOpened):
        return {"t": t, "h": p.household_id, "lead": p.lead_date.isoformat(), "source": p.source.value}
    if isinstance(p, MonitoringStatusChanged):
        return {"t": t, "h": p.household_id, "kind": p.kind.value,
                "category": p.category.value if p.category else None, "status": p.status.value}
    if isinstance(p, WarningReceived):
        return {"t": t, "h": p.household_id, "dept": p.department.value, "kind": p.kind.value}
    if isinstance(p, WarningMatched):
        return {"t": t, "h": p.household_id}
    return _assessment(p) or _review(p) or _support(p)


def _assessment(p: EventPayload) -> Fact | None:
    t = p.event_type
    if isinstance(p, IncomeAssessed):
        return {"t": t, "h": p.household_id, "village": p.village_code, "pc": p.per_capita, "band": p.band.value,
                "size": p.household_size}
    if isinstance(p, RiskAssessed):
        return {"t": t, "h": p.household_id, "village": p.village_code,
                "risks": sorted({r.type.value for r in p.risks}), "gaps": sorted(set(p.gaps)),
                "no_labour": p.no_labour, "labour": p.labour_capable_members}
    if isinstance(p, OutcomeProposed):
        return {"t": t, "h": p.household_id, "village": p.village_code, "outcome": p.outcome.value, "held": p.held}
    if isinstance(p, DataProblemFound):
        return {"t": t, "h": p.household_id, "village": p.village_code, "id": p.problem_id, "kind": p.kind,
                "rule": p.rule_id}
    if isinstance(p, DataProblemCleared):
        return {"t": t, "h": p.household_id, "village": p.village_code, "id": p.problem_id, "rule": p.rule_id}
    if isinstance(p, ScaleRiskRaised):
        return {"t": t, "h": None, "town": p.township_code, "crossed": list(p.crossed), "as_of": p.as_of.isoformat()}
    return None


def _review(p: EventPayload) -> Fact | None:
    t = p.event_type
    if isinstance(p, CaseOpened):
        return {"t": t, "h": p.household_id, "case": p.case_id, "village": p.village_code, "outcome": p.outcome.value,
                "lead": p.lead_date.isoformat() if p.lead_date else None}
    if isinstance(p, ProposalUpdated):
        return {"t": t, "h": p.household_id, "case": p.case_id, "outcome": p.outcome.value,
                "lead": p.lead_date.isoformat() if p.lead_date else None}
    if isinstance(p, VillageDecided):
        return {"t": t, "h": p.household_id, "case": p.case_id, "noticed": p.noticed}
    if isinstance(p, CaseReturned):
        return {"t": t, "h": p.household_id, "case": p.case_id, "to": p.to_stage.value,
                "outcome": p.proposed_outcome.value if p.proposed_outcome else None}
    if isinstance(p, CountyDecided):
        return {"t": t, "h": p.household_id, "case": p.case_id, "outcome": p.outcome.value, "refused": p.refused,
                "kind": p.kind.value, "category": p.category.value if p.category else None, "status": p.status.value,
                "risks": [r.value for r in p.risks], "on": p.decided_on.isoformat()}
    if isinstance(p, AppraisalHeld | NoticeStarted | NoticeClosed | TownshipReviewed | CaseWithdrawn):
        return {"t": t, "h": p.household_id, "case": p.case_id}
    return None


def _support(p: EventPayload) -> Fact | None:
    t = p.event_type
    if isinstance(p, PlanCreated):
        return {"t": t, "h": p.household_id, "village": p.village_code or None, "risks": [r.value for r in p.risks],
                "cadre": p.cadre, "lead": p.lead_department.value if p.lead_department else None}
    if isinstance(p, CadreAssigned):
        return {"t": t, "h": p.household_id, "cadre": p.cadre}
    if isinstance(p, MeasureAssigned):
        return {"t": t, "h": p.household_id, "id": p.measure_id, "kind": p.kind.value, "dev": p.developmental,
                "dept": p.department.value}
    if isinstance(p, MeasureImplemented | MeasureVerified):
        return {"t": t, "h": p.household_id, "id": p.measure_id, "kind": p.kind.value}
    if isinstance(p, PlanClosed | PlanReopened):
        return {"t": t, "h": p.household_id}
    if isinstance(p, IncomeMeasured):
        return {"t": t, "h": p.household_id, "behind": p.behind}
    if isinstance(p, DeliveryMismatchFound):
        return {"t": t, "h": p.household_id, "id": p.mismatch_id, "mismatch": p.mismatch}
    if isinstance(p, DeliveryMismatchResolved):
        return {"t": t, "h": p.household_id, "id": p.mismatch_id}
    return None
