"""Event store benchmark: appends per second with povguard's EventStore, the outbox relay's throughput and
commit-to-stream delay, and, on the same PostgreSQL server in the same run, the `eventsourcing` library's PostgreSQL
recorder and a raw binary COPY of identical rows as references.

    python bench/eventstore.py --events 20000 --out var/bench

Starts its own PostgreSQL (durable: fsync and synchronous_commit on) and NATS JetStream servers in a temporary
directory and removes them at the end. Prints a table and writes `<out>/eventstore.json`.

Batch layout (every engine): a batch of B events is B new streams with one event each (expected version 0), one
transaction per batch. Writers are asyncio tasks (povguard, COPY) or threads (eventsourcing), each with its own
connection; the batches of a case are dealt round-robin to the writers. Payloads are built before the clock starts;
povguard serialises them inside `append`, eventsourcing and COPY get the same JSON bytes ready-made. COPY writes
exactly povguard's row (same columns, an identical table); eventsourcing's table holds the payload, id and version
but not the envelope (actor, township, trace columns). Each case is run `--repeat` times on fresh tables, the engines
taking turns, with a CHECKPOINT before each run; the median run is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import asyncpg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.payload import EventPayload
from povguard_platform.actor import Actor, Role
from povguard_platform.bus import connect, ensure_stream
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.eventstore import EventStore
from povguard_platform.ids import uuid7
from povguard_platform.relay import Relay
from povguard_platform.schema import platform_ddl
from povguard_platform.settings import sqlalchemy_url
from povguard_tools.runtime.servers import EmbeddedNats, EmbeddedPostgres

STREAM = "POVGUARD_EVENTS"
TOWNSHIP = "533123101"
ACTOR = Actor(user="bench", role=Role.COLLECTOR, org=TOWNSHIP)
META = Metadata(actor=ACTOR)
ACTOR_JSON = ACTOR.model_dump_json()
BATCH_SIZES = (1000, 100, 1)
WRITER_COUNTS = (1, 8)
SMALL_BATCH_EVENTS = 3000  # batch size 1 commits (and fsyncs) once per event: cap its event count
DELAY_EVENTS = 4000  # events appended while the relay runs, for the commit-to-stream delay
DELAY_BATCH = 10  # events per transaction in the delay phase
DELAY_INTERVAL = 0.01  # seconds between the delay phase's transactions (about 1000 events/s)
OURS, ES, COPY = "povguard", "eventsourcing", "copy"
COPY_COLUMNS = ("id", "stream_type", "stream_id", "version", "type", "type_version", "township", "actor",
                "correlation_id", "causation_id", "traceparent", "policy", "data")

T = TypeVar("T")
CopyRow = tuple[Any, ...]


class BenchHouseholdVisited(EventPayload):
    """A collector's household visit (入户核查), about 390 bytes of JSON."""

    event_type: ClassVar[str] = "BenchHouseholdVisited"
    service: ClassVar[str] = "bench"

    household_id: str
    village_code: str
    head_name: str
    visited_on: str
    members: int
    labourers: int
    income_per_capita: float
    income_sources: list[str]
    risks: list[str]
    housing_safe: bool
    drinking_water_safe: bool
    insured: int
    note: str


# Registered once even if the script runs twice in one process (runpy): the catalogue refuses a second class.
if BenchHouseholdVisited.event_type not in CATALOGUE.types():
    CATALOGUE.register(BenchHouseholdVisited)


def make_payload(rng: random.Random) -> BenchHouseholdVisited:
    return BenchHouseholdVisited(
        household_id=str(uuid7()),
        village_code=f"{TOWNSHIP}{rng.randint(200, 299)}",
        head_name=rng.choice(["李国华", "张秀英", "王德明", "赵春兰", "杨建军"]),
        visited_on="2025-03-14",
        members=rng.randint(1, 7),
        labourers=rng.randint(0, 4),
        income_per_capita=round(rng.uniform(4000, 16000), 2),
        income_sources=["务工收入", "种植核桃"],
        risks=rng.sample(["因病", "因残", "因学", "因灾", "缺劳力"], 2),
        housing_safe=rng.random() > 0.1,
        drinking_water_safe=rng.random() > 0.05,
        insured=rng.randint(1, 7),
        note="户主慢性病长期服药，子女在外务工",
    )


