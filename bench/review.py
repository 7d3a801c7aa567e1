"""Review benchmark: drive N cases (default 10,000) through every stage of the procedure:
opening, 村民评议, 村两委决定, 公示 (start; an objection raised and dismissed on every tenth case;
close after 5 working days), 乡镇审核, one check per county department (15), 县级审定.
Direct handler calls (`Review.open` / `Review.act`, the code the HTTP routes call, without HTTP),
each action in its own database transaction as a request would be.

    python bench/review.py --cases 10000 --workers 8 --out var/bench

    python bench/review.py --cases 2000 --batch 500 --out var/bench

With --batch, the way the campaign drives review (`povguard demo`, bench/e2e.py): every stage as 批量办理 of up to
that many cases per call (`Review.act_many`, what the batch routes call), each of the 15 departments answering for
every case; it reports the CPU seconds of this process and of PostgreSQL (all its backends) per stage.

Starts its own PostgreSQL (durable: fsync and synchronous_commit on) in a temporary directory;
prints a Rich table and writes `<out>/review.json` (`review-batch.json` with --batch)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import create_async_engine

import povguard_contracts  # noqa: F401
from povguard_contracts.review import CaseOpened, Opinion
from povguard_contracts.vocab import (
    Department,
    HouseholdKind,
    MeasureKind,
    MonitoringCategory,
    MonitoringStatus,
    Outcome,
    RiskType,
)
from povguard_platform.actor import Actor, Role
from povguard_platform.eventstore import EventStore
from povguard_platform.ids import uuid7
from povguard_platform.migrations import upgrade
from povguard_platform.roles import provision
from povguard_platform.settings import sqlalchemy_url
from povguard_review.domain import case as domain
from povguard_review.domain.case import Action
from povguard_review.handlers import Review
from povguard_review.policy import load
from povguard_review.service import SERVICE
from povguard_tools.benchrun import cpu_seconds
from povguard_tools.benchrun import report as write_report
from povguard_tools.runtime.servers import EmbeddedPostgres

D = date.fromisoformat
TOWNS = [f"533123{100 + t:03d}" for t in range(1, 16)]


async def drive(review: Review, engine: Any, n: int, workers: int, console: Console) -> dict[str, Any]:
    committee = Actor(user="村两委", role=Role.VILLAGE_COMMITTEE, org="533123")
    township = Actor(user="乡镇审核", role=Role.TOWNSHIP_REVIEWER, org="533123")
    county = Actor(user="县乡村振兴局", role=Role.COUNTY_BUREAU, org="533123")
    villager = Actor(user="村民", role=Role.COLLECTOR, org="533123")
    departments = [Actor(user=f"{d.value}接口", role=Role.DEPARTMENT, org="533123", dept=d.value)
                   for d in review.rules.check_departments]
    counts = {"actions": 0, "events": 0}

    async def act(case_id: str, actor: Actor, action: Action, on: date, decide: Any) -> domain.Case:
        async with engine.begin() as conn:
            case, events = await review.act(conn, case_id, actor, action, on, decide)
        counts["actions"] += 1
        counts["events"] += len(events)
        return case

    async def one(i: int) -> None:
        town = TOWNS[i % len(TOWNS)]
        village = f"{town}{200 + i % 20:03d}"
        outcome = Outcome.INCOME_INCREASE_TARGET if i % 7 == 0 else Outcome.NEWLY_IDENTIFIED
        opened = CaseOpened(case_id=str(uuid7()), household_id=f"h{i:06d}", village_code=village, township_code=town,
                            outcome=outcome, category=MonitoringCategory.MARGINAL, risks=[RiskType.ILLNESS],
                            lead_date=D("2022-05-08"), source="研判建议", collector="采集员",
                            income_increase_target=outcome == Outcome.INCOME_INCREASE_TARGET,
                            kind_before=HouseholdKind.ORDINARY,
                            status_before=MonitoringStatus.NOT_MONITORED,
                            kind_before_monitoring=HouseholdKind.ORDINARY, opened_on=D("2022-05-09"))
        async with engine.begin() as conn:
            case = await review.open(conn, opened, SYSTEM)
        counts["actions"] += 1
        counts["events"] += 1
        cid = case.case_id
        case = await act(cid, committee, Action.APPRAISE, D("2022-05-14"), lambda c: domain.appraise(
            c, D("2022-05-14"), D("2022-05-14"), 10, 40, 45, 3, []))
        case = await act(cid, committee, Action.VILLAGE_DECIDE, D("2022-05-16"), lambda c: domain.village_decide(
            c, D("2022-05-16"), [MeasureKind.EMPLOYMENT], None, [], "同意"))
        if case.noticed:
            case = await act(cid, committee, Action.START_NOTICE, D("2022-05-16"), lambda c: domain.start_notice(
                c, D("2022-05-16"), review.rules.notice_places, review.policy.calendar.notice_working_days))
            if i % 10 == 1:
                oid = str(uuid7())
                await act(cid, villager, Action.RAISE_OBJECTION, D("2022-05-18"), lambda c: domain.raise_objection(
                    c, D("2022-05-18"), oid, "反映该户有车辆", "村民"))
                await act(cid, township, Action.RESOLVE_OBJECTION, D("2022-05-19"),
                          lambda c: domain.resolve_objection(c, D("2022-05-19"), oid, False, "经核实车辆已报废"))
            await act(cid, committee, Action.CLOSE_NOTICE, D("2022-05-21"),
                      lambda c: domain.close_notice(c, D("2022-05-21")))
        await act(cid, township, Action.TOWNSHIP_REVIEW, D("2022-05-23"),
                  lambda c: domain.township_review(c, D("2022-05-23"), i % 5 == 0, [], "同意"))
        for dept in departments:
            await act(cid, dept, Action.DEPARTMENT_CHECK, D("2022-05-24"), lambda c, d=dept: domain.department_check(
                c, D("2022-05-24"), Department(d.dept), review.rules.check_departments, []))
        case = await act(cid, county, Action.COUNTY_DECIDE, D("2022-05-25"), lambda c: domain.county_decide(
            c, D("2022-05-25"), review.rules.check_departments, lead_department=Department.HUMAN_RESOURCES,
            elimination_method=None, measures=[], opinion="审定"))
        assert case.stage == domain.S.DECIDED

    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await one(queue.get_nowait())

    started = time.perf_counter()
    with console.status(f"driving {n} cases with {workers} workers"):
        await asyncio.gather(*[worker() for _ in range(workers)])
    seconds = time.perf_counter() - started
    return {"cases": n, "workers": workers, "seconds": round(seconds, 2), "cases_per_s": round(n / seconds, 1),
            "actions": counts["actions"], "actions_per_s": round(counts["actions"] / seconds, 1),
            "events": counts["events"], "events_per_s": round(counts["events"] / seconds, 1)}


SYSTEM = Actor(user="povguard", role=Role.SYSTEM, org="system")


def cpu_seconds_now(pg: EmbeddedPostgres) -> tuple[float, float]:
    """CPU seconds so far of this process, and of PostgreSQL (the postmaster, its live backends and those gone)."""
    assert pg.proc is not None
    return cpu_seconds(os.getpid()), cpu_seconds(pg.proc.pid, children=True)


async def drive_batches(review: Review, engine: Any, pg: EmbeddedPostgres, n: int, size: int,
                        console: Console) -> dict[str, Any]:
    """Open n cases (not measured), then carry them through every stage in batches of `size`, serially."""
    committee = Actor(user="村两委", role=Role.VILLAGE_COMMITTEE, org="533123")
    clerk = Actor(user="村文书", role=Role.VILLAGE_CLERK, org="533123")
    township = Actor(user="乡镇审核", role=Role.TOWNSHIP_REVIEWER, org="533123")
    county = Actor(user="县乡村振兴局", role=Role.COUNTY_BUREAU, org="533123")
    ids: list[str] = []
    with console.status(f"opening {n} cases"):
        for i in range(n):
            town = TOWNS[i % len(TOWNS)]
            opened = CaseOpened(case_id=str(uuid7()), household_id=f"h{i:06d}",
                                village_code=f"{town}{200 + i % 20:03d}", township_code=town,
                                outcome=Outcome.NEWLY_IDENTIFIED,
                                category=MonitoringCategory.MARGINAL, risks=[RiskType.ILLNESS],
                                lead_date=D("2022-05-12"), source="研判建议", collector="采集员",
                                kind_before=HouseholdKind.ORDINARY, status_before=MonitoringStatus.NOT_MONITORED,
                                kind_before_monitoring=HouseholdKind.ORDINARY, opened_on=D("2022-05-12"))
            async with engine.begin() as conn:
                ids.append((await review.open(conn, opened, SYSTEM)).case_id)
    stages: dict[str, dict[str, float]] = {}
    events = 0

    async def stage(label: str, actor: Actor, action: Action, on: date, decide: Any) -> None:
        nonlocal events
        own, server = cpu_seconds_now(pg)
        with console.status(f"{label}: {n} cases"):
            for start in range(0, n, size):
                async with engine.begin() as conn:
                    done, failed = await review.act_many(conn, actor, action,
                                                         [(cid, on, decide, None) for cid in ids[start:start + size]])
                assert not failed, failed[:1]
                events += sum(len(e) for _, _, e in done)
        own2, server2 = cpu_seconds_now(pg)
        spent = stages.setdefault(str(action.value), {"bench": 0.0, "postgres": 0.0})
        spent["bench"] += own2 - own
        spent["postgres"] += server2 - server

    started = time.perf_counter()
    await stage("村民评议", committee, Action.APPRAISE, D("2022-05-14"), lambda c: domain.appraise(
        c, D("2022-05-14"), D("2022-05-14"), 10, 40, 45, 3, [Opinion(opinion="是否属实？", answer="属实")]))
    await stage("村两委决定", committee, Action.VILLAGE_DECIDE, D("2022-05-16"), lambda c: domain.village_decide(
        c, D("2022-05-16"), [MeasureKind.EMPLOYMENT], None, [], "同意"))
    await stage("公示", clerk, Action.START_NOTICE, D("2022-05-16"), lambda c: domain.start_notice(
        c, D("2022-05-16"), review.rules.notice_places, review.policy.calendar.notice_working_days))
    await stage("公示期满", clerk, Action.CLOSE_NOTICE, D("2022-05-23"),
                lambda c: domain.close_notice(c, D("2022-05-23")))
    await stage("乡镇审核", township, Action.TOWNSHIP_REVIEW, D("2022-05-24"),
                lambda c: domain.township_review(c, D("2022-05-24"), False, [], "同意"))
    for d in review.rules.check_departments:
        dept = Actor(user=f"{d.value}接口", role=Role.DEPARTMENT, org="533123", dept=d.value)
        await stage(d.value, dept, Action.DEPARTMENT_CHECK, D("2022-05-25"), lambda c, d=d: domain.department_check(
            c, D("2022-05-25"), d, review.rules.check_departments, []))
    await stage("县级审定", county, Action.COUNTY_DECIDE, D("2022-05-26"), lambda c: domain.county_decide(
        c, D("2022-05-26"), review.rules.check_departments, lead_department=Department.HUMAN_RESOURCES,
        elimination_method=None, measures=[], opinion="审定"))
    seconds = time.perf_counter() - started
    bench = sum(s["bench"] for s in stages.values())
    server = sum(s["postgres"] for s in stages.values())
    return {"cases": n, "batch": size, "events": events, "seconds": round(seconds, 2),
            "cpu_seconds_bench": round(bench, 2), "cpu_seconds_postgres": round(server, 2),
            "cpu_ms_per_event_bench": round(1000 * bench / events, 3),
            "cpu_ms_per_event_postgres": round(1000 * server / events, 3),
            "cpu_seconds_by_stage": {k: {p: round(v, 2) for p, v in s.items()} for k, s in stages.items()}}


async def benchmark(url: str, n: int, workers: int, console: Console, pg: EmbeddedPostgres | None = None,
                    batch: int = 0) -> dict[str, Any]:
    engine = create_async_engine(sqlalchemy_url(url), pool_size=workers + 2, max_overflow=0)
    await provision(url, [SERVICE.name])  # the bench runs as the superuser; the migrations grant to the roles
    async with engine.begin() as conn:
        await upgrade(conn, SERVICE.migrations_dir, SERVICE.name)
    policy, rules = load("533123-2022")
    review = Review(EventStore("review"), policy, rules)
    try:
        if batch and pg is not None:
            return await drive_batches(review, engine, pg, n, batch, console)
        result = await drive(review, engine, n, workers, console)
    finally:
        await engine.dispose()
    return {"benchmark": "review", "mode": "direct handler calls (Review.open/Review.act), one transaction per "
                                           "action, no HTTP", "result": result,
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "postgres": "embedded, durable (fsync on)"}}


def render(report: dict[str, Any], console: Console) -> None:
    r = report["result"]
    table = Table(title=f"review: {r['cases']} cases through every stage ({report['mode']})")
    for col in ("cases", "workers", "seconds", "cases/s", "actions", "actions/s", "events/s"):
        table.add_column(col, justify="right")
    table.add_row(str(r["cases"]), str(r["workers"]), str(r["seconds"]), str(r["cases_per_s"]), str(r["actions"]),
                  str(r["actions_per_s"]), str(r["events_per_s"]))
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8, help="concurrent cases (connections)")
    parser.add_argument("--batch", type=int, default=0, help="items per 批量办理 call (0: one case per action)")
    parser.add_argument("--out", type=Path, default=Path("var/bench"), help="directory for review.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=None if sys.stdout.isatty() else 120)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="povguard-bench-"))
    pg = EmbeddedPostgres(tmp / "postgres", durable=True)
    try:
        url = pg.start()
        report = asyncio.run(benchmark(url, args.cases, args.workers, console, pg, args.batch))
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.batch:
        by_stage = report.pop("cpu_seconds_by_stage")
        report |= {f"cpu {k} (bench/postgres)": f"{v['bench']}/{v['postgres']}" for k, v in by_stage.items()}
        write_report(console, f"review: {args.cases} cases, 批量办理 of {args.batch}", report, args.out,
                     "review-batch.json")
        return
    report["machine"]["run_seconds"] = round(time.perf_counter() - started, 1)
    render(report, console)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "review.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    console.print(f"wrote {path} ({report['machine']['run_seconds']} s)")


if __name__ == "__main__":
    main()
