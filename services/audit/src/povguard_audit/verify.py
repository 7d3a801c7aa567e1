"""Offline verification of an exported bundle (`bundle.py`'s JSON Lines) with nothing but the log's public keys, in
one pass and bounded memory. Pure: no I/O beyond the lines it is given.

It says what it proved, and for what it could not prove, what and where:
- a whole-ledger bundle: entries 0..n-1, each once and in order, rebuild every signed root;
- a household bundle: the household's entries are in the signed tree, link back to its first with nothing missing,
  and end at the entry the signed household map names as its latest: the whole history as of the checkpoint;
- a range bundle: every index from its first to its last is there and in the tree, and the entries just outside
  (its boundaries, also in the tree) were recorded outside the range.
Entries no checkpoint in the bundle signs are unverified: named, and a failure unless the caller accepts them.
Findings name the entry: modified, missing, inserted, swapped, reordered, payload-modified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from povguard_audit import householdmap, merkle, note
from povguard_audit.entry import Entry

BUNDLE_FORMAT = "povguard-audit-bundle/2"
MAX_PENDING = 4096  # entries held while waiting for a missing index, before it is declared missing
MAX_NAMED = 100  # findings and misplaced entries kept (the first ones)


class Malformed(Exception):
    """The bundle cannot be read: cut, not JSON, a missing key, a wrong type, bad base64."""


@dataclass(frozen=True, order=True)
class Finding:
    index: int
    kind: str  # modified | missing | inserted | swapped | reordered | payload-modified
    detail: str = field(compare=False)


def _ranges(indices: list[tuple[int, int]]) -> str:
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in indices[:10]) + (" …" if len(indices) > 10 else "")


@dataclass
class Report:
    ok: bool = False
    kind: str = ""
    scope: dict[str, Any] = field(default_factory=dict)
    tree_size: int = 0  # the latest checkpoint in the bundle
    entries: int = 0
    span: tuple[int, int] | None = None  # first and last index of the bundle's entries
    checkpoints: int = 0
    signed_by: list[str] = field(default_factory=list)
    cosigned_by: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    unsigned: list[tuple[int, int]] = field(default_factory=list)  # index ranges no checkpoint signs
    unsigned_count: int = 0
    accept_unsigned: bool = False
    problem: str | None = None  # a bundle-level failure (signature, consistency, completeness)
    malformed: bool = False

    @property
    def first_bad(self) -> Finding | None:
        return min(self.findings) if self.findings else None

    def add(self, finding: Finding) -> None:
        if len(self.findings) < MAX_NAMED and finding not in self.findings:
            self.findings.append(finding)

    def add_unsigned(self, index: int) -> None:
        self.unsigned_count += 1
        if self.unsigned and self.unsigned[-1][1] == index - 1:
            self.unsigned[-1] = (self.unsigned[-1][0], index)
        elif len(self.unsigned) < MAX_NAMED:
            self.unsigned.append((index, index))

    def _unsigned_text(self) -> str:
        return (f"{self.unsigned_count} entr{'y' if self.unsigned_count == 1 else 'ies'} that no checkpoint in the "
                f"bundle signs (the latest is of size {self.tree_size}): {_ranges(self.unsigned)}")

    def summary(self) -> str:
        if self.malformed:
            return f"UNREADABLE BUNDLE: {self.problem}"
        if self.problem:
            return f"NOT VERIFIED: {self.problem}"
        if self.first_bad is not None:
            f = self.first_bad
            return f"NOT CONSISTENT: first bad entry is {f.index} ({f.kind}): {f.detail}"
        if self.unsigned and not self.accept_unsigned:
            return f"UNVERIFIED: {self._unsigned_text()}; pass --accept-unsigned-tail to accept them unverified"
        keys = ", ".join(self.signed_by)
        witnesses = f"; cosigned by {', '.join(self.cosigned_by)}" if self.cosigned_by else ""
        span = "no entries" if self.span is None else f"{self.entries} entries, indices {self.span[0]}..{self.span[1]}"
        if self.kind == "ledger":
            what = (f"the whole ledger ({span}) rebuilds the checkpoint of size {self.tree_size} and each of the "
                    f"{self.checkpoints} checkpoints before it")
        elif self.kind == "household":
            what = (f"the whole history of household {self.scope.get('household')} as of the checkpoint of size "
                    f"{self.tree_size} ({span}): its latest entry is the one the signed household map names and "
                    "each links to the one before, back to its first")
        else:
            what = (f"every entry recorded in [{self.scope.get('since') or 'the start'}, "
                    f"{self.scope.get('until') or 'the checkpoint'}) ({span}), with the boundary entries outside it, "
                    f"is in the checkpoint of size {self.tree_size}")
        tail = f"; NOT verified (accepted): {self._unsigned_text()}" if self.unsigned else ""
        return f"VERIFIED: {what}; signed by {keys}{witnesses}{tail}"


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise Malformed(f"a hash is a base64 string, not {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise Malformed(f"bad base64 {value[:20]!r}: {exc}") from exc


def _hash(value: Any) -> bytes:
    h = _b64(value)
    if len(h) != 32:
        raise Malformed(f"a hash is 32 bytes, {value!r} is {len(h)}")
    return h


def _hashes(value: Any) -> list[bytes]:
    if not isinstance(value, list):
        raise Malformed("a proof is a list of base64 hashes")
    return [_hash(v) for v in value]


def _obj(line: dict[str, Any], key: str) -> dict[str, Any]:
    value = line[key]
    if not isinstance(value, dict):
        raise Malformed(f"{key!r} is an object, not {type(value).__name__}")
    return value


class _Verifier:
    def __init__(self, vkeys: list[str], witness_vkeys: list[str], accept_unsigned: bool) -> None:
        self.verifiers = [note.Verifier.from_vkey(k) for k in vkeys]
        self.witnesses = [note.Verifier.from_vkey(k) for k in witness_vkeys]
        self.report = Report(accept_unsigned=accept_unsigned)
        self.heads: list[note.Checkpoint] = []
        self.roots: dict[int, bytes] = {}
        self.consistent: set[tuple[int, int]] = set()
        self.stage = "header"
        self.ended = False
        self.count = 0  # entry lines (boundaries excluded)
        # whole ledger
        self.tree = merkle.CompactTree()
        self.pending: dict[int, tuple[Entry, bytes]] = {}
        self.misplaced: dict[int, int] = {}  # index -> position where it appeared
        self.last: dict[str, tuple[int, bytes]] = {}  # household -> its latest entry so far
        self.last_good = 0
        self.root_failure: tuple[int, int] | None = None
        self.gave_up = False
        # household and range
        self.map_value: tuple[int, bytes] | None = None
        self.mapped = False
        self.previous: tuple[int, bytes] | None = None  # the last entry line's (index, leaf)
        self.last_signed: tuple[int, bytes] | None = None  # the last one below the checkpoint's size
        self.before: int | None = None
        self.after: int | None = None

    # -- lines --------------------------------------------------------------------------------------------------------

    def feed(self, line: dict[str, Any]) -> None:
        if self.ended:
            raise Malformed("lines after the end line")
        if self.stage == "header":
            self._header(line)
        elif "checkpoint" in line:
            if self.stage != "checkpoints":
                raise Malformed("a checkpoint after the entries began")
            self._checkpoint(_obj(line, "checkpoint"))
        elif "consistency" in line:
            self._consistency(_obj(line, "consistency"))
        elif "map" in line:
            self._head_checks()
            self._map(_obj(line, "map"))
        elif "entry" in line:
            self._head_checks()
            self._entry(line)
        elif "end" in line:
            self._head_checks()
            self.ended = True
            stated = _obj(line, "end")["entries"]
            if stated != self.count:
                raise Malformed(f"the end line counts {stated} entries, the bundle holds {self.count}")
        else:
            raise Malformed(f"an unknown line with keys {sorted(line)[:5]}")

    def _header(self, line: dict[str, Any]) -> None:
        if line.get("format") != BUNDLE_FORMAT:
            raise Malformed(f"not a {BUNDLE_FORMAT} bundle (the first line names format {line.get('format')!r}); "
                            "format 1 (one JSON object) is no longer read: export the bundle again")
        r = self.report
        r.kind, r.scope = line["kind"], _obj(line, "scope")
        if r.kind not in ("ledger", "household", "range"):
            raise Malformed(f"unknown bundle kind {r.kind!r}")
        self.origin = line["origin"]
        self.stage = "checkpoints"

    def _checkpoint(self, cp: dict[str, Any]) -> None:
        text_ = cp["note"]
        if not isinstance(text_, str):
            raise Malformed("a checkpoint note is text")
        try:
            body, good = note.verified_by(text_, self.verifiers)
            head = note.parse_checkpoint(body)
        except note.NoteError as exc:
            raise Malformed(f"a checkpoint is not a signed note: {exc}") from exc
        if not good:
            raise _Fail(f"a checkpoint has no valid signature by the given keys:\n{text_}")
        if head.origin != self.origin:
            raise _Fail(f"a checkpoint of another log ({head.origin!r}, the bundle is of {self.origin!r})")
        if self.heads and head.size <= self.heads[-1].size:
            raise Malformed("checkpoints are in ascending size")
        for v in good:
            if v.name not in self.report.signed_by:
                self.report.signed_by.append(v.name)
        for line in cp.get("cosignatures") or []:
            for w in self.witnesses:
                if w.verify_line(body, line) is not None and w.name not in self.report.cosigned_by:
                    self.report.cosigned_by.append(w.name)
        self.heads.append(head)
        self.roots[head.size] = head.root

    def _consistency(self, c: dict[str, Any]) -> None:
        first, second, proof = c["first"], c["second"], _hashes(c["proof"])
        if first in self.roots and second in self.roots and merkle.verify_consistency(
                first, self.roots[first], second, self.roots[second], proof):
            self.consistent.add((first, second))

    def _head_checks(self) -> None:
        """Once, after the checkpoints: there is one, and each is consistent with the one before."""
        if self.stage != "checkpoints":
            return
        self.stage = "entries"
        if not self.heads:
            raise _Fail("the bundle has no signed checkpoint")
        for old, new in zip(self.heads, self.heads[1:], strict=False):
            if (old.size, new.size) not in self.consistent:
                raise _Fail(f"checkpoint {new.size} is not consistent with checkpoint {old.size}: "
                            "the log was rewritten between them")
        self.head = self.heads[-1]
        self.report.tree_size, self.report.checkpoints = self.head.size, len(self.heads)

    def _map(self, m: dict[str, Any]) -> None:
        household = self.report.scope.get("household")
        if self.report.kind != "household" or m["household"] != household or self.mapped:
            raise Malformed("a household map proof belongs once in the bundle of that household")
        if self.head.map_root is None:
            raise _Fail(f"the checkpoint of size {self.head.size} signs no household map: the household's "
                        "completeness cannot be proven")
        self.mapped = True
        if m["index"] is None:
            if self.head.map_root != householdmap.EMPTY and m["proof"]:
                raise _Fail("a proof that the map lacks the household is not supported")
            return
        index, leaf, proof = m["index"], _hash(m["leaf_hash"]), _hashes(m["proof"])
        if not isinstance(index, int) or not householdmap.verify(self.head.map_root, household, index, leaf, proof):
            raise _Fail(f"the household map proof for {household} does not lead to the map root signed in the "
                        f"checkpoint of size {self.head.size}")
        self.map_value = (index, leaf)

    def _entry(self, line: dict[str, Any]) -> None:
        e = Entry.from_json(_obj(line, "entry"))
        leaf, stated = e.leaf(), _hash(line["leaf_hash"])
        r = self.report
        boundary = line.get("boundary")
        if boundary is None:
            self.count += 1
            r.entries += 1
            r.span = (e.index, e.index) if r.span is None else (r.span[0], e.index)
        if leaf != stated:
            r.add(Finding(e.index, "modified", f"entry {e.index} no longer hashes to its recorded leaf"))
        payload = line.get("payload")
        if payload is not None and hashlib.sha256(_b64(payload)).digest() != e.payload_sha256:
            r.add(Finding(e.index, "payload-modified", "the stored event no longer hashes to the entry's payload hash"))
        if r.kind == "ledger":
            self._ledger_entry(e, leaf)
        else:
            self._partial_entry(e, leaf, stated, line, boundary)

    # -- the whole ledger ---------------------------------------------------------------------------------------------

    def _ledger_entry(self, e: Entry, leaf: bytes) -> None:
        if self.gave_up:
            return
        i, position = e.index, self.count - 1
        if i < self.tree.size or i in self.pending:
            self.report.add(Finding(i, "inserted", f"entry {i} appears again at bundle position {position}"))
            return
        if i != position and len(self.misplaced) < MAX_NAMED:
            self.misplaced[i] = position
        if i > self.tree.size:
            self.pending[i] = (e, leaf)
            if len(self.pending) > MAX_PENDING:
                self._give_up()
            return
        self._append(e, leaf)
        while self.tree.size in self.pending:
            self._append(*self.pending.pop(self.tree.size))

    def _give_up(self) -> None:
        n = self.tree.size
        self.report.add(Finding(n, "missing", f"entries {n}..{min(self.pending) - 1} are not in the bundle"))
        self.gave_up, self.pending = True, {}

    def _append(self, e: Entry, leaf: bytes) -> None:
        r, i = self.report, e.index
        if e.household is not None:
            before = self.last.get(e.household)
            link = None if e.prev_index is None else (e.prev_index, e.prev_leaf)
            if link != before:
                if link is not None and before is not None and link[0] == before[0]:
                    r.add(Finding(link[0], "modified", f"entry {i} links to entry {link[0]} by another leaf hash: "
                                                       f"entry {link[0]} was changed"))
                else:
                    r.add(Finding(i, "modified", f"entry {i} links to {link and link[0]}, but the household's "
                                                 f"previous entry is {before and before[0]}"))
            self.last[e.household] = (i, leaf)
        if i >= self.head.size:
            r.add_unsigned(i)
        self.tree.append(leaf)
        root = self.roots.get(self.tree.size)
        if root is not None:
            if self.tree.root() != root:
                self.root_failure = self.root_failure or (self.last_good, self.tree.size)
            else:
                self.last_good = self.tree.size

    def _ledger_finish(self) -> None:
        r = self.report
        if self.pending:
            self._give_up()
        swaps = [(i, j) for i, j in self.misplaced.items() if i < j and self.misplaced.get(j) == i]
        for i, j in swaps:
            r.add(Finding(i, "swapped", f"entries {i} and {j} are swapped: each stands at the other's place"))
        if not swaps:
            for i, pos in sorted(self.misplaced.items())[:1]:
                if not r.findings:
                    r.add(Finding(i, "reordered", f"entry {i} stands at bundle position {pos}"))
        if self.tree.size < self.head.size and not self.gave_up:
            r.add(Finding(self.tree.size, "missing", f"the checkpoint has {self.head.size} entries, the bundle "
                                                     f"{self.tree.size}"))
        if self.root_failure is not None and not r.findings:
            a, b = self.root_failure
            r.add(Finding(a, "modified", f"an entry in {a}..{b - 1} was changed together with its recorded hash: "
                                         f"the signed root of size {b} does not match"))

    # -- a household or a range ---------------------------------------------------------------------------------------

    def _partial_entry(self, e: Entry, leaf: bytes, stated: bytes, line: dict[str, Any], boundary: Any) -> None:
        r, i = self.report, e.index
        if self.previous is not None and i <= self.previous[0]:
            r.add(Finding(i, "inserted" if i == self.previous[0] else "reordered",
                          f"entry {i} comes after entry {self.previous[0]} in the bundle"))
            return
        if i >= self.head.size:
            if boundary is None:
                r.add_unsigned(i)
        else:
            if boundary is None:
                self.last_signed = (i, leaf)
            proof = _hashes(line.get("inclusion", []))
            if not merkle.verify_inclusion(leaf, i, self.head.size, proof, self.head.root):
                if merkle.verify_inclusion(stated, i, self.head.size, proof, self.head.root):
                    r.add(Finding(i, "modified", f"entry {i} was changed after it was recorded"))
                else:
                    r.add(Finding(i, "inserted", f"entry {i} is not in the signed tree at index {i}"))
        if r.kind == "household":
            self._household_entry(e, leaf)
        else:
            self._range_entry(e, boundary)
        self.previous = (i, leaf)

    def _household_entry(self, e: Entry, leaf: bytes) -> None:
        r, i = self.report, e.index
        if e.household != r.scope.get("household"):
            r.add(Finding(i, "inserted", f"entry {i} is of household {e.household}, not of this bundle's"))
        link = None if e.prev_index is None else (e.prev_index, e.prev_leaf)
        if self.previous is None and link is not None:
            r.add(Finding(link[0], "missing", f"entry {i} follows entry {link[0]}, which the bundle lacks"))
        elif self.previous is not None and link != self.previous:
            if link is not None and link[0] == self.previous[0]:
                r.add(Finding(link[0], "modified", f"entry {i} links to entry {link[0]} by another leaf hash"))
            else:
                missing = link[0] if link is not None else i
                r.add(Finding(missing, "missing", f"the household's chain breaks before entry {i}: it links to "
                                                  f"{link and link[0]}, the bundle's previous entry is "
                                                  f"{self.previous[0]}"))

    def _range_entry(self, e: Entry, boundary: Any) -> None:
        r, i = self.report, e.index
        since, until = r.scope.get("since"), r.scope.get("until")
        if boundary == "before":
            if self.previous is not None or since is None or e.recorded_at >= datetime.fromisoformat(since):
                raise _Fail(f"entry {i} is no boundary before the range")
            self.before = i
            return
        if self.after is not None:
            raise Malformed("an entry after the boundary after the range")
        if boundary == "after":
            if until is None or e.recorded_at < datetime.fromisoformat(until):
                raise _Fail(f"entry {i} is no boundary after the range")
            self.after = i
        if self.previous is None and i != 0 and boundary is None:
            r.add(Finding(i - 1, "missing", f"nothing proves that the range starts at entry {i}: the entry before "
                                            "it is not in the bundle"))
        elif self.previous is not None and i != self.previous[0] + 1:
            r.add(Finding(self.previous[0] + 1, "missing", f"entries {self.previous[0] + 1}..{i - 1} of the range "
                                                           "are not in the bundle"))

    def _partial_finish(self) -> None:
        r = self.report
        end = self.previous[0] if self.previous is not None else -1
        if r.kind == "household":
            if not self.mapped:
                raise _Fail("the household bundle carries no household map proof: its completeness is not proven")
            if self.map_value is None:
                if r.entries:
                    raise _Fail("the signed household map does not hold this household, yet the bundle has entries")
                return
            index, leaf = self.map_value
            last = self.last_signed
            if last is None or last[0] < index:
                r.add(Finding(index, "missing", f"the signed household map names entry {index} as the household's "
                                                f"latest as of checkpoint {self.head.size}; the bundle's signed "
                                                f"entries end at {'nothing' if last is None else last[0]}"))
            elif last[0] > index:
                r.add(Finding(last[0], "inserted", f"entry {last[0]} comes after the household's latest entry "
                                                   f"{index} that the signed household map names"))
            elif last[1] != leaf:
                r.add(Finding(index, "modified", f"entry {index} is not the one the signed household map names"))
        elif self.after is None and end + 1 < self.head.size:
            r.add(Finding(end + 1, "missing", f"the range stops at entry {end} without the boundary entry after it"))

    def finish(self) -> Report:
        if not self.ended:
            raise Malformed("the bundle is cut: it has no end line")
        if self.report.kind == "ledger":
            self._ledger_finish()
        else:
            self._partial_finish()
        r = self.report
        r.ok = not r.findings and r.problem is None and (not r.unsigned or r.accept_unsigned)
        return r


class _Fail(Exception):
    """Verification fails at the bundle level (signatures, consistency, completeness)."""


def verify_lines(lines: Iterable[str | bytes], vkeys: list[str], witness_vkeys: list[str] | None = None, *,
                 accept_unsigned_tail: bool = False) -> Report:
    """Verify a bundle's lines in one pass. A bad verifier key raises `note.NoteError` (the caller's input);
    everything wrong with the bundle ends in the report."""
    v = _Verifier(vkeys, witness_vkeys or [], accept_unsigned_tail)
    number = 0
    try:
        for raw in lines:
            number += 1
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError as exc:
                raise Malformed(f"not JSON (the bundle is cut or damaged): {exc}") from exc
            if not isinstance(line, dict):
                raise Malformed("each line is a JSON object")
            v.feed(line)
        return v.finish()
    except _Fail as exc:
        v.report.problem = str(exc)
    except Malformed as exc:
        v.report.problem, v.report.malformed = f"line {number}: {exc}", True
    except KeyError as exc:
        v.report.problem, v.report.malformed = f"line {number}: the key {exc} is missing", True
    except (TypeError, ValueError, AttributeError) as exc:
        v.report.problem, v.report.malformed = f"line {number}: a value of the wrong type or form: {exc}", True
    v.report.ok = False
    return v.report


def records(lines: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Lines as a bundle file holds them (for callers that hold the records, such as tests)."""
    for line in lines:
        yield json.dumps(line, ensure_ascii=False)


def verify_file(path: Path, vkeys: list[str], witness_vkeys: list[str] | None = None, *,
                accept_unsigned_tail: bool = False) -> Report:
    with path.open("rb") as f:
        return verify_lines(f, vkeys, witness_vkeys, accept_unsigned_tail=accept_unsigned_tail)