@dataclass(frozen=True)
class Workload:
    """One case's events, the same rows for every engine."""

    events: list[NewEvent]
    data: list[str]  # payload JSON, exactly what povguard stores

    def batches(self, size: int) -> list[list[int]]:
        return [list(range(i, min(i + size, len(self.events)))) for i in range(0, len(self.events), size)]

    def new_events(self, size: int) -> list[list[NewEvent]]:
        return [[self.events[i] for i in batch] for batch in self.batches(size)]

    def stored_events(self, size: int) -> list[list[StoredEvent]]:
        return [
            [StoredEvent(originator_id=self.events[i].stream.id, originator_version=1,
                         topic=f"bench.events:{BenchHouseholdVisited.event_type}", state=self.data[i].encode(),
                         uuid=self.events[i].id)
             for i in batch]
            for batch in self.batches(size)
        ]

    def copy_rows(self, size: int) -> list[list[CopyRow]]:
        def row(i: int) -> CopyRow:
            e = self.events[i]
            return (e.id, e.stream.type, e.stream.id, 1, e.payload.event_type, e.payload.event_version, e.township,
                    ACTOR_JSON, None, None, None, None, self.data[i])

        return [[row(i) for i in batch] for batch in self.batches(size)]


def make_workload(n: int, rng: random.Random) -> Workload:
    events = [NewEvent(StreamRef("household", str(uuid7())), TOWNSHIP, make_payload(rng)) for _ in range(n)]
    return Workload(events, [e.payload.model_dump_json() for e in events])


@dataclass
class Result:
    case: str
    batch: int
    writers: int
    events: int
    seconds: float  # the median run
    runs: list[float]
    ratio_vs_eventsourcing: float | None = None
    ratio_vs_copy: float | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def as_json(self) -> dict[str, Any]:
        return {"case": self.case, "batch": self.batch, "writers": self.writers, "events": self.events,
                "seconds": round(self.seconds, 4), "events_per_s": round(self.rate, 1),
                "runs_events_per_s": [round(self.events / t, 1) for t in self.runs],
                "ratio_vs_eventsourcing": _round(self.ratio_vs_eventsourcing),
                "ratio_vs_copy": _round(self.ratio_vs_copy)}


