"""A household as the dashboard and the statistics see it, folded from the facts of every service: registry,
visits, assessment, review cases, support plan. Pure: `apply` changes a state, `columns` gives the figures' columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from povguard_contracts.review import CaseStage
from povguard_contracts.vocab import MeasureKind, Outcome
from povguard_rules import measures
from povguard_rules.measures import SupportPolicy

OPEN_STAGES = frozenset(s.value for s in CaseStage) - {CaseStage.DECIDED.value, CaseStage.WITHDRAWN.value}
# the stage a case reaches after each stage event (review's domain: seed §三(六)-(九))
NEXT_STAGE = {
    "AppraisalHeld": CaseStage.VILLAGE_DECISION.value,
    "NoticeStarted": CaseStage.NOTICE.value,
    "NoticeClosed": CaseStage.TOWNSHIP_REVIEW.value,
    "TownshipReviewed": CaseStage.COUNTY_REVIEW.value,
    "CaseWithdrawn": CaseStage.WITHDRAWN.value,
}


class CaseInfo(BaseModel):
    stage: str
    outcome: str
    lead: str | None = None
    decided: str | None = None  # the decided outcome (None while open, or when refused / withdrawn)
    refused: bool = False
    category: str | None = None
    risks: list[str] = Field(default_factory=list)
    decided_on: str | None = None


class MeasureInfo(BaseModel):
    kind: str
    dev: bool
    dept: str
    status: str = "assigned"  # assigned | implemented | verified


class HouseholdState(BaseModel):
    household_id: str
    code: str | None = None
    township_code: str = ""
    village_code: str = ""
    group_code: str | None = None
    group_name: str | None = None
    registered: bool = False
    kind: str | None = None
    category: str | None = None
    status: str | None = None
    persons: int = 0
    flags: list[str] = Field(default_factory=list)
    head: str | None = None
    head_id: str | None = None  # personal data: only the ledger for roles that may see it shows it
    visits: int = 0
    visit_date: str | None = None
    collector: str | None = None
    corrections: int = 0
    lead: str | None = None
    warnings: int = 0
    assessed: bool = False
    per_capita: float | None = None
    band: str | None = None
    assessed_persons: int | None = None
    risks: list[str] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)
    no_labour: bool | None = None
    labour: int | None = None
    proposal: str | None = None
    held: bool = False
    cases: dict[str, CaseInfo] = Field(default_factory=dict)
    plan: bool | None = None  # None: no plan; True: open; False: closed
    plan_risks: list[str] = Field(default_factory=list)
    cadre: str | None = None
    lead_department: str | None = None
    behind: bool = False
    measures: dict[str, MeasureInfo] = Field(default_factory=dict)
    mismatches: dict[str, str] = Field(default_factory=dict)  # open ones: id → 未录入 | 未享受录入


def _place(state: HouseholdState, village: str | None) -> None:
    if village and not state.village_code:
        state.village_code, state.township_code = village, village[:9]


def apply(state: HouseholdState, f: Mapping[str, Any]) -> None:
    """Fold one fact into the household's state (in place)."""
    t = f["t"]
    _place(state, f.get("village"))
    if t == "HouseholdRegistered":
        state.registered, state.code = True, f["code"]
        state.township_code, state.village_code = f["town"], f["village"]
        state.group_code, state.group_name = f["group"], f["group_name"]
        state.kind, state.category, state.status = f["kind"], f["category"], f["status"]
        state.persons, state.flags, state.head, state.head_id = f["persons"], f["flags"], f["head"], f["head_id"]
    elif t in ("MemberAdded", "MemberRemoved"):
        state.persons = max(0, state.persons + f["delta"])
    elif t == "PriorityFlagsSet":
        state.flags = list(f["flags"])
    elif t == "VisitRecorded":
        state.visits += 1
        state.visit_date, state.collector = f["date"], f["collector"]
    elif t == "VisitCorrected":
        state.corrections += 1
    elif t == "LeadOpened":
        state.lead = state.lead or f["lead"]
    elif t in ("MonitoringStatusChanged",):
        state.kind, state.category, state.status = f["kind"], f["category"], f["status"]
    elif t in ("WarningReceived", "WarningMatched"):
        state.warnings += 1
    elif t == "IncomeAssessed":
        state.per_capita, state.band, state.assessed_persons = f["pc"], f["band"], f["size"]
    elif t == "RiskAssessed":
        state.assessed = True
        state.risks, state.gaps, state.no_labour, state.labour = f["risks"], f["gaps"], f["no_labour"], f["labour"]
    elif t == "OutcomeProposed":
        state.proposal, state.held = f["outcome"], f["held"]
    else:
        _apply_case(state, f) or _apply_plan(state, f)


