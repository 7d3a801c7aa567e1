"""The ledger's Merkle tree, exactly as RFC 9162 §2.1 defines it. Pure: no I/O.

leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right), empty tree = SHA-256("").

Storage works with *perfect* nodes: the node at (level, index) covers leaves [index·2^level, (index+1)·2^level) and
exists once all of them have arrived; it never changes afterwards, so it can be written once and never updated.
Every subtree an RFC proof needs is either such a node or a right-edge subtree that folds from O(log n) of them,
so a proof costs O(log n) node reads (`proof_nodes`, then `range_hash`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Coord = tuple[int, int]  # (level, index) of a perfect node; level 0 is a leaf
SubtreeHash = Callable[[int, int], bytes]  # MTH(D[start:end])


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than n (n ≥ 2): where RFC 9162 splits D[n]."""
    if n < 2:
        raise ValueError("split_point needs n >= 2")
    return 1 << ((n - 1).bit_length() - 1)


def perfect_nodes(start: int, end: int) -> list[Coord]:
    """The perfect nodes that MTH(D[start:end]) folds from, left to right. Holds for every range the RFC recursion
    produces (start aligned to the range's enclosing power of two), which is every range a proof needs."""
    out: list[Coord] = []
    while start < end:
        size = end - start
        level = size.bit_length() - 1
        if size == 1 << level and start % size == 0:
            out.append((level, start >> level))
            break
        k = split_point(size)
        level = k.bit_length() - 1
        out.append((level, start >> level))
        start += k
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """Root of a range from its perfect nodes (left to right): the right edge folds first."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def range_hash(start: int, end: int, nodes: Mapping[Coord, bytes]) -> bytes:
    return fold([nodes[c] for c in perfect_nodes(start, end)])


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes, in one pass with a stack of perfect subtrees (no recursion)."""
    tree = CompactTree()
    for h in leaf_hashes:
        tree.append(h)
    return tree.root()


def root_of_entries(entries: Iterable[bytes]) -> bytes:
    return root([leaf_hash(e) for e in entries])


# -- proofs as lists of ranges: the same algorithm serves lists in memory and nodes in PostgreSQL --------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """PATH(index, D[size]) (RFC 9162 §2.1.3.1) as the leaf ranges whose subtree hashes form the proof."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is outside a tree of size {size}")
    out: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    out.reverse()  # the recursion appends on the way back up: deepest sibling first
    return out


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """PROOF(first, D[second]) (RFC 9162 §2.1.4.1) as leaf ranges; empty when first is 0 or equals second."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from size {first} to {second}")
    if first in (0, second):
        return []
    out: list[tuple[int, int]] = []
    start, end, m, complete = 0, second, first, True
    while True:
        size = end - start
        if m == size:
            if not complete:
                out.append((start, end))
            break
        k = split_point(size)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start, m, complete = start + k, m - k, False
    out.reverse()
    return out


def proof_nodes(ranges: Iterable[tuple[int, int]]) -> set[Coord]:
    """Every perfect node the given ranges need: what a store reads to build a proof."""
    return {c for a, b in ranges for c in perfect_nodes(a, b)}


def inclusion_proof(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    return [subtree(a, b) for a, b in inclusion_ranges(index, size)]


def consistency_proof(first: int, second: int, subtree: SubtreeHash) -> list[bytes]:
    return [subtree(a, b) for a, b in consistency_ranges(first, second)]


def list_subtree(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    """MTH(D[a:b]) over leaf hashes held in memory (for tests and offline tools)."""
    return lambda a, b: root(leaf_hashes[a:b])


# -- verification (RFC 9162 §2.1.3.2 and §2.1.4.2); malformed input is False, never an exception ----------------------


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root_hash


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """The root an inclusion proof leads to (None when its shape does not fit the size)."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def verify_consistency(first: int, first_root: bytes, second: int, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    if not 0 <= first <= second or any(len(p) != HASH_SIZE for p in proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the old root is itself a node of the new tree
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


# -- incremental appends: what the sequencer persists ----------------------------------------------------------------


@dataclass
class CompactTree:
    """The right frontier of a tree (its perfect nodes for `size`, left to right). Appending a leaf returns the
    perfect nodes that came into existence; each is final and is stored once."""

    size: int = 0
    frontier: list[tuple[Coord, bytes]] = field(default_factory=list)

    @classmethod
    def at(cls, size: int, nodes: Mapping[Coord, bytes]) -> CompactTree:
        """Resume at `size` from stored nodes (the `frontier_coords(size)`)."""
        return cls(size, [(c, nodes[c]) for c in frontier_coords(size)])

    def append(self, leaf: bytes) -> list[tuple[Coord, bytes]]:
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        coord, h = (0, self.size), leaf
        created = [(coord, h)]
        while self.frontier and self.frontier[-1][0][0] == coord[0]:
            (level, index), left = self.frontier.pop()
            coord, h = (level + 1, index >> 1), node_hash(left, h)
            created.append((coord, h))
        self.frontier.append((coord, h))
        self.size += 1
        return created

    def root(self) -> bytes:
        return fold([h for _, h in self.frontier])


def frontier_coords(size: int) -> list[Coord]:
    return perfect_nodes(0, size)
