"""The pure Merkle module against the RFC 6962 / 9162 published test vectors (the Certificate Transparency and Go
`merkle` test data), and against a literal transcription of the RFC recursion for every size up to 40."""

from __future__ import annotations

import hashlib

import pytest

from povguard_audit import merkle

LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
HASHES = [merkle.leaf_hash(d) for d in LEAVES]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


# A literal transcription of RFC 9162 §2.1, independent of the module's iterative code.
def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + _mth(d[:k]) + _mth(d[k:])).digest()


def _path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    return [*_path(m, d[:k]), _mth(d[k:])] if m < k else [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*_subproof(m, d[:k], b), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


@pytest.mark.parametrize("n", range(9))
def test_roots_match_the_published_vectors(n: int) -> None:
    assert merkle.root(HASHES[:n]).hex() == ROOTS[n]
    assert merkle.root_of_entries(LEAVES[:n]).hex() == ROOTS[n]


def test_empty_tree_and_domain_separation() -> None:
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    left, right = HASHES[0], HASHES[1]
    assert merkle.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert merkle.leaf_hash(left + right) != merkle.node_hash(left, right)


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION)
def test_inclusion_proofs_match_the_published_vectors(index: int, size: int, expected: list[str]) -> None:
    proof = merkle.inclusion_proof(index, size, merkle.list_subtree(HASHES))
    assert [p.hex() for p in proof] == expected
    assert merkle.verify_inclusion(HASHES[index], index, size, proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("first", "second", "expected"), CONSISTENCY)
def test_consistency_proofs_match_the_published_vectors(first: int, second: int, expected: list[str]) -> None:
    proof = merkle.consistency_proof(first, second, merkle.list_subtree(HASHES))
    assert [p.hex() for p in proof] == expected
    assert merkle.verify_consistency(first, bytes.fromhex(ROOTS[first]), second, bytes.fromhex(ROOTS[second]), proof)


def test_every_proof_up_to_40_leaves_agrees_with_the_rfc_recursion_and_verifies() -> None:
    data = [f"entry-{i}".encode() for i in range(40)]
    hashes = [merkle.leaf_hash(d) for d in data]
    sub = merkle.list_subtree(hashes)
    for n in range(1, 41):
        r = merkle.root(hashes[:n])
        assert r == _mth(data[:n])
        for m in range(n):
            proof = merkle.inclusion_proof(m, n, sub)
            assert proof == _path(m, data[:n])
            assert merkle.verify_inclusion(hashes[m], m, n, proof, r)
            assert not merkle.verify_inclusion(hashes[(m + 1) % n], m, n, proof, r) or n == 1
            if proof:
                assert not merkle.verify_inclusion(hashes[m], m, n, proof[:-1], r)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, n, sub)
            assert proof == (_subproof(m, data[:n], True) if m < n else [])
            assert merkle.verify_consistency(m, merkle.root(hashes[:m]), n, r, proof)
            if m < n:
                assert not merkle.verify_consistency(m, merkle.root(hashes[: m - 1]), n, r, proof)
                assert not merkle.verify_consistency(m, merkle.root(hashes[:m]), n, hashes[0], proof)


def test_proofs_from_stored_perfect_nodes_equal_proofs_from_the_list() -> None:
    """What the database does: keep only the perfect nodes that appends create, then answer from them."""
    hashes = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(100)]
    tree, stored = merkle.CompactTree(), {}
    for h in hashes:
        for coord, digest in tree.append(h):
            assert coord not in stored  # write-once: a node is created exactly once
            stored[coord] = digest
    assert tree.root() == merkle.root(hashes)
    assert merkle.CompactTree.at(57, stored).root() == merkle.root(hashes[:57])
    for n in (1, 2, 7, 64, 65, 99, 100):
        for m in (0, n // 3, n - 1):
            ranges = merkle.inclusion_ranges(m, n)
            nodes = {c: stored[c] for c in merkle.proof_nodes(ranges)}
            assert len(nodes) <= 2 * n.bit_length()  # O(log n) reads
            assert [merkle.range_hash(a, b, nodes) for a, b in ranges] == merkle.inclusion_proof(
                m, n, merkle.list_subtree(hashes))
        for m in (1, n // 2 or 1, n):
            ranges = merkle.consistency_ranges(m, n)
            nodes = {c: stored[c] for c in merkle.proof_nodes(ranges)}
            assert [merkle.range_hash(a, b, nodes) for a, b in ranges] == merkle.consistency_proof(
                m, n, merkle.list_subtree(hashes))


def test_malformed_or_impossible_input_is_refused() -> None:
    r8 = bytes.fromhex(ROOTS[8])
    proof = merkle.inclusion_proof(5, 8, merkle.list_subtree(HASHES))
    assert not merkle.verify_inclusion(HASHES[5], 8, 8, proof, r8)
    assert not merkle.verify_inclusion(HASHES[5], 5, 8, [b"short", *proof[1:]], r8)
    assert not merkle.verify_inclusion(HASHES[5], 5, 8, [*proof, r8], r8)
    assert not merkle.verify_consistency(8, r8, 6, bytes.fromhex(ROOTS[6]), [])
    assert merkle.verify_consistency(0, merkle.EMPTY_ROOT, 8, r8, [])
    assert not merkle.verify_consistency(8, r8, 8, r8, [r8])
    with pytest.raises(ValueError):
        merkle.inclusion_ranges(8, 8)
    with pytest.raises(ValueError):
        merkle.consistency_ranges(9, 8)
