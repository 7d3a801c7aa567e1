"""Consumer scale-out benchmark: a consumer's throughput with 1, 2 and 4 partitions (one replica process each), and
the CPU it spends on events of the services it follows that it does not handle, on this branch's partitioned,
type-filtered path and, with `--before DIR`, on the old path (DIR's code and venv, e.g. /work/main, read-only).

    python bench/scale.py --events 20000 --before /work/main --out var/bench

Starts its own PostgreSQL and NATS JetStream in a temporary directory. Workload: `--events` events on 2,000
household streams, one in five of the type the consumer handles (an upsert per event), the rest of other types
(as review's events are to intake's consumer), all on the stream before the replicas start. The unhandled cost is
the consumer processes' CPU on the mixed workload minus their CPU on the handled events alone. Prints a table and
writes the `consumers` key of `<out>/scale.json` (read-modify-write: other benches add their own keys).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from povguard_contracts.catalogue import CATALOGUE
from povguard_contracts.payload import EventPayload
from povguard_platform.actor import Actor, Role
from povguard_platform.bus import connect, ensure_stream
from povguard_platform.consumer import Consumer, ConsumerSpec
from povguard_platform.envelope import Metadata, NewEvent, RecordedEvent, StreamRef
from povguard_platform.eventstore import EventStore
from povguard_platform.relay import Relay
from povguard_platform.schema import platform_ddl
from povguard_platform.settings import sqlalchemy_url

STREAM = "POVGUARD_EVENTS"
SCHEMA = "bench"
HOUSEHOLDS = 2000
META = Metadata(actor=Actor(user="bench", role=Role.COLLECTOR, org="533123101"))
PARTITIONED = hasattr(ConsumerSpec, "type_subjects")  # this branch's consumer, or the old one


@CATALOGUE.register
class BenchHandled(EventPayload):
    event_type = "BenchHandled"
    service = SCHEMA
    household_id: str
    amount: int


@CATALOGUE.register
class BenchOther(EventPayload):
    event_type = "BenchOther"
    service = SCHEMA
    household_id: str
    note: str


async def count(conn: AsyncConnection, event: RecordedEvent) -> None:
    await conn.execute(text("INSERT INTO bench.counts (household, n) VALUES (:h, 1) "
                            "ON CONFLICT (household) DO UPDATE SET n = bench.counts.n + 1"), {"h": event.stream.id})


SPEC = ConsumerSpec(name="bench-counts", sources=[SCHEMA], handlers={"BenchHandled": count})


async def prepare(db: str, nats_url: str, events: int, handled_only: bool, partitions: int) -> int:
    """Fresh tables and stream, the workload appended and published. Returns the inbox rows to expect."""
    engine = create_async_engine(sqlalchemy_url(db))
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        for statement in platform_ddl(SCHEMA):
            await conn.execute(text(statement))
        await conn.execute(text("CREATE TABLE bench.counts (household text PRIMARY KEY, n int NOT NULL)"))
    nc = await connect(nats_url, "bench")
    js = nc.jetstream()
    with contextlib.suppress(Exception):  # the first case has no stream yet
        await js.delete_stream(STREAM)
    await ensure_stream(js, STREAM, 3600)
    store = EventStore(SCHEMA)
    per_household = events // HOUSEHOLDS
    versions = dict.fromkeys(range(HOUSEHOLDS), 0)
    appended = handled = 0
    for round_ in range(per_household):
        batch: list[NewEvent] = []
        expected: dict[StreamRef, int] = {}
        for h in range(HOUSEHOLDS):
            is_handled = round_ % 5 == 0
            if handled_only and not is_handled:
                continue
            ref = StreamRef("household", f"h{h:05d}")
            payload: EventPayload = (BenchHandled(household_id=ref.id, amount=round_) if is_handled
                                     else BenchOther(household_id=ref.id, note="x" * 40))
            batch.append(NewEvent(ref, "533123101", payload))
            expected[ref] = versions[h]
            versions[h] += 1
            handled += is_handled
        if batch:
            async with engine.begin() as conn:
                await store.append(conn, batch, expected, META)
            appended += len(batch)
    extra: dict[str, Any] = {"partitions": partitions} if PARTITIONED else {}
    await Relay(engine, store, js, STREAM, batch_size=1000, **extra).publish_pending()
    await nc.drain()
    await engine.dispose()
    return handled if PARTITIONED else appended  # the old path records every event of a followed source


async def worker(db: str, nats_url: str, partitions: int) -> None:
    """One replica until SIGTERM; prints its CPU seconds since it started consuming."""
    engine = create_async_engine(sqlalchemy_url(db))
    nc = await connect(nats_url, "bench-worker")
    js = nc.jetstream()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    consumer = (Consumer(SPEC, SCHEMA, engine, js, STREAM, partitions, tick=0.5) if PARTITIONED
                else Consumer(SPEC, SCHEMA, engine, js, STREAM))
    started = time.process_time()
    await consumer.run(stop)
    print(json.dumps({"cpu": time.process_time() - started, "applied": consumer.applied}), flush=True)
    await nc.close()
    await engine.dispose()


async def inbox_state(db: str) -> tuple[int, float]:
    engine = create_async_engine(sqlalchemy_url(db))
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT count(*), coalesce(extract(epoch FROM max(applied_at) - min(applied_at)), 0) FROM bench.inbox"
        ))).one()
    await engine.dispose()
    return int(row[0]), float(row[1])


def run_case(db: str, nats_url: str, events: int, replicas: int, handled_only: bool) -> dict[str, Any]:
    expected = asyncio.run(prepare(db, nats_url, events, handled_only, replicas))
    handled = asyncio.run(_handled(db))
    procs = [subprocess.Popen([sys.executable, __file__, "worker", db, nats_url, str(replicas)],
                              stdout=subprocess.PIPE, text=True) for _ in range(replicas)]
    deadline = time.monotonic() + 600
    while asyncio.run(inbox_state(db))[0] < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    reports = [json.loads((proc.communicate(timeout=60)[0] or "{}").strip().splitlines()[-1]) for proc in procs]
    applied, seconds = asyncio.run(inbox_state(db))
    return {"replicas": replicas, "partitions": replicas if PARTITIONED else 1, "handled_only": handled_only,
            "events_on_stream": expected if not PARTITIONED else None, "handled_events": handled,
            "inbox_rows": applied, "complete": applied >= expected, "seconds": round(seconds, 3),
            "handled_per_second": round(handled / seconds, 1) if seconds else None,
            "consumer_cpu_seconds": round(sum(r.get("cpu", 0.0) for r in reports), 3)}


async def _handled(db: str) -> int:
    engine = create_async_engine(sqlalchemy_url(db))
    async with engine.connect() as conn:
        n = int((await conn.execute(text("SELECT count(*) FROM bench.events WHERE type = 'BenchHandled'")))
                .scalar_one())
    await engine.dispose()
    return n


def drive(db: str, nats_url: str, events: int) -> list[dict[str, Any]]:
    cases = [(1, False), (1, True), (2, False), (4, False)]
    return [run_case(db, nats_url, events, replicas, handled_only) for replicas, handled_only in cases]


def summary(side: str, results: list[dict[str, Any]], events: int) -> dict[str, Any]:
    mixed = next(r for r in results if r["replicas"] == 1 and not r["handled_only"])
    alone = next(r for r in results if r["replicas"] == 1 and r["handled_only"])
    unhandled = events - mixed["handled_events"]
    waste = max(0.0, mixed["consumer_cpu_seconds"] - alone["consumer_cpu_seconds"])
    return {"side": side, "cases": results, "unhandled_events": unhandled,
            "cpu_on_unhandled_seconds": round(waste, 3),
            "cpu_per_unhandled_event_us": round(waste / unhandled * 1e6, 1) if unhandled else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--before", type=Path, help="a checkout of the old path with its .venv (read-only)")
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    from povguard_tools.runtime.servers import EmbeddedNats, EmbeddedPostgres

    console = Console()
    with tempfile.TemporaryDirectory(prefix="povguard-scale-") as tmp:
        pg, nats_server = EmbeddedPostgres(Path(tmp) / "postgres"), EmbeddedNats(Path(tmp) / "nats")
        try:
            db, nats_url = pg.start(), nats_server.start()
            sides = {"after": summary("after", drive(db, nats_url, args.events),
                                      args.events)}
            if args.before is not None:
                python = args.before / ".venv" / "bin" / "python"
                env = {**os.environ, "PYTHONPATH": ""}
                out = subprocess.run([str(python), __file__, "drive", db, nats_url, str(args.events)],
                                     capture_output=True, text=True, env=env, check=True, cwd=args.before)
                sides["before"] = summary("before",
                                          json.loads(out.stdout.strip().splitlines()[-1]), args.events)
        finally:
            nats_server.stop()
            pg.stop()
    table = Table(title=f"consumer scale-out, {args.events:,} events, 1 in 5 handled")
    for column in ("path", "replicas", "partitions", "handled/s", "consumer CPU s", "CPU on unhandled s",
                   "µs per unhandled event"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for side in sides.values():
        for case in (c for c in side["cases"] if not c["handled_only"]):
            table.add_row(side["side"], str(case["replicas"]), str(case["partitions"]),
                          f"{case['handled_per_second'] or 0:,.0f}", f"{case['consumer_cpu_seconds']:.2f}",
                          f"{side['cpu_on_unhandled_seconds']:.2f}" if case["replicas"] == 1 else "",
                          f"{side['cpu_per_unhandled_event_us']:.0f}" if case["replicas"] == 1 else "")
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "scale.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    report["consumers"] = {"events": args.events, "handled_share": 0.2, "machine_cpus": os.cpu_count(), **sides}
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    console.print(f"wrote {path}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        asyncio.run(worker(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    elif len(sys.argv) > 1 and sys.argv[1] == "drive":
        print(json.dumps(drive(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    else:
        main()
