"""A projection of totals, fed by the durable consumer. Notes steer failures for the tests:
"poison" always fails; "flaky-N" fails the first N attempts (counted by the platform in consumer_failures)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_platform.consumer import ConsumerSpec
from povguard_platform.envelope import RecordedEvent
from povguard_platform_sample.events import SampleIncremented


async def on_opened(conn: AsyncConnection, event: RecordedEvent) -> None:
    await conn.execute(text("INSERT INTO sample.totals (id, total, applied) VALUES (:i, 0, 1)"),
                       {"i": event.stream.id})


async def on_incremented(conn: AsyncConnection, event: RecordedEvent) -> None:
    from povguard_contracts.catalogue import CATALOGUE

    payload = CATALOGUE.decode(event)
    assert isinstance(payload, SampleIncremented)
    if payload.note == "poison":
        raise ValueError("poison note")
    if payload.note.startswith("flaky-"):
        row = await conn.execute(text("SELECT attempts FROM sample.consumer_failures WHERE event_id = :e"),
                                 {"e": event.id})
        failures = row.scalar_one_or_none() or 0
        if failures < int(payload.note.split("-")[1]):
            raise RuntimeError(f"flaky failure {failures + 1}")
    await conn.execute(
        text("UPDATE sample.totals SET total = total + :by, applied = applied + 1, "
             "history = history || :entry WHERE id = :i"),
        {"by": payload.by, "i": event.stream.id, "entry": f"{event.version},"},
    )


PROJECTION = ConsumerSpec(
    name="sample-totals",
    sources=["sample"],
    handlers={"SampleOpened": on_opened, "SampleIncremented": on_incremented},
    max_attempts=3,
    backoff=(0.05, 0.1, 0.2),
    ack_wait=2.0,
)


async def apply_all(conn: AsyncConnection, events: list[RecordedEvent]) -> None:
    """The same projection, a batch at a time (a poison note fails the whole batch: the platform then applies
    that batch one event at a time)."""
    for event in events:
        await (on_opened if event.type == "SampleOpened" else on_incremented)(conn, event)


BATCHED = ConsumerSpec(
    name="sample-totals-batched",
    sources=["sample"],
    handlers=PROJECTION.handlers,
    batch_handler=apply_all,
    batch_size=10,  # several batches, so most go through the batch handler whole
    max_attempts=3,
    backoff=(0.05, 0.1, 0.2),
    ack_wait=2.0,
)
