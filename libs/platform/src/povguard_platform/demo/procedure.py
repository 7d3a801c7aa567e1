"""The review procedure and the support that follows, as the demo drives them: each case through 评议, 两委决定,
公示 (with a few objections), 乡镇审核, the county's joint department check and 审定; then plans get a cadre and the
measures that close their gaps (缺什么补什么), and the developmental ones are delivered."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict

from povguard_platform.actor import Role
from povguard_platform.contracts.vocab import DEVELOPMENTAL_MEASURES, MeasureKind
from povguard_platform.demo.campaign import COUNTY_BUREAU, Campaign, settle
from povguard_platform.demo.client import DemoError, Who, every_page, gather_bounded
from povguard_platform.policy import policy_section

# when each step is taken in the 2022 campaign (seed §三)
APPRAISAL, VILLAGE, NOTICE, OBJECTION, CLOSE = (date(2022, 5, d) for d in (15, 17, 17, 19, 24))
TOWNSHIP, CHECKS, COUNTY, AFTER_LOCK = date(2022, 5, 25), date(2022, 5, 26), date(2022, 5, 27), date(2022, 6, 9)

class _CatalogueEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    developmental: bool
    department: str
    risks: list[str] = []
    gaps: list[str] = []


class _SupportPolicy(BaseModel):
    model_config = ConfigDict(extra="ignore")

    measures: dict[str, _CatalogueEntry]


def _catalogue(c: Campaign) -> dict[str, _CatalogueEntry]:
    """The support service's measure catalogue (kept as data in the campaign's policy): which measure answers which
    risk type or 三保障/water gap (缺什么补什么), and its responsible department."""
    return policy_section(c.api.settings.campaign, "support", _SupportPolicy).measures


def _measure_for(need: str, catalogue: dict[str, _CatalogueEntry]) -> str | None:
    """The measure that answers a need; a safety-net measure where one exists (the developmental one is added
    separately, so that no plan is 一兜了之)."""
    answering = [kind for kind, e in catalogue.items() if need in e.risks or need in e.gaps]
    answering.sort(key=lambda kind: catalogue[kind].developmental)
    return answering[0] if answering else None


def _measures(risks: list[str], catalogue: dict[str, _CatalogueEntry]) -> list[str]:
    kinds = [kind for r in risks if (kind := _measure_for(r, catalogue))]
    kinds.append(MeasureKind.EMPLOYMENT.value)  # no 一兜了之: a developmental measure for every plan
    return list(dict.fromkeys(kinds))


async def _open_cases(c: Campaign) -> list[dict[str, Any]]:
    return await every_page(c.api, "review", "/v1/cases", COUNTY_BUREAU, {"open_only": "true", "limit": 1000})


def _village(case: dict[str, Any]) -> tuple[Who, Who]:
    v = case["village_code"]
    return Who(Role.VILLAGE_COMMITTEE, v, f"村两委-{v[-3:]}"), Who(Role.VILLAGE_CLERK, v, f"村数据员-{v[-3:]}")


async def stage_review(c: Campaign) -> None:
    """评议 → 两委决定 → 公示 → 乡镇审核 → 县级联审 → 审定, each by its own people."""
    await settle(c, "the cases opened from proposals")
    cases = await _open_cases(c)
    task = c.task("评议公示审核", len(cases))
    checks = {ch.household_code: ch for ch in c.county.checks}
    code_of = {hid: code for code, hid in c.household_ids.items()}
    departments = _check_departments(c)
    method = {p["household_id"]: p.get("elimination_method") for p in c.proposals}
    catalogue = _catalogue(c)
    stats: Counter[str] = Counter()

    async def walk(case: dict[str, Any]) -> None:
        """From wherever the case stands (a second demo on the same system continues where the first stopped)."""
        cid, committee, clerk = case["case_id"], *_village(case)
        township = Who(Role.TOWNSHIP_REVIEWER, case["township_code"], f"乡镇审核-{case['township_code'][-3:]}")
        base, stage = f"/v1/cases/{cid}", case["stage"]
        measures = _measures(case["risks"], catalogue)

        async def act(path: str, who: Who, body: dict[str, Any]) -> str:
            done = (await c.api.call("review", "POST", f"{base}/{path}", who, json=body)).json()
            return str(done["case"]["stage"])

        if stage == "村民评议":
            stage = await act("appraisal", committee, {
                "acted_on": APPRAISAL.isoformat(), "meeting_date": APPRAISAL.isoformat(), "party_members_present": 12,
                "household_heads_present": 31, "votes_for": 40, "votes_against": 3,
                "opinions": [{"opinion": "该户情况是否属实？", "answer": "经入户核实属实"}]})
        if stage == "村两委决定":
            stage = await act("village-decision", committee, {
                "acted_on": VILLAGE.isoformat(), "proposed_measures": measures, "opinion": "同意上报"})
        if stage == "待公示":
            stage = await act("notice", clerk, {"acted_on": NOTICE.isoformat()})
            stats["公示"] += 1
            if sum(map(ord, cid)) % 20 == 0:  # a few objections, investigated and answered
                raised = (await c.api.call("review", "POST", f"{base}/objections",
                                           Who(Role.COLLECTOR, case["village_code"], "群众代表"),
                                           json={"acted_on": OBJECTION.isoformat(), "raised_by": "村民",
                                                 "reason": "反映该户有务工收入未计入"})).json()
                await act(f"objections/{raised['objection_id']}/resolution", township, {
                    "acted_on": OBJECTION.isoformat(), "upheld": False, "finding": "经核实务工收入已计入，异议不成立"})
                stats["异议"] += 1
        if stage == "公示中":
            stage = await act("notice/closure", clerk, {"acted_on": CLOSE.isoformat()})
        if stage == "乡镇审核":
            stage = await act("township-review", township, {
                "acted_on": TOWNSHIP.isoformat(), "spot_checked": sum(map(ord, cid)) % 10 == 0,
                "proposed_measures": measures, "opinion": "同意"})
        if stage == "县级审定":
            at_county.append(case)

    async def decide(case: dict[str, Any]) -> None:
        measures = _measures(case["risks"], catalogue)
        decided = (await c.api.call("review", "POST", f"/v1/cases/{case['case_id']}/decision", COUNTY_BUREAU, json={
            "acted_on": COUNTY.isoformat(), "lead_department": catalogue[measures[0]].department,
            "elimination_method": method.get(case["household_id"]),
            "proposed_measures": measures, "opinion": "同意"})).json()
        c.decisions[case["household_id"]] = decided["case"].get("decision") or {}
        if decided["case"]["stage"] == "已审定":
            stats["refused" if decided["case"]["decision"].get("refused") else "decided"] += 1
        else:  # a department hit on a monitoring object: back to the village as a proposed removal
            stats["returned"] += 1

    async def answer(department: str) -> None:
        """县级联审: each department compares its records and answers for all the cases in one call per batch."""
        who = Who(Role.DEPARTMENT, department, f"{department}-联审")
        waiting = [case for case in at_county if department not in case.get("checks", {})]
        for start in range(0, len(waiting), 500):
            results = []
            for case in waiting[start:start + 500]:
                check = checks.get(code_of.get(case["household_id"], ""))
                hits = [h for h in (check.hits if check else ()) if h.department.value == department]
                results.append({"case_id": case["case_id"],
                                "findings": [{"kind": h.kind.value, "detail": h.detail} for h in hits]})
            answered = (await c.api.call("review", "POST", "/v1/department-checks", who,
                                         json={"acted_on": CHECKS.isoformat(), "results": results})).json()
            if answered["failed"]:
                raise DemoError(f"{department} could not answer: {answered['failed'][:3]}")

    at_county: list[dict[str, Any]] = []
    await gather_bounded(cases, walk, limit=12, on_done=lambda: c.advance(task))
    await gather_bounded(departments, answer, limit=4)
    await gather_bounded(at_county, decide, limit=12)
    late = await c.api.call("review", "POST", f"/v1/cases/{cases[0]['case_id']}/return", COUNTY_BUREAU,
                            json={"acted_on": AFTER_LOCK.isoformat(), "to_stage": "村民评议",
                                  "reason": "数据锁定后修改"},
                            ok=(409,)) if cases else None
    overdue = (await c.api.call("review", "GET", "/v1/lists/overdue", COUNTY_BUREAU,
                                params={"as_of": AFTER_LOCK.isoformat()})).json()
    identified: Counter[str] = Counter()
    for d in c.decisions.values():
        if d.get("outcome") == "新识别监测对象" and not d.get("refused"):
            for risk in d.get("risks") or ["（未列风险）"]:
                identified[f"{d.get('category')}·{risk}"] += 1
    c.figures["review"] = {"cases": len(cases), **stats, "refused_after_lock": late is not None,
                           "overdue_at_lock": overdue["count"], "identified": dict(identified)}


async def stage_support(c: Campaign) -> None:
    """帮扶: a cadre for every plan, the measures its gaps call for, and delivery of the developmental ones."""
    await settle(c, "the plans created from decisions")
    plans = await every_page(c.api, "support", "/v1/plans", COUNTY_BUREAU, {"open": "true", "limit": 500})
    task = c.task("帮扶计划措施", len(plans))
    kinds: Counter[str] = Counter()
    catalogue = _catalogue(c)

    async def help_household(summary: dict[str, Any]) -> None:
        hid, village = summary["household_id"], summary["village_code"]
        cadre = Who(Role.WORK_TEAM, village, f"驻村工作队-{village[-3:]}")
        await c.api.call("support", "PUT", f"/v1/plans/{hid}/cadre", cadre, json={"cadre": cadre.user})
        plan = (await c.api.call("support", "GET", f"/v1/plans/{hid}", cadre)).json()
        have = {m["kind"] for m in plan["measures"]}
        for need in plan["missing"]:
            kind = _measure_for(need, catalogue)
            if kind and kind not in have:
                plan = (await c.api.call("support", "POST", f"/v1/plans/{hid}/measures", cadre,
                                         json={"kind": kind, "planned_start": "2022-06-01"})).json()
                have.add(kind)
        if plan["labour_capable"] and not any(MeasureKind(m["kind"]) in DEVELOPMENTAL_MEASURES
                                              for m in plan["measures"]):
            plan = (await c.api.call("support", "POST", f"/v1/plans/{hid}/measures", cadre,
                                     json={"kind": MeasureKind.EMPLOYMENT.value, "planned_start": "2022-06-01"})).json()
        for m in plan["measures"]:
            kinds[m["kind"]] += 1
            if m["developmental"] and m["status"] == "planned":
                await c.api.call("support", "POST", f"/v1/plans/{hid}/measures/{m['measure_id']}/implement",
                                 Who(Role.DEPARTMENT, m["department"], f"{m['department']}-帮扶"),
                                 json={"implemented_on": "2022-06-05",
                                       "evidence_ref": f"发放凭证-{m['measure_id'][-6:]}"})

    await gather_bounded(plans, help_household, limit=12, on_done=lambda: c.advance(task))
    gaps = (await c.api.call("support", "GET", "/v1/coverage-gaps", COUNTY_BUREAU, params={"limit": 500})).json()
    safety = (await c.api.call("support", "GET", "/v1/safety-net-only", COUNTY_BUREAU, params={"limit": 500})).json()
    c.figures["support"] = {"plans": len(plans), "measures": dict(kinds), "gaps_left": len(gaps["data"]),
                            "safety_net_only": len(safety["data"])}
    if not plans:
        raise DemoError("no plan was created from the county's decisions")


class _ReviewPolicy(BaseModel):
    model_config = ConfigDict(extra="ignore")

    check_departments: list[str]


def _check_departments(c: Campaign) -> list[str]:
    """The departments of the county's joint check (县级联审), as the campaign's policy lists them."""
    return policy_section(c.api.settings.campaign, "review", _ReviewPolicy).check_departments
