"""Export a verification bundle: entries (with their payload hashes), every signed checkpoint up to the latest,
consistency proofs between them, and inclusion proofs (for a household or a time range), optionally the payloads."""

from __future__ import annotations

import base64
import itertools
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_audit import checkpoints, ledger
from povguard_audit.verify import BUNDLE_FORMAT


class NothingSigned(Exception):
    pass


def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(x).decode() for x in items]


async def export(conn: AsyncConnection, *, household: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, include_payloads: bool = False) -> dict[str, Any]:
    """Everything below the latest signed checkpoint that the scope selects (the whole ledger without a scope)."""
    head = await checkpoints.latest(conn)
    if head is None:
        raise NothingSigned("no checkpoint has been signed yet")
    cps = await checkpoints.all_up_to(conn, head.tree_size)
    consistency = []
    for old, new in itertools.pairwise(cps):
        proof = await ledger.consistency_proof(conn, old.tree_size, new.tree_size)
        consistency.append({"first": old.tree_size, "second": new.tree_size, "proof": _b64(proof)})
    complete = household is None and since is None and until is None
    rows = await conn.execute(
        text(f"""SELECT {ledger.ENTRY_COLUMNS} FROM audit.ledger WHERE idx < :n
                 AND (CAST(:h AS text) IS NULL OR household = :h)
                 AND (CAST(:since AS timestamptz) IS NULL OR recorded_at >= :since)
                 AND (CAST(:until AS timestamptz) IS NULL OR recorded_at < :until) ORDER BY idx"""),
        {"n": head.tree_size, "h": household, "since": since, "until": until})
    stored = [ledger.entry_from_row(r) for r in rows]
    docs = [{**s.entry.as_json(), "leaf_hash": s.leaf_hash.hex()} for s in stored]
    if not complete:
        for start in range(0, len(stored), 1000):
            chunk = stored[start:start + 1000]
            proofs = await ledger.inclusion_proofs(conn, [s.entry.index for s in chunk], head.tree_size)
            for doc, proof in zip(docs[start:start + 1000], proofs, strict=True):
                doc["inclusion"] = _b64(proof)
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT, "origin": head.origin,
        "scope": {"household": household, "since": since and since.isoformat(), "until": until and until.isoformat()},
        "complete": complete, "tree_size": head.tree_size,
        # every key that signed here, for convenience: a verifier pins its own (README, "Pin the key out of band")
        "keys": [v for v, *_ in await checkpoints.public_keys(conn)],
        "checkpoints": [{"note": c.note, "cosignatures": c.cosignatures} for c in cps],
        "consistency": consistency, "entries": docs,
    }
    if include_payloads:
        bodies = await conn.execute(
            text("SELECT idx, body FROM audit.payloads WHERE idx = ANY(:i) AND body IS NOT NULL"),
            {"i": [s.entry.index for s in stored]})
        bundle["payloads"] = {str(r[0]): base64.b64encode(bytes(r[1])).decode() for r in bodies}
    return bundle
