"""The tree as C2SP tlog-tiles: static files a mirror copies with plain HTTP GETs. Pure: no I/O.

The tile at level L, index N holds up to 256 consecutive hashes at tree height 8·L: MTH(D[(N·256+i)·256^L :
(N·256+i+1)·256^L]). Those are perfect nodes, which the ledger stores once and never changes (merkle.py), so a full
tile never changes either. A partial tile (`.p/W`, 1 ≤ W ≤ 255) holds the first W hashes of its full tile, and
only perfect ones. An entry bundle (`tile/entries/N`) holds the leaf data of level-0 tile N, each a big-endian
uint16 length and the entry's bytes (RFC 8785 canonical JSON, entry.py), so each hashes to its level-0 hash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from povguard_audit import merkle

WIDTH = 256
HEIGHT = 8  # tree levels per tile level
MAX_LEVEL = 63
_INDEX = re.compile(r"^((?:x\d{3}/)*\d{3})(?:\.p/([1-9]\d{0,2}))?$")


class TileError(ValueError):
    """A tile path that is not canonical, or a tile the tree of a given size does not (yet) hold."""


@dataclass(frozen=True)
class TileRef:
    level: int  # tile level; -1 for an entry bundle
    index: int
    width: int  # 256: a full tile

    @property
    def full(self) -> bool:
        return self.width == WIDTH

    @property
    def path(self) -> str:
        where = "entries" if self.level < 0 else str(self.level)
        return f"tile/{where}/{encode_index(self.index)}" + ("" if self.full else f".p/{self.width}")


def encode_index(n: int) -> str:
    """1234067 → x001/x234/067."""
    digits = f"{n:d}"
    digits = "0" * (-len(digits) % 3) + digits
    parts = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + p for p in parts[:-1]), parts[-1]])


def parse(level: str, rest: str) -> TileRef:
    """`tile/<level>/<rest>`, exactly as the spec writes it (no other spelling of the same tile)."""
    m = _INDEX.match(rest)
    if m is None:
        raise TileError(f"not a tile index: {rest!r} (3-digit path elements, 'x' before all but the last, "
                        "then optionally .p/<width>)")
    index = int(m.group(1).replace("x", "").replace("/", ""))
    width = WIDTH if m.group(2) is None else int(m.group(2))
    if level == "entries":
        lvl = -1
    elif re.fullmatch(r"0|[1-9]\d?", level) and int(level) <= MAX_LEVEL:
        lvl = int(level)
    else:
        raise TileError(f"not a tile level: {level!r} (0 to {MAX_LEVEL})")
    ref = TileRef(lvl, index, width)
    if (m.group(2) is not None and width >= WIDTH) or ref.path != f"tile/{level}/{rest}":
        raise TileError(f"not a canonical tile path: tile/{level}/{rest}")
    return ref


def available(level: int, index: int, tree_size: int) -> int:
    """How many hashes tile (level, index) holds in a tree of `tree_size` (0 to 256); entry bundles as level 0."""
    return max(0, min(WIDTH, (tree_size >> (HEIGHT * max(level, 0))) - index * WIDTH))


def coords(ref: TileRef) -> list[merkle.Coord]:
    """The stored perfect nodes a hash tile consists of, left to right."""
    return [(HEIGHT * ref.level, ref.index * WIDTH + i) for i in range(ref.width)]


def needed(level: int, index: int, tree_size: int) -> TileRef:
    """The tile a reader of a tree of `tree_size` fetches: full if complete, else the partial one."""
    width = available(level, index, tree_size)
    if width == 0:
        raise TileError(f"a tree of size {tree_size} has no tile {level}/{index}")
    return TileRef(level, index, width)


def split_hashes(data: bytes) -> list[bytes]:
    if len(data) % merkle.HASH_SIZE or not data:
        raise TileError(f"a hash tile is a non-empty multiple of {merkle.HASH_SIZE} bytes, not {len(data)}")
    return [data[i:i + merkle.HASH_SIZE] for i in range(0, len(data), merkle.HASH_SIZE)]


def bundle_entries(entries: list[bytes]) -> bytes:
    out = bytearray()
    for e in entries:
        if len(e) > 0xFFFF:
            raise TileError(f"an entry of {len(e)} bytes does not fit a uint16 length")
        out += len(e).to_bytes(2, "big") + e
    return bytes(out)


def split_entries(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise TileError("an entry bundle ends inside a length prefix")
        n = int.from_bytes(data[pos:pos + 2], "big")
        if pos + 2 + n > len(data):
            raise TileError("an entry bundle ends inside an entry")
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out


def _up(hashes: list[bytes]) -> bytes:
    """The root of a power-of-two run of sibling hashes."""
    while len(hashes) > 1:
        hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


class TileReader:
    """Node hashes of a tree of `tree_size`, from tiles fetched by `fetch(path) -> bytes` (a mirror directory or a
    URL prefix), each tile fetched once. Every perfect node comes from the tile at its level, hashed up within the
    tile. A full tile must hash to its hash in the tile above; the partial tiles make up the root's frontier: once
    `root()` equals a signed root, every tile read is authenticated by it."""

    def __init__(self, tree_size: int, fetch: Callable[[str], bytes]) -> None:
        self.tree_size, self._fetch = tree_size, fetch
        self._tiles: dict[tuple[int, int], list[bytes]] = {}

    def _tile(self, level: int, index: int) -> list[bytes]:
        if (level, index) not in self._tiles:
            ref = needed(level, index, self.tree_size)
            hashes = split_hashes(self._fetch(ref.path))
            if len(hashes) != ref.width:
                raise TileError(f"{ref.path} holds {len(hashes)} hashes, not {ref.width}")
            if ref.full and _up(hashes) != self.node((HEIGHT * (level + 1), index)):
                raise TileError(f"{ref.path} does not hash to its hash in the tile above: the mirror is corrupt")
            self._tiles[(level, index)] = hashes
        return self._tiles[(level, index)]

    def node(self, coord: merkle.Coord) -> bytes:
        height, idx = coord
        level, rest = divmod(height, HEIGHT)
        first = idx << rest  # the node's first hash at the tile level's height
        tile = self._tile(level, first // WIDTH)
        start = first % WIDTH
        hashes = tile[start:start + (1 << rest)]
        if len(hashes) != 1 << rest:
            raise TileError(f"node {coord} is not complete in a tree of size {self.tree_size}")
        return _up(hashes)

    def nodes(self, wanted: Iterable[merkle.Coord]) -> Mapping[merkle.Coord, bytes]:
        return {c: self.node(c) for c in wanted}

    def root(self) -> bytes:
        frontier = merkle.frontier_coords(self.tree_size)
        return merkle.fold([self.node(c) for c in frontier])

    def inclusion_proof(self, index: int) -> list[bytes]:
        ranges = merkle.inclusion_ranges(index, self.tree_size)
        found = self.nodes(merkle.proof_nodes(ranges))
        return [merkle.range_hash(a, b, found) for a, b in ranges]

    def leaf(self, index: int) -> bytes:
        return self.node((0, index))
