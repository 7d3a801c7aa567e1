"""Export a verification bundle as JSON Lines, streamed: memory stays flat whatever the ledger's size.

Lines, in this order (`verify.py` reads them in one pass):
  {"format": "povguard-audit-bundle/2", "origin", "kind": "ledger" | "household" | "range", "scope", "tree_size"}
  {"checkpoint": {"note", "cosignatures"}}               every signed checkpoint up to the latest, ascending
  {"consistency": {"first", "second", "proof"}}          between each two consecutive checkpoints
  {"map": {"household", "index", "leaf_hash", "proof"}}  household bundles: the signed household map's proof
  {"entry": {...}, "leaf_hash", "inclusion"?, "payload"?, "boundary"?}   in index order; a range bundle's first and
                                                          last lines are its boundary entries (outside the range)
  {"end": {"entries": n}}                                 so that a cut file is seen as cut
Hashes are standard padded base64 (as checkpoints write roots).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from povguard_audit import checkpoints, ledger
from povguard_audit.verify import BUNDLE_FORMAT

CHUNK = 1000  # entries per inclusion-proof read


class NothingSigned(Exception):
    pass


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _b64s(items: Sequence[bytes]) -> list[str]:
    return [b64(x) for x in items]


async def export(conn: AsyncConnection, *, household: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, include_payloads: bool = False) -> AsyncGenerator[dict[str, Any]]:
    """The bundle's lines (as dicts) for everything below the latest signed checkpoint that the scope selects: a
    household, a time range of recorded_at (every index between the first and the last entry in it), or without a
    scope the whole ledger."""
    head = await checkpoints.latest(conn)
    if head is None:
        raise NothingSigned("no checkpoint has been signed yet")
    n = head.tree_size
    kind = "household" if household is not None else "range" if since or until else "ledger"
    yield {"format": BUNDLE_FORMAT, "origin": head.origin, "kind": kind, "tree_size": n,
           "scope": {"household": household, "since": since and since.isoformat(),
                     "until": until and until.isoformat()},
           # every key that signed here, for convenience: a verifier pins its own (README, "Pin the key out of band")
           "keys": [v for v, *_ in await checkpoints.public_keys(conn)]}
    cps = await checkpoints.all_up_to(conn, n)
    for c in cps:
        yield {"checkpoint": {"note": c.note, "cosignatures": c.cosignatures}}
    for old, new in itertools.pairwise(cps):
        proof = await ledger.consistency_proof(conn, old.tree_size, new.tree_size)
        yield {"consistency": {"first": old.tree_size, "second": new.tree_size, "proof": _b64s(proof)}}

    where, params = "idx < :n", dict[str, Any]({"n": n})
    boundaries: tuple[int | None, int | None] = (None, None)
    if household is not None:
        value, proof = await ledger.map_proof(conn, household, n)
        yield {"map": {"household": household, "index": None if value is None else value[0],
                       "leaf_hash": None if value is None else b64(value[1]), "proof": _b64s(proof)}}
        where, params = "idx < :n AND household = :h", {"n": n, "h": household}
    elif kind == "range":
        first, last = (await conn.execute(text(
            """SELECT min(idx), max(idx) FROM audit.ledger WHERE idx < :n
               AND (CAST(:since AS timestamptz) IS NULL OR recorded_at >= :since)
               AND (CAST(:until AS timestamptz) IS NULL OR recorded_at < :until)"""),
            {"n": n, "since": since, "until": until})).one()
        if first is None:  # nothing in the range: the two neighbours around it prove that
            first = 0 if since is None else (await conn.execute(text(
                "SELECT coalesce(min(idx), :n) FROM audit.ledger WHERE idx < :n AND recorded_at >= :since"),
                {"n": n, "since": since})).scalar_one()
            last = first - 1
        boundaries = (first - 1 if first > 0 else None, last + 1 if last + 1 < n else None)
        where, params = "idx >= :a AND idx <= :b", {"a": max(first - 1, 0), "b": min(last + 1, n - 1)}
    join = "LEFT JOIN audit.payloads p USING (idx)" if include_payloads else ""
    body = "p.body" if include_payloads else "NULL AS body"
    rows = await conn.stream(text(
        f"SELECT {', '.join('l.' + c.strip() for c in ledger.ENTRY_COLUMNS.split(','))}, {body} "
        f"FROM audit.ledger l {join} WHERE {where.replace('idx', 'l.idx').replace('household', 'l.household')} "
        "ORDER BY l.idx").execution_options(yield_per=CHUNK), params)
    count = 0
    async for chunk in rows.partitions(CHUNK):
        stored = [(ledger.entry_from_row(r), r.body) for r in chunk]
        proofs: list[list[bytes] | None] = [None] * len(stored)
        if kind != "ledger":
            proofs = [*await ledger.inclusion_proofs(conn, [s.entry.index for s, _ in stored], n)]
        for (s, payload), incl in zip(stored, proofs, strict=True):
            line: dict[str, Any] = {"entry": s.entry.as_json(), "leaf_hash": b64(s.leaf_hash)}
            if incl is not None:
                line["inclusion"] = _b64s(incl)
            if payload is not None:
                line["payload"] = b64(bytes(payload))
            if s.entry.index in boundaries:
                line["boundary"] = "before" if s.entry.index == boundaries[0] else "after"
                line.pop("payload", None)  # outside the range: not the reader's to see
            else:
                count += 1
            yield line
    yield {"end": {"entries": count}}


async def payload_count(conn: AsyncConnection, tree_size: int, *, household: str | None = None,
                        since: datetime | None = None, until: datetime | None = None) -> int:
    """How many stored events a bundle with payloads hands out (for the record of the read)."""
    return int((await conn.execute(text(
        """SELECT count(*) FROM audit.ledger l JOIN audit.payloads p USING (idx)
           WHERE l.idx < :n AND p.body IS NOT NULL AND (CAST(:h AS text) IS NULL OR l.household = :h)
             AND (CAST(:since AS timestamptz) IS NULL OR l.recorded_at >= :since)
             AND (CAST(:until AS timestamptz) IS NULL OR l.recorded_at < :until)"""),
        {"n": tree_size, "h": household, "since": since, "until": until})).scalar_one())
