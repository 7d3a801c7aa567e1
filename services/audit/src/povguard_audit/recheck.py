"""The scheduled full re-check: re-hash every stored payload and entry, rebuild the tree and compare it with every
signed checkpoint and with the stored nodes. A mismatch raises a `LedgerMismatchFound` alert event and a metric."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from povguard_audit import checkpoints, ledger, merkle
from povguard_audit.metrics import INTEGRITY_FAILURES, RECHECK_OK
from povguard_audit.settings import AuditSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecheckResult:
    tree_size: int
    ok: bool
    first_bad_index: int | None
    kind: str | None
    detail: str


async def _scan(conn: AsyncConnection) -> RecheckResult:
    signed = {c.tree_size: c.root for c in await checkpoints.all_up_to(conn, 2**62)}
    tree = merkle.CompactTree()
    bad: tuple[int, str, str] | None = None
    last_good = 0
    result = await conn.stream(text(
        f"SELECT {', '.join('l.' + c.strip() for c in ledger.ENTRY_COLUMNS.split(','))}, p.body, "
        "p.redacted_at IS NOT NULL AS redacted FROM audit.ledger l LEFT JOIN audit.payloads p USING (idx) "
        "ORDER BY l.idx").execution_options(yield_per=5000))
    async for row in result:
        stored = ledger.entry_from_row(row)
        e = stored.entry
        if bad is None:
            if e.index != tree.size:
                bad = (tree.size, "missing", f"entry {tree.size} is missing (next stored index is {e.index})")
            elif row.body is None and not row.redacted:
                bad = (e.index, "missing", f"the payload of entry {e.index} is missing")
            elif row.body is not None and hashlib.sha256(bytes(row.body)).digest() != e.payload_sha256:
                bad = (e.index, "payload-modified", f"the stored event of entry {e.index} no longer matches its hash")
            elif e.leaf() != stored.leaf_hash:
                bad = (e.index, "modified", f"entry {e.index} no longer hashes to its recorded leaf")
        tree.append(e.leaf())
        root = signed.get(tree.size)
        if root is not None:
            if root != tree.root() and bad is None:
                bad = (last_good, "modified", f"an entry in {last_good}..{tree.size - 1} changed together with its "
                                              f"recorded leaf: the signed root of size {tree.size} does not match")
            elif root == tree.root():
                last_good = tree.size
    size = tree.size
    if bad is None and signed and max(signed) > size:
        bad = (size, "missing", f"a checkpoint covers {max(signed)} entries but only {size} are stored")
    if bad is None and size:
        try:
            stored_root = await ledger.root_at(conn, size)
        except ledger.TreeCorrupt as exc:
            bad = (0, "tree", str(exc))
        else:
            if stored_root != tree.root():
                bad = (0, "tree", "the stored tree nodes do not match the entries")
    if bad is None:
        return RecheckResult(size, True, None, None, f"all {size} entries match every signed checkpoint")
    return RecheckResult(size, False, bad[0], bad[1], bad[2])


async def recheck(engine: AsyncEngine, settings: AuditSettings) -> RecheckResult:
    """Scan in one read-only snapshot, then record the run (and the alert) in a second transaction."""
    started = datetime.now(UTC)
    async with engine.connect() as conn:
        await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        result = await _scan(conn)
        await conn.rollback()
    RECHECK_OK.set(1 if result.ok else 0)
    async with engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO audit.recheck_runs (started_at, tree_size, ok, first_bad_index, detail) "
            "VALUES (:s, :n, :ok, :b, :d)"),
            {"s": started, "n": result.tree_size, "ok": result.ok, "b": result.first_bad_index, "d": result.detail})
        if not result.ok:
            INTEGRITY_FAILURES.labels("recheck").inc()
            log.error("ledger re-check failed: %s", result.detail)
            await ledger.lock(conn)
            await checkpoints.alert(conn, settings, result.tree_size, result.first_bad_index, result.kind or "",
                                    result.detail)
    return result
