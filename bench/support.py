"""Support benchmark: plans created per second from county decisions.

    python bench/support.py --households 10000 --batch 200 --out var/bench

Starts its own durable PostgreSQL in a temporary directory and removes it at the end. Plans are created by direct
handler calls, not through NATS: the CountyDecided events (风险未消除, two risks, two proposed measures) go through
`Support.consume_batch` exactly as the consumer's batch handler calls it, `--batch` events per transaction (the inbox
rows themselves are not written). Half the households have assessment facts (risks, gaps, labour, income)
beforehand, so goals and coverage use them. A second run feeds the same number of decisions to
`Support.decide_many` directly; a third feeds an IncomeAssessed for every household with a plan through the
consumer's batch handler (the plans' flags refreshed). Then the two batch
endpoints, called as the routes are (no HTTP): a work team's plan entries (cadre and a measure for each first-run
household, `--batch` to a call) and a department's implementations of their 就业帮扶 measures (its delivery records
cover nine in ten, so the delivery check runs and finds the rest). CPU seconds of this process and of PostgreSQL
per phase. Prints a table and writes `<out>/support.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import povguard_contracts  # noqa: F401
from povguard_contracts.assessment import IncomeAssessed
from povguard_contracts.review import CountyDecided
from povguard_contracts.vocab import (
    Department,
    HouseholdKind,
    IncomeBand,
    MeasureKind,
    MonitoringCategory,
    MonitoringStatus,
    Outcome,
    RiskType,
)
from povguard_platform.actor import Actor, Role
from povguard_platform.envelope import RecordedEvent, StreamRef
from povguard_platform.eventstore import EventStore
from povguard_platform.ids import uuid7
from povguard_platform.migrations import upgrade
from povguard_platform.policy import load_policy, policy_section
from povguard_platform.roles import provision
from povguard_platform.settings import sqlalchemy_url
from povguard_rules.measures import SupportPolicy
from povguard_support.api import plans as routes
from povguard_support.api.schemas import Implementation, Implementations, MeasureCreate, PlanEntries, PlanEntry
from povguard_support.handlers import Support
from povguard_support.projections import save_facts
from povguard_support.service import SERVICE
from povguard_tools.benchrun import cpu_seconds
from povguard_tools.runtime.servers import EmbeddedPostgres

console = Console()
BUREAU = Actor(user="县乡村振兴局", role=Role.COUNTY_BUREAU, org="533123")
HRSS = Actor(user="人社-帮扶", role=Role.DEPARTMENT, org="533123", dept=Department.HUMAN_RESOURCES.value)
CAMPAIGN = "533123-2022"


def decision(i: int, prefix: str) -> CountyDecided:
    return CountyDecided(
        case_id=f"case-{prefix}{i}", household_id=f"{prefix}{i:06d}", outcome=Outcome.NEWLY_IDENTIFIED,
        kind=HouseholdKind.MONITORED, category=MonitoringCategory.MARGINAL,
        status=MonitoringStatus.RISK_NOT_ELIMINATED, risks=[RiskType.ILLNESS, RiskType.UNSTABLE_EMPLOYMENT],
        lead_department=Department.AGRICULTURE, proposed_measures=[MeasureKind.HEALTH, MeasureKind.EMPLOYMENT],
        decided_on=date(2022, 5, 27))


def recorded(payload: CountyDecided, position: int) -> RecordedEvent:
    return RecordedEvent(
        id=uuid7(), source="review", stream=StreamRef("case", payload.case_id), version=2, position=position,
        type="CountyDecided", type_version=1, township="533123101", time=datetime.now(UTC), actor=BUREAU,
        data=payload.model_dump(mode="json"))


def income(i: int, prefix: str, position: int) -> RecordedEvent:
    village = f"533123{101 + i % 15:03d}{201 + i % 8:03d}"
    payload = IncomeAssessed(household_id=f"{prefix}{i:06d}", village_code=village, visit_id=f"visit-{prefix}{i}",
                             household_size=3, size_basis="户籍", lines={"工资性收入": Decimal(18000)},
                             net_income=Decimal(18000), per_capita=Decimal(6000), band=IncomeBand.UNDER_LINE)
    return RecordedEvent(
        id=uuid7(), source="assessment", stream=StreamRef("assessment", payload.household_id), version=1,
        position=position, type="IncomeAssessed", type_version=1, township=village[:9], time=datetime.now(UTC),
        actor=BUREAU, data=payload.model_dump(mode="json"))


async def seed_facts(support_engine: Any, prefix: str, n: int) -> None:
    async with support_engine.begin() as conn:
        for i in range(0, n, 2):
            village = f"533123{101 + i % 15:03d}{201 + i % 8:03d}"
            await save_facts(conn, f"{prefix}{i:06d}", village_code=village, township_code=village[:9],
                             risks=["因病"], gaps=["住房安全"] if i % 4 == 0 else [], no_labour=False,
                             labour_capable_members=2, per_capita=6000 + i % 3000)


async def timed(pg: EmbeddedPostgres, n: int, work: Callable[[], Awaitable[None]]) -> dict[str, float]:
    """Wall seconds, items per second and CPU ms per item of this process and of PostgreSQL for one phase."""
    assert pg.proc is not None
    own, server = cpu_seconds(os.getpid()), cpu_seconds(pg.proc.pid, children=True)
    started = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - started
    own, server = cpu_seconds(os.getpid()) - own, cpu_seconds(pg.proc.pid, children=True) - server
    return {"seconds": elapsed, "plans_per_s": n / elapsed, "cpu_ms_per_item_bench": 1000 * own / n,
            "cpu_ms_per_item_postgres": 1000 * server / n}


async def run(pg: EmbeddedPostgres, url: str, n: int, batch: int) -> dict[str, Any]:
    engine = create_async_engine(sqlalchemy_url(url), pool_size=2)
    await provision(url, ["support"])  # the bench runs as the superuser; the migrations grant to the roles
    async with engine.begin() as conn:
        await upgrade(conn, SERVICE.migrations_dir, "support")
    support = Support(EventStore("support"), load_policy(CAMPAIGN), policy_section(CAMPAIGN, "support", SupportPolicy))
    results: dict[str, Any] = {"households": n, "batch": batch}

    await seed_facts(engine, "c", n)
    events = [recorded(decision(i, "c"), i + 1) for i in range(n)]

    async def handler() -> None:
        for start in range(0, n, batch):
            async with engine.begin() as conn:
                await support.consume_batch(conn, events[start:start + batch])

    results["handler"] = await timed(pg, n, handler)

    await seed_facts(engine, "b", n)
    decisions = [decision(i, "b") for i in range(n)]

    async def batched() -> None:
        for start in range(0, n, batch):
            async with engine.begin() as conn:
                await support.decide_many(conn, decisions[start:start + batch])

    results["batched"] = await timed(pg, n, batched)

    incomes = [income(i, "c", n + i + 1) for i in range(n)]

    async def assessed() -> None:
        for start in range(0, n, batch):
            async with engine.begin() as conn:
                await support.consume_batch(conn, incomes[start:start + batch])

    results["assessed"] = await timed(pg, n, assessed)

    # the batch endpoints, called as FastAPI calls the routes
    async with engine.connect() as conn:
        planned = (await conn.execute(text("SELECT count(*) FROM support.measures"))).scalar_one()
    runtime: Any = SimpleNamespace(engine=engine)
    entries = [PlanEntry(household_id=f"c{i:06d}", cadre="王帮扶", measures=[MeasureCreate(kind=MeasureKind.INDUSTRY)])
               for i in range(n)]

    async def enter() -> None:
        for start in range(0, n, batch):
            answer = await routes.enter_plans(PlanEntries(items=entries[start:start + batch]), runtime, support,
                                              BUREAU)
            assert not answer.failed, answer.failed[:3]

    results["enter_plans"] = await timed(pg, n, enter)

    async with engine.begin() as conn:
        employment = [(r[0], r[1]) for r in await conn.execute(text(
            "SELECT household_id, measure_id FROM support.measures WHERE household_id LIKE 'c%' AND kind = :k "
            "ORDER BY household_id"), {"k": MeasureKind.EMPLOYMENT.value})]
        await conn.execute(text("""
            INSERT INTO support.delivery_records (department, record_ref, household_id, kind, delivered_on,
                                                  received_by)
            VALUES (:d, :ref, :hh, :k, :on, 'bench')"""),
            [{"d": Department.HUMAN_RESOURCES.value, "ref": f"RS-{hh}", "hh": hh, "k": MeasureKind.EMPLOYMENT.value,
              "on": date(2022, 6, 5)} for i, (hh, _) in enumerate(employment) if i % 10])
    done = [Implementation(household_id=hh, measure_id=m, implemented_on=date(2022, 6, 5),
                           evidence_ref=f"签到表-{hh}") for hh, m in employment]

    async def implement() -> None:
        for start in range(0, len(done), batch):
            answer = await routes.implement_measures(Implementations(items=done[start:start + batch]), runtime,
                                                     support, HRSS)
            assert not answer.failed, answer.failed[:3]

    results["implement_measures"] = await timed(pg, len(done), implement)

    async with engine.connect() as conn:
        row = (await conn.execute(text("""SELECT count(*), count(*) FILTER (WHERE missing <> '{}'),
                                                 count(*) FILTER (WHERE safety_net_only)
                                          FROM support.plans"""))).one()
        measures = (await conn.execute(text("SELECT count(*) FROM support.measures"))).scalar_one()
        events_n = (await conn.execute(text("SELECT count(*) FROM support.events"))).scalar_one()
        mismatches = (await conn.execute(text("SELECT count(*) FROM support.mismatches WHERE open"))).scalar_one()
    results["check"] = {"plans": row[0], "with_missing_measures": row[1], "safety_net_only": row[2],
                        "measures": measures, "events": events_n, "open_mismatches": mismatches}
    assert row[0] == 2 * n and measures == planned + n and mismatches == len(done[::10]), results["check"]
    await engine.dispose()
    return results


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("var/bench"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="povguard-bench-support-"))
    pg = EmbeddedPostgres(tmp / "postgres", durable=True)
    pg.start()
    try:
        url = pg.create_database("bench_support")
        with console.status(f"creating plans for {args.households:,} households (twice)…"):
            results = await run(pg, url, args.households, args.batch)
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    results["at"] = datetime.now(UTC).isoformat()

    table = Table(title="support: plans from county decisions")
    table.add_column("measure")
    table.add_column("value", justify="right")
    c = results["check"]
    for key, label in (("handler", f"consumer batch, {args.households:,} decisions, {args.batch}/transaction"),
                       ("batched", f"decide_many, {args.batch} decisions/append"),
                       ("assessed", f"consumer batch, IncomeAssessed of planned households, {args.batch}/transaction"),
                       ("enter_plans", f"POST /v1/batches/plans, {args.batch}/call"),
                       ("implement_measures", f"POST /v1/batches/implementations, {args.batch}/call")):
        r = results[key]
        table.add_row(label, f"{r['plans_per_s']:,.0f}/s ({r['seconds']:.1f} s); CPU ms/item "
                      f"{r['cpu_ms_per_item_bench']:.2f} + PostgreSQL {r['cpu_ms_per_item_postgres']:.2f}")
    table.add_row("plans / measures / events written", f"{c['plans']:,} / {c['measures']:,} / {c['events']:,}")
    table.add_row("flagged: missing measures / 一兜了之", f"{c['with_missing_measures']:,} / {c['safety_net_only']:,}")
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "support.json").write_text(json.dumps(results, indent=2))
    console.print(f"written to {args.out / 'support.json'}")


if __name__ == "__main__":
    asyncio.run(main())