def _round(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def deal(batches: Sequence[T], writers: int) -> list[list[T]]:
    """Round-robin the batches over the writers."""
    return [list(batches[i::writers]) for i in range(writers)]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# --- the engines ------------------------------------------------------------------------------------------------


async def create_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute(f"CREATE SCHEMA {schema}")
            for statement in platform_ddl(schema):
                await conn.execute(statement)
    finally:
        await conn.close()


async def checkpoint(url: str) -> None:
    """Flush dirty pages before each case so that no case pays for an earlier one's checkpoint."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def run_ours(engine: AsyncEngine, url: str, schema: str, work: Workload, batch: int, writers: int) -> float:
    await create_schema(url, schema)
    store = EventStore(schema)
    shares = deal(work.new_events(batch), writers)

    async def write(conn: AsyncConnection, share: list[list[NewEvent]]) -> None:
        for events in share:
            async with conn.begin():
                await store.append(conn, events, {e.stream: 0 for e in events}, META)

    async with AsyncExitStack() as stack:
        conns = [await stack.enter_async_context(engine.connect()) for _ in range(writers)]
        for conn in conns:  # connect and warm up before the clock starts
            await conn.execute(text("SELECT 1"))
            await conn.rollback()
        started = time.perf_counter()
        await asyncio.gather(*(write(c, s) for c, s in zip(conns, shares, strict=True)))
        return time.perf_counter() - started


def run_eventsourcing(datastore: PostgresDatastore, table: str, work: Workload, batch: int, writers: int) -> float:
    recorder = PostgresApplicationRecorder(datastore, events_table_name=table)
    recorder.create_table()
    shares = deal(work.stored_events(batch), writers)

    def write(share: list[list[StoredEvent]]) -> None:
        for events in share:
            recorder.insert_events(events)

    with ThreadPoolExecutor(writers) as pool:
        started = time.perf_counter()
        list(pool.map(write, shares))
        return time.perf_counter() - started


async def run_copy(url: str, schema: str, work: Workload, batch: int, writers: int) -> float:
    await create_schema(url, schema)
    shares = deal(work.copy_rows(batch), writers)

    async def write(conn: asyncpg.Connection, share: list[list[CopyRow]]) -> None:
        for rows in share:
            await conn.copy_records_to_table("events", schema_name=schema, records=rows, columns=COPY_COLUMNS)

    conns = [await asyncpg.connect(url) for _ in range(writers)]
    try:
        for conn in conns:
            await conn.execute("SELECT 1")
        started = time.perf_counter()
        await asyncio.gather(*(write(c, s) for c, s in zip(conns, shares, strict=True)))
        return time.perf_counter() - started
    finally:
        for conn in conns:
            await conn.close()


# --- the relay --------------------------------------------------------------------------------------------------


async def relay_throughput(engine: AsyncEngine, js: JetStreamContext, schema: str) -> dict[str, Any]:
    """Publish everything one schema holds, from checkpoint 0, in one `publish_pending` call."""
    relay = Relay(engine, EventStore(schema), js, STREAM, batch_size=1000)
    started = time.perf_counter()
    published = await relay.publish_pending()
    seconds = time.perf_counter() - started
    info = await js.stream_info(STREAM)
    return {"schema": schema, "events": published, "acked_new": relay.published, "seconds": round(seconds, 4),
            "events_per_s": round(published / seconds, 1), "relay_batch_size": 1000,
            "stream_messages_after": info.state.messages}


async def relay_delay(engine: AsyncEngine, url: str, js: JetStreamContext, total: int,
                      rng: random.Random) -> dict[str, Any]:
    """Relay.run in the background while one writer appends DELAY_BATCH events every DELAY_INTERVAL seconds; per
    event, the JetStream stream timestamp minus (a) the writer's clock right after COMMIT returned and (b) ce-time."""
    schema = "bench_relay"
    await create_schema(url, schema)
    store = EventStore(schema)
    relay = Relay(engine, store, js, STREAM, batch_size=1000)
    stop = asyncio.Event()
    runner = asyncio.create_task(relay.run(url, stop))
    await asyncio.sleep(0.5)  # leadership and the first (empty) round
    work = make_workload(total, rng)
    committed: dict[str, float] = {}
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        await conn.rollback()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n, events in enumerate(work.new_events(DELAY_BATCH)):
            await asyncio.sleep(max(0.0, started + n * DELAY_INTERVAL - loop.time()))
            async with conn.begin():
                await store.append(conn, events, {e.stream: 0 for e in events}, META)
            now = time.time()
            committed.update((str(e.id), now) for e in events)
        write_seconds = loop.time() - started
    for _ in range(1200):  # wait (at most a minute) for the relay to catch up
        if relay.published >= total:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await runner

    from_commit: list[float] = []
    from_ce_time: list[float] = []
    sub = await js.pull_subscribe(f"ev.{schema}.>", stream=STREAM,
                                  config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL))
    try:
        while len(from_commit) < total:
            try:
                msgs = await sub.fetch(500, timeout=5)
            except TimeoutError:  # nats.errors.TimeoutError: nothing more to fetch
                break
            for msg in msgs:
                stored = msg.metadata.timestamp.timestamp()
                headers = msg.headers or {}
                from_commit.append((stored - committed[headers["ce-id"]]) * 1000)
                from_ce_time.append((stored - datetime.fromisoformat(headers["ce-time"]).timestamp()) * 1000)
    finally:
        await sub.unsubscribe()
    if not from_commit:
        raise RuntimeError("no relayed events read back from the stream")
    return {
        "schema": schema,
        "events_appended": total,
        "events_on_stream": len(from_commit),
        "writer": f"1 writer, {DELAY_BATCH} events per transaction every {DELAY_INTERVAL * 1000:.0f} ms",
        "append_rate_events_per_s": round(total / write_seconds, 1),
        "commit_to_stream_ms": {"p50": round(percentile(from_commit, 50), 2),
                                "p99": round(percentile(from_commit, 99), 2),
                                "max": round(max(from_commit), 2)},
        "ce_time_to_stream_ms": {"p50": round(percentile(from_ce_time, 50), 2),
                                 "p99": round(percentile(from_ce_time, 99), 2),
                                 "max": round(max(from_ce_time), 2)},
        "note": "stream timestamp of the JetStream message minus the writer's clock after COMMIT returned; "
                "ce_time is stamped at INSERT (before COMMIT), so it also counts the commit itself",
    }


