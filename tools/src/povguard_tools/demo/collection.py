"""The first stages: 批量导入, 部门预警, 入户调查 and 研判, each driven through the public APIs by the role
that does it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from povguard_platform.actor import Role
from povguard_tools.demo.client import DemoError, Who, every_page, gather_bounded, wait_until
from povguard_tools.demo.state import COUNTY_BUREAU, COUNTY_CODE, SYNC_SIZE, Campaign, settle, sync_forms


async def stage_import(c: Campaign) -> None:
    """批量导入: the county bureau uploads the registry; rows with problems come back with row, column and reason."""
    content = c.registry_file.read_bytes()
    started = (await c.api.call("intake", "POST", "/v1/imports", COUNTY_BUREAU,
                                files={"file": (c.registry_file.name, content)})).json()
    task = c.task("导入农户信息", len(c.county.households))
    report: dict[str, Any] = started

    async def done() -> bool:
        nonlocal report
        report = (await c.api.call("intake", "GET", f"/v1/imports/{started['import_id']}", COUNTY_BUREAU,
                                   params={"limit": 0})).json()
        assert c.progress is not None
        c.progress.update(task, completed=report["processed"])
        return bool(report["status"] != "running")

    await wait_until(done, 900, "the import", interval=0.1)
    if report["status"] != "done":
        raise DemoError(f"import {report['status']}: {report.get('message')}")
    c.figures["import"] = {k: report[k] for k in ("households", "rows", "imported", "unchanged", "refused",
                                                  "error_count")}
    await _collect_ids(c)


async def _collect_ids(c: Campaign) -> None:
    """户编号 → household id, from the registry's list per township (what a county clerk would look up)."""
    async def township(town: str) -> list[dict[str, Any]]:
        return await every_page(c.api, "intake", "/v1/households", COUNTY_BUREAU, {"org": town, "limit": 500})

    towns = sorted({h.place.township_code for h in c.county.households})
    c.household_ids = {h["code"]: h["household_id"] for listed in await gather_bounded(towns, township)
                       for h in listed}


async def stage_warnings(c: Campaign) -> None:
    """部门筛查预警: each department's system pushes its warnings in batches."""
    task = c.task("部门预警推送", len(c.county.warnings))
    by_department: dict[str, list[Any]] = {}
    for w in c.county.warnings:
        by_department.setdefault(w.department.value, []).append(w)
    pushes = [(d, ws[i:i + SYNC_SIZE]) for d, ws in by_department.items() for i in range(0, len(ws), SYNC_SIZE)]
    matched = 0

    async def push(chunk: tuple[str, list[Any]]) -> None:
        nonlocal matched
        department, warnings = chunk
        who = Who(Role.DEPARTMENT, COUNTY_CODE, f"{department}-接口", department)
        answer = (await c.api.call("intake", "POST", "/v1/batches/warnings", who, json={"items": [
            {"department": w.department.value, "kind": w.kind.value, "id_number": w.id_number,
             "person_name": w.person_name, "amount": w.amount, "occurred_on": w.occurred_on.isoformat(),
             "reported_on": "2022-05-06", "source_ref": w.source_ref, "note": w.note} for w in warnings]})).json()
        again = [f for f in answer["failed"] if f["problem"]["status"] == 409]  # sent by an earlier demo run
        if len(again) != len(answer["failed"]):
            raise DemoError(f"{department}: warnings refused: {answer['failed'][:3]}")
        matched += sum(bool(w["matched"]) for w in answer["data"])
        c.advance(task, len(warnings))

    await gather_bounded(pushes, push)
    sent = len(c.county.warnings)
    c.figures["warnings"] = {"sent": sent, "matched": matched, "unmatched": sent - matched}


async def stage_visits(c: Campaign) -> None:
    """入户调查 (附件2-1): each collector fills the forms on a tablet and syncs them in batches."""
    visited = [h for h in c.county.households if h.code in c.household_ids]
    uploads: dict[Who, list[dict[str, Any]]] = {}
    for h in visited:
        uploads.setdefault(c.collector(h), []).append(
            {"household_id": c.household_ids[h.code], "form": h.visit.model_dump(mode="json")})
    await sync_forms(c, "入户调查采集", uploads)
    c.figures["visits"] = len(visited)


async def stage_assessment(c: Campaign) -> None:
    """研判: the assessment service reacts to every visit; the county bureau reads the base database (收入分段),
    the proposals by outcome and the data problems."""
    task = c.task("收入和风险研判", None)
    await settle(c, "the assessments")
    bands = (await c.api.call("assessment", "GET", "/v1/bands", COUNTY_BUREAU, params={"org": COUNTY_CODE})).json()
    c.figures["bands"] = bands
    outcomes: Counter[str] = Counter()
    held = 0
    proposals = await every_page(c.api, "assessment", "/v1/proposals", COUNTY_BUREAU,
                                 {"org": COUNTY_CODE, "limit": 500})
    for p in proposals:
        outcomes[p["outcome"]] += 1
        held += bool(p["held"])
    c.proposals = proposals
    c.figures["outcomes_proposed"] = dict(outcomes)
    c.figures["held"] = held
    problems = (await c.api.call("assessment", "GET", "/v1/data-problems/counts", COUNTY_BUREAU,
                                 params={"org": COUNTY_CODE})).json()
    c.figures["problems_found"] = sum(p["open"] for p in problems)
    scale = (await c.api.call("assessment", "GET", "/v1/scale-risk", COUNTY_BUREAU,
                              params={"org": COUNTY_CODE})).json()
    c.figures["scale_risk"] = [s["township_code"] for s in scale if s["crossed"]]
    c.advance(task)
