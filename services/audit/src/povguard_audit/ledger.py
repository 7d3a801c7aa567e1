"""The ledger in PostgreSQL: the single sequencer that appends entries, and O(log n) reads of tree nodes for roots
and proofs. Every function works inside the caller's transaction."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_audit import householdmap, merkle
from povguard_audit.entry import Entry, canonical_event, entry_for, household_of
from povguard_platform.auth import placed_sql
from povguard_platform.envelope import RecordedEvent

# One sequencer: appends (and checkpoint signing) hold this transaction-scoped lock from the size read to commit,
# so replicas never interleave indexes and a reader never sees index n+1 committed before n.
LEDGER_LOCK = zlib.crc32(b"povguard.audit.ledger")

ENTRY_COLUMNS = ("idx, recorded_at, event_id, event_time, source, stream_type, stream_id, stream_version, action, "
                 "actor_user, actor_role, actor_org, household, payload_sha256, prev_idx, prev_leaf, leaf_hash")


def org_unit(alias: str = "") -> str:
    """SQL: the org unit an entry belongs to, for scoping reads: its event's township, or the county (`:county`)
    for an event without one. The township is stored beside the entry, outside its hashed bytes."""
    return placed_sql(f"{alias}.township" if alias else "township")


# (database, size, last leaf, frontier) after this process's last append: the next append in the same database
# reuses the frontier only if the ledger's head is still that entry (nobody else appended, nothing rolled back).
_frontier: tuple[str, int, bytes, merkle.CompactTree] | None = None


class DuplicateEntry(Exception):
    """An event id that is already in the ledger (the unique constraint refused it)."""


class TreeCorrupt(Exception):
    """A tree node the ledger should hold is missing."""


@dataclass(frozen=True)
class StoredEntry:
    entry: Entry
    leaf_hash: bytes  # as stored (a tampered row no longer matches entry.leaf())


def entry_from_row(r: Any) -> StoredEntry:
    e = Entry(
        index=r.idx, recorded_at=r.recorded_at, event_id=r.event_id if isinstance(r.event_id, uuid.UUID)
        else uuid.UUID(str(r.event_id)), event_time=r.event_time, source=r.source, stream_type=r.stream_type,
        stream_id=r.stream_id, stream_version=r.stream_version, action=r.action, actor_user=r.actor_user,
        actor_role=r.actor_role, actor_org=r.actor_org, household=r.household,
        payload_sha256=bytes(r.payload_sha256), prev_index=r.prev_idx,
        prev_leaf=None if r.prev_leaf is None else bytes(r.prev_leaf),
    )
    return StoredEntry(e, bytes(r.leaf_hash))


async def lock(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LEDGER_LOCK})


async def size(conn: AsyncConnection) -> int:
    row = await conn.execute(text("SELECT coalesce(max(idx) + 1, 0) FROM audit.ledger"))
    return int(row.scalar_one())


async def nodes(conn: AsyncConnection, coords: Iterable[merkle.Coord]) -> dict[merkle.Coord, bytes]:
    """Fetch perfect nodes in one round trip (level 0 from the ledger's leaf hashes)."""
    wanted = set(coords)
    leaves = [i for lvl, i in wanted if lvl == 0]
    inner = [(lvl, i) for lvl, i in wanted if lvl > 0]
    rows = await conn.execute(
        text("""SELECT n.level, n.idx, n.hash FROM audit.tree_nodes n
                JOIN unnest(CAST(:ls AS smallint[]), CAST(:is AS bigint[])) AS w(level, idx)
                  ON n.level = w.level AND n.idx = w.idx
                UNION ALL
                SELECT 0, idx, leaf_hash FROM audit.ledger WHERE idx = ANY(CAST(:leaves AS bigint[]))"""),
        {"ls": [c[0] for c in inner], "is": [c[1] for c in inner], "leaves": leaves},
    )
    found = {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}
    missing = wanted - found.keys()
    if missing:
        raise TreeCorrupt(f"tree nodes missing: {sorted(missing)[:5]}")
    return found


async def root_at(conn: AsyncConnection, tree_size: int) -> bytes:
    frontier = merkle.frontier_coords(tree_size)
    found = await nodes(conn, frontier)
    return bytes(merkle.fold([found[c] for c in frontier]))


async def inclusion_proofs(conn: AsyncConnection, indexes: Sequence[int], tree_size: int) -> list[list[bytes]]:
    """Inclusion proofs of several entries at one tree size, from one node read."""
    ranges = [merkle.inclusion_ranges(i, tree_size) for i in indexes]
    found = await nodes(conn, merkle.proof_nodes(r for rs in ranges for r in rs))
    return [[merkle.range_hash(a, b, found) for a, b in rs] for rs in ranges]


async def consistency_proof(conn: AsyncConnection, first: int, second: int) -> list[bytes]:
    ranges = merkle.consistency_ranges(first, second)
    found = await nodes(conn, merkle.proof_nodes(ranges))
    return [merkle.range_hash(a, b, found) for a, b in ranges]


# One round trip: the time, the head (size and last leaf) and each household's last entry.
_HEAD = text(
    """SELECT clock_timestamp(), t.idx, t.leaf_hash, h.household, l.idx, l.leaf_hash
       FROM (SELECT 1) one
       LEFT JOIN LATERAL (SELECT idx, leaf_hash FROM audit.ledger ORDER BY idx DESC LIMIT 1) t ON true
       LEFT JOIN unnest(CAST(:hs AS text[])) AS h(household) ON true
       LEFT JOIN LATERAL (SELECT idx, leaf_hash FROM audit.ledger
                          WHERE household = h.household ORDER BY idx DESC LIMIT 1) l ON true""")
# One statement writes the entries, the new tree nodes and the stored payloads.
_APPEND = text(f"""WITH entries AS (
        INSERT INTO audit.ledger ({ENTRY_COLUMNS}, township)
        SELECT u.idx, CAST(:rat AS timestamptz), u.eid, u.etime, u.src, u.st, u.sid, u.sv, u.act, u.au,
               u.ar, u.ao, u.hh, u.ph, u.pi, u.pl, u.lh, u.town
        FROM unnest(CAST(:idx AS bigint[]), CAST(:eid AS uuid[]), CAST(:etime AS timestamptz[]),
                    CAST(:src AS text[]), CAST(:st AS text[]), CAST(:sid AS text[]), CAST(:sv AS int[]),
                    CAST(:act AS text[]), CAST(:au AS text[]), CAST(:ar AS text[]), CAST(:ao AS text[]),
                    CAST(:hh AS text[]), CAST(:ph AS bytea[]), CAST(:pi AS bigint[]),
                    CAST(:pl AS bytea[]), CAST(:lh AS bytea[]), CAST(:town AS text[]))
             AS u(idx, eid, etime, src, st, sid, sv, act, au, ar, ao, hh, ph, pi, pl, lh, town)
        RETURNING 1),
      tree AS (
        INSERT INTO audit.tree_nodes (level, idx, hash)
        SELECT * FROM unnest(CAST(:nl AS smallint[]), CAST(:ni AS bigint[]), CAST(:nh AS bytea[]))
        RETURNING 1)
    INSERT INTO audit.payloads (idx, body)
    SELECT * FROM unnest(CAST(:idx AS bigint[]), CAST(:body AS bytea[]))""")


async def append(conn: AsyncConnection, events: Sequence[RecordedEvent]) -> list[Entry]:
    """Append events as ledger entries, in the given order, under the sequencer lock."""
    if not events:
        return []
    global _frontier
    await lock(conn)  # its own statement: the reads below take their snapshot after the lock is held
    households = sorted({h for h in (household_of(e) for e in events) if h is not None})
    rows = (await conn.execute(_HEAD, {"hs": households})).all()
    recorded_at: datetime = rows[0][0]
    start = 0 if rows[0][1] is None else int(rows[0][1]) + 1
    head_leaf = None if rows[0][2] is None else bytes(rows[0][2])
    last: dict[str, tuple[int, bytes]] = {r[3]: (int(r[4]), bytes(r[5])) for r in rows if r[4] is not None}
    # The frontier of the tree this process appended last, if the head is still the entry it appended (same
    # database, same size, same leaf); else read from the stored nodes.
    where = str(conn.engine.url)
    cached, _frontier = _frontier, None  # dropped while appending: a failure leaves no stale frontier behind
    if cached is not None and cached[:3] == (where, start, head_leaf):
        tree = cached[3]
    else:
        tree = merkle.CompactTree.at(start, await nodes(conn, merkle.frontier_coords(start)))

    payloads = [canonical_event(e) for e in events]

    entries: list[Entry] = []
    leaves: list[bytes] = []
    inner: list[tuple[merkle.Coord, bytes]] = []
    for offset, (event, payload) in enumerate(zip(events, payloads, strict=True)):
        household = household_of(event)
        entry = entry_for(event, start + offset, recorded_at, payload,
                          None if household is None else last.get(household))
        leaf = entry.leaf()
        inner.extend(c for c in tree.append(leaf) if c[0][0] > 0)
        if household is not None:
            last[household] = (entry.index, leaf)
        entries.append(entry)
        leaves.append(leaf)

    params: dict[str, list[Any]] = {
        "idx": [e.index for e in entries], "eid": [e.event_id for e in entries],
        "etime": [e.event_time for e in entries], "src": [e.source for e in entries],
        "st": [e.stream_type for e in entries], "sid": [e.stream_id for e in entries],
        "sv": [e.stream_version for e in entries], "act": [e.action for e in entries],
        "au": [e.actor_user for e in entries], "ar": [e.actor_role for e in entries],
        "ao": [e.actor_org for e in entries], "hh": [e.household for e in entries],
        "ph": [e.payload_sha256 for e in entries], "pi": [e.prev_index for e in entries],
        "pl": [e.prev_leaf for e in entries], "lh": leaves, "town": [e.township for e in events],
    }
    try:
        await conn.execute(
            _APPEND,
            {**params, "rat": recorded_at, "nl": [c[0] for c, _ in inner], "ni": [c[1] for c, _ in inner],
             "nh": [h for _, h in inner], "body": payloads},
        )
    except IntegrityError as exc:
        if "ledger_event_once" in str(exc.orig):
            raise DuplicateEntry(str(exc.orig)) from exc
        raise
    _frontier = (where, tree.size, leaves[-1], tree)
    return entries


async def redact(conn: AsyncConnection, index: int, reason: str) -> bool:
    """Drop an entry's stored payload (personal data); the entry keeps its hash, so every proof still holds."""
    row = await conn.execute(
        text("UPDATE audit.payloads SET body = NULL, redacted_at = now(), redaction_reason = :r "
             "WHERE idx = :i AND body IS NOT NULL RETURNING idx"), {"i": index, "r": reason})
    return row.first() is not None


# -- the household map (householdmap.py): nodes versioned by the checkpoint size that wrote them ---------------------


def _prefix_bytes(depth: int, prefix: int) -> bytes:
    return (prefix << (householdmap.KEY_BITS - depth) if depth else 0).to_bytes(32, "big")


# Each coord's newest version <= v, one backward step of the primary key (depth, prefix, version) each: the nodes near
# the root are rewritten at every checkpoint, so reading all their versions would grow with the ledger's age.
_MAP_NODES = text(
    """SELECT w.depth, w.prefix, n.hash, n.leaf_key, n.leaf_idx, n.leaf_hash
       FROM unnest(CAST(:ds AS smallint[]), CAST(:ps AS bytea[])) AS w(depth, prefix)
       CROSS JOIN LATERAL (SELECT hash, leaf_key, leaf_idx, leaf_hash FROM audit.map_nodes m
                           WHERE m.depth = w.depth AND m.prefix = w.prefix AND m.version <= :v
                           ORDER BY m.version DESC LIMIT 1) n""")


async def map_nodes(conn: AsyncConnection, coords: Iterable[householdmap.Coord], version: int
                    ) -> dict[householdmap.Coord, householdmap.Node]:
    """The map's nodes at these coords as of checkpoint size `version`, in one round trip (absent: empty)."""
    wanted = {(d, _prefix_bytes(d, p)): (d, p) for d, p in coords}
    if not wanted:
        return {}
    rows = await conn.execute(_MAP_NODES, {"ds": [k[0] for k in wanted], "ps": [k[1] for k in wanted], "v": version})
    out: dict[householdmap.Coord, householdmap.Node] = {}
    for r in rows:
        leaf = None if r[3] is None else (int.from_bytes(bytes(r[3]), "big"), int(r[4]), bytes(r[5]))
        out[wanted[(int(r[0]), bytes(r[1]))]] = householdmap.Node(bytes(r[2]), leaf)
    return out


_MAP_AHEAD = 4  # depths read ahead per round trip below the usual depth of a household's leaf node
_map_depth = 16  # median depth (+1) at which this process's last map update placed households: where to read to


async def update_map(conn: AsyncConnection, since: int, tree_size: int) -> bytes:
    """Bring the household map from checkpoint size `since` to `tree_size` (under the sequencer lock): only the
    households with entries in [since, tree_size) are touched. Returns the new root."""
    rows = await conn.execute(text(
        """SELECT DISTINCT ON (household) household, idx, leaf_hash FROM audit.ledger
           WHERE idx >= :a AND idx < :b AND household IS NOT NULL ORDER BY household, idx DESC"""),
        {"a": since, "b": tree_size})
    changes = {householdmap.key_of(r[0]): (int(r[1]), bytes(r[2])) for r in rows}
    update = householdmap.Update(changes)
    # Several depths per read: with each fetch go the changed keys' paths (and siblings) down to about where the last
    # update placed its households, then a few depths at a time; nothing is written until the end, so a coord read
    # once holds for every step. A few round trips a checkpoint instead of one per depth (about 20 at 70,000).
    global _map_depth
    asked: set[householdmap.Coord] = set()
    found: dict[householdmap.Coord, householdmap.Node] = {}
    while not update.done:
        wanted = update.wanted()
        if not asked.issuperset(wanted):
            more = update.ahead(max(_MAP_AHEAD, _map_depth - update.depth)).union(wanted) - asked
            found.update(await map_nodes(conn, more, tree_size))
            asked |= more
        update.step({c: found[c] for c in wanted if c in found})
    root = update.root
    placed = sorted(c[0] for c, n in update.written.items() if n.leaf is not None)
    if placed:
        _map_depth = placed[len(placed) // 2] + 1
    if not update.written:
        return (await map_nodes(conn, [(0, 0)], tree_size)).get((0, 0), householdmap.Node(householdmap.EMPTY)).hash
    coords, nodes_ = list(update.written), list(update.written.values())
    await conn.execute(text(
        """INSERT INTO audit.map_nodes (depth, prefix, version, hash, leaf_key, leaf_idx, leaf_hash)
           SELECT u.d, u.p, :v, u.h, u.k, u.i, u.l
           FROM unnest(CAST(:ds AS smallint[]), CAST(:ps AS bytea[]), CAST(:hs AS bytea[]), CAST(:ks AS bytea[]),
                       CAST(:is AS bigint[]), CAST(:ls AS bytea[])) AS u(d, p, h, k, i, l)"""),
        {"v": tree_size, "ds": [c[0] for c in coords], "ps": [_prefix_bytes(*c) for c in coords],
         "hs": [n.hash for n in nodes_],
         "ks": [None if n.leaf is None else n.leaf[0].to_bytes(32, "big") for n in nodes_],
         "is": [None if n.leaf is None else n.leaf[1] for n in nodes_],
         "ls": [None if n.leaf is None else n.leaf[2] for n in nodes_]})
    return root


async def map_proof(conn: AsyncConnection, household: str, version: int
                    ) -> tuple[tuple[int, bytes] | None, list[bytes]]:
    """The household's latest entry (index, leaf hash) in the map as of checkpoint size `version`, and its proof."""
    key = householdmap.key_of(household)
    return householdmap.prove(key, await map_nodes(conn, householdmap.proof_coords(key), version))