# --- the run ----------------------------------------------------------------------------------------------------


async def benchmark(url: str, nats_url: str, n: int, repeat: int, console: Console) -> dict[str, Any]:
    rng = random.Random(20250314)
    engine = create_async_engine(sqlalchemy_url(url), pool_size=20)
    parts = urlsplit(url)
    datastore = PostgresDatastore(dbname=parts.path.lstrip("/"), host=parts.hostname or "127.0.0.1",
                                  port=parts.port or 5432, user=parts.username or "postgres", password="",
                                  pool_size=max(WRITER_COUNTS))
    nc: NATS | None = None
    results: list[Result] = []
    try:
        async with engine.connect() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
            settings = {k: (await conn.execute(text(f"SHOW {k}"))).scalar_one()
                        for k in ("fsync", "synchronous_commit", "wal_sync_method", "shared_buffers")}
        datastore.pool.open(wait=True, timeout=30)

        async def timed(run: Callable[[], Awaitable[float]]) -> float:
            await checkpoint(url)
            return await run()

        for batch in BATCH_SIZES:
            count = n if batch > 1 else min(n, SMALL_BATCH_EVENTS)
            for writers in WRITER_COUNTS:
                samples: dict[str, list[float]] = {OURS: [], ES: [], COPY: []}
                for rep in range(1, repeat + 1):  # the engines take turns, each on fresh tables
                    tag = f"b{batch}_w{writers}_r{rep}"
                    work = make_workload(count, rng)
                    samples[OURS].append(await timed(
                        partial(run_ours, engine, url, f"bench_{tag}", work, batch, writers)))
                    samples[ES].append(await timed(
                        partial(asyncio.to_thread, run_eventsourcing, datastore, f"es_{tag}", work, batch, writers)))
                    samples[COPY].append(await timed(partial(run_copy, url, f"copy_{tag}", work, batch, writers)))
                for case, seconds in samples.items():
                    result = Result(case, batch, writers, count, statistics.median(seconds), seconds)
                    results.append(result)
                    console.log(f"{case:<13} batch {batch:>4} writers {writers}: {count} events, median of "
                                f"{repeat} {result.seconds:.2f}s = {result.rate:,.0f}/s "
                                f"(runs: {', '.join(f'{count / t:,.0f}' for t in seconds)})")

        ratios: dict[str, dict[str, float]] = {}
        by_key = {(r.case, r.batch, r.writers): r for r in results}
        for r in results:
            if r.case != OURS:
                continue
            r.ratio_vs_eventsourcing = r.rate / by_key[(ES, r.batch, r.writers)].rate
            r.ratio_vs_copy = r.rate / by_key[(COPY, r.batch, r.writers)].rate
            ratios[f"batch{r.batch}_writers{r.writers}"] = {"vs_eventsourcing": round(r.ratio_vs_eventsourcing, 3),
                                                            "vs_copy": round(r.ratio_vs_copy, 3)}

        nc = await connect(nats_url, "bench")
        js = nc.jetstream()
        await ensure_stream(js, STREAM, 3600)
        console.log("relay: publishing the batch-1000 single-writer case's events")
        throughput = await relay_throughput(engine, js, "bench_b1000_w1_r1")
        console.log(f"relay: {throughput['events']} events in {throughput['seconds']:.2f}s")
        console.log("relay: commit-to-stream delay under a steady writer")
        delay = await relay_delay(engine, url, js, min(n, DELAY_EVENTS), rng)
        v = nc.connected_server_version
        nats_version = f"{v.major}.{v.minor}.{v.patch}"
    finally:
        if nc is not None:
            await nc.close()
        datastore.close()
        await engine.dispose()

    b1000 = ratios.get(f"batch1000_writers{WRITER_COUNTS[0]}", {})
    return {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "postgresql": version,
            "postgresql_settings": settings,
            "nats_server": nats_version,
            "eventsourcing": metadata.version("eventsourcing"),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "parameters": {
            "events": n,
            "batch_1_events": min(n, SMALL_BATCH_EVENTS),
            "repeat": repeat,
            "reported": "median of the runs; every run on fresh tables, CHECKPOINT before each",
            "batch_layout": "a batch of B events = B new streams with one event each, one transaction per batch",
            "payload_bytes_mean": round(sum(len(d.encode()) for d in make_workload(50, rng).data) / 50),
            "writers": "povguard and COPY: asyncio tasks, one connection each; eventsourcing: threads, pooled",
        },
        "results": [r.as_json() for r in results],
        "relay": {"throughput": throughput, "delay": delay},
        "ratios": {
            **ratios,
            "targets": {
                "vs_eventsourcing_at_1000": {"target": 2.0, "actual": b1000.get("vs_eventsourcing"),
                                             "met": b1000.get("vs_eventsourcing", 0) >= 2.0},
                "vs_copy_at_1000": {"target": 0.25, "actual": b1000.get("vs_copy"),
                                    "met": b1000.get("vs_copy", 0) >= 0.25},
            },
        },
    }


