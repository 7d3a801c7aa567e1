"""One household's whole assessment as a pure function of its consumed facts and the policy, and the events that
record what changed since the previous assessment (nothing when nothing changed: idempotent)."""

from __future__ import annotations

from dataclasses import dataclass, field

from povguard_contracts.assessment import (
    DataProblemCleared,
    DataProblemFound,
    IncomeAssessed,
    OutcomeProposed,
    RiskAssessed,
)
from povguard_contracts.payload import EventPayload
from povguard_rules.facts import HouseholdFacts
from povguard_rules.income import SIZE_BASIS, IncomeResult, assess_income
from povguard_rules.outcome import Proposal, propose
from povguard_rules.policy import Rules
from povguard_rules.quality import Problem, find_problems
from povguard_rules.risks import RiskResult, assess_risks


@dataclass(frozen=True)
class Assessment:
    household_id: str
    township_code: str
    village_code: str
    income: IncomeAssessed | None
    risk: RiskAssessed | None
    proposal: OutcomeProposed | None
    problems: dict[str, DataProblemFound]
    detail: dict[str, object] = field(default_factory=dict)  # explanation beyond the events (conditions, ...)
    income_result: IncomeResult | None = None
    risk_result: RiskResult | None = None
    proposal_result: Proposal | None = None

    @property
    def persons(self) -> int:
        return self.income.household_size if self.income else 0


def assess(state: HouseholdFacts, rules: Rules) -> Assessment | None:
    """None for a household not (yet) registered: nothing to assess."""
    if not state.registered:
        return None
    hid, village = state.household_id, state.village_code
    income_e = risk_e = proposal_e = None
    income = risk = proposal = None
    latest = state.latest_visit
    if latest is not None:
        visit_id, form = latest
        income = assess_income(form.income, form.spending, len(state.members), form.previous_year_per_capita,
                               rules.policy.income, rules.section)
        risk = assess_risks(form, state.members, income, list(state.warnings.values()), rules.section)
        proposal = propose(state, form, income, risk, rules)
        income_e = IncomeAssessed(
            household_id=hid, village_code=village, visit_id=visit_id, household_size=income.household_size,
            size_basis=SIZE_BASIS, lines=income.lines, net_income=income.net_income, per_capita=income.per_capita,
            band=income.band, previous_per_capita=income.previous_per_capita, change_ratio=income.change_ratio)
        pressures = [e for e in (risk.rigid_heavy, risk.income_drop) if e is not None]
        risk_e = RiskAssessed(
            household_id=hid, village_code=village, visit_id=visit_id, risks=risk.risks, gaps=risk.gaps,
            no_labour=risk.no_labour, labour_capable_members=risk.labour_capable_members,
            rigid_spending=risk.rigid_spending, consistency=[*risk.consistency, *pressures])
        proposal_e = OutcomeProposed(
            household_id=hid, village_code=village, township_code=state.township_code, outcome=proposal.outcome,
            category=proposal.category, risks=proposal.risks, rule_ids=proposal.rule_ids,
            rationale=proposal.rationale, per_capita=income.per_capita, band=income.band,
            lead_date=proposal.lead_date, visit_id=visit_id, collector=form.collector,
            three_year_target=proposal.three_year_target, income_increase_target=proposal.income_increase_target,
            held=proposal.held, hold_reason=proposal.hold_reason, policy_ref=rules.ref,
            elimination_method=proposal.elimination_method)
    problems = {p.problem_id: _found(hid, village, p) for p in find_problems(state, risk, rules, proposal)}
    detail: dict[str, object] = {}
    if proposal is not None:
        detail["elimination_conditions"] = proposal.conditions
    return Assessment(hid, state.township_code, village, income_e, risk_e, proposal_e, problems, detail,
                      income, risk, proposal)


def _found(hid: str, village: str, p: Problem) -> DataProblemFound:
    return DataProblemFound(household_id=hid, village_code=village, problem_id=p.problem_id, kind=p.kind,
                            rule_id=p.rule_id, member_id=p.member_id, text=p.text)


@dataclass(frozen=True)
class Previous:
    """What was last recorded for a household (as JSON, the way the read model keeps it)."""

    income: dict[str, object] | None = None
    risk: dict[str, object] | None = None
    proposal: dict[str, object] | None = None
    problems: dict[str, dict[str, object]] = field(default_factory=dict)


def changes(previous: Previous, current: Assessment) -> list[EventPayload]:
    """The events that record what is new: each assessment event only when its content changed, problems found
    (new or changed) and cleared (no longer found)."""
    out: list[EventPayload] = []
    for prev, now in ((previous.income, current.income), (previous.risk, current.risk),
                      (previous.proposal, current.proposal)):
        if now is not None and now.model_dump(mode="json") != prev:
            out.append(now)
    for pid, problem in sorted(current.problems.items()):
        if previous.problems.get(pid) != problem.model_dump(mode="json"):
            out.append(problem)
    for pid, old in sorted(previous.problems.items()):
        if pid not in current.problems:
            out.append(DataProblemCleared(household_id=current.household_id, village_code=current.village_code,
                                          problem_id=pid, rule_id=str(old["rule_id"])))
    return out
