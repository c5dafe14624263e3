"""RFC 6962 / RFC 9162 Merkle tree hashing with inclusion and consistency proofs.

Leaves are hashed as ``SHA-256(0x00 || data)`` and interior nodes as
``SHA-256(0x01 || left || right)``: the domain separation that stops a leaf from posing as a
node. Proof generation follows RFC 6962 section 2.1; verification follows the iterative
algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from hbt_core.errors import IntegrityError, InvalidInputError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInputError(f"leaf data must be bytes, got {type(data).__name__}")
    return hashlib.sha256(b"\x00" + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class TreeHasher:
    """Computes subtree roots over a sequence of leaf hashes, caching perfect aligned subtrees.

    Every split point of RFC 6962 lies on a power-of-two boundary, so all left subtrees are
    perfect and aligned; their roots never change as the log grows and are cached.
    """

    def __init__(self, get_leaf: Callable[[int], bytes]) -> None:
        self._get_leaf = get_leaf
        self._perfect: dict[tuple[int, int], bytes] = {}

    def root(self, start: int, end: int) -> bytes:
        """Merkle tree hash of leaves ``[start, end)``."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n == 1:
            return self._get_leaf(start)
        perfect = n & (n - 1) == 0
        if perfect and (start, n) in self._perfect:
            return self._perfect[(start, n)]
        k = _split(n)
        value = node_hash(self.root(start, start + k), self.root(start + k, end))
        if perfect:
            self._perfect[(start, n)] = value
        return value

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 PATH(index, D[0:size])."""
        if not 0 <= index < size:
            raise InvalidInputError(f"index must be in [0, {size}), got {index}")
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, start + k), self.root(start + k, end)]
        return [*self._path(m - k, start + k, end), self.root(start, start + k)]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 6962 PROOF(old_size, D[0:new_size]); empty when old_size is 0 or equal."""
        if not 0 <= old_size <= new_size:
            raise InvalidInputError(f"old_size must be in [0, new_size={new_size}], got {old_size}")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, 0, new_size, True)

    def _subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self.root(start, end)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, complete), self.root(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self.root(start, start + k)]


def root_of(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash of a list of leaf data (not hashes)."""
    hashes = [leaf_hash(d) for d in leaves]
    return TreeHasher(hashes.__getitem__).root(0, len(hashes))


def _check_hashes(name: str, values: Sequence[bytes]) -> None:
    for i, h in enumerate(values):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise IntegrityError(f"{name}[{i}] is not a 32-byte hash")


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` (a leaf hash) is entry ``index`` of the tree of ``size`` with ``root``.

    Raises :class:`IntegrityError` on any mismatch (RFC 9162 section 2.1.3.2).
    """
    _check_hashes("proof", proof)
    _check_hashes("leaf/root", [leaf, root])
    if not 0 <= index < size:
        raise IntegrityError(f"inclusion index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise IntegrityError("inclusion proof is longer than the tree allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise IntegrityError("inclusion proof is shorter than the tree requires")
    if r != root:
        raise IntegrityError(f"inclusion proof for index {index} does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``old_size`` is a prefix of the tree of ``new_size``.

    Raises :class:`IntegrityError` on any mismatch (RFC 9162 section 2.1.4.2).
    """
    _check_hashes("proof", proof)
    _check_hashes("roots", [old_root, new_root])
    if not 0 <= old_size <= new_size:
        raise IntegrityError(f"old size {old_size} is not within [0, {new_size}]")
    if old_size == 0:
        if proof:
            raise IntegrityError("consistency proof from an empty tree must be empty")
        return
    if old_size == new_size:
        if proof:
            raise IntegrityError("consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise IntegrityError("trees of equal size have different roots")
        return
    if not proof:
        raise IntegrityError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise IntegrityError("consistency proof is longer than the trees allow")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise IntegrityError("consistency proof is shorter than the trees require")
    if fr != old_root or sr != new_root:
        raise IntegrityError(
            f"consistency proof from size {old_size} to {new_size} does not match the roots"
        )
