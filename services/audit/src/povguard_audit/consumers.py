"""The ledger consumer: every event of every service (personal-data reads from intake included) becomes one
ledger entry, appended by the single sequencer inside the consumer's transaction (the inbox row commits with it)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_audit import checkpoints, ledger
from povguard_audit.anomalies import check_entry
from povguard_audit.metrics import LEDGER_ENTRIES, LEDGER_SIZE
from povguard_audit.settings import audit_settings
from povguard_platform.consumer import ConsumerSpec, Handler
from povguard_platform.envelope import RecordedEvent


async def record(conn: AsyncConnection, event: RecordedEvent) -> None:
    settings = audit_settings()
    [entry] = await ledger.append(conn, [event])
    LEDGER_ENTRIES.inc()
    LEDGER_SIZE.set(entry.index + 1)
    await check_entry(conn, settings, entry, event)
    await checkpoints.maybe_sign(conn, settings, entry.index + 1)


class EveryType(Mapping[str, Handler]):
    """The platform skips event types without a handler; the ledger must record every event, known or not, so
    every type maps to the same handler (`.get(type)` never returns None)."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    def __getitem__(self, event_type: str) -> Handler:
        return self._handler

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __contains__(self, event_type: object) -> bool:
        return isinstance(event_type, str)


LEDGER = ConsumerSpec(
    name="audit-ledger",
    sources=["intake", "assessment", "review", "support"],
    handlers=EveryType(record),
)
