"""Partitions: every event about one household, from whichever service, lands in the same partition, so one replica
of a consumer applies a household's events in order without waiting on version chains (DESIGN.md, "Order and
scale-out"). The relay writes the partition into the subject: ev.<service>.<event_type>.<partition>.<township>.

A stream's partition is fixed by its first event: the household the stream is (stream type `household`) or the
household its first event names (`household_id`: a case, a plan, a warning matched at once), else the stream
itself (a township's scale alerts, a warning not yet matched, the sample). Later events never move a stream, so a
warning matched to a household keeps the partition of its receipt, and a stream's events stay in one order.

The partition count (settings `partitions`, env POVGUARD_PARTITIONS) must be the same for every service and
replica. It fixes where events already on the stream are, so changing it means: stop writes, let every consumer
drain (no pending, no unacknowledged messages), stop all replicas, change the setting everywhere, start again (the
durable consumers' filters are updated on start). A count above the number of replicas lets replicas be added later
without that; each consumer runs one pull loop per partition it holds.
"""

from __future__ import annotations

import zlib

from povguard_platform.envelope import RecordedEvent, StreamRef

DEFAULT_PARTITIONS = 4


def household_named(event: RecordedEvent) -> str | None:
    """The household an event is about: its stream's, or the `household_id` of its payload."""
    if event.stream.type == "household":
        return event.stream.id
    value: object = event.data.get("household_id")
    return None if value is None else str(value)


def partition_key(stream: StreamRef, first_household: str | None) -> str:
    if stream.type == "household":
        return stream.id
    return first_household if first_household else str(stream)


def partition_of(key: str, partitions: int) -> int:
    """CRC-32 of the key: stable across processes and versions (Python's hash() is salted per process)."""
    return zlib.crc32(key.encode()) % partitions


def subject(event: RecordedEvent, partition: int) -> str:
    return f"ev.{event.source}.{event.type}.{partition}.{event.township}"
