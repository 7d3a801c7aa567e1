"""The event store: append with expected version, load a stream (whole, as of a version or a time), and read all
events after a global position. The events table is also the outbox the relay publishes from."""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from opentelemetry import trace
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_platform.actor import Actor
from povguard_platform.catalogue import CATALOGUE, Catalogue
from povguard_platform.envelope import EventPayload, Metadata, NewEvent, RecordedEvent, StreamRef
from povguard_platform.metrics import EVENTS_APPENDED
from povguard_platform.schema import ident
from povguard_platform.telemetry import current_traceparent

tracer = trace.get_tracer("povguard.eventstore")


class ConcurrencyError(Exception):
    """An append whose expected version is not the stream's current version: someone else wrote first."""

    def __init__(self, stream: StreamRef, expected: int, actual: int | None = None) -> None:
        self.stream, self.expected, self.actual = stream, expected, actual
        found = "" if actual is None else f", found {actual}"
        super().__init__(f"stream {stream} expected at version {expected}{found}")


_COLUMNS = (
    "position, id, stream_type, stream_id, version, type, type_version, township, time, actor, "
    "correlation_id, causation_id, traceparent, policy, data"
)


def notify_channel(schema: str) -> str:
    return f"{ident(schema)}_events"


class EventStore:
    """One service's event store, in its own schema. All methods work inside the caller's transaction."""

    def __init__(self, schema: str, catalogue: Catalogue = CATALOGUE) -> None:
        self.schema = ident(schema)
        self.catalogue = catalogue
        self.channel = notify_channel(schema)
        # One lock key per store: appends are serialised from insert to commit so that positions commit in order.
        self._lock_key = zlib.crc32(f"povguard.events.{schema}".encode())

    async def append(
        self,
        conn: AsyncConnection,
        events: Sequence[NewEvent],
        expected: Mapping[StreamRef, int],
        metadata: Metadata,
    ) -> list[RecordedEvent]:
        """Append events to one or more streams, each at its expected version (0 for a new stream)."""
        if not events:
            return []
        with tracer.start_as_current_span(
            "eventstore.append", attributes={"povguard.schema": self.schema, "povguard.events": len(events)}
        ):
            return await self._append(conn, events, expected, metadata)

    async def _append(
        self,
        conn: AsyncConnection,
        events: Sequence[NewEvent],
        expected: Mapping[StreamRef, int],
        metadata: Metadata,
    ) -> list[RecordedEvent]:
        next_version = {stream: version for stream, version in expected.items()}
        for event in events:
            if event.stream not in next_version:
                raise ValueError(f"no expected version given for stream {event.stream}")
        await self._check_expected({s: v for s, v in expected.items() if v > 0}, conn)

        traceparent = metadata.traceparent or current_traceparent()
        actor_json = metadata.actor.model_dump_json()
        cols: dict[str, list[Any]] = {k: [] for k in ("ids", "stypes", "sids", "versions", "types", "tvs",
                                                      "towns", "data")}
        versions: list[int] = []
        for event in events:
            next_version[event.stream] += 1
            versions.append(next_version[event.stream])
            cols["ids"].append(event.id)
            cols["stypes"].append(event.stream.type)
            cols["sids"].append(event.stream.id)
            cols["versions"].append(next_version[event.stream])
            cols["types"].append(event.payload.event_type)
            cols["tvs"].append(event.payload.event_version)
            cols["towns"].append(event.township)
            cols["data"].append(event.payload.model_dump_json())

        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._lock_key})
        try:
            result = await conn.execute(
                text(
                    f"""INSERT INTO {self.schema}.events (id, stream_type, stream_id, version, type, type_version,
                            township, actor, correlation_id, causation_id, traceparent, policy, data)
                        SELECT u.id, u.stype, u.sid, u.version, u.type, u.tv, u.town, CAST(:actor AS jsonb),
                               :correlation_id, :causation_id, :traceparent, :policy, CAST(u.data AS jsonb)
                        FROM unnest(CAST(:ids AS uuid[]), CAST(:stypes AS text[]), CAST(:sids AS text[]),
                                    CAST(:versions AS int[]), CAST(:types AS text[]), CAST(:tvs AS int[]),
                                    CAST(:towns AS text[]), CAST(:data AS text[]))
                             WITH ORDINALITY AS u(id, stype, sid, version, type, tv, town, data, ord)
                        ORDER BY u.ord
                        RETURNING position, time"""
                ),
                {
                    **cols,
                    "actor": actor_json,
                    "correlation_id": metadata.correlation_id,
                    "causation_id": metadata.causation_id,
                    "traceparent": traceparent,
                    "policy": metadata.policy,
                },
            )
        except IntegrityError as exc:
            if "events_stream_version_key" in str(exc.orig):
                stream = self._conflicting_stream(str(exc.orig), expected)
                raise ConcurrencyError(stream, expected[stream]) from exc
            raise
        stamped = result.fetchall()
        await conn.execute(text("SELECT pg_notify(:ch, '')"), {"ch": self.channel})
        EVENTS_APPENDED.labels(self.schema).inc(len(events))
        return [
            RecordedEvent(
                id=event.id,
                source=self.schema,
                stream=event.stream,
                version=version,
                position=stamp[0],
                type=event.payload.event_type,
                type_version=event.payload.event_version,
                township=event.township,
                time=stamp[1],
                actor=metadata.actor,
                data=json.loads(event.payload.model_dump_json()),
                correlation_id=metadata.correlation_id,
                causation_id=metadata.causation_id,
                traceparent=traceparent,
                policy=metadata.policy,
            )
            for event, version, stamp in zip(events, versions, stamped, strict=True)
        ]

    async def _check_expected(self, expected: Mapping[StreamRef, int], conn: AsyncConnection) -> None:
        """An existing stream must be exactly at its expected version: the row at that version must exist (the
        unique key then refuses anyone who got there first)."""
        if not expected:
            return
        streams = list(expected)
        rows = await conn.execute(
            text(
                f"""SELECT u.stype, u.sid, coalesce(max(e.version), 0)
                    FROM unnest(CAST(:stypes AS text[]), CAST(:sids AS text[])) AS u(stype, sid)
                    LEFT JOIN {self.schema}.events e ON e.stream_type = u.stype AND e.stream_id = u.sid
                    GROUP BY u.stype, u.sid"""
            ),
            {"stypes": [s.type for s in streams], "sids": [s.id for s in streams]},
        )
        for stype, sid, actual in rows:
            stream = StreamRef(stype, sid)
            if actual != expected[stream]:
                raise ConcurrencyError(stream, expected[stream], actual)

    @staticmethod
    def _conflicting_stream(message: str, expected: Mapping[StreamRef, int]) -> StreamRef:
        # DETAIL: Key (stream_type, stream_id, version)=(household, abc, 3) already exists.
        for stream in expected:
            if f"({stream.type}, {stream.id}," in message:
                return stream
        return next(iter(expected))

    async def stream_version(self, conn: AsyncConnection, stream: StreamRef) -> int:
        row = await conn.execute(
            text(f"SELECT coalesce(max(version), 0) FROM {self.schema}.events "
                 "WHERE stream_type = :t AND stream_id = :i"),
            {"t": stream.type, "i": stream.id},
        )
        return int(row.scalar_one())

    async def load(
        self,
        conn: AsyncConnection,
        stream: StreamRef,
        *,
        to_version: int | None = None,
        as_of: datetime | None = None,
    ) -> list[RecordedEvent]:
        """A stream's events in version order; up to a version, or as they stood at a point in time."""
        sql = (f"SELECT {_COLUMNS} FROM {self.schema}.events WHERE stream_type = :t AND stream_id = :i"
               " AND (CAST(:v AS int) IS NULL OR version <= :v)"
               " AND (CAST(:at AS timestamptz) IS NULL OR time <= :at) ORDER BY version")
        rows = await conn.execute(text(sql), {"t": stream.type, "i": stream.id, "v": to_version, "at": as_of})
        return [self._row(r) for r in rows]

    async def read_after(self, conn: AsyncConnection, position: int, limit: int = 1000) -> list[RecordedEvent]:
        """All events after a global position, in position order."""
        rows = await conn.execute(
            text(f"SELECT {_COLUMNS} FROM {self.schema}.events WHERE position > :p ORDER BY position LIMIT :n"),
            {"p": position, "n": limit},
        )
        return [self._row(r) for r in rows]

    async def head(self, conn: AsyncConnection) -> int:
        row = await conn.execute(text(f"SELECT coalesce(max(position), 0) FROM {self.schema}.events"))
        return int(row.scalar_one())

    def decode(self, event: RecordedEvent) -> EventPayload:
        return self.catalogue.decode(event)

    def decode_all(self, events: Iterable[RecordedEvent]) -> list[EventPayload]:
        return [self.catalogue.decode(e) for e in events]

    def _row(self, r: Any) -> RecordedEvent:
        return RecordedEvent(
            id=r.id if isinstance(r.id, uuid.UUID) else uuid.UUID(str(r.id)),
            source=self.schema,
            stream=StreamRef(r.stream_type, r.stream_id),
            version=r.version,
            position=r.position,
            type=r.type,
            type_version=r.type_version,
            township=r.township,
            time=r.time,
            actor=Actor.model_validate(r.actor),
            data=r.data,
            correlation_id=r.correlation_id,
            causation_id=r.causation_id,
            traceparent=r.traceparent,
            policy=r.policy,
        )
