"""The event store: append with expected version, load a stream (whole, as of a version or a time), and read all
events after a global position. The events table is also the outbox the relay publishes from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, overload

import asyncpg
from opentelemetry import trace
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_contracts.catalogue import CATALOGUE, Catalogue
from povguard_contracts.payload import EventPayload
from povguard_platform.actor import actor_from_json
from povguard_platform.envelope import Metadata, NewEvent, RecordedEvent, StreamRef
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


# the actor as text: parsed once per distinct actor (actor_from_json), not once per row
_ENVELOPE = (  # what `_row` reads before the payload
    "position, id, stream_type, stream_id, version, type, type_version, township, time, CAST(actor AS text), "
    "correlation_id, causation_id, traceparent, policy"
)
_PAYLOAD = _ENVELOPE.count(",") + 1  # the payload's column: the first after the envelope's
_COLUMNS = _ENVELOPE + ", data"


async def driver_connection(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under `conn`, inside the caller's transaction (started now if it was not yet)."""
    raw: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
    if not raw.is_in_transaction():
        await conn.execute(text("SELECT 1"))  # SQLAlchemy begins its transaction lazily, on the first statement
    return raw


async def _reader(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under `conn` for one read: inside the caller's transaction if it has begun one (a
    repeatable-read snapshot stays whole), else on its own (one statement needs none)."""
    if conn.in_transaction():
        return await driver_connection(conn)
    raw: asyncpg.Connection = (await conn.get_raw_connection()).driver_connection
    return raw


class Appended(Sequence[RecordedEvent]):
    """What an append recorded, built into RecordedEvents only when read: most callers never look, and building
    them for a 1000-event batch would cost a quarter of the append."""

    def __init__(self, source: str, events: Sequence[NewEvent], versions: list[int], stamped: list[Any],
                 metadata: Metadata | Sequence[Metadata], traceparent: str | Sequence[str | None] | None) -> None:
        self._args = (source, events, versions, stamped, metadata, traceparent)

    def __len__(self) -> int:
        return len(self._args[1])

    @overload
    def __getitem__(self, index: int) -> RecordedEvent: ...
    @overload
    def __getitem__(self, index: slice) -> list[RecordedEvent]: ...

    def __getitem__(self, index: int | slice) -> RecordedEvent | list[RecordedEvent]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        source, events, versions, stamped, metadatas, traceparents = self._args
        metadata = metadatas if isinstance(metadatas, Metadata) else metadatas[index]
        traceparent = traceparents if traceparents is None or isinstance(traceparents, str) else traceparents[index]
        event = events[index]
        return RecordedEvent(
            id=event.id, source=source, stream=event.stream, version=versions[index],
            position=stamped[index][0], type=event.payload.event_type, type_version=event.payload.event_version,
            township=event.township, time=stamped[index][1], actor=metadata.actor,
            data=event.payload.model_dump(mode="json"), correlation_id=metadata.correlation_id,
            causation_id=metadata.causation_id, traceparent=traceparent, policy=metadata.policy)


def notify_channel(schema: str) -> str:
    return f"{ident(schema)}_events"


class EventStore:
    """One service's event store, in its own schema. All methods work inside the caller's transaction."""

    def __init__(self, schema: str, catalogue: Catalogue = CATALOGUE) -> None:
        self.schema = ident(schema)
        self.catalogue = catalogue
        self.channel = notify_channel(schema)

    async def append(
        self,
        conn: AsyncConnection,
        events: Sequence[NewEvent],
        expected: Mapping[StreamRef, int],
        metadata: Metadata | Sequence[Metadata],
    ) -> Sequence[RecordedEvent]:
        """Append events to one or more streams, each at its expected version (0 for a new stream). One metadata
        for all, or one per event (a consumer's batch: each event caused by its own source event)."""
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
        metadata: Metadata | Sequence[Metadata],
    ) -> Sequence[RecordedEvent]:
        if not isinstance(metadata, Metadata) and len(metadata) != len(events):
            raise ValueError("one metadata per event, or one for all")
        next_version = {stream: version for stream, version in expected.items()}
        for event in events:
            if event.stream not in next_version:
                raise ValueError(f"no expected version given for stream {event.stream}")
        await self._check_expected({s: v for s, v in expected.items() if v > 0}, conn)

        current = current_traceparent()
        ids, stypes, sids, versions, types, tvs, towns, data = [], [], [], [], [], [], [], []
        for event in events:
            version = next_version[event.stream] = next_version[event.stream] + 1
            payload = event.payload
            ids.append(event.id)
            stypes.append(event.stream.type)
            sids.append(event.stream.id)
            versions.append(version)
            types.append(payload.event_type)
            tvs.append(payload.event_version)
            towns.append(event.township)
            data.append(payload.model_dump_json())

        # One statement, straight through asyncpg (the hot path of bulk imports): the events table's triggers take
        # the append lock before any position is drawn and NOTIFY the relay at commit.
        raw = await driver_connection(conn)
        traceparent: str | list[str | None] | None
        try:
            if isinstance(metadata, Metadata):
                traceparent = metadata.traceparent or current
                stamped = await raw.fetch(
                    f"""INSERT INTO {self.schema}.events (id, stream_type, stream_id, version, type, type_version,
                            township, actor, correlation_id, causation_id, traceparent, policy, data)
                        SELECT u.id, u.stype, u.sid, u.version, u.type, u.tv, u.town, $1::jsonb, $2, $3, $4, $5,
                               u.data::jsonb
                        FROM unnest($6::uuid[], $7::text[], $8::text[], $9::int[], $10::text[], $11::int[],
                                    $12::text[], $13::text[])
                             WITH ORDINALITY AS u(id, stype, sid, version, type, tv, town, data, ord)
                        ORDER BY u.ord
                        RETURNING position, time""",
                    metadata.actor.model_dump_json(), metadata.correlation_id, metadata.causation_id, traceparent,
                    metadata.policy, ids, stypes, sids, versions, types, tvs, towns, data,
                )
            else:
                traceparent = [m.traceparent or current for m in metadata]
                stamped = await raw.fetch(
                    f"""INSERT INTO {self.schema}.events (id, stream_type, stream_id, version, type, type_version,
                            township, actor, correlation_id, causation_id, traceparent, policy, data)
                        SELECT u.id, u.stype, u.sid, u.version, u.type, u.tv, u.town, u.actor::jsonb, u.corr,
                               u.cause, u.tp, u.policy, u.data::jsonb
                        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::int[],
                                    $7::text[], $8::text[], $9::text[], $10::uuid[], $11::uuid[], $12::text[],
                                    $13::text[])
                             WITH ORDINALITY AS u(id, stype, sid, version, type, tv, town, data, actor, corr, cause,
                                                  tp, policy, ord)
                        ORDER BY u.ord
                        RETURNING position, time""",
                    ids, stypes, sids, versions, types, tvs, towns, data,
                    [m.actor.model_dump_json() for m in metadata], [m.correlation_id for m in metadata],
                    [m.causation_id for m in metadata], traceparent, [m.policy for m in metadata],
                )
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "events_stream_version_key":
                stream = self._conflicting_stream(str(exc.detail), expected)
                raise ConcurrencyError(stream, expected[stream]) from exc
            raise
        EVENTS_APPENDED.labels(self.schema).inc(len(events))
        return Appended(self.schema, events, versions, stamped, metadata, traceparent)

    async def _check_expected(self, expected: Mapping[StreamRef, int], conn: AsyncConnection) -> None:
        """An existing stream must be exactly at its expected version: the row at that version must exist (the
        unique key then refuses anyone who got there first)."""
        if not expected:
            return
        streams = list(expected)
        rows = await conn.execute(
            text(
                # one backward step of the (stream_type, stream_id, version) key per stream: a max() over a join
                # read every event of the stream (the audit ledger's own stream grows by one per checkpoint)
                f"""SELECT u.stype, u.sid, coalesce(e.version, 0)
                    FROM unnest(CAST(:stypes AS text[]), CAST(:sids AS text[])) AS u(stype, sid)
                    LEFT JOIN LATERAL (SELECT version FROM {self.schema}.events
                                       WHERE stream_type = u.stype AND stream_id = u.sid
                                       ORDER BY version DESC LIMIT 1) e ON true"""
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
        sql = (f"SELECT {_COLUMNS} FROM {self.schema}.events WHERE stream_type = $1 AND stream_id = $2"
               " AND (CAST($3 AS bigint) IS NULL OR version <= $3)"  # bigint: any Int64 a client may ask for
               " AND (CAST($4 AS timestamptz) IS NULL OR time <= $4) ORDER BY version")
        rows = await (await _reader(conn)).fetch(sql, stream.type, stream.id, to_version, as_of)
        return [self._row(r) for r in rows]

    async def load_streams(self, conn: AsyncConnection, stream_type: str,
                           ids: Iterable[str]) -> dict[str, list[RecordedEvent]]:
        """Many streams of one type in one query (a batch's aggregates): each id's events in version order; an id
        with no events is absent."""
        rows = await (await _reader(conn)).fetch(
            f"SELECT {_COLUMNS} FROM {self.schema}.events WHERE stream_type = $1 AND stream_id = ANY($2::text[])"
            " ORDER BY stream_id, version", stream_type, sorted(set(ids)))
        out: dict[str, list[RecordedEvent]] = {}
        for r in rows:
            event = self._row(r)
            out.setdefault(event.stream.id, []).append(event)
        return out

    async def read_after(self, conn: AsyncConnection, position: int, limit: int = 1000) -> list[RecordedEvent]:
        """All events after a global position, in position order."""
        rows = await (await _reader(conn)).fetch(
            f"SELECT {_COLUMNS} FROM {self.schema}.events WHERE position > $1 ORDER BY position LIMIT $2",
            position, limit)
        return [self._row(r) for r in rows]

    async def read_after_as_stored(self, conn: AsyncConnection, position: int,
                                   limit: int = 1000) -> list[tuple[RecordedEvent, bytes]]:
        """What the relay publishes: all events after a global position, in position order, each with its payload
        as PostgreSQL prints the stored jsonb (JSON the consumers parse as they would the relay's own encoding), so
        the payload is neither decoded nor encoded again in Python. The envelope's `data` holds only the payload's
        `household_id` (what fixes a stream's partition: partitions.py), not the payload."""
        rows = await (await _reader(conn)).fetch(
            f"SELECT {_ENVELOPE}, data->>'household_id', CAST(data AS text) FROM {self.schema}.events "
            "WHERE position > $1 ORDER BY position LIMIT $2", position, limit)
        out = []
        for r in rows:
            household, payload = r[_PAYLOAD], r[_PAYLOAD + 1]
            out.append((self._row(r, {} if household is None else {"household_id": household}), payload.encode()))
        return out

    async def head(self, conn: AsyncConnection) -> int:
        row = await conn.execute(text(f"SELECT coalesce(max(position), 0) FROM {self.schema}.events"))
        return int(row.scalar_one())

    def decode(self, event: RecordedEvent) -> EventPayload:
        return self.catalogue.decode(event)

    def decode_all(self, events: Iterable[RecordedEvent]) -> list[EventPayload]:
        return [self.catalogue.decode(e) for e in events]

    def _row(self, r: asyncpg.Record, data: dict[str, Any] | None = None) -> RecordedEvent:
        """A row of _COLUMNS, read straight through asyncpg (the relay's and rebuilds' hot path); `data` in place
        of the row's payload column."""
        (position, event_id, stream_type, stream_id, version, type_, type_version, township, time, actor,
         correlation_id, causation_id, traceparent, policy) = r[:_PAYLOAD]
        if data is None:
            data = r[_PAYLOAD]
        return RecordedEvent(
            id=event_id, source=self.schema, stream=StreamRef(stream_type, stream_id), version=version,
            position=position, type=type_, type_version=type_version, township=township, time=time,
            actor=actor_from_json(actor), data=data, correlation_id=correlation_id, causation_id=causation_id,
            traceparent=traceparent, policy=policy)
