"""Tests that kill the Merkle module's surviving mutants (tools/mutate.py hbt-core --module merkle).

A proof that is too short can still end at the root when the "leaf" it starts from is an
interior node: only the length check (``sn != 0``) tells the two apart. Without it a verifier
accepts a subtree hash as an entry of the log.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any

import pytest

from hbt_core import merkle
from hbt_core.errors import IntegrityError, InvalidInputError


def _hasher(n: int) -> tuple[merkle.TreeHasher, list[bytes]]:
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(n)]
    return merkle.TreeHasher(leaves.__getitem__), leaves


@pytest.mark.parametrize("size", [2, 4, 8, 16, 32])
def test_an_interior_node_posing_as_a_leaf_is_rejected(size: int) -> None:
    tree, leaves = _hasher(size)
    root = tree.root(0, size)
    proof = tree.inclusion_proof(0, size)
    merkle.verify_inclusion(leaves[0], 0, size, proof, root)
    for height in range(1, len(proof) + 1):
        interior = tree.root(0, 2**height)  # the subtree over the first 2**height leaves
        rest = proof[height:]
        # The forged path really does hash up to the root: only its length gives it away.
        r = interior
        for sibling in rest:
            r = merkle.node_hash(r, sibling)
        assert r == root
        with _refused("inclusion proof is shorter than the tree requires"):
            merkle.verify_inclusion(interior, 0, size, rest, root)


def test_a_proof_with_a_trailing_extra_hash_is_rejected_as_too_long() -> None:
    tree, leaves = _hasher(8)
    proof = tree.inclusion_proof(3, 8)
    with _refused("inclusion proof is longer than the tree allows"):
        merkle.verify_inclusion(leaves[3], 3, 8, [*proof, leaves[0]], tree.root(0, 8))


def test_a_consistency_proof_with_a_trailing_extra_hash_is_rejected() -> None:
    tree, _ = _hasher(8)
    proof = tree.consistency_proof(3, 8)
    with _refused("consistency proof is longer than the trees allow"):
        merkle.verify_consistency(3, 8, tree.root(0, 3), tree.root(0, 8), [*proof, proof[0]])


def _refused(message: str) -> AbstractContextManager[Any]:
    return pytest.raises(IntegrityError, match=f"^{re.escape(message)}$")


def test_proof_generation_refuses_out_of_range_sizes_by_name() -> None:
    tree, _ = _hasher(4)
    with pytest.raises(InvalidInputError, match=re.escape("index must be in [0, 4), got 4")):
        tree.inclusion_proof(4, 4)
    with pytest.raises(
        InvalidInputError, match=re.escape("old_size must be in [0, new_size=4], got 5")
    ):
        tree.consistency_proof(5, 4)


def test_every_inclusion_refusal_says_what_is_wrong() -> None:
    tree, leaves = _hasher(4)
    root = tree.root(0, 4)
    proof = tree.inclusion_proof(1, 4)
    with _refused("proof[1] is not a 32-byte hash"):
        merkle.verify_inclusion(leaves[1], 1, 4, [proof[0], b"short"], root)
    with _refused("leaf/root[0] is not a 32-byte hash"):
        merkle.verify_inclusion(b"short", 1, 4, proof, root)
    with _refused("leaf/root[1] is not a 32-byte hash"):
        merkle.verify_inclusion(leaves[1], 1, 4, proof, b"short")
    with _refused("inclusion index 4 is outside a tree of size 4"):
        merkle.verify_inclusion(leaves[1], 4, 4, proof, root)
    with _refused("inclusion proof for index 1 does not lead to the root"):
        merkle.verify_inclusion(leaves[2], 1, 4, proof, root)


def test_every_consistency_refusal_says_what_is_wrong() -> None:
    tree, _ = _hasher(8)
    roots = [tree.root(0, n) for n in range(9)]
    proof = tree.consistency_proof(3, 8)
    with _refused("proof[0] is not a 32-byte hash"):
        merkle.verify_consistency(3, 8, roots[3], roots[8], [b"short", *proof[1:]])
    with _refused("roots[1] is not a 32-byte hash"):
        merkle.verify_consistency(3, 8, roots[3], b"short", proof)
    with _refused("old size 9 is not within [0, 8]"):
        merkle.verify_consistency(9, 8, roots[8], roots[8], proof)
    with _refused("consistency proof from an empty tree must be empty"):
        merkle.verify_consistency(0, 8, roots[0], roots[8], proof)
    with _refused("consistency proof between equal sizes must be empty"):
        merkle.verify_consistency(8, 8, roots[8], roots[8], proof)
    with _refused("trees of equal size have different roots"):
        merkle.verify_consistency(8, 8, roots[8], roots[7], [])
    with _refused("consistency proof is empty"):
        merkle.verify_consistency(3, 8, roots[3], roots[8], [])
    with _refused("consistency proof from size 3 to 8 does not match the roots"):
        merkle.verify_consistency(3, 8, roots[4], roots[8], proof)


def test_a_consistency_proof_one_hash_short_is_refused_as_too_short() -> None:
    """2 -> 5 needs two hashes; with one the path ends at root(0, 4), which an attacker can
    claim as the size-5 root: only the length check refuses it, and says so."""
    tree, _ = _hasher(8)
    with _refused("consistency proof is shorter than the trees require"):
        merkle.verify_consistency(2, 5, tree.root(0, 2), tree.root(0, 4), [tree.root(2, 4)])


def test_leaf_data_of_the_wrong_type_is_named() -> None:
    with pytest.raises(InvalidInputError, match=r"^leaf data must be bytes, got str$"):
        merkle.leaf_hash("abc")  # type: ignore[arg-type]


def test_a_growing_log_reads_each_leaf_once() -> None:
    """Every left subtree of RFC 6962 is perfect and aligned, so its root never changes and is
    cached: appending a leaf reads only the new leaf (the audit log reads leaves from SQLite)."""
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(1025)]
    reads: list[int] = []

    def get_leaf(i: int) -> bytes:
        reads.append(i)
        return leaves[i]

    tree = merkle.TreeHasher(get_leaf)
    assert tree.root(0, 1024) == merkle.root_of([i.to_bytes(2, "big") for i in range(1024)])
    assert sorted(reads) == list(range(1024))
    reads.clear()
    tree.root(0, 1025)
    proof = tree.inclusion_proof(1024, 1025)
    assert reads == [1024]
    assert proof == [tree.root(0, 1024)]
    assert reads == [1024]
