"""`povguard audit verify --tiles`: check a bundle's entries against a tlog-tiles mirror (a directory or a URL
prefix) and the pinned keys. Inclusion is recomputed from the mirror's tiles, never taken from the bundle's proofs:
the mirror's checkpoint must carry a pinned key's signature, its tiles must hash to that root, each entry's bytes
must hash to the leaf the tiles hold at its index, and the bundle's own latest checkpoint must be a prefix of the
mirror's log (a consistency proof built from the tiles)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from povguard_audit import merkle, note, tiles
from povguard_audit.entry import Entry

Fetch = Callable[[str], bytes]


class MirrorError(Exception):
    """The mirror cannot be read, or what it holds is not a log signed by the pinned keys."""


def fetcher(source: str) -> Fetch:
    """GET `<prefix>/<path>` from a URL prefix, or read `<directory>/<path>`."""
    if source.startswith(("http://", "https://")):
        prefix = source.rstrip("/") + "/"

        def get(path: str) -> bytes:
            try:
                r = httpx.get(prefix + path, timeout=30.0, follow_redirects=True)
                r.raise_for_status()
            except httpx.HTTPError as exc:
                raise MirrorError(f"the mirror has no {path}: {exc}") from exc
            return r.content

        return get

    root = Path(source)

    def read(path: str) -> bytes:
        try:
            return (root / path).read_bytes()
        except OSError as exc:
            raise MirrorError(f"the mirror has no {path}: {exc.strerror}") from exc

    return read


@dataclass
class MirrorReport:
    ok: bool = True
    tree_size: int = 0
    lines: list[str] = field(default_factory=list)

    def fail(self, line: str) -> MirrorReport:
        self.ok = False
        self.lines.append(line)
        return self


def verify_against(records: Iterable[dict[str, Any]], vkeys: list[str], fetch: Fetch) -> MirrorReport:
    """`records`: a bundle's JSON Lines, parsed, in order (checkpoints come before entries), read once."""
    report = MirrorReport()
    verifiers = [note.Verifier.from_vkey(k) for k in vkeys]
    count = 0
    try:
        body, good = note.verified_by(fetch("checkpoint").decode(), verifiers)
        if not good:
            return report.fail("MIRROR NOT VERIFIED: its checkpoint carries no signature by the pinned keys")
        head = note.parse_checkpoint(body)
        report.tree_size = head.size
        reader = tiles.TileReader(head.size, fetch)
        if reader.root() != head.root:
            return report.fail(f"MIRROR NOT VERIFIED: its tiles do not hash to its signed root (size {head.size})")
        latest: str | None = None
        for record in records:
            if "checkpoint" in record:
                latest = record["checkpoint"]["note"]
                continue
            if "entry" not in record:
                continue
            if latest is not None:  # the first entry: every checkpoint line has been read
                _check_prefix(report, latest, verifiers, head, reader)
                latest = None
            entry = Entry.from_json(record["entry"])
            count += 1
            if entry.index >= head.size:
                report.fail(f"entry {entry.index}: not in the mirror's signed log of size {head.size} (unsigned)")
            elif not merkle.verify_inclusion(entry.leaf(), entry.index, head.size,
                                             reader.inclusion_proof(entry.index), head.root):
                report.fail(f"entry {entry.index}: its bytes do not hash to the leaf the mirror's log holds at "
                            f"index {entry.index} (modified, or not this log's entry)")
        if latest is not None:
            _check_prefix(report, latest, verifiers, head, reader)
    except (MirrorError, tiles.TileError, note.NoteError) as exc:
        return report.fail(f"MIRROR NOT VERIFIED: {exc}")
    except (KeyError, TypeError, ValueError) as exc:
        return report.fail(f"UNREADABLE BUNDLE: {exc!r}")
    if report.ok:
        report.lines.append(f"all {count} entries are in the mirror's log of size "
                            f"{head.size} (inclusion recomputed from its tiles), signed by the pinned key")
    return report


def _check_prefix(report: MirrorReport, latest: str, verifiers: list[note.Verifier],
                  head: note.Checkpoint, reader: tiles.TileReader) -> None:
    """The bundle's latest signed checkpoint is the mirror's log at that size (or the log was forked)."""
    body, good = note.verified_by(latest, verifiers)
    if not good:
        report.fail("the bundle's latest checkpoint carries no signature by the pinned keys")
        return
    mine = note.parse_checkpoint(body)
    if mine.origin != head.origin:
        report.fail(f"the bundle is from log {mine.origin}, the mirror from {head.origin}")
    elif mine.size > head.size:
        report.fail(f"the bundle's checkpoint (size {mine.size}) is ahead of the mirror's (size {head.size})")
    else:
        ranges = merkle.consistency_ranges(mine.size, head.size)
        found = reader.nodes(merkle.proof_nodes(ranges))
        proof = [merkle.range_hash(a, b, found) for a, b in ranges]
        if not merkle.verify_consistency(mine.size, mine.root, head.size, head.root, proof):
            report.fail(f"the bundle's checkpoint of size {mine.size} is not a prefix of the mirror's log: "
                        "two different logs were signed (a fork)")
