"""Offline verification of an exported bundle with nothing but the log's public keys. Pure: no I/O.

It names the first bad entry (lowest index): modified (its bytes no longer hash to what the signed tree holds),
missing (an index or a household link with nothing behind it), inserted (an index that appears twice or out of
place) or reordered (an entry whose content belongs at another index); or it says that all is consistent.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from povguard_audit import merkle, note
from povguard_audit.entry import Entry

BUNDLE_FORMAT = "povguard-audit-bundle/1"


@dataclass(frozen=True, order=True)
class Finding:
    index: int
    kind: str  # modified | missing | inserted | reordered | payload-modified | checkpoint
    detail: str = field(compare=False)


@dataclass
class Report:
    ok: bool
    tree_size: int = 0
    entries: int = 0
    checkpoints: int = 0
    cosigned_by: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    problem: str | None = None  # a bundle-level failure (signature, consistency)

    @property
    def first_bad(self) -> Finding | None:
        return min(self.findings) if self.findings else None

    def summary(self) -> str:
        if self.problem:
            return f"NOT VERIFIED: {self.problem}"
        if self.first_bad is not None:
            f = self.first_bad
            return f"NOT CONSISTENT: first bad entry is {f.index} ({f.kind}): {f.detail}"
        witnesses = f"; cosigned by {', '.join(self.cosigned_by)}" if self.cosigned_by else ""
        return (f"all {self.entries} entries are consistent with the checkpoint of size {self.tree_size} "
                f"signed by the given key{witnesses}")


def _b64(items: list[str]) -> list[bytes]:
    return [base64.b64decode(x) for x in items]


def verify_bundle(bundle: dict[str, Any], vkeys: list[str], witness_vkeys: list[str] | None = None) -> Report:
    if bundle.get("format") != BUNDLE_FORMAT:
        return Report(False, problem=f"not a {BUNDLE_FORMAT} bundle")
    verifiers = [note.Verifier.from_vkey(k) for k in vkeys]
    witnesses = [note.Verifier.from_vkey(k) for k in witness_vkeys or []]
    report = Report(True)

    # 1. Every checkpoint carries a valid signature by one of the given keys, and each is consistent with the
    #    previous one: the log only grew.
    heads: list[note.Checkpoint] = []
    for cp in bundle.get("checkpoints", []):
        body, good = note.verified_by(cp["note"], verifiers)
        if not good:
            return _fail(report, f"a checkpoint has no valid signature by the given keys:\n{cp['note']}")
        heads.append(note.parse_checkpoint(body))
        for line in cp.get("cosignatures", []):
            for w in witnesses:
                if w.verify_line(body, line) is not None and w.name not in report.cosigned_by:
                    report.cosigned_by.append(w.name)
    if not heads:
        return _fail(report, "the bundle has no signed checkpoint")
    if len({h.origin for h in heads}) != 1 or heads[-1].origin != bundle.get("origin"):
        return _fail(report, "checkpoints of different logs")
    proofs = {(p["first"], p["second"]): _b64(p["proof"]) for p in bundle.get("consistency", [])}
    for old, new in itertools.pairwise(heads):
        proof = proofs.get((old.size, new.size))
        if proof is None or not merkle.verify_consistency(old.size, old.root, new.size, new.root, proof):
            return _fail(report, f"checkpoint {new.size} is not consistent with checkpoint {old.size}: "
                                 "the log was rewritten between them")
    head = heads[-1]
    report.tree_size, report.checkpoints = head.size, len(heads)

    entries = bundle.get("entries", [])
    report.entries = len(entries)
    if bundle.get("complete"):
        _check_complete(report, entries, heads)
    else:
        _check_partial(report, entries, head, bundle.get("scope", {}))
    payloads = bundle.get("payloads") or {}
    for doc in entries:
        stored = payloads.get(str(doc.get("index")))
        if stored is not None and hashlib.sha256(base64.b64decode(stored)).hexdigest() != doc["payload_sha256"]:
            report.findings.append(Finding(int(doc["index"]), "payload-modified",
                                           "the stored event no longer hashes to the entry's payload hash"))
    report.ok = not report.findings
    return report


def _fail(report: Report, problem: str) -> Report:
    report.ok, report.problem = False, problem
    return report


def _parse(doc: dict[str, Any]) -> tuple[Entry, bytes]:
    e = Entry.from_json(doc)
    return e, e.leaf()


def _check_complete(report: Report, docs: list[dict[str, Any]], heads: list[note.Checkpoint]) -> None:
    """A whole-ledger bundle: entries 0..n-1 in order; the leaves must rebuild every signed root."""
    head = heads[-1]
    recorded = {bytes.fromhex(d["leaf_hash"]): int(d["index"]) for d in docs if d.get("leaf_hash")}
    seen: set[int] = set()
    tree = merkle.CompactTree()
    sizes = {h.size: h.root for h in heads}
    leaves: dict[int, bytes] = {}
    expected = 0
    first_root_failure: tuple[int, int] | None = None
    last_good = 0
    for pos, doc in enumerate(docs):
        e, leaf = _parse(doc)
        i = e.index
        if i in seen or i < expected:
            report.findings.append(Finding(i, "inserted" if i in seen else "reordered",
                                           f"entry {i} appears again at bundle position {pos}"))
            continue
        if i > expected:
            report.findings.append(Finding(expected, "missing", f"entries {expected}..{i - 1} are not there"))
            return
        seen.add(i)
        stated = bytes.fromhex(doc["leaf_hash"]) if doc.get("leaf_hash") else leaf
        if leaf != stated:
            other = recorded.get(leaf)
            if other is not None and other != i:
                report.findings.append(Finding(i, "reordered", f"entry {i} holds the content of entry {other}"))
            else:
                report.findings.append(Finding(i, "modified", f"entry {i} no longer hashes to its recorded leaf"))
        leaves[i] = leaf
        tree.append(leaf)
        expected += 1
        if tree.size in sizes:
            if tree.root() != sizes[tree.size]:
                first_root_failure = first_root_failure or (last_good, tree.size)
            else:
                last_good = tree.size
    if expected < head.size:
        report.findings.append(Finding(expected, "missing", f"the checkpoint has {head.size} entries, the bundle "
                                                            f"{expected}"))
    for e_doc in docs:  # household links: each must point at an entry whose leaf it names
        e = Entry.from_json(e_doc)
        if e.prev_index is not None and leaves.get(e.prev_index) not in (None, e.prev_leaf):
            report.findings.append(Finding(e.prev_index, "modified",
                                           f"entry {e.index} links to a different entry {e.prev_index}"))
    if first_root_failure is not None and not report.findings:
        a, b = first_root_failure
        report.findings.append(Finding(a, "modified", f"an entry in {a}..{b - 1} was changed together with its "
                                                      f"recorded hash: the signed root of size {b} does not match"))


def _check_partial(report: Report, docs: list[dict[str, Any]], head: note.Checkpoint, scope: dict[str, Any]) -> None:
    """A household or time-range bundle: each entry proves its inclusion in the signed tree; a household's entries
    must form an unbroken chain."""
    prev_index = -1
    by_index: dict[int, bytes] = {}
    for pos, doc in enumerate(docs):
        e, leaf = _parse(doc)
        i = e.index
        if i <= prev_index:
            report.findings.append(Finding(i, "inserted" if i in by_index else "reordered",
                                           f"entry {i} is out of order at bundle position {pos}"))
            continue
        prev_index = i
        proof = _b64(doc.get("inclusion", []))
        if not merkle.verify_inclusion(leaf, i, head.size, proof, head.root):
            stated = doc.get("leaf_hash")
            if stated and merkle.verify_inclusion(bytes.fromhex(stated), i, head.size, proof, head.root):
                report.findings.append(Finding(i, "modified", f"entry {i} was changed after it was recorded"))
            else:
                report.findings.append(Finding(i, "inserted", f"entry {i} is not in the signed tree at index {i}"))
        by_index[i] = leaf
    if scope.get("household"):
        previous: tuple[int, bytes] | None = None
        for doc in docs:
            e = Entry.from_json(doc)
            link = None if e.prev_index is None else (e.prev_index, e.prev_leaf)
            if previous is None and link is not None and link[0] not in by_index:
                report.findings.append(Finding(link[0], "missing", f"entry {e.index} follows entry {link[0]}, "
                                                                   "which the bundle lacks"))
            elif previous is not None and (link is None or link[0] != previous[0]):  # a changed leaf is "modified"
                missing = link[0] if link is not None else e.index
                report.findings.append(Finding(missing, "missing", f"the household's chain breaks before entry "
                                                                   f"{e.index}"))
            previous = (e.index, by_index.get(e.index, b""))
