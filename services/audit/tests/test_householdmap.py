"""The household map's pure algebra (incremental updates equal a rebuild; proofs verify and bind the value) and the
entries' fast canonical bytes (equal to the RFC 8785 reference implementation)."""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import UTC, datetime

import rfc8785

from povguard_audit import householdmap as hm
from povguard_audit.entry import Entry


def _apply(store: dict[hm.Coord, hm.Node], changes: dict[int, hm.Value]) -> bytes:
    update = hm.Update(changes)
    while not update.done:
        update.step({c: store[c] for c in update.wanted() if c in store})
    root = update.root
    store.update(update.written)
    return root


def test_incremental_updates_equal_a_rebuild_and_every_proof_verifies() -> None:
    rng = random.Random(16)
    households = [f"hh-{i}" for i in range(800)]
    state: dict[str, hm.Value] = {}
    store: dict[hm.Coord, hm.Node] = {}
    root = hm.EMPTY
    for _ in range(15):
        changes: dict[int, hm.Value] = {}
        for _ in range(rng.randrange(1, 120)):
            h = rng.choice(households)
            state[h] = changes[hm.key_of(h)] = (rng.randrange(10**9), rng.randbytes(32))
        written_before = len(store)
        root = _apply(store, changes)
        assert len(store) - written_before <= len(changes) * 20  # only the changed paths are written
    assert root == _apply({}, {hm.key_of(h): v for h, v in state.items()})
    for h, (index, leaf) in state.items():
        value, siblings = hm.prove(hm.key_of(h), store)
        assert value == (index, leaf) and hm.verify(root, h, index, leaf, siblings)
        assert not hm.verify(root, h, index + 1, leaf, siblings)
        assert not hm.verify(root, h + "x", index, leaf, siblings)
    assert hm.prove(hm.key_of("not-there"), store)[0] is None


def test_the_fast_canonical_bytes_are_rfc8785() -> None:
    rng = random.Random(8785)
    alphabet = ["a", "Z", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", "\u2028", "é",
                "岳", "𝄞", "😀", " ", "\ufeff"]
    now = datetime.now(UTC)
    for i in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        e = Entry(i, now, uuid.uuid4(), now, text, "household", text, 2**53 - 1 - i, text, text, "collector", text,
                  None if i % 3 else text, hashlib.sha256(text.encode()).digest(), None if i % 2 else i, None
                  if i % 2 else bytes(32))
        assert e.canonical() == bytes(rfc8785.dumps(e.as_json())), text


def test_reading_ahead_answers_several_depths_from_one_read_with_the_same_root() -> None:
    """What update_map does: each read also fetches `ahead()` of the wanted coords; the steps then answered from what
    was read give the root and nodes of one read per depth, in fewer reads."""
    rng = random.Random(20)
    store: dict[hm.Coord, hm.Node] = {}
    _apply(store, {hm.key_of(f"hh-{i}"): (i, rng.randbytes(32)) for i in range(3000)})
    changes = {hm.key_of(f"hh-{rng.randrange(4000)}"): (10**6 + i, rng.randbytes(32)) for i in range(300)}
    plain = hm.Update(changes)
    depths = 0
    while not plain.done:
        plain.step({c: store[c] for c in plain.wanted() if c in store})
        depths += 1
    ahead, asked, reads = hm.Update(changes), set[hm.Coord](), 0
    while not ahead.done:
        wanted = ahead.wanted()
        if not asked.issuperset(wanted):
            asked |= ahead.ahead(6).union(wanted)
            reads += 1
        ahead.step({c: store[c] for c in wanted if c in store})
    assert ahead.root == plain.root and ahead.written == plain.written
    assert reads * 3 <= depths
