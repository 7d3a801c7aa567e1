"""Signing keys, signed checkpoints (with a consistency check against the previous one before signing) and
witness cosignatures, in PostgreSQL."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_audit import keys, ledger, merkle, note
from povguard_audit.events import CheckpointSigned, LedgerMismatchFound
from povguard_audit.metrics import CHECKPOINTS, INTEGRITY_FAILURES
from povguard_audit.settings import AuditSettings
from povguard_contracts.payload import EventPayload
from povguard_platform.actor import SYSTEM_ACTOR
from povguard_platform.envelope import Metadata, NewEvent, StreamRef
from povguard_platform.eventstore import EventStore

log = logging.getLogger(__name__)
STORE = EventStore("audit")
LEDGER_STREAM = StreamRef("ledger", "main")


class InconsistentLedger(Exception):
    """The ledger cannot be proved consistent with the last signed checkpoint: it was rewritten."""


class KeyInDatabase(keys.NoSigningKey):
    """Production found a private signing seed in the audit database."""


@dataclass(frozen=True)
class StoredCheckpoint:
    id: int
    tree_size: int
    root: bytes
    origin: str
    note: str
    signed_at: datetime
    cosignatures: list[str]
    map_root: bytes | None = None

    @property
    def body(self) -> str:
        return note.split_note(self.note)[0]


async def signers(conn: AsyncConnection, settings: AuditSettings) -> list[note.Signer]:
    """The keys that sign now (keys.py), recorded (public half only) in audit.signing_keys; any other recorded key is
    retired but stays published, so what it signed still verifies. Production refuses while the database holds any
    private seed (a development key from before keys left the database): whoever reads it could re-sign the log.
    Development moves such a seed into its key file instead."""
    held = (await conn.execute(text(
        "SELECT vkey, seed FROM audit.signing_keys WHERE seed IS NOT NULL ORDER BY active DESC, created_at DESC"
    ))).all()
    if held and settings.environment == "production":
        raise KeyInDatabase(
            f"audit.signing_keys holds the private seed of {held[0][0]}: a database superuser could re-sign the "
            "log. Production signs only with AUDIT_SIGNING_KEY_FILE or AUDIT_SIGNING_KEYS; erase the seed "
            "(UPDATE audit.signing_keys SET seed = NULL) and no longer trust what that key signed alone")
    current, source = keys.current(settings, adopt=bytes(held[0][1]) if held else None)
    if held:
        await conn.execute(text("UPDATE audit.signing_keys SET seed = NULL WHERE seed IS NOT NULL"))
    for s in current:
        await conn.execute(text(
            "INSERT INTO audit.signing_keys (vkey, name, source, active) VALUES (:v, :n, :s, true) "
            "ON CONFLICT (vkey) DO UPDATE SET active = true, retired_at = NULL"),
            {"v": s.vkey, "n": s.name, "s": source})
    await conn.execute(text(
        "UPDATE audit.signing_keys SET active = false, retired_at = now() "
        "WHERE active AND NOT (vkey = ANY(:vs))"), {"vs": [s.vkey for s in current]})
    return current


async def public_keys(conn: AsyncConnection) -> list[tuple[str, bool, datetime, datetime | None]]:
    """Every key recorded here (each is recorded before it signs): vkey, active, created, retired."""
    rows = await conn.execute(text(
        "SELECT vkey, active, created_at, retired_at FROM audit.signing_keys ORDER BY created_at, vkey"))
    return [(r[0], r[1], r[2], r[3]) for r in rows]


@dataclass(frozen=True)
class PublishedKey:
    vkey: str
    active: bool  # signs new checkpoints; else a previous key that verifies the checkpoints it signed
    created_at: datetime | None  # first recorded (None: configured, has not signed yet)
    retired_at: datetime | None


async def published_keys(conn: AsyncConnection, settings: AuditSettings) -> list[PublishedKey]:
    """The keys that sign now (from the key file or secret, whether or not they have signed yet), then every
    previous one recorded here, oldest first. Reads only (a development key file may be created)."""
    try:
        active = [s.vkey for s in keys.current(settings)[0]]
    except keys.NoSigningKey:
        active = []
    recorded = {v: (c, r) for v, _, c, r in await public_keys(conn)}
    return ([PublishedKey(v, True, recorded.get(v, (None, None))[0], None) for v in active]
            + [PublishedKey(v, False, c, r) for v, (c, r) in recorded.items() if v not in active])


async def _verifiers(conn: AsyncConnection) -> list[note.Verifier]:
    return [note.Verifier.from_vkey(v) for v, *_ in await public_keys(conn)]


async def latest(conn: AsyncConnection) -> StoredCheckpoint | None:
    row = (await conn.execute(text(
        "SELECT id, tree_size, root, origin, note, signed_at, map_root FROM audit.checkpoints "
        "ORDER BY tree_size DESC, id DESC LIMIT 1"))).first()
    return None if row is None else await _with_cosignatures(conn, row)


async def at_size(conn: AsyncConnection, tree_size: int) -> StoredCheckpoint | None:
    row = (await conn.execute(text(
        "SELECT id, tree_size, root, origin, note, signed_at, map_root FROM audit.checkpoints WHERE tree_size = :s "
        "ORDER BY id DESC LIMIT 1"), {"s": tree_size})).first()
    return None if row is None else await _with_cosignatures(conn, row)


async def all_up_to(conn: AsyncConnection, tree_size: int) -> list[StoredCheckpoint]:
    rows = (await conn.execute(text(
        "SELECT DISTINCT ON (tree_size) id, tree_size, root, origin, note, signed_at, map_root FROM audit.checkpoints "
        "WHERE tree_size <= :s ORDER BY tree_size, id DESC"), {"s": tree_size})).all()
    return [await _with_cosignatures(conn, r) for r in rows]


async def _with_cosignatures(conn: AsyncConnection, row: object) -> StoredCheckpoint:
    r = row  # a Row: id, tree_size, root, origin, note, signed_at, map_root
    lines = (await conn.execute(text(
        "SELECT line FROM audit.cosignatures WHERE checkpoint_id = :i ORDER BY received_at, witness"),
        {"i": r[0]})).scalars().all()  # type: ignore[index]
    map_root = None if r[6] is None else bytes(r[6])  # type: ignore[index]
    return StoredCheckpoint(int(r[0]), int(r[1]), bytes(r[2]), r[3], r[4], r[5], list(lines),  # type: ignore[index]
                            map_root)


async def emit(conn: AsyncConnection, settings: AuditSettings, payload: EventPayload) -> None:
    """Append one of the audit service's own events (the ledger lock serialises the stream's versions)."""
    await emit_all(conn, settings, [payload])


async def emit_all(conn: AsyncConnection, settings: AuditSettings, payloads: Sequence[EventPayload]) -> None:
    """Append the audit service's own events, in this order, in one append."""
    if not payloads:
        return
    version = await STORE.stream_version(conn, LEDGER_STREAM)
    await STORE.append(conn, [NewEvent(LEDGER_STREAM, settings.county, p) for p in payloads],
                       {LEDGER_STREAM: version}, Metadata(actor=SYSTEM_ACTOR))


