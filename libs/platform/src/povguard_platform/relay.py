"""The outbox relay: publishes a service's committed events to JetStream in position order and records how far it
got. A crash anywhere means at worst a republish, which JetStream drops by Nats-Msg-Id (and inboxes drop again)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import zlib
from datetime import UTC, datetime

import asyncpg
from nats.js import JetStreamContext
from opentelemetry import trace
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from povguard_platform.bus import to_message
from povguard_platform.envelope import RecordedEvent, StreamRef
from povguard_platform.eventstore import EventStore
from povguard_platform.faults import crash_point
from povguard_platform.metrics import RELAY_DELAY, RELAY_LAG, RELAY_PUBLISHED
from povguard_platform.partitions import DEFAULT_PARTITIONS, household_named, partition_key, partition_of
from povguard_platform.telemetry import context_from_traceparent, span_name

log = logging.getLogger(__name__)
tracer = trace.get_tracer("povguard.relay")


def lock_key(schema: str) -> int:
    """The session advisory lock whose holder is a service's relay leader (also read by `povguard status`)."""
    return zlib.crc32(f"povguard.relay.{schema}".encode())


class Relay:
    """One active relay per service store (a session advisory lock elects it among replicas)."""

    def __init__(
        self,
        engine: AsyncEngine,
        store: EventStore,
        js: JetStreamContext,
        stream_name: str,
        *,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        publish_timeout: float = 10.0,
        partitions: int = DEFAULT_PARTITIONS,
    ) -> None:
        self.engine = engine
        self.store = store
        self.js = js
        self.stream_name = stream_name
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self._wake = asyncio.Event()
        self._lock_key = lock_key(store.schema)
        self.partitions = partitions
        self._first_household: dict[StreamRef, str | None] = {}  # a stream's partition never changes: cache it
        self.published = 0  # events acknowledged by JetStream since start (for tests and benchmarks)

    async def checkpoint(self) -> int:
        async with self.engine.connect() as conn:
            row = await conn.execute(text(f"SELECT position FROM {self.store.schema}.relay_checkpoint"))
            return int(row.scalar_one())

    async def publish_pending(self) -> int:
        """One round: publish everything after the checkpoint, wait for JetStream's acks, move the checkpoint. A
        batch short of `batch_size` ends the round: whatever commits later NOTIFYs, and `run` cleared its wake-up
        before this round read anything, so it starts the next round."""
        total = 0
        schema = self.store.schema
        after: int | None = None  # read once a round: only the leader (this relay) moves the checkpoint
        while True:
            async with self.engine.connect() as conn:
                if after is None:
                    row = await conn.execute(text(f"SELECT position FROM {schema}.relay_checkpoint"))
                    after = int(row.scalar_one())
                stored = await self.store.read_after_as_stored(conn, after, self.batch_size)
                events = [event for event, _ in stored]
                partitions = await self._partitions(conn, events)
            if not events:
                RELAY_LAG.labels(schema).set(0)
                return total
            crash_point("relay.before_publish")
            futures = []
            # one span per run of events of one trace context (mostly a whole request's or upstream batch's)
            # the payload goes out as stored: decoding and encoding it again cost the relay a third of its time
            for traceparent, run in itertools.groupby(zip(stored, partitions, strict=True),
                                                      key=lambda sp: sp[0][0].traceparent):
                pairs = list(run)
                with tracer.start_as_current_span(
                    span_name("publish", (e.type for (e, _), _ in pairs)),
                    context=context_from_traceparent(traceparent),
                    kind=trace.SpanKind.PRODUCER,
                    attributes={"messaging.system": "nats", "messaging.batch.message_count": len(pairs),
                                "povguard.position": pairs[0][0][0].position},
                ):
                    for (event, payload), partition in pairs:
                        subject, headers, body = to_message(event, partition, payload)
                        futures.append(await self.js.publish_async(subject, body, headers=headers,
                                                                   stream=self.stream_name))
            acks = await asyncio.wait_for(asyncio.gather(*futures), self.publish_timeout)
            now = datetime.now(UTC)
            delay = RELAY_DELAY.labels(schema)
            for event in events:
                delay.observe(max(0.0, (now - event.time).total_seconds()))
            crash_point("relay.after_publish")
            after = events[-1].position
            async with self.engine.begin() as conn:
                await conn.execute(
                    text(f"UPDATE {schema}.relay_checkpoint SET position = :p, updated_at = now()"), {"p": after})
            RELAY_PUBLISHED.labels(schema).inc(len(events))
            self.published += sum(1 for a in acks if not a.duplicate)
            total += len(events)
            if len(events) < self.batch_size:  # caught up with what had committed when this batch was read
                RELAY_LAG.labels(schema).set(0)
                return total
            RELAY_LAG.labels(schema).set(await self._lag(after))

    async def _partitions(self, conn: AsyncConnection, events: list[RecordedEvent]) -> list[int]:
        """Each event's partition, fixed by its stream's first event (partitions.py); one query per batch for the
        streams whose first event is neither in the batch nor in the cache."""
        known = self._first_household
        if len(known) > 200_000:
            known.clear()
        for event in events:
            if event.version == 1:
                known[event.stream] = household_named(event)
        missing = sorted({e.stream for e in events if e.stream not in known and e.stream.type != "household"},
                         key=str)
        if missing:
            rows = await conn.execute(text(f"""
                SELECT e.stream_type, e.stream_id, e.data->>'household_id' FROM {self.store.schema}.events e
                JOIN unnest(CAST(:t AS text[]), CAST(:i AS text[])) AS u(t, i)
                  ON e.stream_type = u.t AND e.stream_id = u.i AND e.version = 1"""),
                {"t": [s.type for s in missing], "i": [s.id for s in missing]})
            for r in rows:
                known[StreamRef(r[0], r[1])] = r[2]
        return [partition_of(partition_key(e.stream, known.get(e.stream)), self.partitions) for e in events]

    def _notified(self) -> None:
        """An append committed: until the round that publishes it says otherwise, the relay is behind."""
        RELAY_LAG.labels(self.store.schema).inc()
        self._wake.set()

    async def _lag(self, published: int) -> int:
        async with self.engine.connect() as conn:
            head = await self.store.head(conn)
        return max(0, head - published)

    async def run(self, database_dsn: str, stop: asyncio.Event) -> None:
        """Wait for leadership, then publish on every NOTIFY from an append (and at least every poll_interval)."""
        listener: asyncpg.Connection | None = None
        try:
            while not stop.is_set():
                try:
                    if listener is None or listener.is_closed():
                        listener = await asyncpg.connect(database_dsn)
                        while not await listener.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                            if await _wait_or_stop(stop, self.poll_interval * 2):
                                return
                        await listener.add_listener(self.store.channel, lambda *_: self._notified())
                    self._wake.clear()
                    await self.publish_pending()
                except Exception as exc:  # the relay must outlive any outage of NATS or PostgreSQL
                    log.warning("relay round failed, retrying: %r", exc)
                    if listener is not None:
                        with contextlib.suppress(Exception):
                            await listener.close()
                    listener = None
                    if await _wait_or_stop(stop, self.poll_interval):
                        return
                    continue
                await _wait_any(self._wake, stop, self.poll_interval)
        finally:
            with contextlib.suppress(KeyError):  # stopped: no stale lag left in the process's registry
                RELAY_LAG.remove(self.store.schema)
            if listener is not None and not listener.is_closed():
                await listener.close()


async def _wait_any(a: asyncio.Event, b: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def _wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