def _apply_case(state: HouseholdState, f: Mapping[str, Any]) -> bool:
    t = f["t"]
    if t == "CaseOpened":
        state.cases[f["case"]] = CaseInfo(stage=CaseStage.APPRAISAL.value, outcome=f["outcome"], lead=f["lead"])
        return True
    case = state.cases.get(f.get("case") or "")
    if case is None:
        return t in NEXT_STAGE or t in ("ProposalUpdated", "VillageDecided", "CaseReturned", "CountyDecided")
    if t == "ProposalUpdated":
        case.outcome, case.lead = f["outcome"], f["lead"] or case.lead
    elif t == "VillageDecided":
        case.stage = CaseStage.NOTICE_PENDING.value if f["noticed"] else CaseStage.TOWNSHIP_REVIEW.value
    elif t == "CaseReturned":
        case.stage, case.outcome = f["to"], f["outcome"] or case.outcome
    elif t == "CountyDecided":
        case.stage, case.refused, case.decided_on = CaseStage.DECIDED.value, f["refused"], f["on"]
        case.decided = None if f["refused"] else f["outcome"]
        case.category, case.risks = f["category"], list(f["risks"])
    elif t in NEXT_STAGE:
        case.stage = NEXT_STAGE[t]
    else:
        return False
    return True


def _apply_plan(state: HouseholdState, f: Mapping[str, Any]) -> bool:
    t = f["t"]
    if t == "PlanCreated":
        state.plan, state.plan_risks = True, list(f["risks"])
        state.cadre, state.lead_department = f["cadre"], f["lead"]
    elif t == "CadreAssigned":
        state.cadre = f["cadre"]
    elif t == "MeasureAssigned":
        state.measures[f["id"]] = MeasureInfo(kind=f["kind"], dev=f["dev"], dept=f["dept"])
    elif t in ("MeasureImplemented", "MeasureVerified") and f["id"] in state.measures:
        state.measures[f["id"]].status = "implemented" if t == "MeasureImplemented" else "verified"
    elif t == "PlanClosed":
        state.plan = False
    elif t == "PlanReopened":
        state.plan = True
    elif t == "IncomeMeasured":
        state.behind = bool(f["behind"])
    elif t == "DeliveryMismatchFound":
        state.mismatches[f["id"]] = f["mismatch"]
    elif t == "DeliveryMismatchResolved":
        state.mismatches.pop(f["id"], None)
    else:
        return False
    return True


def open_case(state: HouseholdState) -> CaseInfo | None:
    return next((c for c in reversed(state.cases.values()) if c.stage in OPEN_STAGES), None)


def labour_capable(state: HouseholdState) -> bool | None:
    if state.no_labour is None and state.labour is None:
        return None
    return not state.no_labour and (state.labour or 0) > 0


def missing(state: HouseholdState, catalogue: SupportPolicy) -> list[str]:
    """缺什么补什么, the rule support applies: the plan's and the assessed risks and 三保障/water gaps that no measure
    of the plan answers (the campaign's measure catalogue says what each kind answers)."""
    return measures.uncovered(measures.needs(state.plan_risks, state.risks, state.gaps),
                              (MeasureKind(m.kind) for m in state.measures.values()), catalogue)


def safety_net_only(state: HouseholdState) -> bool:
    """一兜了之, the rule support applies: a household that can work, with a plan but no developmental measure."""
    return measures.safety_net_only(labour_capable(state), (m.dev for m in state.measures.values()))


def new_monitoring(state: HouseholdState) -> CaseInfo | None:
    """The decision that made the household a new monitoring object in this campaign, if one did."""
    return next((c for c in state.cases.values() if c.decided == Outcome.NEWLY_IDENTIFIED.value), None)


def columns(state: HouseholdState, catalogue: SupportPolicy) -> dict[str, Any]:
    """The read model's columns: what the figures count and group by."""
    current = open_case(state)
    planned = state.plan is True
    new = new_monitoring(state)
    return {
        "township_code": state.township_code, "village_code": state.village_code, "registered": state.registered,
        "kind": state.kind, "status": state.status, "category": state.category, "persons": state.persons,
        "priority": bool(state.flags), "visited": state.visits > 0, "assessed": state.assessed, "band": state.band,
        "per_capita": state.per_capita, "assessed_persons": state.assessed_persons, "risks": state.risks,
        "gaps": state.gaps, "proposal": state.proposal, "held": state.held,
        "case_stages": [c.stage for c in state.cases.values()],
        "open_stage": current.stage if current else None,
        "lead_date": (current.lead or state.lead) if current else None,
        "decided": [c.decided for c in state.cases.values() if c.decided],
        "refused": sum(c.refused for c in state.cases.values()),
        "new_category": new.category if new else None, "new_risks": new.risks if new else [],
        "plan_open": planned,
        "measure_kinds": [m.kind for m in state.measures.values()] if planned else [],
        "implemented": sum(m.status != "assigned" for m in state.measures.values()) if planned else 0,
        "missing": missing(state, catalogue) if planned else [],
        "safety_net_only": safety_net_only(state) if planned else False,
        "behind": state.behind if planned else False,
        "unrecorded": sum(v == "未录入" for v in state.mismatches.values()),
        "unreceived": sum(v == "未享受录入" for v in state.mismatches.values()),
    }
