"""Durable JetStream pull consumers with an inbox, one per (consumer, partition) (partitions.py).

A replica applies only the partitions it leases (leases.py), one batch in flight per partition, in one database
transaction with the inbox rows, acknowledged after commit. A consumer's JetStream consumers filter on the event
types it handles (a fallback consumer takes every type), so a replica never fetches an event it does not handle.
Per source stream it records the last version applied and never goes backwards; gaps are normal (types it does not
handle). Order within a stream comes from the partition: exactly one reader, batches in stream order.

A handler that fails is retried with backoff in place, ahead of every later event of its partition (the batch is
kept in progress, so JetStream does not redeliver it meanwhile), then dead-lettered: the partition waits at most
the sum of the backoff, the other partitions never. A failure of the database keeps the batch and retries it the
same way, never nak-ing it behind later events.

Why nats-py and not FastStream's subscriber here: a FastStream subscriber pulls from its subject from the moment the
broker starts, for every instance alike; these pull loops start and stop per partition as leases come and go, must
not fetch a new batch while one is in flight or retried, and must wait out a dead holder's unacknowledged batch
before their first fetch. That is done on the JetStream context directly (the same connection)."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import trace
from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from povguard_contracts.catalogue import CATALOGUE
from povguard_platform.bus import from_message
from povguard_platform.envelope import RecordedEvent
from povguard_platform.eventstore import driver_connection
from povguard_platform.faults import crash_point
from povguard_platform.leases import LeaseLost, Leases, lease_held_sql, lock_class
from povguard_platform.metrics import (
    CONSUMER_APPLIED,
    CONSUMER_DUPLICATES,
    CONSUMER_FAILURES,
    CONSUMER_LAG,
    DEAD_LETTERS,
)
from povguard_platform.partitions import DEFAULT_PARTITIONS
from povguard_platform.problems import is_retryable
from povguard_platform.schema import ident
from povguard_platform.settings import asyncpg_dsn
from povguard_platform.telemetry import context_from_traceparent, span_name

log = logging.getLogger(__name__)
tracer = trace.get_tracer("povguard.consumer")

Handler = Callable[[AsyncConnection, RecordedEvent], Awaitable[None]]
BatchHandler = Callable[[AsyncConnection, list[RecordedEvent]], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable consumer: which services' events it follows and what it does with each event type. It receives
    only the types in `handlers` (every type with a `fallback`). A fetched batch is first applied together (one
    inbox query, one version claim, the batch handler or the handlers in order); only if that fails is it applied
    one event at a time, with retries and dead letters."""

    name: str
    sources: Sequence[str]
    handlers: Mapping[str, Handler]
    fallback: Handler | None = None  # for every type not in `handlers` (e.g. a ledger that records everything)
    # Optional: the whole fetched batch at once, in order (a ledger appends a batch far faster than one by one).
    # Same guarantees as `handlers`: inbox, per-stream order, exactly-once effect. If it raises, the batch is
    # applied one event at a time with `handlers`/`fallback`, so retries and dead letters work as usual.
    batch_handler: BatchHandler | None = None
    max_attempts: int = 5
    backoff: Sequence[float] = (0.5, 2.0, 10.0, 30.0, 60.0)
    batch_size: int = 200
    # A replica that dies mid-batch has its batch redelivered after this; a live one keeps its batch in progress.
    ack_wait: float = 10.0
    # After a batch under a quarter full, wait this long before the next fetch: under a steady trickle the events
    # then come a few dozen to a transaction instead of one or two (each batch costs its lock, reads, writes,
    # commit and the handler's own per-batch queries); it delays a lone event by at most this much.
    linger: float = 0.05

    def handler_for(self, event_type: str) -> Handler | None:
        return self.handlers.get(event_type, self.fallback)

    def handles(self, event_type: str) -> bool:
        return self.handler_for(event_type) is not None

    def durable(self, partition: int) -> str:
        return f"{self.name}-p{partition}"

    def type_subjects(self, partition: str = "*") -> list[str]:
        """What the consumer receives: per source, its handled types (a type the catalogue places in one of the
        sources only there), or every type with a fallback."""
        if self.fallback is not None:
            return [f"ev.{ident(source)}.*.{partition}.*" for source in self.sources]
        known = CATALOGUE.types()
        subjects = set()
        for event_type in self.handlers:
            owner = getattr(known.get(event_type), "service", None)
            for source in [owner] if owner in self.sources else self.sources:
                subjects.add(f"ev.{ident(str(source))}.{event_type}.{partition}.*")
        return sorted(subjects)


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    RETRY = "retry"  # the handler failed, below the bound: try again after a delay, before anything later
    DEAD = "dead"


