"""Dispute replay: a household as of a past time, from the ledger's stored events, with the assessment recomputed
from those facts side by side with what was proposed and decided up to then.

The recomputation uses `povguard_rules` (the fold of consumed facts and `assess(facts, rules)`), the same library
assessment decides with, so the replay computes exactly what assessment computes from the ledger's own copy of the
events, and there is no second copy of the rules that could drift, nor a call to a service that may be down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.payload import EventPayload
from povguard_platform.consumer import event_from_json
from povguard_rules.assess import assess
from povguard_rules.config import rules_for
from povguard_rules.facts import HouseholdFacts, fold

# What assessment folds into a household's facts (its consumer's household events and warnings).
FACT_TYPES = frozenset({"HouseholdRegistered", "MemberAdded", "MemberUpdated", "MemberRemoved", "VisitRecorded",
                        "VisitCorrected", "LeadOpened", "MonitoringStatusChanged", "CountyDecided",
                        "MeasureImplemented", "WarningReceived"})


@dataclass(frozen=True)
class StoredEvent:
    index: int  # ledger entry
    doc: dict[str, Any]  # the event's envelope as stored (event_as_json)


def _recorded_ref(events: list[StoredEvent]) -> str | None:
    """The policy version the household's events were decided under: the latest recorded one."""
    for e in reversed(events):
        ref = e.doc.get("policy") or (e.doc.get("data") or {}).get("policy_ref")
        if isinstance(ref, str) and "@" in ref:
            return ref
    return None


def _facts_summary(facts: HouseholdFacts) -> dict[str, Any]:
    latest = facts.latest_visit
    return {
        "registered": facts.registered, "kind": facts.kind, "category": facts.category, "status": facts.status,
        "status_since": facts.status_since, "members": len(facts.members), "latest_visit": latest and latest[0],
        "superseded_visits": sorted(facts.superseded), "measures": sorted(facts.measures),
        "decided_outcome": facts.decided_outcome, "decided_on": facts.decided_on,
    }


def _recorded(e: StoredEvent) -> dict[str, Any]:
    return {"entry": e.index, "time": e.doc.get("time"), "actor": e.doc.get("actor"), "policy": e.doc.get("policy"),
            "data": e.doc.get("data")}


def replay(household_id: str, events: list[StoredEvent], default_campaign: str) -> dict[str, Any]:
    """The replayed state, the recomputed assessment and the recorded proposals and decisions (JSON-ready)."""
    state: dict[str, Any] = {}
    payloads: list[EventPayload] = []
    undecodable: list[int] = []
    for e in events:
        state.update(e.doc.get("data") or {})
        if e.doc.get("type") in FACT_TYPES:
            try:
                payloads.append(CATALOGUE.decode(event_from_json(e.doc)))
            except (KeyError, ValueError):
                undecodable.append(e.index)
    ref = _recorded_ref(events)
    campaign = ref.split("@", 1)[0] if ref else default_campaign
    rules = rules_for(campaign)
    facts = fold(household_id, payloads)
    result = assess(facts, rules)

    def dump(p: EventPayload | None) -> dict[str, Any] | None:
        return None if p is None else p.model_dump(mode="json")

    recomputed = None if result is None else {
        "income": dump(result.income), "risk": dump(result.risk), "proposal": dump(result.proposal),
        "problems": [p.model_dump(mode="json") for p in result.problems.values()]}
    by_type = {t: [e for e in events if e.doc.get("type") == t]
               for t in ("IncomeAssessed", "OutcomeProposed", "CountyDecided")}
    last_income = by_type["IncomeAssessed"][-1].doc["data"] if by_type["IncomeAssessed"] else None
    last_proposal = by_type["OutcomeProposed"][-1].doc["data"] if by_type["OutcomeProposed"] else None
    last_decision = by_type["CountyDecided"][-1].doc["data"] if by_type["CountyDecided"] else None
    again: dict[str, Any] = (dump(result.proposal) if result is not None else None) or {}
    return {
        "state": state,
        "facts": _facts_summary(facts) | {"undecodable_entries": undecodable},
        "policy": {"recorded": ref, "applied": rules.ref, "same_version": ref is None or ref == rules.ref},
        "recomputed": recomputed,
        "recorded": {"income": [_recorded(e) for e in by_type["IncomeAssessed"]],
                     "proposals": [_recorded(e) for e in by_type["OutcomeProposed"]],
                     "decisions": [_recorded(e) for e in by_type["CountyDecided"]]},
        "comparison": {
            "per_capita": {"recomputed": again.get("per_capita"),
                           "recorded": None if last_income is None else last_income.get("per_capita")},
            "outcome": {"recomputed": again.get("outcome"),
                        "proposed": None if last_proposal is None else last_proposal.get("outcome"),
                        "decided": None if last_decision is None else last_decision.get("outcome")},
        },
    }
