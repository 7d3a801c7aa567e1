"""Durable JetStream pull consumers with an inbox: each event is applied and recorded in one database
transaction, in version order per source stream; failures are retried with backoff up to a bound, then
dead-lettered without blocking later events."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import trace
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from povguard_platform.bus import from_message
from povguard_platform.envelope import RecordedEvent
from povguard_platform.faults import crash_point
from povguard_platform.metrics import (
    CONSUMER_APPLIED,
    CONSUMER_DUPLICATES,
    CONSUMER_FAILURES,
    CONSUMER_LAG,
    DEAD_LETTERS,
)
from povguard_platform.schema import ident
from povguard_platform.telemetry import context_from_traceparent

log = logging.getLogger(__name__)
tracer = trace.get_tracer("povguard.consumer")

Handler = Callable[[AsyncConnection, RecordedEvent], Awaitable[None]]
BatchHandler = Callable[[AsyncConnection, list[RecordedEvent]], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable consumer: which services' events it follows and what it does with each event type.
    Events of types without a handler (and no fallback) still advance the stream's version, so order checks see
    no gaps. A fetched batch is first applied together (one inbox query, one version claim, the handlers in order);
    only if that fails is it applied one event at a time, with retries and dead letters."""

    name: str
    sources: Sequence[str]
    handlers: Mapping[str, Handler]
    fallback: Handler | None = None  # for every type not in `handlers` (e.g. a ledger that records everything)
    # Optional: the whole fetched batch at once, in order (a ledger appends a batch far faster than one by one).
    # Without it the batch's events go to `handlers`/`fallback` in order. Same guarantees either way: inbox,
    # per-stream order, exactly-once effect. If it raises, the batch is applied one event at a time with
    # `handlers`/`fallback`, so retries and dead letters work as usual. It sees every claimed event, but only those
    # of types in `handlers` (or all, with a fallback) carry their payload.
    batch_handler: BatchHandler | None = None
    max_attempts: int = 5
    backoff: Sequence[float] = (0.5, 2.0, 10.0, 30.0, 60.0)
    order_wait: float = 0.2  # nak delay for an event that arrived ahead of its predecessor
    batch_size: int = 200
    ack_wait: float = 60.0  # a replica that dies mid-batch has its messages redelivered after this

    def handler_for(self, event_type: str) -> Handler | None:
        return self.handlers.get(event_type, self.fallback)

    @property
    def subjects(self) -> list[str]:
        return [f"ev.{ident(source)}.>" for source in self.sources]


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    WAIT = "wait"  # a predecessor has not been applied yet
    RETRY = "retry"
    DEAD = "dead"


@dataclass
class _Result:
    outcome: Outcome
    delay: float = 0.0