async def sign(conn: AsyncConnection, settings: AuditSettings) -> StoredCheckpoint | None:
    """Sign a checkpoint of the current tree, unless the latest already covers it. Before signing, the previous
    checkpoint's signature and a consistency proof from it to the new tree are checked."""
    await ledger.lock(conn)
    tree_size = await ledger.size(conn)
    prev = await latest(conn)
    if tree_size == 0 or (prev is not None and prev.tree_size == tree_size):
        return prev
    signing = await signers(conn, settings)  # a refused key refuses before anything is read or written
    root = await ledger.root_at(conn, tree_size)
    if prev is not None:
        if prev.tree_size > tree_size:
            await _inconsistent(conn, settings, tree_size, f"the ledger shrank from {prev.tree_size} to {tree_size}")
        body, good = note.verified_by(prev.note, await _verifiers(conn))
        parsed = note.parse_checkpoint(body)
        if not good or (parsed.origin, parsed.size, parsed.root) != (prev.origin, prev.tree_size, prev.root):
            await _inconsistent(conn, settings, tree_size, f"checkpoint {prev.id} has no valid signature")
        proof = await ledger.consistency_proof(conn, prev.tree_size, tree_size)
        if not merkle.verify_consistency(prev.tree_size, prev.root, tree_size, root, proof):
            await _inconsistent(conn, settings, tree_size,
                                f"tree of size {tree_size} is not consistent with checkpoint size {prev.tree_size}")
    # The household map moves on from the last checkpoint that has one (from nothing before the first): the latest
    # one whenever it has a map (every checkpoint since the map exists), else the newest with one.
    mapped = prev.tree_size if prev is not None and prev.map_root is not None else (await conn.execute(text(
        "SELECT coalesce(max(tree_size), 0) FROM audit.checkpoints WHERE map_root IS NOT NULL"))).scalar_one()
    map_root = await ledger.update_map(conn, int(mapped), tree_size)
    body = note.checkpoint_body(settings.origin, tree_size, root, map_root)
    text_ = note.sign_note(body, signing)
    row = (await conn.execute(text(
        "INSERT INTO audit.checkpoints (tree_size, root, origin, note, map_root) VALUES (:s, :r, :o, :n, :m) "
        "RETURNING id, tree_size, root, origin, note, signed_at"),
        {"s": tree_size, "r": root, "o": settings.origin, "n": text_, "m": map_root})).one()
    await emit(conn, settings, CheckpointSigned(origin=settings.origin, tree_size=tree_size,
                                                root_hash=base64.b64encode(root).decode(), note=text_))
    CHECKPOINTS.inc()
    return StoredCheckpoint(int(row[0]), tree_size, root, settings.origin, text_, row[5], [], map_root)