@dataclass
class _Result:
    outcome: Outcome
    delay: float = 0.0


class _OneByOne(Exception):
    """A handler failed on the batch path: the transaction is rolled back whole (no savepoint to keep) and the
    batch is applied again one event at a time, with retries and dead letters."""


@dataclass
class Consumer:
    """One replica of a consumer: it leases its share of the partitions and runs a pull loop for each."""

    spec: ConsumerSpec
    schema: str  # the consuming service's schema, where its inbox lives
    engine: AsyncEngine
    js: JetStreamContext
    stream_name: str
    partitions: int = DEFAULT_PARTITIONS
    tick: float = 1.0  # how often the replica checks its lease connection and its share
    applied: int = field(default=0, init=False)
    batches: int = field(default=0, init=False)  # batches the batch handler applied whole
    _leases: Leases | None = field(default=None, init=False)
    _workers: dict[int, asyncio.Task[None]] = field(default_factory=dict, init=False)
    _leaving: dict[int, asyncio.Event] = field(default_factory=dict, init=False)
    _sql: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _applied: Counter = field(init=False, repr=False)
    _duplicates: Counter = field(init=False, repr=False)
    # per partition: messages pending (the lag gauge is their sum) and how often the pull loop set it, so that the
    # watcher's slower reading never overwrites a newer one
    _lag: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _lag_set: dict[int, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.schema
        # The batch path's reads after the partition lock, in one statement: the lease (pg_locks is live, so the
        # check sees the lease as of now), the inbox rows of the batch and the versions applied of its streams.
        self._sql["reads"] = f"""
            SELECT 0 AS k, CAST(NULL AS uuid) AS e, CAST(NULL AS text) AS src, CAST(NULL AS text) AS t,
                   CAST(NULL AS text) AS i, CAST({lease_held_sql("$6", "$7", "$8")} AS int) AS v
            UNION ALL
            SELECT 1, event_id, NULL, NULL, NULL, NULL FROM {s}.inbox WHERE consumer = $1 AND event_id = ANY($2)
            UNION ALL
            SELECT 2, NULL, source, stream_type, stream_id, version FROM {s}.consumer_streams
            WHERE consumer = $1 AND (source, stream_type, stream_id) IN
                  (SELECT * FROM unnest(CAST($3 AS text[]), CAST($4 AS text[]), CAST($5 AS text[])))"""
        # Its writes, in one statement: the inbox rows, the failures of earlier attempts gone, the versions moved
        # up (never backwards).
        self._sql["writes"] = f"""
            WITH inbox AS (
                INSERT INTO {s}.inbox (consumer, event_id, source, source_position)
                SELECT $1, * FROM unnest(CAST($2 AS uuid[]), CAST($3 AS text[]), CAST($4 AS bigint[]))),
            failures AS (DELETE FROM {s}.consumer_failures WHERE consumer = $1 AND event_id = ANY($2))
            INSERT INTO {s}.consumer_streams (consumer, source, stream_type, stream_id, version)
            SELECT $1, * FROM unnest(CAST($5 AS text[]), CAST($6 AS text[]), CAST($7 AS text[]), CAST($8 AS int[]))
            ON CONFLICT (consumer, source, stream_type, stream_id)
            DO UPDATE SET version = GREATEST({s}.consumer_streams.version, EXCLUDED.version)"""
        # counters looked up once (their children are never removed, unlike the lag and dead-letter gauges)
        self._applied = CONSUMER_APPLIED.labels(self.spec.name)
        self._duplicates = CONSUMER_DUPLICATES.labels(self.spec.name)

    @property
    def held(self) -> set[int]:
        """The partitions this replica reads now."""
        return {p for p, task in self._workers.items() if not task.done()}

    async def ensure(self) -> None:
        for partition in range(self.partitions):
            config = ConsumerConfig(
                durable_name=self.spec.durable(partition),
                ack_policy=AckPolicy.EXPLICIT,  # never the auto-terminate default: we ack, or retry in place
                deliver_policy=DeliverPolicy.ALL,
                max_deliver=-1,  # our own bound counts handler failures; redeliveries after a crash are not one
                ack_wait=self.spec.ack_wait,
                max_ack_pending=self.spec.batch_size,  # one batch in flight
                filter_subjects=self.spec.type_subjects(str(partition)),
            )
            try:
                await self.js.consumer_info(self.stream_name, config.durable_name or "")
                await self.js.add_consumer(self.stream_name, config)  # same name: updates the filter
            except NotFoundError:
                await self.js.add_consumer(self.stream_name, config)
        with contextlib.suppress(NotFoundError):  # the unpartitioned consumer of earlier versions (drained first)
            await self.js.delete_consumer(self.stream_name, self.spec.name)

    async def pending(self) -> int:
        """Messages not yet acknowledged, over every partition (0: caught up)."""
        total = 0
        for partition in range(self.partitions):
            total += await self._partition_pending(partition)
        return total

    async def _partition_pending(self, partition: int) -> int:
        info = await self.js.consumer_info(self.stream_name, self.spec.durable(partition))
        return (info.num_pending or 0) + (info.num_ack_pending or 0)

    def _set_lag(self, partition: int, pending: int) -> None:
        """The pull loop's own count of a partition's pending messages, from the fetched messages' metadata: the
        lag gauge follows each batch at once (whoever waits for the system to be quiet sees it caught up within a
        batch, not within the watcher's period), at no cost of a request."""
        self._lag[partition] = pending
        self._lag_set[partition] = self._lag_set.get(partition, 0) + 1
        CONSUMER_LAG.labels(self.spec.name).set(sum(self._lag.values()))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():  # JetStream busy or away at start: keep trying, never give the consumer up
            try:
                await self.ensure()
                break
            except Exception as exc:
                log.warning("declaring %s failed, retrying: %r", self.spec.name, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick)
        dsn = asyncpg_dsn(self.engine.url.render_as_string(hide_password=False))
        leases = self._leases = Leases(dsn, self.schema, self.spec.name, self.partitions)
        lag_task = asyncio.create_task(self._watch_lag(stop))
        try:
            while not stop.is_set():
                try:
                    await self._rebalance(leases, stop)
                except Exception as exc:  # the database is away: give every partition up, try again
                    log.warning("leases of %s lost: %r", self.spec.name, exc)
                    await self._give_up_all(leases)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick)
        finally:
            lag_task.cancel()
            for event in self._leaving.values():
                event.set()
            if self._workers:
                await asyncio.wait(self._workers.values())
            # a stopped consumer reports no lag: a stale gauge would read as work pending for ever (the registry is
            # the process's, and outlives this consumer); removed once no pull loop can set it again
            for gauge in (CONSUMER_LAG, DEAD_LETTERS):
                with contextlib.suppress(KeyError):
                    gauge.remove(self.spec.name)
            await leases.drop()

    async def _rebalance(self, leases: Leases, stop: asyncio.Event) -> None:
        if leases.conn is None:
            await leases.connect()
        elif not await leases.alive():
            raise ConnectionError("lease connection does not answer")
        for partition in [p for p, task in self._workers.items() if task.done()]:
            del self._workers[partition]
            self._leaving.pop(partition, None)
            if partition in leases.held:
                await leases.release(partition)
        share = await leases.share()
        mine = sorted(self._workers)
        staying = [p for p in mine if not self._leaving[p].is_set()]
        for partition in staying[share:]:  # more than the fair share: hand over after the batch in flight
            self._leaving[partition].set()
        if len(mine) < share:
            for partition in leases.preferred(share):
                if len(self._workers) >= share:
                    break
                if partition not in self._workers and await leases.acquire(partition):
                    self._leaving[partition] = asyncio.Event()
                    self._workers[partition] = asyncio.create_task(
                        self._pull(partition, stop), name=f"{self.spec.durable(partition)}")

    async def _give_up_all(self, leases: Leases) -> None:
        """Stop every pull loop (a batch being applied finds its lease gone and goes back to JetStream)."""
        for event in self._leaving.values():
            event.set()
        await leases.drop()
        if self._workers:
            await asyncio.wait(self._workers.values())
        self._workers.clear()
        self._leaving.clear()

    def _stopping(self, partition: int, stop: asyncio.Event) -> bool:
        leaving = self._leaving.get(partition)
        return stop.is_set() or leaving is None or leaving.is_set()

    async def _pull(self, partition: int, stop: asyncio.Event) -> None:
        durable = self.spec.durable(partition)
        sub = await self.js.pull_subscribe_bind(durable=durable, stream=self.stream_name)
        try:
            info = await self.js.consumer_info(self.stream_name, durable)
            if info.num_ack_pending:
                # The previous holder's batch is unacknowledged: it comes back after ack_wait (redeliveries come
                # before new messages), and nothing newer may be fetched before it.
                await self._sleep(partition, stop, self.spec.ack_wait + 0.5)
            while not self._stopping(partition, stop):
                try:
                    msgs = await sub.fetch(self.spec.batch_size, timeout=1.0)
                except (NatsTimeoutError, TimeoutError):
                    continue
                except Exception as exc:
                    log.warning("fetch failed for %s: %r", durable, exc)
                    await self._sleep(partition, stop, 0.5)
                    continue
                left = _pending_after(msgs[-1])  # as JetStream delivered the batch; a later publish moves the relay
                if left is not None:
                    self._set_lag(partition, len(msgs) + left)  # the batch is pending until it is acknowledged
                returned = await self.handle_batch(partition, msgs, stop)
                if left is not None:
                    self._set_lag(partition, left + returned)
                if len(msgs) * 4 < self.spec.batch_size:
                    await self._sleep(partition, stop, self.spec.linger)
        except Exception as exc:
            log.warning("pull loop of %s ended: %r", durable, exc)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _sleep(self, partition: int, stop: asyncio.Event, seconds: float) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while not self._stopping(partition, stop):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.1))

    async def handle_batch(self, partition: int, msgs: Sequence[Msg], stop: asyncio.Event) -> int:
        """Apply a fetched batch in stream order, in one transaction per attempt; ack what committed. A handler
        failure below the bound, or a database failure, keeps the rest of the batch and retries it in place.
        Returns how many messages went back to JetStream unapplied (stopped, or the lease lost)."""
        todo = [(msg, from_message(msg.headers or {}, msg.data)) for msg in msgs]
        together = True  # the batch path, until a handler fails on it; then one event at a time
        async with self._in_progress(todo):
            while todo:
                if stop.is_set():
                    break
                try:
                    async with self.engine.begin() as conn:
                        events = [event for _, event in todo]
                        if together:
                            results = await self._apply_together(conn, partition, events)
                        else:
                            await self._hold(conn, partition)
                            results = await self._apply_in_order(conn, events)
                        crash_point("consumer.before_commit")
                except LeaseLost:
                    break
                except _OneByOne as exc:  # rolled back: nothing of the batch path was kept
                    log.info("batch of %s failed, applying one by one: %r", self.spec.name, exc.__cause__)
                    together = False
                    continue
                except Exception as exc:  # database down, deadlock: nothing was committed; keep the batch
                    log.warning("batch of %s failed, retrying it: %r", self.spec.durable(partition), exc)
                    if stop.is_set():
                        break
                    await self._sleep_holding(partition, stop, 1.0)
                    continue
                crash_point("consumer.after_commit")
                DEAD_LETTERS.labels(self.spec.name).inc(sum(r.outcome is Outcome.DEAD for r in results))
                done = [r for r in results if r.outcome is not Outcome.RETRY]
                for msg, _ in todo[:len(done)]:
                    await msg.ack()
                todo[:] = todo[len(done):]
                if results and results[-1].outcome is Outcome.RETRY:
                    await self._sleep_holding(partition, stop, results[-1].delay)
                    if stop.is_set():
                        break
        for msg, _ in todo:  # not applied: back to JetStream for whoever holds the partition next
            with contextlib.suppress(Exception):
                await msg.nak()
        return len(todo)

    async def _sleep_holding(self, partition: int, stop: asyncio.Event, seconds: float) -> None:
        """Wait before a retry while the lease is held (giving the partition up ends the wait)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not stop.is_set() and self._leases is not None and partition in self._leases.held:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.1))

    @contextlib.asynccontextmanager
    async def _in_progress(self, todo: list[tuple[Msg, RecordedEvent]]) -> AsyncIterator[None]:
        """Tell JetStream every ack_wait/3 that the batch's remaining messages are still being worked on."""

        async def keep() -> None:
            while True:
                await asyncio.sleep(self.spec.ack_wait / 3)
                for msg, _ in list(todo):
                    with contextlib.suppress(Exception):
                        await msg.in_progress()

        task = asyncio.create_task(keep())
        try:
            yield
        finally:
            task.cancel()

    def _leases_of(self, partition: int) -> Leases:
        leases = self._leases
        if leases is None or partition not in leases.held or partition not in self._leaving:
            raise LeaseLost(partition)
        return leases

    async def _lock(self, conn: AsyncConnection, partition: int) -> None:
        """One applier per partition at a time: a transaction lock, taken in a statement of its own (it is the
        transaction's first, and what is read after it must be read in a later statement, whose snapshot includes
        the previous applier's commit)."""
        await conn.execute(text("SELECT pg_advisory_xact_lock(:c, :p)"),
                           {"c": lock_class(self.schema, self.spec.name, "apply"), "p": partition})

    async def _hold(self, conn: AsyncConnection, partition: int) -> None:
        """One applier per partition at a time (a transaction lock), and only the lease holder (checked inside the
        transaction, so a replica that lost its lease commits nothing)."""
        leases = self._leases_of(partition)
        await self._lock(conn, partition)
        raw = await driver_connection(conn)
        if not await raw.fetchval(f"SELECT {lease_held_sql('$1', '$2', '$3')}",
                                  leases.lease_class, partition, leases.pid):
            raise LeaseLost(partition)

    async def _apply_together(self, conn: AsyncConnection, partition: int,
                              events: list[RecordedEvent]) -> list[_Result]:
        """The batch path, in four statements whatever the batch's size: the partition lock; the lease, inbox and
        version reads; the handler(s); the inbox, failures and version writes. Raises _OneByOne when a handler
        fails (the caller rolls back and applies one by one)."""
        name = self.spec.name
        leases = self._leases_of(partition)
        await self._lock(conn, partition)
        raw = await driver_connection(conn)
        keys = sorted({(e.source, e.stream.type, e.stream.id) for e in events})
        rows = await raw.fetch(self._sql["reads"], name, [e.id for e in events], [k[0] for k in keys],
                               [k[1] for k in keys], [k[2] for k in keys], leases.lease_class, partition, leases.pid)
        done: set[Any] = set()
        version: dict[tuple[str, str, str], int] = {}
        for kind, event_id, source, stream_type, stream_id, value in rows:
            if kind == 0 and not value:
                raise LeaseLost(partition)
            if kind == 1:
                done.add(event_id)
            elif kind == 2:
                version[(source, stream_type, stream_id)] = value
        results: list[_Result] = []
        claimed: list[RecordedEvent] = []
        for event in events:
            key = (event.source, event.stream.type, event.stream.id)
            if event.id in done or event.version <= version.get(key, 0):  # never backwards
                results.append(_Result(Outcome.DUPLICATE))
            else:
                version[key] = event.version
                claimed.append(event)
                results.append(_Result(Outcome.APPLIED))
        if not claimed:
            self._count(results)
            return results
        try:
            if self.spec.batch_handler is not None:
                with tracer.start_as_current_span(f"consume batch of {len(claimed)}",
                                                  kind=trace.SpanKind.CONSUMER,
                                                  attributes={"messaging.consumer.group.name": name}):
                    await self.spec.batch_handler(conn, claimed)
            else:
                await self._dispatch(conn, claimed)
            moved = sorted({(e.source, e.stream.type, e.stream.id) for e in claimed})
            await raw.execute(self._sql["writes"], name, [e.id for e in claimed], [e.source for e in claimed],
                              [e.position for e in claimed], [k[0] for k in moved], [k[1] for k in moved],
                              [k[2] for k in moved], [version[k] for k in moved])
        except Exception as exc:
            if is_retryable(exc):  # a deadlock or an outage is nobody's fault: the whole batch again, in place
                raise
            raise _OneByOne from exc
        self._count(results)
        self.batches += 1
        return results

    async def _apply_in_order(self, conn: AsyncConnection, events: list[RecordedEvent]) -> list[_Result]:
        """One event at a time, up to the first that is to be retried (nothing after it: the stream's order)."""
        results: list[_Result] = []
        for event in events:
            results.append(await self._apply(conn, event))
            if results[-1].outcome is Outcome.RETRY:
                break
        return results

    async def _dispatch(self, conn: AsyncConnection, claimed: list[RecordedEvent]) -> None:
        """The per-type handlers over a claimed batch, in order. One span per run of events of one trace context
        (a batch mostly comes from one request or one upstream batch, and a span per event would cost about as
        much as a small handler); what the handlers append carries that span's context, so traces continue."""
        for traceparent, run in itertools.groupby(claimed, key=lambda e: e.traceparent):
            events = list(run)
            attributes: dict[str, str | int] = {"messaging.consumer.group.name": self.spec.name,
                                                "messaging.batch.message_count": len(events)}
            if len(events) == 1:
                attributes["povguard.event_id"] = str(events[0].id)
            with tracer.start_as_current_span(span_name("consume", (e.type for e in events)),
                                              context=context_from_traceparent(traceparent),
                                              kind=trace.SpanKind.CONSUMER, attributes=attributes):
                for event in events:
                    handler = self.spec.handler_for(event.type)
                    if handler is not None:
                        await handler(conn, event)

    def _count(self, results: list[_Result]) -> None:
        applied = sum(r.outcome is Outcome.APPLIED for r in results)
        self._applied.inc(applied)
        self._duplicates.inc(len(results) - applied)
        self.applied += applied

    async def _apply(self, conn: AsyncConnection, event: RecordedEvent) -> _Result:
        s, name = self.schema, self.spec.name
        with tracer.start_as_current_span(
            f"consume {event.type}",
            context=context_from_traceparent(event.traceparent),
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.consumer.group.name": name, "povguard.event_id": str(event.id)},
        ):
            seen = await conn.execute(
                text(f"SELECT 1 FROM {s}.inbox WHERE consumer = :c AND event_id = :e"),
                {"c": name, "e": event.id},
            )
            if seen.first() is not None:
                CONSUMER_DUPLICATES.labels(name).inc()
                return _Result(Outcome.DUPLICATE)
            savepoint = await conn.begin_nested()
            try:
                if not await self._claim(conn, event):
                    await savepoint.rollback()
                    CONSUMER_DUPLICATES.labels(name).inc()
                    return _Result(Outcome.DUPLICATE)
                handler = self.spec.handler_for(event.type)
                if handler is not None:
                    await handler(conn, event)
                await conn.execute(
                    text(f"INSERT INTO {s}.inbox (consumer, event_id, source, source_position) "
                         "VALUES (:c, :e, :src, :p)"),
                    {"c": name, "e": event.id, "src": event.source, "p": event.position},
                )
                await savepoint.commit()
            except Exception as exc:
                if is_retryable(exc):
                    raise
                if savepoint.is_active:
                    await savepoint.rollback()
                return await self._failed(conn, event, exc)
            await conn.execute(
                text(f"DELETE FROM {s}.consumer_failures WHERE consumer = :c AND event_id = :e"),
                {"c": name, "e": event.id},
            )
            CONSUMER_APPLIED.labels(name).inc()
            self.applied += 1
            return _Result(Outcome.APPLIED)

    async def _claim(self, conn: AsyncConnection, event: RecordedEvent) -> bool:
        """Move the stream's applied version up to the event's; False if it is there already (never backwards)."""
        row = await conn.execute(
            text(f"""INSERT INTO {self.schema}.consumer_streams (consumer, source, stream_type, stream_id, version)
                     VALUES (:c, :src, :t, :i, :v)
                     ON CONFLICT (consumer, source, stream_type, stream_id) DO UPDATE SET version = EXCLUDED.version
                     WHERE {self.schema}.consumer_streams.version < EXCLUDED.version RETURNING 1"""),
            {"c": self.spec.name, "src": event.source, "t": event.stream.type, "i": event.stream.id,
             "v": event.version})
        return row.first() is not None

    async def _failed(self, conn: AsyncConnection, event: RecordedEvent, exc: Exception) -> _Result:
        name, s = self.spec.name, self.schema
        CONSUMER_FAILURES.labels(name).inc()
        error = f"{type(exc).__name__}: {exc}"
        log.warning("consumer %s failed on %s %s: %s", name, event.type, event.id, error)
        row = await conn.execute(
            text(f"""INSERT INTO {s}.consumer_failures (consumer, event_id, attempts, last_error)
                     VALUES (:c, :e, 1, :err)
                     ON CONFLICT (consumer, event_id) DO UPDATE
                     SET attempts = {s}.consumer_failures.attempts + 1, last_error = :err, updated_at = now()
                     RETURNING attempts"""),
            {"c": name, "e": event.id, "err": error[:4000]},
        )
        attempts = int(row.scalar_one())
        if attempts < self.spec.max_attempts:
            delay = self.spec.backoff[min(attempts, len(self.spec.backoff)) - 1]
            return _Result(Outcome.RETRY, delay)
        # Bound reached: record a dead letter and step the stream past it, so later events are not blocked.
        await conn.execute(
            text(f"""INSERT INTO {s}.dead_letters (consumer, event_id, subject, event, error, attempts)
                     VALUES (:c, :e, :subj, CAST(:ev AS jsonb), :err, :n)
                     ON CONFLICT (consumer, event_id) DO NOTHING"""),
            {"c": name, "e": event.id, "subj": event.subject, "ev": json.dumps(event_as_json(event)),
             "err": error[:4000], "n": attempts},
        )
        await self._claim(conn, event)  # the failed attempt's claim was rolled back with its savepoint
        await conn.execute(
            text(f"DELETE FROM {s}.consumer_failures WHERE consumer = :c AND event_id = :e"),
            {"c": name, "e": event.id})
        return _Result(Outcome.DEAD)

    async def _watch_lag(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                for partition in range(self.partitions):  # also those another replica holds
                    set_before = self._lag_set.get(partition, 0)
                    pending = await self._partition_pending(partition)
                    if self._lag_set.get(partition, 0) == set_before:  # else the pull loop's count is newer
                        self._lag[partition] = pending
                CONSUMER_LAG.labels(self.spec.name).set(sum(self._lag.values()))
                async with self.engine.connect() as conn:
                    n = await conn.execute(
                        text(f"SELECT count(*) FROM {self.schema}.dead_letters "
                             "WHERE consumer = :c AND resolved_at IS NULL"), {"c": self.spec.name})
                    DEAD_LETTERS.labels(self.spec.name).set(n.scalar_one())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)


