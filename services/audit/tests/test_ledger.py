"""The ledger consumer against real NATS and PostgreSQL: one entry per event with per-household links, the tree
kept in PostgreSQL, no second entry on redelivery, append-only at the database, one sequencer under concurrency."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from povguard_audit import checkpoints, ledger, merkle
from povguard_audit.entry import canonical_event
from povguard_audit.settings import audit_settings
from povguard_platform.actor import Actor, Role
from povguard_platform.bus import to_message
from povguard_platform.envelope import RecordedEvent, StreamRef
from povguard_platform.ids import uuid7
from povguard_platform.partitions import household_named, partition_key, partition_of
from povguard_platform.service import ServiceRuntime
from povguard_tools.testing import eventually

Stack = tuple[ServiceRuntime, ServiceRuntime]
H1, H2 = StreamRef("household", "hh-1"), StreamRef("household", "hh-2")


async def rows(rt: ServiceRuntime, sql: str, **params: Any) -> list[Any]:
    async with rt.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def test_every_event_becomes_one_entry_linked_to_its_households_previous_entry(
        stack: Stack, write: Callable[..., Awaitable[list[RecordedEvent]]],
        count: Callable[[ServiceRuntime], Awaitable[int]], ev: Any) -> None:
    intake, audit = stack
    case = StreamRef("case", "c-1")
    inspector = Actor(user="王五", role=Role.INSPECTOR, org="533123")
    events = await write(intake, [
        (H1, ev.Noted(note="a")), (H2, ev.Noted(note="b")),
        (case, ev.Stepped(household_id="hh-1", step="open")),
        (H1, ev.Noted(note="c", income=9000)),
        (StreamRef("batch", "b-1"), ev.Stepped(household_id=None, step="import")),
    ])
    events += await write(intake, [(H2, ev.Noted(note="read"))], actor=inspector)

    async def all_recorded() -> bool:
        return await count(audit) == 6

    await eventually(all_recorded)
    got = await rows(audit, "SELECT l.*, p.body FROM audit.ledger l JOIN audit.payloads p USING (idx) ORDER BY idx")
    assert [r.idx for r in got] == list(range(6))
    by_event = {r.event_id: r for r in got}
    for e in events:  # each entry: the event's facts and the SHA-256 of its RFC 8785 canonical JSON
        r = by_event[e.id]
        assert (r.source, r.stream_type, r.stream_id, r.stream_version, r.action) == (
            "intake", e.stream.type, e.stream.id, e.version, e.type)
        assert (r.actor_user, r.actor_role, r.actor_org) == (e.actor.user, e.actor.role.value, e.actor.org)
        assert r.event_time == e.time and r.recorded_at >= e.time
        assert bytes(r.body) == canonical_event(e)
        assert bytes(r.payload_sha256) == hashlib.sha256(canonical_event(e)).digest()
    # The household of a household stream is its id; elsewhere the payload's household_id (or none).
    assert by_event[events[2].id].household == "hh-1" and by_event[events[4].id].household is None
    assert by_event[events[5].id].actor_user == "王五"
    # Each entry links to the previous entry of its household, by index and leaf hash.
    last: dict[str, Any] = {}
    for r in got:
        if r.household is None:
            assert r.prev_idx is None
            continue
        prev = last.get(r.household)
        assert (r.prev_idx, r.prev_leaf and bytes(r.prev_leaf)) == (
            (None, None) if prev is None else (prev.idx, bytes(prev.leaf_hash)))
        last[r.household] = r
    # The stored tree: leaves recompute from the stored fields, and the root from stored nodes equals the root of
    # the leaf list; a proof reads O(log n) nodes.
    async with audit.engine.connect() as conn:
        stored = [ledger.entry_from_row(r) for r in await conn.execute(
            text(f"SELECT {ledger.ENTRY_COLUMNS} FROM audit.ledger ORDER BY idx"))]
        assert all(s.entry.leaf() == s.leaf_hash for s in stored)
        leaves = [s.leaf_hash for s in stored]
        assert await ledger.root_at(conn, 6) == merkle.root(leaves)
        assert await ledger.root_at(conn, 3) == merkle.root(leaves[:3])
        [proof] = await ledger.inclusion_proofs(conn, [4], 6)
        assert merkle.verify_inclusion(leaves[4], 4, 6, proof, merkle.root(leaves))
        c = await ledger.consistency_proof(conn, 3, 6)
        assert merkle.verify_consistency(3, merkle.root(leaves[:3]), 6, merkle.root(leaves), c)


async def test_a_redelivered_event_makes_no_second_entry(
        stack: Stack, write: Callable[..., Awaitable[list[RecordedEvent]]],
        count: Callable[[ServiceRuntime], Awaitable[int]], ev: Any) -> None:
    intake, audit = stack
    [event] = await write(intake, [(H1, ev.Noted(note="once"))])

    async def recorded() -> bool:
        return await count(audit) == 1

    await eventually(recorded)
    # Republish under a new Nats-Msg-Id so JetStream does not drop it: the inbox must.
    partition = partition_of(partition_key(event.stream, household_named(event)), audit.settings.partitions)
    subject, headers, data = to_message(event, partition)
    assert audit.js is not None
    await audit.js.publish(subject, data, headers={**headers, "Nats-Msg-Id": "again-" + str(event.id)})
    await write(intake, [(H2, ev.Noted(note="after"))])

    async def later_recorded() -> bool:
        return await count(audit) == 2

    await eventually(later_recorded)
    await asyncio.sleep(0.3)
    assert await count(audit) == 2
    # And the ledger itself refuses a second entry for an event id (a unique constraint, not only the inbox).
    with pytest.raises(ledger.DuplicateEntry):
        async with audit.engine.begin() as conn:
            await ledger.append(conn, [event])


async def test_the_ledger_is_append_only_in_the_database(
        stack: Stack, write: Callable[..., Awaitable[list[RecordedEvent]]],
        count: Callable[[ServiceRuntime], Awaitable[int]], ev: Any, admin_engine: AsyncEngine) -> None:
    intake, audit = stack
    await write(intake, [(H1, ev.Noted(note="x")), (H1, ev.Noted(note="y"))])

    async def recorded() -> bool:
        return await count(audit) == 2

    await eventually(recorded)
    async with audit.engine.begin() as conn:
        await checkpoints.sign(conn, audit_settings())
    changes = ["UPDATE audit.ledger SET actor_user = 'x'", "DELETE FROM audit.ledger",
               "TRUNCATE audit.ledger CASCADE", "UPDATE audit.tree_nodes SET hash = ''", "DELETE FROM audit.tree_nodes",
               "TRUNCATE audit.tree_nodes", "DELETE FROM audit.checkpoints", "TRUNCATE audit.checkpoints CASCADE",
               "DELETE FROM audit.payloads", "TRUNCATE audit.payloads", "UPDATE audit.payloads SET body = 'x'"]
    for sql in changes:
        # Even a superuser session in replica mode (which skips ordinary triggers) is refused: ENABLE ALWAYS.
        with pytest.raises(DBAPIError, match=r"append-only|redaction only"):
            async with admin_engine.begin() as conn:
                await conn.execute(text("SET LOCAL session_replication_role = replica"))
                await conn.execute(text(sql))
    for sql in changes[:-1]:  # the service's own role has no UPDATE, DELETE or TRUNCATE (payloads: redaction only)
        with pytest.raises(DBAPIError, match="permission denied"):
            async with audit.engine.begin() as conn:
                await conn.execute(text(sql))
    async with audit.engine.begin() as conn:  # ... but it may append and read
        assert (await conn.execute(text("SELECT count(*) FROM audit.ledger"))).scalar_one() == 2
    assert await count(audit) == 2


def _event(i: int, household: str) -> RecordedEvent:
    return RecordedEvent(
        id=uuid7(), source="review", stream=StreamRef("household", household), version=i + 1, position=i + 1,
        type="AuditTestHouseholdNoted", type_version=1, township="533123101", time=datetime.now(UTC),
        actor=Actor(user="li", role=Role.TOWNSHIP_REVIEWER, org="533123101"), data={"note": str(i)})


async def test_concurrent_writers_never_interleave_indexes(stack: Stack) -> None:
    """Four writers (as replicas would be) append batches at once: the sequencer lock keeps indexes contiguous
    and every household chain and tree node consistent."""
    _, audit = stack

    async def writer(w: int) -> None:
        for b in range(5):
            async with audit.engine.begin() as conn:
                await ledger.append(conn, [_event(b * 10 + i, f"w{w}-{i % 3}") for i in range(10)])

    await asyncio.gather(*(writer(w) for w in range(4)))
    async with audit.engine.connect() as conn:
        stored = [ledger.entry_from_row(r) for r in await conn.execute(
            text(f"SELECT {ledger.ENTRY_COLUMNS} FROM audit.ledger ORDER BY idx"))]
        assert [s.entry.index for s in stored] == list(range(200))
        assert all(s.entry.leaf() == s.leaf_hash for s in stored)
        leaf = {s.entry.index: s.leaf_hash for s in stored}
        for s in stored:
            if s.entry.prev_index is not None:
                assert s.entry.prev_index < s.entry.index and leaf[s.entry.prev_index] == s.entry.prev_leaf
        assert await ledger.root_at(conn, 200) == merkle.root([s.leaf_hash for s in stored])
