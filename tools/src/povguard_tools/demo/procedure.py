"""The review procedure and the support that follows, as the demo drives them: each case through 评议, 两委决定,
公示 (with a few objections), 乡镇审核, the county's joint department check and 审定; then plans get a cadre and the
measures that close their gaps (缺什么补什么), and the developmental ones are delivered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict

from povguard_contracts.vocab import MeasureKind
from povguard_platform.actor import Role
from povguard_platform.batch import MAX_ITEMS
from povguard_platform.policy import policy_section
from povguard_tools.demo.client import DemoError, Who, every_page, gather_bounded
from povguard_tools.demo.state import COUNTY_BUREAU, COUNTY_CODE, Campaign, settle

# when each step is taken in the 2022 campaign (seed §三)
APPRAISAL, VILLAGE, NOTICE, OBJECTION, CLOSE = (date(2022, 5, d) for d in (15, 17, 17, 19, 24))
TOWNSHIP, CHECKS, COUNTY, AFTER_LOCK = date(2022, 5, 25), date(2022, 5, 26), date(2022, 5, 27), date(2022, 6, 9)
# the plan's calendar runs past 15 days for the first visits' leads: such a step says why (识别时间不能超过15天)
LATE_REASON = "按全县集中排查工作安排统一办理，超过识别时限"


def _late(case: dict[str, Any], day: date) -> dict[str, str]:
    """The reason a step on `day` needs when it is past the case's identification limit (none within it)."""
    limit = case.get("identification_limit")
    return {"override_reason": LATE_REASON} if limit is not None and day.isoformat() > limit else {}


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


def _township(case: dict[str, Any]) -> Who:
    return Who(Role.TOWNSHIP_REVIEWER, case["township_code"], f"乡镇审核-{case['township_code'][-3:]}")


def _objected(case_id: str) -> bool:
    return sum(map(ord, case_id)) % 20 == 0  # a few objections, investigated and answered