def _pending_after(msg: Msg) -> int | None:
    """Messages of the consumer JetStream still held after this one when it delivered it (its reply subject)."""
    try:
        return int(msg.metadata.num_pending)
    except Exception:  # no JetStream metadata (not expected from a pull consumer): the watcher's reading stands
        return None


def event_as_json(event: RecordedEvent) -> dict[str, Any]:
    """The whole envelope as JSON (dead letters keep it so an operator can see and retry exactly what failed)."""
    return {
        "id": str(event.id), "source": event.source, "stream_type": event.stream.type,
        "stream_id": event.stream.id, "version": event.version, "position": event.position,
        "type": event.type, "type_version": event.type_version, "township": event.township,
        "time": event.time.isoformat(), "actor": event.actor.model_dump(mode="json"), "data": event.data,
        "correlation_id": str(event.correlation_id) if event.correlation_id else None,
        "causation_id": str(event.causation_id) if event.causation_id else None,
        "traceparent": event.traceparent, "policy": event.policy,
    }


def event_from_json(doc: Mapping[str, Any]) -> RecordedEvent:
    from datetime import datetime
    from uuid import UUID

    from povguard_platform.actor import Actor
    from povguard_platform.envelope import StreamRef

    return RecordedEvent(
        id=UUID(doc["id"]), source=doc["source"], stream=StreamRef(doc["stream_type"], doc["stream_id"]),
        version=doc["version"], position=doc["position"], type=doc["type"], type_version=doc["type_version"],
        township=doc["township"], time=datetime.fromisoformat(doc["time"]), actor=Actor.model_validate(doc["actor"]),
        data=doc["data"], correlation_id=UUID(doc["correlation_id"]) if doc["correlation_id"] else None,
        causation_id=UUID(doc["causation_id"]) if doc["causation_id"] else None,
        traceparent=doc["traceparent"], policy=doc["policy"],
    )


async def retry_dead_letter(conn: AsyncConnection, schema: str, spec: ConsumerSpec, dead_letter_id: int) -> bool:
    """Apply a dead-lettered event again (after a fix); on success it is recorded in the inbox and resolved."""
    row = await conn.execute(
        text(f"SELECT event FROM {ident(schema)}.dead_letters WHERE id = :id AND consumer = :c "
             "AND resolved_at IS NULL FOR UPDATE"), {"id": dead_letter_id, "c": spec.name})
    doc = row.scalar_one_or_none()
    if doc is None:
        return False
    event = event_from_json(doc)
    handler = spec.handler_for(event.type)
    if handler is not None:
        await handler(conn, event)
    await conn.execute(
        text(f"INSERT INTO {schema}.inbox (consumer, event_id, source, source_position) "
             "VALUES (:c, :e, :src, :p) ON CONFLICT DO NOTHING"),
        {"c": spec.name, "e": event.id, "src": event.source, "p": event.position})
    await conn.execute(
        text(f"UPDATE {schema}.dead_letters SET resolved_at = now(), resolution = 'retried' WHERE id = :id"),
        {"id": dead_letter_id})
    return True
