"""BitTorrent v2 (BEP 52) Merkle tree math, with no I/O.

A file is cut into 16 KiB blocks; each block (the last one as is, not padded) is hashed with
SHA-256 to give the leaves. The leaves are padded with 32 zero bytes up to a power of two and
hashed pairwise up to the root (``pieces root`` in a torrent). The root does not depend on the
piece length. Empty files have no root.

The *piece layer* is the layer of the same tree whose nodes each cover one piece
(``piece_length / 16 KiB`` leaves); BEP 52 stores it for files larger than one piece, so that a
downloader can check whole pieces against the root.

Padding is done lazily, one level at a time with :func:`pad_hash`, which gives the same result
as padding the leaves with zeros but hashes only ``O(n)`` nodes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

__all__ = [
    "BLOCK_SIZE",
    "HASH_SIZE",
    "bep52_root",
    "leaf_hashes",
    "merkle_root",
    "pad_hash",
    "padded_root",
    "piece_hash",
    "piece_height",
    "piece_layer",
    "root_from_piece_layer",
]

BLOCK_SIZE = 16384
"""Size of a leaf block in bytes (fixed by BEP 52)."""

HASH_SIZE = 32
"""Size of a SHA-256 digest, the size of every node of the tree."""

_sha256 = hashlib.sha256


@functools.lru_cache(maxsize=64)
def pad_hash(height: int) -> bytes:
    """The root of a subtree of ``2**height`` zero leaves.

    ``pad_hash(0)`` is 32 zero bytes; ``pad_hash(h + 1) = sha256(pad_hash(h) * 2)``.

    Raises:
        ValueError: ``height`` is negative.
    """
    if height < 0:
        raise ValueError(f"negative tree height {height}")
    if height == 0:
        return bytes(HASH_SIZE)
    below = pad_hash(height - 1)
    return _sha256(below + below).digest()


def piece_height(piece_length: int) -> int:
    """The height of one piece's subtree: ``log2(piece_length / BLOCK_SIZE)``.

    Raises:
        ValueError: ``piece_length`` is not a power of two of at least 16 KiB.
    """
    if piece_length < BLOCK_SIZE or piece_length & (piece_length - 1):
        raise ValueError(f"piece length must be a power of two >= {BLOCK_SIZE}: {piece_length}")
    return (piece_length // BLOCK_SIZE).bit_length() - 1


def leaf_hashes(data: bytes | bytearray | memoryview) -> list[bytes]:
    """SHA-256 of each 16 KiB block of ``data``; the last block is hashed as is (not padded).

    Returns an empty list for empty data. With the compiled hashing core (ADR 0007, 0009) the
    blocks are hashed there, two at a time where the processor has the SHA extensions, with the
    GIL released: the transports check every piece they receive through here.
    """
    view = memoryview(data).cast("B")
    if len(view) > BLOCK_SIZE:
        from . import hashing  # hashing imports this module

        core = hashing._core()
        if core is not None:
            joined = core.leaf_hashes(view)
            return [joined[i : i + HASH_SIZE] for i in range(0, len(joined), HASH_SIZE)]
    sha = _sha256
    return [sha(view[i : i + BLOCK_SIZE]).digest() for i in range(0, len(view), BLOCK_SIZE)]


def _reduce(nodes: Sequence[bytes], height: int, target: int | None = None) -> bytes:
    """Hash ``nodes`` (at tree level ``height``) up to one root.

    Missing nodes on each level are the root of an all-zero subtree of that level. With
    ``target``, the root is further combined with padding up to level ``target``.
    """
    if not nodes:
        raise ValueError("cannot compute the Merkle root of no leaves")
    sha = _sha256
    layer = list(nodes)
    while len(layer) > 1:
        if len(layer) % 2:
            layer.append(pad_hash(height))
        layer = [sha(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
        height += 1
    node = layer[0]
    if target is not None:
        while height < target:
            node = sha(node + pad_hash(height)).digest()
            height += 1
    return node


def padded_root(leaves: Sequence[bytes], height: int) -> bytes:
    """The root of a subtree of ``2**height`` leaves of which ``leaves`` are the first.

    The missing leaves are zero. This is a piece's hash (``height`` = the piece height) and,
    with more leaves than ``2**height``, simply :func:`merkle_root`.

    Raises:
        ValueError: ``leaves`` is empty.
    """
    return _reduce(leaves, 0, height)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root over ``leaves``, padded with zero leaves up to a power of two.

    A single leaf is its own root.

    Raises:
        ValueError: ``leaves`` is empty (an empty file has no root).
    """
    return _reduce(leaves, 0)


def piece_layer(leaves: Sequence[bytes], piece_length: int) -> list[bytes]:
    """The BEP 52 piece layer: one subtree root per piece.

    Each piece covers ``piece_length / 16 KiB`` leaves; the last piece is padded with zero
    leaves to that count. BEP 52 stores this layer only for files larger than one piece.

    Raises:
        ValueError: bad ``piece_length``, or no leaves.
    """
    height = piece_height(piece_length)
    per_piece = 1 << height
    if not leaves:
        raise ValueError("cannot compute the piece layer of no leaves")
    return [_reduce(leaves[i : i + per_piece], 0, height) for i in range(0, len(leaves), per_piece)]


def root_from_piece_layer(layer: Sequence[bytes], piece_length: int) -> bytes:
    """The file root from its piece layer (padded with ``pad_hash(piece height)``).

    Raises:
        ValueError: bad ``piece_length``, or an empty layer.
    """
    return _reduce(layer, piece_height(piece_length))


def piece_hash(data: bytes | bytearray | memoryview, piece_length: int) -> bytes:
    """The subtree root of one piece of a file larger than one piece.

    ``data`` is the piece (the last piece of a file may be shorter); it is padded with zero
    leaves up to ``piece_length / 16 KiB`` leaves. For a file of at most one piece use
    :func:`bep52_root` instead: its root is not padded to the piece's leaf count.

    Raises:
        ValueError: bad ``piece_length``, empty data or data longer than ``piece_length``.
    """
    height = piece_height(piece_length)
    size = memoryview(data).nbytes
    if not 0 < size <= piece_length:
        raise ValueError(f"piece data must be 1..{piece_length} bytes, got {size}")
    return padded_root(leaf_hashes(data), height)


def bep52_root(data: bytes | bytearray | memoryview) -> bytes | None:
    """The BEP 52 root of ``data`` in one call; ``None`` for empty data."""
    if not memoryview(data).nbytes:
        return None
    return merkle_root(leaf_hashes(data))