async def stage_review(c: Campaign) -> None:
    """评议 → 两委决定 → 公示 → 乡镇审核 → 县级联审 → 审定, each by its own people, the way the work is done: one
    appraisal meeting and one notice board per village, one review session per township, one day's comparison per
    department, the county's decisions in batches. Cases continue from wherever they stand."""
    await settle(c, "the cases opened from proposals")
    cases = await _open_cases(c)
    checks = {ch.household_code: ch for ch in c.county.checks}
    code_of = {hid: code for code, hid in c.household_ids.items()}
    method = {p["household_id"]: p.get("elimination_method") for p in c.proposals}
    catalogue = _catalogue(c)
    stage_of = {case["case_id"]: case["stage"] for case in cases}
    stats: Counter[str] = Counter()

    async def wave(label: str, at: str, path: str, who: Callable[[dict[str, Any]], Who],
                   body: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
        """Every case standing at `at`, grouped by who acts on it, in batches."""
        todo = [case for case in cases if stage_of[case["case_id"]] == at]
        groups: dict[Who, list[dict[str, Any]]] = {}
        for case in todo:
            groups.setdefault(who(case), []).append(case)
        chunks = [(actor, group[i:i + BATCH]) for actor, group in groups.items() for i in range(0, len(group), BATCH)]
        task = c.task(label, len(todo))

        async def send(chunk: tuple[Who, list[dict[str, Any]]]) -> None:
            actor, group = chunk
            items = [(case, body(case)) for case in group]
            answer = (await c.api.call("review", "POST", f"/v1/batches/{path}", actor, json={
                "items": [item | _late(case, date.fromisoformat(item["acted_on"])) | {"case_id": case["case_id"]}
                          for case, item in items]})).json()
            if answer["failed"]:
                raise DemoError(f"{label} by {actor.user}: {answer['failed'][:3]}")
            stage_of.update({done["case_id"]: done["stage"] for done in answer["data"]})
            c.advance(task, len(group))

        await gather_bounded(chunks, send)
        return len(todo)

    await wave("村民评议", "村民评议", "appraisal", lambda case: _village(case)[0], lambda case: {
        "acted_on": APPRAISAL.isoformat(), "meeting_date": APPRAISAL.isoformat(), "party_members_present": 12,
        "household_heads_present": 31, "votes_for": 40, "votes_against": 3,
        "opinions": [{"opinion": "该户情况是否属实？", "answer": "经入户核实属实"}]})
    await wave("村两委决定", "村两委决定", "village-decision", lambda case: _village(case)[0], lambda case: {
        "acted_on": VILLAGE.isoformat(), "proposed_measures": _measures(case["risks"], catalogue),
        "opinion": "同意上报"})
    stats["公示"] = await wave("公示", "待公示", "notice", lambda case: _village(case)[1],
                             lambda case: {"acted_on": NOTICE.isoformat()})

    async def object_and_answer(case: dict[str, Any]) -> None:
        base = f"/v1/cases/{case['case_id']}"
        raised = (await c.api.call("review", "POST", f"{base}/objections",
                                   Who(Role.COLLECTOR, case["village_code"], "群众代表"),
                                   json={"acted_on": OBJECTION.isoformat(), "raised_by": "村民",
                                         "reason": "反映该户有务工收入未计入"})).json()
        await c.api.call("review", "POST", f"{base}/objections/{raised['objection_id']}/resolution", _township(case),
                         json={"acted_on": OBJECTION.isoformat(), "upheld": False,
                               "finding": "经核实务工收入已计入，异议不成立"} | _late(case, OBJECTION))

    objected = [case for case in cases if stage_of[case["case_id"]] == "公示中" and _objected(case["case_id"])]
    await gather_bounded(objected, object_and_answer)
    stats["异议"] = len(objected)
    await wave("公示期满", "公示中", "notice-closure", lambda case: _village(case)[1],
               lambda case: {"acted_on": CLOSE.isoformat()})
    await wave("乡镇审核", "乡镇审核", "township-review", _township, lambda case: {
        "acted_on": TOWNSHIP.isoformat(), "spot_checked": sum(map(ord, case["case_id"])) % 10 == 0,
        "proposed_measures": _measures(case["risks"], catalogue), "opinion": "同意"})

    at_county = [case for case in cases if stage_of[case["case_id"]] == "县级审定"]
    departments = _check_departments(c)
    checking = c.task("部门联审", len(departments))

    async def answer(department: str) -> None:
        """县级联审: each department compares its records and answers for all the cases in one call per batch."""
        who = Who(Role.DEPARTMENT, COUNTY_CODE, f"{department}-联审", department)
        waiting = [case for case in at_county if department not in case.get("checks", {})]
        for start in range(0, len(waiting), MAX_ITEMS):  # a department's system sends what a request may hold
            results = []
            for case in waiting[start:start + MAX_ITEMS]:
                check = checks.get(code_of.get(case["household_id"], ""))
                hits = [h for h in (check.hits if check else ()) if h.department.value == department]
                results.append({"case_id": case["case_id"], **_late(case, CHECKS),
                                "findings": [{"kind": h.kind.value, "detail": h.detail} for h in hits]})
            answered = (await c.api.call("review", "POST", "/v1/department-checks", who,
                                         json={"acted_on": CHECKS.isoformat(), "results": results})).json()
            if answered["failed"]:
                raise DemoError(f"{department} could not answer: {answered['failed'][:3]}")
        c.advance(checking)

    await gather_bounded(departments, answer)
    await wave("县级审定", "县级审定", "decision", lambda case: COUNTY_BUREAU, lambda case: {
        "acted_on": COUNTY.isoformat(),
        "lead_department": catalogue[_measures(case["risks"], catalogue)[0]].department,
        "elimination_method": method.get(case["household_id"]),
        "proposed_measures": _measures(case["risks"], catalogue), "opinion": "同意"})

    decided_ids = {case["case_id"] for case in at_county}
    decided = await every_page(c.api, "review", "/v1/cases", COUNTY_BUREAU, {"stage": "已审定", "limit": 1000})
    for case in decided:
        if case["case_id"] in decided_ids:
            c.decisions[case["household_id"]] = case.get("decision") or {}
            stats["refused" if (case.get("decision") or {}).get("refused") else "decided"] += 1
    stats["returned"] = sum(stage_of[i] != "已审定" for i in decided_ids)  # a department hit on a monitoring object
    late = await c.api.call("review", "POST", f"/v1/cases/{cases[0]['case_id']}/return", COUNTY_BUREAU,
                            json={"acted_on": AFTER_LOCK.isoformat(), "to_stage": "村民评议",
                                  "reason": "数据锁定后修改"},
                            ok=(409,)) if cases else None
    overdue = (await c.api.call("review", "GET", "/v1/lists/overdue", COUNTY_BUREAU,
                                params={"as_of": AFTER_LOCK.isoformat()})).json()
    past_limit = (await c.api.call("review", "GET", "/v1/lists/identification-limit", COUNTY_BUREAU,
                                   params={"as_of": AFTER_LOCK.isoformat(), "limit": 1})).json()
    identified: Counter[str] = Counter()
    for d in c.decisions.values():
        if d.get("outcome") == "新识别监测对象" and not d.get("refused"):
            for risk in d.get("risks") or ["（未列风险）"]:
                identified[f"{d.get('category')}·{risk}"] += 1
    c.figures["review"] = {"cases": len(cases), **stats, "refused_after_lock": late is not None,
                           "overdue_at_lock": overdue["count"], "identification_limit_listed": past_limit["count"],
                           "identified": dict(identified)}


BATCH = 200  # cases per batch call: one meeting's or one reviewer's list


async def stage_support(c: Campaign) -> None:
    """帮扶: each village's work team enters 一户一策 (a cadre and the measures the gaps call for, never 一兜了之);
    then each department records the developmental measures it delivered."""
    await settle(c, "the plans created from decisions")
    plans = await every_page(c.api, "support", "/v1/plans", COUNTY_BUREAU, {"open": "true", "limit": 500})
    catalogue = _catalogue(c)
    teams: dict[Who, list[dict[str, Any]]] = {}
    for summary in plans:
        village = summary["village_code"]
        teams.setdefault(Who(Role.WORK_TEAM, village, f"驻村工作队-{village[-3:]}"), []).append(summary)
    entered = c.task("一户一策录入", len(plans))
    states: list[dict[str, Any]] = []

    def entry(summary: dict[str, Any], team: Who) -> dict[str, Any]:
        kinds = list(dict.fromkeys(k for need in summary["missing"] if (k := _measure_for(need, catalogue))))
        if summary["labour_capable"] and not summary["developmental"] and not any(
                catalogue[k].developmental for k in kinds):
            kinds.append(MeasureKind.EMPLOYMENT.value)
        return {"household_id": summary["household_id"], "cadre": team.user,
                "measures": [{"kind": k, "planned_start": "2022-06-01"} for k in kinds]}

    async def enter(chunk: tuple[Who, list[dict[str, Any]]]) -> None:
        team, group = chunk
        answer = (await c.api.call("support", "POST", "/v1/batches/plans", team,
                                   json={"items": [entry(s, team) for s in group]})).json()
        if answer["failed"]:
            raise DemoError(f"{team.user}: plans refused: {answer['failed'][:3]}")
        states.extend(answer["data"])
        c.advance(entered, len(group))

    await gather_bounded([(team, group[i:i + BATCH]) for team, group in teams.items()
                          for i in range(0, len(group), BATCH)], enter)

    kinds: Counter[str] = Counter()
    deliveries: dict[str, list[dict[str, Any]]] = {}
    for state in states:
        for m in state["measures"]:
            kinds[m["kind"]] += 1
            if m["developmental"] and m["status"] == "planned":
                deliveries.setdefault(m["department"], []).append({
                    "household_id": state["household_id"], "measure_id": m["measure_id"],
                    "implemented_on": "2022-06-05", "evidence_ref": f"发放凭证-{m['measure_id'][-6:]}"})
    delivered = c.task("措施落实登记", sum(map(len, deliveries.values())))

    async def deliver(chunk: tuple[str, list[dict[str, Any]]]) -> None:
        department, items = chunk
        who = Who(Role.DEPARTMENT, COUNTY_CODE, f"{department}-帮扶", department)
        answer = (await c.api.call("support", "POST", "/v1/batches/implementations", who,
                                   json={"items": items})).json()
        if answer["failed"]:
            raise DemoError(f"{department}: implementations refused: {answer['failed'][:3]}")
        c.advance(delivered, len(items))

    await gather_bounded([(d, items[i:i + BATCH]) for d, items in deliveries.items()
                          for i in range(0, len(items), BATCH)], deliver)
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
