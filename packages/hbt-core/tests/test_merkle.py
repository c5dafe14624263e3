"""RFC 6962/9162 Merkle tree: published vectors, exhaustive proofs to 128, tamper rejection."""

from __future__ import annotations

import pytest

from hbt_core import merkle
from hbt_core.errors import IntegrityError

# The Certificate Transparency reference leaves and tree heads for sizes 0..8.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
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
CT_PATH_0_OF_8 = [
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
]


def _hasher(n: int) -> tuple[merkle.TreeHasher, list[bytes]]:
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(n)]
    return merkle.TreeHasher(leaves.__getitem__), leaves


def test_reference_roots() -> None:
    for n in range(9):
        assert merkle.root_of(CT_LEAVES[:n]).hex() == CT_ROOTS[n]


def test_reference_inclusion_path() -> None:
    hashes = [merkle.leaf_hash(d) for d in CT_LEAVES]
    tree = merkle.TreeHasher(hashes.__getitem__)
    assert [p.hex() for p in tree.inclusion_proof(0, 8)] == CT_PATH_0_OF_8


def test_domain_separation() -> None:
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.root_of([b"a", b"b"]) != merkle.leaf_hash(a + b)
    assert merkle.root_of([a + b]) != merkle.node_hash(a, b)


def test_exhaustive_inclusion_up_to_128() -> None:
    tree, leaves = _hasher(128)
    for n in range(1, 129):
        root = tree.root(0, n)
        for i in range(n):
            merkle.verify_inclusion(leaves[i], i, n, tree.inclusion_proof(i, n), root)


def test_exhaustive_consistency_up_to_128() -> None:
    tree, _ = _hasher(128)
    roots = [tree.root(0, n) for n in range(129)]
    for n in range(0, 129):
        for m in range(0, n + 1):
            merkle.verify_consistency(m, n, roots[m], roots[n], tree.consistency_proof(m, n))


def _mutations(proof: list[bytes]) -> list[list[bytes]]:
    out = []
    for i in range(len(proof)):
        flipped = bytearray(proof[i])
        flipped[i % 32] ^= 1
        out.append([*proof[:i], bytes(flipped), *proof[i + 1 :]])
        out.append(proof[:i] + proof[i + 1 :])  # dropped element
    if len(proof) >= 2:
        out.append(proof[::-1])  # reordered
    out.append([*proof, proof[0] if proof else b"\x00" * 32])  # extended
    out.append(proof[:-1] if proof else [b"\x11" * 32])  # truncated
    return [m for m in out if m != proof]


def test_every_mutated_inclusion_proof_is_rejected() -> None:
    tree, leaves = _hasher(40)
    for n in range(1, 41):
        root = tree.root(0, n)
        for i in range(n):
            proof = tree.inclusion_proof(i, n)
            for bad in _mutations(proof):
                with pytest.raises(IntegrityError):
                    merkle.verify_inclusion(leaves[i], i, n, bad, root)
            with pytest.raises(IntegrityError):
                merkle.verify_inclusion(
                    leaves[(i + 1) % n] if n > 1 else b"\x00" * 32, i, n, proof, root
                )
            for wrong_index in {i + 1, n} - {i}:
                if wrong_index != i:
                    with pytest.raises(IntegrityError):
                        merkle.verify_inclusion(leaves[i], wrong_index, n, proof, root)


def test_every_mutated_consistency_proof_is_rejected() -> None:
    tree, _ = _hasher(40)
    roots = [tree.root(0, n) for n in range(41)]
    for n in range(2, 41):
        for m in range(1, n):
            proof = tree.consistency_proof(m, n)
            for bad in _mutations(proof):
                with pytest.raises(IntegrityError):
                    merkle.verify_consistency(m, n, roots[m], roots[n], bad)
            with pytest.raises(IntegrityError):
                merkle.verify_consistency(m, n, roots[m - 1], roots[n], proof)
            with pytest.raises(IntegrityError):
                merkle.verify_consistency(m, n, roots[m], roots[n - 1], proof)


def test_malformed_inputs() -> None:
    tree, leaves = _hasher(4)
    with pytest.raises(IntegrityError):
        merkle.verify_inclusion(leaves[0], 0, 4, [b"short"], tree.root(0, 4))
    with pytest.raises(IntegrityError):
        merkle.verify_inclusion(leaves[0], 5, 4, [], tree.root(0, 4))
    with pytest.raises(IntegrityError):
        merkle.verify_consistency(3, 2, tree.root(0, 3), tree.root(0, 2), [])
    with pytest.raises(IntegrityError):
        merkle.verify_consistency(2, 2, tree.root(0, 2), tree.root(0, 3), [])


def test_short_proofs_that_reach_a_forged_root_are_rejected() -> None:
    """A proof one step short still "reaches" a root an attacker chose (here the root of a
    smaller tree claimed for a larger size); only the final ``sn == 0`` checks catch it."""
    tree, leaves = _hasher(8)
    # consistency 2 -> 5 needs two hashes; one hash leads to root(0, 4), claimed as size 5
    with pytest.raises(IntegrityError, match="shorter"):
        merkle.verify_consistency(2, 5, tree.root(0, 2), tree.root(0, 4), [tree.root(2, 4)])
    merkle.verify_consistency(2, 4, tree.root(0, 2), tree.root(0, 4), [tree.root(2, 4)])
    # inclusion of leaf 0 in size 3 needs two hashes; one leads to root(0, 2), claimed as size 3
    with pytest.raises(IntegrityError, match="shorter"):
        merkle.verify_inclusion(leaves[0], 0, 3, [leaves[1]], tree.root(0, 2))
    merkle.verify_inclusion(leaves[0], 0, 2, [leaves[1]], tree.root(0, 2))
