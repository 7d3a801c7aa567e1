"""Who reads the ledger: every read is limited to the reader's org unit (an entry belongs to its event's township),
and every read that returns stored events unmasked (they hold ID numbers, phones, health) is itself entered in the
ledger (LedgerPayloadsRead), in the same transaction."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_audit import ledger
from povguard_audit.checkpoints import STORE
from povguard_audit.events import LedgerPayloadsRead
from povguard_platform.actor import Actor
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.ids import uuid7


async def household_place(conn: AsyncConnection, household: str, county: str) -> str | None:
    """The org unit of a household's latest entry (None: no entry for it)."""
    row = await conn.execute(text(f"""SELECT {ledger.org_unit()} FROM audit.ledger WHERE household = :h
                                      ORDER BY idx DESC LIMIT 1"""), {"h": household, "county": county})
    place: str | None = row.scalar_one_or_none()
    return place


async def record_read(conn: AsyncConnection, actor: Actor, *, household: str | None, view: str, entries: int,
                      purpose: str, township: str) -> None:
    """An event on the audit service's own store (published like every other) and its ledger entry. The ledger's
    sequencer lock first, then the store's append lock: the order checkpoint signing takes them in."""
    await ledger.lock(conn)
    stream = StreamRef("access", str(uuid7()))
    payload = LedgerPayloadsRead(household_id=household, view=view, entries=entries, purpose=purpose)
    recorded = await STORE.append(conn, [NewEvent(stream, township, payload)], {stream: 0}, Metadata(actor=actor))
    await ledger.append(conn, recorded)