def render(report: dict[str, Any], console: Console) -> None:
    m, p = report["machine"], report["parameters"]
    console.print(f"[bold]machine[/]: {m['cpu_count']} CPUs, PostgreSQL {m['postgresql']} "
                  f"(fsync={m['postgresql_settings']['fsync']}, synchronous_commit="
                  f"{m['postgresql_settings']['synchronous_commit']}), nats-server {m['nats_server']}, "
                  f"eventsourcing {m['eventsourcing']}, Python {m['python']}")
    console.print(f"[bold]workload[/]: {p['batch_layout']}; payload ~{p['payload_bytes_mean']} bytes JSON; "
                  f"median of {p['repeat']} runs")
    table = Table(title="event store appends")
    for column in ("case", "batch", "writers", "events", "seconds", "events/s", "ratio vs eventsourcing",
                   "ratio vs COPY"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for r in report["results"]:
        es, cp = r["ratio_vs_eventsourcing"], r["ratio_vs_copy"]
        table.add_row(r["case"], str(r["batch"]), str(r["writers"]), str(r["events"]), f"{r['seconds']:.2f}",
                      f"{r['events_per_s']:,.0f}", "" if es is None else f"{es:.2f}x",
                      "" if cp is None else f"{cp:.2f}x")
    console.print(table)
    t, d = report["relay"]["throughput"], report["relay"]["delay"]
    console.print(f"[bold]relay throughput[/]: {t['events']} events to JetStream in {t['seconds']:.2f}s = "
                  f"{t['events_per_s']:,.0f} events/s")
    c, ce = d["commit_to_stream_ms"], d["ce_time_to_stream_ms"]
    console.print(f"[bold]relay delay[/] ({d['writer']}, {d['events_on_stream']} events, writer achieved "
                  f"{d['append_rate_events_per_s']:,.0f}/s): commit→stream p50 {c['p50']:.1f} ms, p99 {c['p99']:.1f} "
                  f"ms (ce-time→stream p50 {ce['p50']:.1f} ms, p99 {ce['p99']:.1f} ms)")
    for name, target in report["ratios"]["targets"].items():
        console.print(f"target {name}: ≥ {target['target']}x, actual {target['actual']}x -> "
                      f"{'met' if target['met'] else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20000, help="events per case (batch size 1: at most 3000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported")
    parser.add_argument("--out", type=Path, default=Path("var/bench"), help="directory for eventstore.json")
    args = parser.parse_args()
    if args.events < DELAY_BATCH or args.repeat < 1:
        parser.error(f"--events must be at least {DELAY_BATCH} and --repeat at least 1")
    logging.basicConfig(level=logging.WARNING)
    console = Console(width=None if sys.stdout.isatty() else 120)  # no wrapped table in logs and pipes
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="povguard-bench-"))
    pg = EmbeddedPostgres(tmp / "postgres", durable=True)
    nats_server = EmbeddedNats(tmp / "nats")
    try:
        url = pg.start()
        nats_url = nats_server.start()
        report = asyncio.run(benchmark(url, nats_url, args.events, args.repeat, console))
    finally:
        nats_server.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report["machine"]["run_seconds"] = round(time.perf_counter() - started, 1)
    render(report, console)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "eventstore.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    console.print(f"wrote {path} ({report['machine']['run_seconds']} s)")


if __name__ == "__main__":
    main()
