"""两不愁三保障 and drinking-water gaps are 返贫致贫风险 whatever the income, each with its risk type; a proposal for
monitoring without a risk type is held with a data problem (policy 533123-2022: monitoring line 6,000 yuan; the
default family is two working adults and a ten-year-old at primary school)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from assessment_helpers import family, person, registered, rules, visit

from povguard_contracts.intake import Member
from povguard_contracts.review import CountyDecided
from povguard_contracts.vocab import (
    HouseholdKind,
    MonitoringCategory,
    MonitoringStatus,
    Outcome,
    RiskType,
)
from povguard_rules.assess import Previous, assess, changes
from povguard_rules.facts import fold

RICH = {"wages": 36000}  # 12,000 yuan per person: far above the line, a 脱贫户 without the three-year target
MONITORED = {"kind": HouseholdKind.MONITORED, "status": MonitoringStatus.RISK_NOT_ELIMINATED,
             "category": MonitoringCategory.MARGINAL}


def dropout() -> list[Member]:
    """The default family, but the ten-year-old left school (文化程度 小学, no 在校生状况)."""
    return [*family(2, 0), Member(member_id="c0", facts=person("之子", birth=date(2012, 1, 1), education="小学",
                                                               school_status=None, labour_skill="无劳动力"))]


def uninsured() -> list[Member]:
    return [*family(2, 0), Member(member_id="c0", facts=person("之子", birth=date(2012, 1, 1), education=None,
                                                               school_status="小学", labour_skill="无劳动力",
                                                               medical_insurance="未参加"))]


@pytest.mark.parametrize(("members", "guarantees", "risk", "rule"), [
    (dropout, {}, RiskType.SCHOOLING, "RISK-GAP-SCHOOL"),  # the form says secured, the member record does not
    (None, {"compulsory_education": False}, RiskType.SCHOOLING, "RISK-GAP-SCHOOL"),
    (uninsured, {}, RiskType.ILLNESS, "RISK-GAP-MEDICAL"),
    (None, {"housing_safe": False}, RiskType.OTHER, "RISK-GAP-HOUSING"),
    (None, {"drinking_water_safe": False}, RiskType.OTHER, "RISK-GAP-WATER"),
    (None, {"food_and_clothing": False}, RiskType.OTHER, "RISK-GAP-FOOD"),
])
def test_a_gap_identifies_a_lifted_household_whatever_its_income(
        members: Any, guarantees: dict[str, bool], risk: RiskType, rule: str) -> None:
    a = assess(fold("h1", [registered(members=members() if members else None),
                           visit(income=RICH, guarantees=guarantees)]), rules())
    assert a is not None and a.proposal is not None and a.risk is not None
    p = a.proposal
    assert (p.outcome, p.category, p.risks) == (Outcome.NEWLY_IDENTIFIED, MonitoringCategory.UNSTABLE_LIFTED, [risk])
    assert "OUT-NEW-GAP" in p.rule_ids and not p.held and p.per_capita == 12000
    assert [e.rule_id for e in a.risk.risks[0].evidence] == [rule]


def test_the_dropout_is_named_in_the_evidence_and_an_ordinary_household_is_marginal() -> None:
    a = assess(fold("h1", [registered(kind=HouseholdKind.ORDINARY, members=dropout()), visit(income=RICH)]), rules())
    assert a is not None and a.proposal is not None and a.risk is not None
    assert a.proposal.category is MonitoringCategory.MARGINAL
    assert a.risk.gaps == ["义务教育"] and "失学辍学" in a.risk.risks[0].evidence[0].text


def test_a_gap_blocks_elimination_of_a_monitoring_object() -> None:
    since = CountyDecided(case_id="k0", household_id="h1", outcome=Outcome.NEWLY_IDENTIFIED,
                          kind=HouseholdKind.MONITORED, status=MonitoringStatus.RISK_NOT_ELIMINATED,
                          category=MonitoringCategory.MARGINAL, risks=[RiskType.ILLNESS], decided_on=date(2021, 6, 1))
    ok = assess(fold("h1", [registered(**MONITORED), since, visit(income=RICH)]), rules())
    assert ok is not None and ok.proposal is not None and ok.proposal.outcome is Outcome.RISK_ELIMINATION
    a = assess(fold("h1", [registered(**MONITORED), since, visit(income=RICH, guarantees={"housing_safe": False})]),
               rules())
    assert a is not None and a.proposal is not None
    assert a.proposal.outcome is Outcome.FURTHER_SUPPORT and RiskType.OTHER in a.proposal.risks


def _eliminated(decided_risks: list[RiskType], **kw: Any) -> tuple[Outcome, list[str]]:
    decided = CountyDecided(case_id="k1", household_id="h1", outcome=Outcome.RISK_ELIMINATION,
                            kind=HouseholdKind.MONITORED, status=MonitoringStatus.RISK_ELIMINATED,
                            category=MonitoringCategory.MARGINAL, risks=decided_risks, decided_on=date(2021, 11, 1))
    eliminated = registered(**{**MONITORED, "status": MonitoringStatus.RISK_ELIMINATED})
    a = assess(fold("h1", [eliminated, decided, visit(income=RICH, **kw)]), rules())
    assert a is not None and a.proposal is not None
    return a.proposal.outcome, a.proposal.rule_ids


def test_lookback_new_gap_re_marks_and_a_known_one_rolls_back() -> None:
    outcome, rule_ids = _eliminated([RiskType.ILLNESS], guarantees={"drinking_water_safe": False})
    assert outcome is Outcome.RE_MARKED and "OUT-LOOKBACK-NEWRISK" in rule_ids
    outcome, rule_ids = _eliminated([RiskType.OTHER], guarantees={"drinking_water_safe": False})
    assert outcome is Outcome.ELIMINATION_ROLLED_BACK and "OUT-LOOKBACK-UNSTABLE" in rule_ids


def test_under_the_line_without_a_risk_type_is_held_with_a_problem_until_one_is_noted() -> None:
    state = fold("h1", [registered(), visit(income={"wages": 15000})])  # 5,000 per person, no risk found
    a = assess(state, rules())
    assert a is not None and a.proposal is not None
    p = a.proposal
    assert (p.outcome, p.risks, p.held, p.hold_reason) == (Outcome.NEWLY_IDENTIFIED, [], True, "未确定主要风险类型")
    assert "HOLD-RISKTYPE" in p.rule_ids
    [problem] = [x for x in a.problems.values() if x.rule_id == "DQ-C-RISKTYPE"]
    assert problem.kind == "完整性" and "须入户查明" in problem.text
    before = Previous(proposal=p.model_dump(mode="json"),
                      problems={k: v.model_dump(mode="json") for k, v in a.problems.items()})
    noted = fold("h1", [registered(), visit(income={"wages": 15000}, risks_noted=["缺劳动力"])])
    b = assess(noted, rules())
    assert b is not None and b.proposal is not None
    assert (b.proposal.held, b.proposal.risks) == (False, [RiskType.LACK_OF_LABOUR])
    cleared = [e for e in changes(before, b) if e.event_type == "DataProblemCleared"]
    assert [e.model_dump()["rule_id"] for e in cleared] == ["DQ-C-RISKTYPE"]
