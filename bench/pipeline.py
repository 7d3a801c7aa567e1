"""Per-event path benchmark: the CPU the platform spends on each event between the event store and a consumer's
commit (the outbox relay's publish, the pull consumer's fetch, parse, inbox, version claim and ack), beside raw
nats-py publishing and fetching/acking the same messages on the same server in the same run.

    python bench/pipeline.py --events 20000 --out var/bench

Starts its own PostgreSQL and NATS JetStream in a temporary directory. Events are appended before the clock starts
(household streams of `--per-stream` events each, as a campaign's are). The consumer's handler does nothing, so
what is measured is the platform's own work. CPU seconds are this process's (relay, consumer, nats-py) and the
PostgreSQL and nats-server processes'; per event in microseconds. Writes `<out>/pipeline.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from povguard_platform.actor import Actor, Role
from povguard_platform.bus import connect, ensure_stream, to_message
from povguard_platform.consumer import Consumer, ConsumerSpec
from povguard_platform.envelope import Metadata, NewEvent, RecordedEvent, StreamRef
from povguard_platform.eventstore import EventStore
from povguard_platform.ids import uuid7
from povguard_platform.relay import Relay
from povguard_platform.settings import sqlalchemy_url
from povguard_platform.telemetry import setup_tracing
from povguard_tools.benchrun import cpu_seconds, report
from povguard_tools.runtime.servers import EmbeddedNats, EmbeddedPostgres

sys.path.insert(0, str(Path(__file__).parent))
from eventstore import TOWNSHIP, create_schema, make_payload  # the same payload as the store bench

STREAM = "POVGUARD_EVENTS"
PARTITIONS = 4
META = Metadata(actor=Actor(user="bench", role=Role.COLLECTOR, org=TOWNSHIP))


class Cpu:
    """CPU seconds (user + system) of this process and of the servers' process trees, between start and stop."""

    def __init__(self, servers: dict[str, int]) -> None:
        self.procs = {"ours": psutil.Process()} | {name: psutil.Process(pid) for name, pid in servers.items()}

    def _now(self) -> dict[str, float]:
        return {name: cpu_seconds(proc.pid, children=name != "ours") for name, proc in self.procs.items()}

    async def measure(self, run: Callable[[], Awaitable[int]]) -> dict[str, Any]:
        before, started = self._now(), time.perf_counter()
        events = await run()
        seconds, after = time.perf_counter() - started, self._now()
        cpu = {name: after[name] - before[name] for name in after}
        return {"events": events, "seconds": round(seconds, 3), "events_per_s": round(events / seconds, 1),
                "cpu_us_per_event": {name: round(v / events * 1e6, 1) for name, v in cpu.items()}}


async def append_all(engine: AsyncEngine, store: EventStore, n: int, per_stream: int) -> None:
    rng = random.Random(2022)
    for start in range(0, n, 1000):
        events: list[NewEvent] = []
        expected: dict[StreamRef, int] = {}
        while len(events) < min(1000, n - start):
            stream = StreamRef("household", str(uuid7()))
            expected[stream] = 0
            events += [NewEvent(stream, TOWNSHIP, make_payload(rng)) for _ in range(per_stream)]
        events = events[:min(1000, n - start)]
        async with engine.begin() as conn:
            await store.append(conn, events, expected, META)


async def ours_relay(engine: AsyncEngine, store: EventStore, js: JetStreamContext) -> int:
    return await Relay(engine, store, js, STREAM, partitions=PARTITIONS).publish_pending()


async def ours_consume(engine: AsyncEngine, js: JetStreamContext, n: int) -> int:
    async def nothing(conn: AsyncConnection, event: RecordedEvent) -> None:
        return None

    spec = ConsumerSpec(name="bench", sources=["bench_src"], handlers={}, fallback=nothing)
    consumer = Consumer(spec, "bench_dst", engine, js, STREAM, PARTITIONS, tick=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    while consumer.applied < n:  # the run ends only on stop
        await asyncio.wait([task], timeout=0.05)
    stop.set()
    await task
    return consumer.applied


async def raw_messages(engine: AsyncEngine, store: EventStore, n: int) -> list[tuple[str, dict[str, str], bytes]]:
    """The same messages the relay sent (built before the clock starts), on a subject tree of their own."""
    async with engine.connect() as conn:
        events = await store.read_after(conn, 0, n)
    out = []
    for event in events:
        subject, headers, body = to_message(event, 0)
        out.append(("ev.raw" + subject[len("ev.bench_src"):], {**headers, "Nats-Msg-Id": str(uuid7())}, body))
    return out


async def raw_publish(js: JetStreamContext, messages: list[tuple[str, dict[str, str], bytes]]) -> int:
    for i in range(0, len(messages), 1000):
        futures = [await js.publish_async(s, b, headers=h, stream=STREAM) for s, h, b in messages[i:i + 1000]]
        await asyncio.gather(*futures)
    return len(messages)


async def raw_consume(js: JetStreamContext, n: int) -> int:
    config = ConsumerConfig(durable_name="raw", ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                            max_ack_pending=200, filter_subject="ev.raw.>")
    await js.add_consumer(STREAM, config)
    sub = await js.pull_subscribe_bind(durable="raw", stream=STREAM)
    done = 0
    while done < n:
        try:
            msgs = await sub.fetch(200, timeout=1.0)
        except (NatsTimeoutError, TimeoutError):
            continue
        for msg in msgs:
            _ = dict(msg.headers or {}), msg.data
            await msg.ack()
        done += len(msgs)
    await sub.unsubscribe()
    return done


async def benchmark(url: str, nats_url: str, servers: dict[str, int], n: int, per_stream: int) -> dict[str, Any]:
    engine = create_async_engine(sqlalchemy_url(url), pool_size=10)
    nc: NATS | None = None
    try:
        for schema in ("bench_src", "bench_dst"):
            await create_schema(url, schema)
        store = EventStore("bench_src")
        await append_all(engine, store, n, per_stream)
        nc = await connect(nats_url, "bench")
        js = nc.jetstream()
        await ensure_stream(js, STREAM, duplicate_window=120)
        messages = await raw_messages(engine, store, n)
        cpu = Cpu(servers)
        return {
            "events": n, "events_per_stream": per_stream,
            "relay_publish": await cpu.measure(lambda: ours_relay(engine, store, js)),
            "raw_publish": await cpu.measure(lambda: raw_publish(js, messages)),
            "consumer_apply": await cpu.measure(lambda: ours_consume(engine, js, n)),
            "raw_fetch_ack": await cpu.measure(lambda: raw_consume(js, n)),
        }
    finally:
        if nc is not None:
            await nc.close()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--per-stream", type=int, default=4, help="events per household stream")
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    setup_tracing("bench")  # spans recorded as in a service (no exporter: what they cost to make, not to ship)
    console = Console(width=None if sys.stdout.isatty() else 120)
    tmp = Path(tempfile.mkdtemp(prefix="povguard-bench-"))
    pg = EmbeddedPostgres(tmp / "postgres", durable=True)
    nats_server = EmbeddedNats(tmp / "nats")
    try:
        url = pg.start()
        nats_url = nats_server.start()
        servers = {"postgres": pg.proc.pid, "nats-server": nats_server.proc.pid}  # type: ignore[union-attr]
        result = asyncio.run(benchmark(url, nats_url, servers, args.events, args.per_stream))
    finally:
        nats_server.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(console, "relay and consumer, per event", result, args.out, "pipeline.json")


if __name__ == "__main__":
    main()
