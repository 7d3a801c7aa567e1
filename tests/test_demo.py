"""The demo on a small county, end to end through the public APIs of all five services, checked against what the
generator put in."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from povguard_contracts.vocab import Outcome
from povguard_platform.policy import load_policy
from povguard_tools.demo.clearance import MEMBER_RULES
from povguard_tools.demo.runner import run_campaign
from povguard_tools.synthetic import Scenario, generate_county

HOUSEHOLDS, SEED = 250, 10  # a county with households under the line at risk, and department hits among the poor
RISKS = {Scenario.SERIOUS_ILLNESS, Scenario.DISASTER, Scenario.SHARP_INCOME_FALL, Scenario.UNSAFE_HOUSING,
         Scenario.CHILD_OUT_OF_SCHOOL, Scenario.UNSAFE_WATER}
IDENTIFYING = {Outcome.NEWLY_IDENTIFIED, Outcome.RE_MARKED, Outcome.ELIMINATION_ROLLED_BACK}


def test_the_demo_campaign_matches_the_generated_county(tmp_path: Path) -> None:
    code, campaign = run_campaign(HOUSEHOLDS, SEED, tmp_path, Console(quiet=True), use_running=False)
    assert code == 0 and campaign is not None
    county = generate_county(HOUSEHOLDS, SEED)  # same seed, same county
    f = campaign.figures

    # every household with a bad row is refused at import, and only those
    bad = {h.code for h in county.households
           if h.truth.blank is not None or (h.truth.duplicate is not None and not h.truth.duplicate.first)}
    assert f["import"]["refused"] == len(bad)
    assert set(campaign.household_ids) == {h.code for h in county.households} - bad

    # every household under the line with a risk is proposed for monitoring (or kept in it)
    line = load_policy("533123-2022").income.monitoring_line
    proposed = {p["household_id"]: Outcome(p["outcome"]) for p in campaign.proposals}
    at_risk = [campaign.household_ids[h.code] for h in county.households
               if h.code in campaign.household_ids and h.truth.per_capita < line and RISKS & set(h.truth.labels)
               and h.kind.value != "监测对象"]
    assert at_risk  # the county has such households: the check below is not empty
    for hid in at_risk:
        assert proposed.get(hid) in IDENTIFYING, (hid, proposed.get(hid))

    # no household with a department hit is identified
    hits = {campaign.household_ids[ch.household_code] for ch in county.checks
            if ch.hits and ch.household_code in campaign.household_ids}
    assert hits & set(campaign.decisions)  # some of them went all the way to the county
    for hid in hits & set(campaign.decisions):
        d = campaign.decisions[hid]
        assert d.get("refused") or Outcome(d["outcome"]) != Outcome.NEWLY_IDENTIFIED, d

    # decisions became plans, gaps were closed, and the ledger verifies offline
    assert f["review"]["decided"] > 0 and f["support"]["plans"] > 0
    # the plan's calendar runs past 15 days for the first visits' leads: those steps gave reasons and are listed
    assert f["review"]["identification_limit_listed"] > 0
    assert f["support"]["gaps_left"] == 0 and f["support"]["safety_net_only"] == 0
    assert f["audit"]["verified"] and f["audit"]["tree_size"] > 0

    # 问题清零: what a visit form can correct was corrected and cleared; the rest is reported as still open
    cleared = f["clearance"]
    assert cleared["found"].get("DQ-C-PREVIOUS") and cleared["corrected_households"] > 0
    for rule in ("DQ-C-PREVIOUS", "DQ-C-EXPENSE", "DQ-A-RISK"):
        assert cleared["open"].get(rule, 0) == 0, (rule, cleared)
    assert sum(cleared["open"].values()) < sum(cleared["found"].values())
    # the members registered with a wrong fact: each member-level rule found, and cleared by the clerk's 信息更正
    misrecorded = {h.truth.misrecorded.rule_id for h in county.households
                   if h.truth.misrecorded is not None and h.code in campaign.household_ids}
    assert misrecorded == MEMBER_RULES
    for rule in MEMBER_RULES:
        assert cleared["found"].get(rule) and cleared["open"].get(rule, 0) == 0, (rule, cleared)
    assert cleared["corrected_members"] >= len(MEMBER_RULES)
