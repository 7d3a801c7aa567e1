"""The campaign's stages, each driven through the public APIs by the role that does it in the field."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from povguard_platform.actor import Role
from povguard_platform.demo.client import Api, DemoError, Who, every_page, gather_bounded, wait_until
from povguard_platform.synthetic import County, SyntheticHousehold

COUNTY_CODE = "533123"


@dataclass
class Campaign:
    api: Api
    county: County
    console: Console
    registry_file: Any  # the generated registry (Path)
    household_ids: dict[str, str] = field(default_factory=dict)  # 户编号 → household id
    visit_ids: dict[str, str] = field(default_factory=dict)  # household id → its latest visit (form 2-1)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)  # household id → the county's decision
    figures: dict[str, Any] = field(default_factory=dict)
    progress: Progress | None = None

    def task(self, description: str, total: int | None) -> TaskID:
        assert self.progress is not None
        return self.progress.add_task(description, total=total)

    def advance(self, task: TaskID, by: int = 1) -> None:
        assert self.progress is not None
        self.progress.advance(task, by)

    def clerk(self, household: SyntheticHousehold) -> Who:
        return Who(Role.VILLAGE_CLERK, household.place.village_code, f"数据员-{household.place.village}")

    def collector(self, household: SyntheticHousehold) -> Who:
        return Who(Role.COLLECTOR, household.place.village_code, household.visit.collector)


COUNTY_BUREAU = Who(Role.COUNTY_BUREAU, COUNTY_CODE, "县乡村振兴局-数据组")
INSPECTOR = Who(Role.INSPECTOR, COUNTY_CODE, "县纪委监委-检查组")


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

    await wait_until(done, 900, "the import", interval=0.3)
    if report["status"] != "done":
        raise DemoError(f"import {report['status']}: {report.get('message')}")
    c.figures["import"] = {k: report[k] for k in ("households", "rows", "imported", "unchanged", "refused",
                                                  "error_count")}
    await _collect_ids(c)


async def _collect_ids(c: Campaign) -> None:
    """户编号 → household id, from the registry's list per township (what a county clerk would look up)."""
    by_code: dict[str, str] = {}
    for town in sorted({h.place.township_code for h in c.county.households}):
        listed = await every_page(c.api, "intake", "/v1/households", COUNTY_BUREAU, {"org": town, "limit": 500})
        by_code.update({h["code"]: h["household_id"] for h in listed})
    c.household_ids = by_code


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
        who = Who(Role.DEPARTMENT, department, f"{department}-接口")
        answer = (await c.api.call("intake", "POST", "/v1/batches/warnings", who, json={"items": [
            {"department": w.department.value, "kind": w.kind.value, "id_number": w.id_number,
             "person_name": w.person_name, "amount": w.amount, "occurred_on": w.occurred_on.isoformat(),
             "reported_on": "2022-05-06", "source_ref": w.source_ref, "note": w.note} for w in warnings]})).json()
        again = [f for f in answer["failed"] if f["problem"]["status"] == 409]  # sent by an earlier demo run
        if len(again) != len(answer["failed"]):
            raise DemoError(f"{department}: warnings refused: {answer['failed'][:3]}")
        matched += sum(bool(w["matched"]) for w in answer["data"])
        c.advance(task, len(warnings))

    await gather_bounded(pushes, push, limit=4)
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


async def sync_forms(c: Campaign, label: str, uploads: dict[Who, list[dict[str, Any]]]) -> None:
    """Each collector's tablet syncs its forms (or corrections) in uploads of SYNC_SIZE; the latest visit of each
    household is kept for later corrections."""
    task = c.task(label, sum(map(len, uploads.values())))

    async def sync(chunk: tuple[Who, list[dict[str, Any]]]) -> None:
        who, items = chunk
        answer = (await c.api.call("intake", "POST", "/v1/batches/visits", who, json={"items": items})).json()
        if answer["failed"]:
            raise DemoError(f"{who.user}: forms refused: {answer['failed'][:3]}")
        c.visit_ids.update({done["household_id"]: done["visit_id"] for done in answer["data"]})
        c.advance(task, len(items))

    await gather_bounded([(who, items[i:i + SYNC_SIZE]) for who, items in uploads.items()
                          for i in range(0, len(items), SYNC_SIZE)], sync, limit=4)


SYNC_SIZE = 100  # forms per upload from a collector's tablet


async def stage_audit(c: Campaign) -> None:
    """Audit: wait until the ledger holds every event, sign a checkpoint, export the bundle and verify it offline."""
    from povguard_audit.verify import verify_bundle

    task = c.task("审计账本核验", None)

    await settle(c, "the audit ledger")
    signed = (await c.api.call("audit", "POST", "/v1/audit/checkpoints", COUNTY_BUREAU)).json()
    bundle = (await c.api.call("audit", "GET", "/v1/audit/bundles", INSPECTOR)).json()
    keys = [k["vkey"] for k in (await c.api.call("audit", "GET", "/v1/audit/keys", INSPECTOR)).json()]
    report = verify_bundle(bundle, keys)
    c.advance(task)
    c.figures["audit"] = {"tree_size": report.tree_size, "checkpoint": signed, "verified": report.ok,
                          "problem": report.problem, "first_bad": str(report.first_bad) if report.first_bad else None}
    if not report.ok:
        raise DemoError(f"audit verification failed: {report.problem or report.first_bad}")


_LAG = re.compile(r'^povguard_(?:consumer_lag_messages|relay_lag_events)\{[^}]*\} ([0-9.e+]+)$', re.M)


async def quiet(c: Campaign) -> bool:
    """Every relay has published everything and every consumer has nothing pending (their Prometheus gauges, as an
    operator would look)."""
    for client in c.api.clients.values():
        metrics = (await client.get("/metrics")).text
        if any(float(v) for v in _LAG.findall(metrics)):
            return False
    return True


async def settle(c: Campaign, what: str, within: float = 900) -> None:
    """Wait until the system is quiet three times in a row over about three seconds: an event travels relay →
    consumer → append → relay, and the consumers' gauges refresh every second."""
    async def steadily() -> bool:
        for _ in range(3):
            if not await quiet(c):
                return False
            await asyncio.sleep(1.1)
        return await quiet(c)

    await wait_until(steadily, within, what)


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


def stages() -> list[tuple[str, Callable[[Campaign], Awaitable[None]]]]:
    from povguard_platform.demo.clearance import stage_clearance
    from povguard_platform.demo.procedure import stage_review, stage_support

    return [("import", stage_import), ("warnings", stage_warnings), ("visits", stage_visits),
            ("assessment", stage_assessment), ("review", stage_review), ("support", stage_support),
            ("clearance", stage_clearance), ("audit", stage_audit)]


def progress_bar(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)
