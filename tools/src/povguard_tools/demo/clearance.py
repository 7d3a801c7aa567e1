"""数据录入和问题清零 (seed §三(十)): between the county's decisions and the data lock, the county lists the open data
problems by household; each village's collectors correct what the visit form itself can correct and sync the
corrections, and each village's data clerk corrects the member records a member-level problem names (信息更正);
what needs other work (categories, measures) stays open and is reported."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Any

from povguard_contracts.intake import VisitForm
from povguard_contracts.numbers import fen
from povguard_contracts.vocab import RiskType
from povguard_tools.demo.client import Who, every_page, gather_bounded
from povguard_tools.demo.state import COUNTY_BUREAU, COUNTY_CODE, Campaign, settle, sync_forms
from povguard_tools.synthetic import SyntheticHousehold

# a noted risk the facts contradict (DQ-A-RISK names it in its text): the collector takes it off the form
CONTRADICTED = (RiskType.ILLNESS, RiskType.SCHOOLING, RiskType.DISABILITY, RiskType.UNSTABLE_EMPLOYMENT)
# the problems that name a member: the member's record is wrong, a correction of it (信息更正) clears them
MEMBER_RULES = frozenset({"DQ-A-MEDICAL", "DQ-A-SCHOOL", "DQ-A-LABOUR", "DQ-A-DIBAO", "DQ-A-TEKUN"})
CLEANING_DAY = date(2022, 6, 1)  # 数据比对清洗 (05-10 to 06-08), before edit rights close


def corrected(h: SyntheticHousehold, problems: list[dict[str, Any]]) -> VisitForm | None:
    """The household's form with what the collector fixes on a second visit, or None if no rule is a form's."""
    form = h.visit
    rules = {p["rule_id"]: p for p in problems}
    if "DQ-C-PREVIOUS" in rules:  # 上年度人均纯收入, from last year's record
        previous = max(0.0, h.truth.previous_per_capita or h.truth.per_capita)  # a net loss is recorded as 0
        form = form.model_copy(update={"previous_year_per_capita": fen(Decimal(str(previous)))})
    if "DQ-C-EXPENSE" in rules:  # 生产经营性支出 left empty: the household's own estimate
        spending = form.spending.model_copy(update={"business_expense": fen(form.income.business * Decimal("0.3"))})
        form = form.model_copy(update={"spending": spending})
    if "DQ-A-RISK" in rules:
        text = rules["DQ-A-RISK"]["text"]
        form = form.model_copy(update={"risks_noted": [r for r in form.risks_noted
                                                       if not (r in CONTRADICTED and r.value in text)]})
    return None if form is h.visit else form


async def stage_clearance(c: Campaign) -> None:
    await settle(c, "the assessments after support")
    problems = await every_page(c.api, "assessment", "/v1/data-problems", COUNTY_BUREAU,
                                {"org": COUNTY_CODE, "open": "true", "limit": 500})
    by_household: dict[str, list[dict[str, Any]]] = {}
    for p in problems:
        by_household.setdefault(p["household_id"], []).append(p)
    households = {c.household_ids[h.code]: h for h in c.county.households if h.code in c.household_ids}
    uploads: dict[Who, list[dict[str, Any]]] = {}
    for hid, found in sorted(by_household.items()):
        h = households.get(hid)
        form = corrected(h, found) if h is not None and hid in c.visit_ids else None
        if form is None or h is None:
            continue
        reason = "问题清零：" + "；".join(sorted({p["text"] for p in found}))[:190]
        uploads.setdefault(c.collector(h), []).append({
            "household_id": hid, "form": form.model_dump(mode="json"), "corrects": c.visit_ids[hid],
            "reason": reason})
    await sync_forms(c, "问题清零", uploads)
    members = await correct_members(c, households, by_household)
    await settle(c, "the assessments of the corrected forms and members")
    left = await every_page(c.api, "assessment", "/v1/data-problems", COUNTY_BUREAU,
                            {"org": COUNTY_CODE, "open": "true", "limit": 500})
    c.figures["clearance"] = {"found": dict(Counter(p["rule_id"] for p in problems)),
                              "corrected_households": sum(map(len, uploads.values())),
                              "corrected_members": members,
                              "open": dict(Counter(p["rule_id"] for p in left))}


async def correct_members(c: Campaign, households: dict[str, SyntheticHousehold],
                          by_household: dict[str, list[dict[str, Any]]]) -> int:
    """The village data clerk looks each named member up (an audited read of personal data) and puts back the
    member's true facts, against the household's current version (If-Match); returns the members corrected."""
    todo = []
    for hid, problems in sorted(by_household.items()):
        named = [p for p in problems if p["rule_id"] in MEMBER_RULES and p["member_id"]]
        if named and (h := households.get(hid)) is not None:
            todo.append((hid, h, named))
    task = c.task("成员信息更正", len(todo))

    async def correct(item: tuple[str, SyntheticHousehold, list[dict[str, Any]]]) -> int:
        hid, h, found = item
        clerk = c.clerk(h)
        read = await c.api.call("intake", "GET", f"/v1/households/{hid}", clerk,
                                params={"include_personal": "true", "purpose": "问题清零：核对成员信息"})
        etag, registered = read.headers["ETag"], {m["member_id"]: m["facts"] for m in read.json()["members"]}
        truth = {m.id_number: m for m in h.truth.members}
        done = 0
        for mid in sorted({p["member_id"] for p in found}):
            true_facts = truth.get(registered[mid]["id_number"]) if mid in registered else None
            if true_facts is None or true_facts.model_dump(mode="json") == registered[mid]:
                continue  # nothing the clerk's records could put right
            texts = "；".join(sorted(p["text"] for p in found if p["member_id"] == mid))
            answer = await c.api.call(
                "intake", "PUT", f"/v1/households/{hid}/members/{mid}", clerk, headers={"If-Match": etag},
                json={"facts": true_facts.model_dump(mode="json"), "reason": "信息更正",
                      "effective": CLEANING_DAY.isoformat(), "note": f"问题清零：{texts}"[:200]})
            etag = answer.headers["ETag"]
            done += 1
        c.advance(task)
        return done

    return sum(await gather_bounded(todo, correct))
