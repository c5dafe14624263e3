"""Tests that kill the Merkle module's surviving mutants (tools/mutate.py hbt-core --module merkle).

A proof that is too short can still end at the root when the "leaf" it starts from is an
interior node: only the length check (``sn != 0``) tells the two apart. Without it a verifier
accepts a subtree hash as an entry of the log.
"""

from __future__ import annotations

import pytest

from hbt_core import merkle
from hbt_core.errors import IntegrityError


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
        with pytest.raises(IntegrityError, match="shorter than the tree requires"):
            merkle.verify_inclusion(interior, 0, size, rest, root)


def test_a_proof_with_a_trailing_extra_hash_is_rejected_as_too_long() -> None:
    tree, leaves = _hasher(8)
    proof = tree.inclusion_proof(3, 8)
    with pytest.raises(IntegrityError, match="longer than the tree allows"):
        merkle.verify_inclusion(leaves[3], 3, 8, [*proof, leaves[0]], tree.root(0, 8))


def test_a_consistency_proof_with_a_trailing_extra_hash_is_rejected() -> None:
    tree, _ = _hasher(8)
    proof = tree.consistency_proof(3, 8)
    with pytest.raises(IntegrityError, match="longer than the trees allow"):
        merkle.verify_consistency(3, 8, tree.root(0, 3), tree.root(0, 8), [*proof, proof[0]])