@dataclass
class Consumer:
    spec: ConsumerSpec
    schema: str  # the consuming service's schema, where its inbox lives
    engine: AsyncEngine
    js: JetStreamContext
    stream_name: str
    applied: int = field(default=0, init=False)
    batches: int = field(default=0, init=False)  # batches the batch handler applied whole

    async def ensure(self) -> None:
        config = ConsumerConfig(
            durable_name=self.spec.name,
            ack_policy=AckPolicy.EXPLICIT,  # never the auto-terminate default: we ack, nak or dead-letter
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=-1,  # our own bound counts handler failures, not waits for a predecessor
            ack_wait=self.spec.ack_wait,
            max_ack_pending=10_000,
            filter_subjects=self.spec.subjects,
        )
        try:
            await self.js.consumer_info(self.stream_name, self.spec.name)
            await self.js.add_consumer(self.stream_name, config)  # same name: updates the filter
        except NotFoundError:
            await self.js.add_consumer(self.stream_name, config)

    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure()
        sub = await self.js.pull_subscribe_bind(durable=self.spec.name, stream=self.stream_name)
        lag_task = asyncio.create_task(self._watch_lag(stop))
        try:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(self.spec.batch_size, timeout=1.0)
                except (NatsTimeoutError, TimeoutError):
                    continue
                except Exception as exc:
                    log.warning("fetch failed for %s: %r", self.spec.name, exc)
                    await asyncio.sleep(0.5)
                    continue
                try:
                    await self.handle_batch(msgs)
                except Exception as exc:  # database down: nothing was committed, let JetStream redeliver
                    log.warning("batch failed for %s, redelivering: %r", self.spec.name, exc)
                    for msg in msgs:
                        with contextlib.suppress(Exception):
                            await msg.nak(delay=1.0)
        finally:
            lag_task.cancel()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def handle_batch(self, msgs: Sequence[Msg]) -> None:
        """Apply a fetched batch in one transaction (each message in its own savepoint), then ack/nak."""
        events = []
        for msg in msgs:
            headers = dict(msg.headers or {})
            events.append(from_message(headers, msg.data,
                                       read_body=self.spec.handler_for(headers.get("ce-type", "")) is not None))
        async with self.engine.begin() as conn:
            results = await self._apply_together(conn, events)
            if results is None:
                results = [await self._apply(conn, event) for event in events]
        crash_point("consumer.after_commit")
        DEAD_LETTERS.labels(self.spec.name).inc(sum(r.outcome is Outcome.DEAD for r in results))
        for msg, result in zip(msgs, results, strict=True):
            if result.outcome in (Outcome.WAIT, Outcome.RETRY):
                await msg.nak(delay=result.delay)
            else:
                await msg.ack()

    async def _apply_together(self, conn: AsyncConnection, events: list[RecordedEvent]) -> list[_Result] | None:
        """The batch handler's path: one inbox query, one version claim and one handler call for the whole batch.
        Replicas of this consumer take turns (a transaction-scoped lock), so claims cannot race. None: the handler
        failed, nothing of it was kept, apply one by one."""
        s, name = self.schema, self.spec.name
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                           {"k": zlib.crc32(f"povguard.consumer.{s}.{name}".encode())})
        seen = await conn.execute(text(f"SELECT event_id FROM {s}.inbox WHERE consumer = :c AND event_id = ANY(:ids)"),
                                  {"c": name, "ids": [e.id for e in events]})
        done = {row[0] for row in seen}
        keys = sorted({(e.source, e.stream.type, e.stream.id) for e in events})
        rows = await conn.execute(text(f"""
            SELECT source, stream_type, stream_id, version FROM {s}.consumer_streams
            WHERE consumer = :c AND (source, stream_type, stream_id) IN
                  (SELECT * FROM unnest(CAST(:src AS text[]), CAST(:t AS text[]), CAST(:i AS text[])))"""),
            {"c": name, "src": [k[0] for k in keys], "t": [k[1] for k in keys], "i": [k[2] for k in keys]})
        version = {(r[0], r[1], r[2]): r[3] for r in rows}
        results: list[_Result] = []
        claimed: list[RecordedEvent] = []
        for event in events:
            key = (event.source, event.stream.type, event.stream.id)
            current = version.get(key, 0)
            if event.id in done or event.version <= current:
                results.append(_Result(Outcome.DUPLICATE))
            elif event.version == current + 1:
                version[key] = event.version
                claimed.append(event)
                results.append(_Result(Outcome.APPLIED))
            else:
                results.append(_Result(Outcome.WAIT, self.spec.order_wait))
        if not claimed:
            self._count(results)
            return results
        savepoint = await conn.begin_nested()
        try:
            if self.spec.batch_handler is not None:
                with tracer.start_as_current_span(f"consume batch of {len(claimed)}",
                                                  kind=trace.SpanKind.CONSUMER,
                                                  attributes={"messaging.consumer.group.name": name}):
                    await self.spec.batch_handler(conn, claimed)
            else:
                await self._dispatch(conn, claimed)
            await conn.execute(text(f"""
                INSERT INTO {s}.inbox (consumer, event_id, source, source_position)
                SELECT :c, * FROM unnest(CAST(:e AS uuid[]), CAST(:src AS text[]), CAST(:p AS bigint[]))"""),
                {"c": name, "e": [e.id for e in claimed], "src": [e.source for e in claimed],
                 "p": [e.position for e in claimed]})
            moved = {(e.source, e.stream.type, e.stream.id) for e in claimed}
            await conn.execute(text(f"""
                INSERT INTO {s}.consumer_streams (consumer, source, stream_type, stream_id, version)
                SELECT :c, * FROM unnest(CAST(:src AS text[]), CAST(:t AS text[]), CAST(:i AS text[]),
                                         CAST(:v AS int[]))
                ON CONFLICT (consumer, source, stream_type, stream_id) DO UPDATE SET version = EXCLUDED.version"""),
                {"c": name, "src": [k[0] for k in moved], "t": [k[1] for k in moved], "i": [k[2] for k in moved],
                 "v": [version[k] for k in moved]})
            await conn.execute(text(f"DELETE FROM {s}.consumer_failures WHERE consumer = :c AND event_id = ANY(:e)"),
                               {"c": name, "e": [e.id for e in claimed]})
            await savepoint.commit()
        except Exception as exc:
            if savepoint.is_active:
                await savepoint.rollback()
            log.info("batch of %s failed, applying one by one: %r", name, exc)
            return None
        self._count(results)
        self.batches += 1
        return results

    async def _dispatch(self, conn: AsyncConnection, claimed: list[RecordedEvent]) -> None:
        """The per-type handlers over a claimed batch, in order; events nobody handles cost nothing here."""
        for event in claimed:
            handler = self.spec.handler_for(event.type)
            if handler is None:
                continue
            with tracer.start_as_current_span(
                f"consume {event.type}", context=context_from_traceparent(event.traceparent),
                kind=trace.SpanKind.CONSUMER,
                attributes={"messaging.consumer.group.name": self.spec.name, "povguard.event_id": str(event.id)},
            ):
                await handler(conn, event)

    def _count(self, results: list[_Result]) -> None:
        applied = sum(r.outcome is Outcome.APPLIED for r in results)
        CONSUMER_APPLIED.labels(self.spec.name).inc(applied)
        CONSUMER_DUPLICATES.labels(self.spec.name).inc(sum(r.outcome is Outcome.DUPLICATE for r in results))
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
                claimed = await self._claim(conn, event)
                if claimed is not None:
                    await savepoint.rollback()
                    if claimed is Outcome.DUPLICATE:
                        CONSUMER_DUPLICATES.labels(name).inc()
                    return _Result(claimed, self.spec.order_wait)
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

    async def _claim(self, conn: AsyncConnection, event: RecordedEvent) -> Outcome | None:
        """Move the stream's applied version from v-1 to v, or say why not. The row lock held until commit
        keeps two replicas from applying the same stream's events at once."""
        key = {"c": self.spec.name, "src": event.source, "t": event.stream.type, "i": event.stream.id,
               "v": event.version}
        s = self.schema
        if event.version == 1:
            row = await conn.execute(
                text(f"INSERT INTO {s}.consumer_streams (consumer, source, stream_type, stream_id, version) "
                     "VALUES (:c, :src, :t, :i, 1) ON CONFLICT DO NOTHING RETURNING 1"), key)
        else:
            row = await conn.execute(
                text(f"UPDATE {s}.consumer_streams SET version = :v WHERE consumer = :c AND source = :src "
                     "AND stream_type = :t AND stream_id = :i AND version = :v - 1 RETURNING 1"), key)
        if row.first() is not None:
            return None
        current = await conn.execute(
            text(f"SELECT version FROM {s}.consumer_streams WHERE consumer = :c AND source = :src "
                 "AND stream_type = :t AND stream_id = :i"), key)
        version = current.scalar_one_or_none() or 0
        return Outcome.DUPLICATE if version >= event.version else Outcome.WAIT

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
                info = await self.js.consumer_info(self.stream_name, self.spec.name)
                CONSUMER_LAG.labels(self.spec.name).set((info.num_pending or 0) + (info.num_ack_pending or 0))
                async with self.engine.connect() as conn:
                    n = await conn.execute(
                        text(f"SELECT count(*) FROM {self.schema}.dead_letters "
                             "WHERE consumer = :c AND resolved_at IS NULL"), {"c": self.spec.name})
                    DEAD_LETTERS.labels(self.spec.name).set(n.scalar_one())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


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
