"""The household map: which entry is each household's latest, as a compact sparse Merkle tree. Pure: no I/O.

Keys are SHA-256(household id), 256 bits; the value of a key is (index, leaf hash) of the household's latest entry.
A subtree that holds no household hashes to 32 zero bytes; one that holds exactly one is that household's leaf node
SHA-256(0x02 ‖ key ‖ uint64 index ‖ leaf hash), wherever it sits; any other is SHA-256(0x03 ‖ left ‖ right). The
shape is fixed by the set of keys, so the root commits to every household's latest entry. A proof is the sibling
hashes from depth 1 down to the depth where the household's leaf node sits (about log2 of the households).

Updating a batch of households touches only their paths (`plan_level` / `finish`): the store fetches the nodes one
depth at a time, so a checkpoint costs O(changed households × depth), not O(households).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

EMPTY = bytes(32)
KEY_BITS = 256
EXTENSION = "household-map"  # the checkpoint's extension line: "household-map <base64 root>"


def key_of(household: str) -> int:
    return int.from_bytes(hashlib.sha256(household.encode()).digest(), "big")


def leaf_node(key: int, index: int, leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x02" + key.to_bytes(32, "big") + index.to_bytes(8, "big") + leaf).digest()


def inner_node(left: bytes, right: bytes) -> bytes:
    if left == EMPTY and right == EMPTY:
        return EMPTY
    return hashlib.sha256(b"\x03" + left + right).digest()


def bit(key: int, depth: int) -> int:
    """Which child of the node at `depth` the key descends into (0 left, 1 right)."""
    return (key >> (KEY_BITS - 1 - depth)) & 1


def prefix(key: int, depth: int) -> int:
    return key >> (KEY_BITS - depth) if depth else 0


def root_from_proof(key: int, index: int, leaf: bytes, siblings: Sequence[bytes]) -> bytes:
    """The root a membership proof leads to: the leaf node sits at depth len(siblings)."""
    h = leaf_node(key, index, leaf)
    for depth in range(len(siblings) - 1, -1, -1):
        s = siblings[depth]
        h = inner_node(s, h) if bit(key, depth) else inner_node(h, s)
    return h


def verify(root: bytes, household: str, index: int, leaf: bytes, siblings: Sequence[bytes]) -> bool:
    if len(siblings) > KEY_BITS or any(len(s) != 32 for s in siblings) or len(leaf) != 32 or index < 0:
        return False
    return root_from_proof(key_of(household), index, leaf, siblings) == root


# -- the stored form and the incremental update ---------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """A stored node: its hash, and the household it holds when it is a leaf node (else None: an inner node)."""

    hash: bytes
    leaf: tuple[int, int, bytes] | None = None  # (key, index, leaf hash)


Coord = tuple[int, int]  # (depth, prefix)
Value = tuple[int, bytes]  # (index, leaf hash)


@dataclass
class _Work:
    items: dict[int, Value]  # key -> value of every household in this subtree that must be placed below
    children: list[Coord | bytes] = field(default_factory=list)  # left, right: a coord still to compute, or a hash


@dataclass
class Update:
    """A batch update in progress: `wanted()` the coords to fetch at the current depth, `step(found)` for each
    depth, then `root` and `written` (the nodes to store)."""

    changes: Mapping[int, Value]
    depth: int = 0
    frontier: dict[Coord, _Work] = field(default_factory=dict)
    siblings: set[Coord] = field(default_factory=set)
    plans: dict[Coord, _Work] = field(default_factory=dict)
    hashes: dict[Coord, bytes] = field(default_factory=dict)
    written: dict[Coord, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frontier = {(0, 0): _Work(dict(self.changes))} if self.changes else {}

    @property
    def done(self) -> bool:
        return not self.frontier

    def wanted(self) -> list[Coord]:
        return [*self.frontier, *self.siblings]

    def ahead(self, levels: int) -> set[Coord]:
        """Every coord the next `levels` steps may want beyond `wanted()`: each changed key's path below its frontier
        node and the sibling at each depth on it. A store that fetches these with `wanted()` answers that many steps
        from one read (a coord it asked for and did not find is empty, as in `step`)."""
        out: set[Coord] = set()
        for (depth, _), work in self.frontier.items():
            for key in work.items:
                for d in range(depth + 1, min(depth + levels, KEY_BITS) + 1):
                    p = key >> (KEY_BITS - d)
                    out.add((d, p))
                    out.add((d, p ^ 1))
        return out

    def step(self, found: Mapping[Coord, Node]) -> None:
        for c in self.siblings:
            self.hashes[c] = found[c].hash if c in found else EMPTY
        self.siblings = set()
        depth = self.depth
        nxt: dict[Coord, _Work] = {}
        for coord, work in self.frontier.items():
            stored = found.get(coord)
            items = dict(work.items)
            if stored is not None and stored.leaf is not None and stored.leaf[0] not in items:
                k, i, lf = stored.leaf  # a household already here moves down beside the new ones
                items[k] = (i, lf)
            inner = stored is not None and stored.leaf is None
            if not inner and len(items) == 1:
                [(k, (i, lf))] = items.items()
                node = Node(leaf_node(k, i, lf), (k, i, lf))
                self.written[coord] = node
                self.hashes[coord] = node.hash
                continue
            if depth >= KEY_BITS:
                raise ValueError("two households with one key")
            for b in (0, 1):
                child = (depth + 1, (coord[1] << 1) | b)
                part = {k: v for k, v in items.items() if bit(k, depth) == b}
                if part:
                    nxt[child] = _Work(part)
                    work.children.append(child)
                elif inner:
                    self.siblings.add(child)  # unchanged: its stored hash
                    work.children.append(child)
                else:
                    work.children.append(EMPTY)
            self.plans[coord] = work
        self.frontier = nxt
        self.depth += 1

    @property
    def root(self) -> bytes:
        if self.frontier:
            raise ValueError("the update is not finished")
        for coord in sorted(self.plans, key=lambda c: -c[0]):
            left, right = (self.hashes[c] if isinstance(c, tuple) else c for c in self.plans[coord].children)
            self.hashes[coord] = inner_node(left, right)
            self.written[coord] = Node(self.hashes[coord])
        self.plans = {}
        return self.hashes.get((0, 0), EMPTY)


def proof_coords(key: int) -> list[Coord]:
    """Every node a proof for `key` may need: the key's path and each sibling on it."""
    out: list[Coord] = []
    for depth in range(KEY_BITS + 1):
        p = prefix(key, depth)
        out.append((depth, p))
        if depth:
            out.append((depth, p ^ 1))
    return out


def prove(key: int, found: Mapping[Coord, Node]) -> tuple[Value | None, list[bytes]]:
    """The key's value and sibling path from the nodes on its path, or (None, []) when the map does not hold it."""
    siblings: list[bytes] = []
    for depth in range(KEY_BITS + 1):
        node = found.get((depth, prefix(key, depth)))
        if node is None:
            return None, []
        if node.leaf is not None:
            return ((node.leaf[1], node.leaf[2]), siblings) if node.leaf[0] == key else (None, [])
        sib = found.get((depth + 1, prefix(key, depth + 1) ^ 1))
        siblings.append(EMPTY if sib is None else sib.hash)
    return None, []
