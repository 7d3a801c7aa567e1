"""Signing keys, signed checkpoints (with a consistency check against the previous one before signing) and
witness cosignatures, in PostgreSQL."""

from __future__ import annotations

import base64
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_audit import ledger, merkle, note
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


class NoSigningKey(Exception):
    pass


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


def _seeds(settings: AuditSettings) -> list[bytes]:
    out = []
    for part in settings.signing_keys.get_secret_value().split(","):
        if part.strip():
            seed = base64.b64decode(part.strip(), validate=True)
            if len(seed) != 32:
                raise ValueError("AUDIT_SIGNING_KEYS: each key is a base64 Ed25519 seed of 32 bytes")
            out.append(seed)
    return out


async def signers(conn: AsyncConnection, settings: AuditSettings) -> list[note.Signer]:
    """The active log keys. Configured seeds are recorded (public half only) and any other key is retired but stays
    published; without configured keys, a development key is generated once and kept in audit.signing_keys."""
    configured = [note.Signer.from_seed(settings.origin, s) for s in _seeds(settings)]
    if configured:
        for s in configured:
            await conn.execute(text(
                "INSERT INTO audit.signing_keys (vkey, name, source, active) VALUES (:v, :n, 'configured', true) "
                "ON CONFLICT (vkey) DO UPDATE SET active = true, retired_at = NULL"), {"v": s.vkey, "n": s.name})
        await conn.execute(text(
            "UPDATE audit.signing_keys SET active = false, retired_at = now() "
            "WHERE active AND NOT (vkey = ANY(:vs))"), {"vs": [s.vkey for s in configured]})
        return configured
    if settings.environment == "production":
        raise NoSigningKey("AUDIT_SIGNING_KEYS must be set in production")
    rows = (await conn.execute(text(
        "SELECT seed FROM audit.signing_keys WHERE active AND source = 'generated-development' AND name = :n"),
        {"n": settings.origin})).all()
    if rows:
        return [note.Signer.from_seed(settings.origin, bytes(r[0])) for r in rows]
    signer = note.Signer.from_seed(settings.origin, os.urandom(32))
    log.warning("no AUDIT_SIGNING_KEYS: generated a development signing key %s (kept in audit.signing_keys)",
                signer.vkey)
    await conn.execute(text(
        "INSERT INTO audit.signing_keys (vkey, name, source, seed, active) "
        "VALUES (:v, :n, 'generated-development', :s, true)"),
        {"v": signer.vkey, "n": signer.name, "s": signer.private.private_bytes_raw()})
    return [signer]


async def public_keys(conn: AsyncConnection) -> list[tuple[str, bool, datetime, datetime | None]]:
    rows = await conn.execute(text(
        "SELECT vkey, active, created_at, retired_at FROM audit.signing_keys ORDER BY created_at, vkey"))
    return [(r[0], r[1], r[2], r[3]) for r in rows]


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
    version = await STORE.stream_version(conn, LEDGER_STREAM)
    await STORE.append(conn, [NewEvent(LEDGER_STREAM, settings.county, payload)], {LEDGER_STREAM: version},
                       Metadata(actor=SYSTEM_ACTOR))


async def sign(conn: AsyncConnection, settings: AuditSettings) -> StoredCheckpoint | None:
    """Sign a checkpoint of the current tree, unless the latest already covers it. Before signing, the previous
    checkpoint's signature and a consistency proof from it to the new tree are checked."""
    await ledger.lock(conn)
    tree_size = await ledger.size(conn)
    prev = await latest(conn)
    if tree_size == 0 or (prev is not None and prev.tree_size == tree_size):
        return prev
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
    # The household map moves on from the last checkpoint that has one (from nothing before the first).
    mapped = (await conn.execute(text(
        "SELECT coalesce(max(tree_size), 0) FROM audit.checkpoints WHERE map_root IS NOT NULL"))).scalar_one()
    map_root = await ledger.update_map(conn, int(mapped), tree_size)
    body = note.checkpoint_body(settings.origin, tree_size, root, map_root)
    text_ = note.sign_note(body, await signers(conn, settings))
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