async def _inconsistent(conn: AsyncConnection, settings: AuditSettings, tree_size: int, detail: str) -> None:
    INTEGRITY_FAILURES.labels("checkpoint").inc()
    log.error("refusing to sign a checkpoint: %s", detail)
    raise InconsistentLedger(detail)


_last_signed = 0.0  # monotonic time of this process's last automatic checkpoint


async def maybe_sign(conn: AsyncConnection, settings: AuditSettings, tree_size: int) -> None:
    """Sign every `checkpoint_every` entries, or when the last checkpoint is older than `checkpoint_seconds`.
    A refusal is counted and logged but does not stop the ledger from recording (the re-check raises the alert)."""
    global _last_signed
    now = time.monotonic()
    if tree_size % settings.checkpoint_every and now - _last_signed < settings.checkpoint_seconds:
        return
    try:
        async with conn.begin_nested():
            await sign(conn, settings)
        _last_signed = now
    except InconsistentLedger:
        pass
    except keys.NoSigningKey as exc:  # the entry is recorded; checkpoints wait for a usable key
        log.error("no checkpoint signed: %s", exc)


async def alert(conn: AsyncConnection, settings: AuditSettings, tree_size: int, first_bad: int | None, kind: str,
                detail: str) -> None:
    await emit(conn, settings, LedgerMismatchFound(tree_size=tree_size, first_bad_index=first_bad, kind=kind,
                                                   detail=detail))


async def add_cosignature(conn: AsyncConnection, checkpoint_id: int, line: str) -> str:
    """Record a witness cosignature on a checkpoint, after checking it against the registered witness keys.
    Returns the witness name."""
    row = (await conn.execute(text("SELECT note FROM audit.checkpoints WHERE id = :i"),
                              {"i": checkpoint_id})).first()
    if row is None:
        raise LookupError(f"no checkpoint {checkpoint_id}")
    body = note.split_note(row[0])[0]
    witnesses = [note.Verifier.from_vkey(v) for v in
                 (await conn.execute(text("SELECT vkey FROM audit.witnesses"))).scalars().all()]
    for w in witnesses:
        t = w.verify_line(body, line)
        if t is not None and w.alg == note.ALG_COSIGNATURE_V1:
            await conn.execute(text(
                "INSERT INTO audit.cosignatures (checkpoint_id, witness, key_id, line, cosigned_at) "
                "VALUES (:c, :w, :k, :l, to_timestamp(:t)) ON CONFLICT DO NOTHING"),
                {"c": checkpoint_id, "w": w.name, "k": w.key_id, "l": line if line.endswith("\n") else line + "\n",
                 "t": t})
            return str(w.name)
    raise ValueError("not a valid cosignature by a registered witness")
