"""The ledger consumer: every event of every service (personal-data reads from intake included) becomes one
ledger entry, appended by the single sequencer inside the consumer's transaction (the inbox row commits with it)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_audit import checkpoints, ledger
from povguard_audit.anomalies import check_entries, check_entry
from povguard_audit.metrics import LEDGER_ENTRIES, LEDGER_SIZE
from povguard_audit.settings import audit_settings
from povguard_platform.consumer import ConsumerSpec
from povguard_platform.envelope import RecordedEvent


async def record(conn: AsyncConnection, event: RecordedEvent) -> None:
    settings = audit_settings()
    [entry] = await ledger.append(conn, [event])
    LEDGER_ENTRIES.inc()
    LEDGER_SIZE.set(entry.index + 1)
    await check_entry(conn, settings, entry, event)
    await checkpoints.maybe_sign(conn, settings, entry.index + 1)


async def record_batch(conn: AsyncConnection, events: list[RecordedEvent]) -> None:
    """A fetched batch in one ledger append (one lock, one read of the tree's edge, one insert)."""
    settings = audit_settings()
    entries = await ledger.append(conn, events)
    LEDGER_ENTRIES.inc(len(entries))
    old, new = entries[0].index, entries[-1].index + 1
    LEDGER_SIZE.set(new)
    await check_entries(conn, settings, entries, events)
    every = settings.checkpoint_every
    # a batch may step over a multiple of checkpoint_every: sign then, as one event at a time would have
    await checkpoints.maybe_sign(conn, settings, new // every * every if new // every > old // every else new)


LEDGER = ConsumerSpec(
    name="audit-ledger",
    sources=["intake", "assessment", "review", "support", "reporting"],
    handlers={},
    fallback=record,  # every event, known type or not, becomes an entry
    batch_handler=record_batch,
    batch_size=500,
)
