"""Checking pieces of a file against its signed BEP 52 root while the data arrives.

A transport that receives a file piece by piece (BitTorrent peers, HTTP range requests) checks
each piece with a :class:`PieceVerifier` before it writes or keeps it; a small file fetched in
one go is checked with :func:`verify_bytes`. Nothing here does I/O: bytes in, ``None`` or an
exception out.

For a file larger than one piece, the piece layer (from the torrent or a peer, so untrusted) is
first checked against the signed root; each piece is then checked against its entry of the
layer. A file of at most one piece has one piece, whose hash is the file root itself (over the
actual leaves, not padded to a whole piece's leaf count).
"""

from __future__ import annotations

from ..errors import DigestMismatchError, FileVerificationError, SizeMismatchError
from ..manifest.digest import BEP52, Digest
from ..manifest.merkle import (
    HASH_SIZE,
    bep52_root,
    piece_hash,
    piece_height,
    root_from_piece_layer,
)

__all__ = ["PieceVerifier", "verify_bytes"]


def _digest(value: bytes | None) -> Digest | str:
    return "none (empty file)" if value is None else Digest(BEP52, value)


class PieceVerifier:
    """Checks arriving pieces of one file against the file's signed BEP 52 root.

    Args:
        path: the file's dataset-relative path (named in errors).
        size: the file's size from the manifest.
        root: the file's BEP 52 root from the manifest; ``None`` exactly when ``size == 0``.
        piece_length: power of two, at least 16 KiB.
        piece_layer: the concatenated piece hashes; required when ``size > piece_length``,
            ignored otherwise.

    Raises:
        DigestMismatchError: the piece layer does not hash to ``root`` or has the wrong length.
        ValueError: bad ``piece_length`` or ``size``, ``root`` inconsistent with ``size``, or a
            missing piece layer.
    """

    __slots__ = ("_layer", "_path", "_piece_length", "_root", "_size", "num_pieces")

    num_pieces: int

    def __init__(
        self,
        path: str,
        size: int,
        root: bytes | None,
        piece_length: int,
        piece_layer: bytes | None,
    ) -> None:
        piece_height(piece_length)
        if size < 0:
            raise ValueError(f"{path}: negative size {size}")
        if (root is None) != (size == 0) or (root is not None and len(root) != HASH_SIZE):
            raise ValueError(f"{path}: a root of 32 bytes is needed exactly when size > 0")
        self._path = path
        self._size = size
        self._root = root
        self._piece_length = piece_length
        self.num_pieces = -(-size // piece_length)
        self._layer: list[bytes] = []
        if size > piece_length:
            if piece_layer is None:
                raise ValueError(f"{path}: a piece layer is needed for a file over one piece")
            self._layer = self._checked_layer(piece_layer)

    def _checked_layer(self, piece_layer: bytes) -> list[bytes]:
        want = self.num_pieces * HASH_SIZE
        if len(piece_layer) != want:
            raise DigestMismatchError(
                "piece layer has the wrong length",
                path=self._path,
                expected=f"{want} bytes",
                observed=f"{len(piece_layer)} bytes",
            )
        layer = [piece_layer[i : i + HASH_SIZE] for i in range(0, want, HASH_SIZE)]
        computed = root_from_piece_layer(layer, self._piece_length)
        if computed != self._root:
            raise DigestMismatchError(
                "piece layer does not match the signed root",
                path=self._path,
                expected=_digest(self._root),
                observed=_digest(computed),
            )
        return layer

    @property
    def path(self) -> str:
        """The file's path, as given."""
        return self._path

    @property
    def size(self) -> int:
        """The file's size, as given."""
        return self._size

    def piece_span(self, index: int) -> tuple[int, int]:
        """``(offset, length)`` of piece ``index`` within the file.

        Raises:
            IndexError: no such piece.
        """
        if not 0 <= index < self.num_pieces:
            raise IndexError(f"{self._path}: no piece {index} (the file has {self.num_pieces})")
        offset = index * self._piece_length
        return offset, min(self._piece_length, self._size - offset)

    def verify_piece(self, index: int, data: bytes | bytearray | memoryview) -> None:
        """Check that ``data`` is piece ``index`` of the file.

        Raises:
            FileVerificationError: no such piece.
            SizeMismatchError: ``data`` is not the length of that piece.
            DigestMismatchError: ``data`` does not hash to the piece's hash.
        """
        if not 0 <= index < self.num_pieces:
            raise FileVerificationError(
                "no such piece",
                path=self._path,
                expected=f"an index in 0..{self.num_pieces - 1}",
                observed=index,
            )
        _, length = self.piece_span(index)
        got = memoryview(data).nbytes
        if got != length:
            raise SizeMismatchError(
                f"piece {index} has the wrong size",
                path=self._path,
                expected=f"{length} bytes",
                observed=f"{got} bytes",
            )
        if self._layer:
            expected = self._layer[index]
            observed = piece_hash(data, self._piece_length)
        else:  # the only piece of a small file: its hash is the root
            expected = self._root or b""
            observed = bep52_root(data) or b""
        if observed != expected:
            raise DigestMismatchError(
                f"piece {index} does not match",
                path=self._path,
                expected=Digest(BEP52, expected),
                observed=Digest(BEP52, observed),
            )


def verify_bytes(
    path: str, data: bytes | bytearray | memoryview, size: int, root: bytes | None
) -> None:
    """Check a whole file held in memory against its size and BEP 52 root.

    Raises:
        SizeMismatchError: ``len(data) != size``.
        DigestMismatchError: the root of ``data`` is not ``root``.
    """
    got = memoryview(data).nbytes
    if got != size:
        raise SizeMismatchError(
            "wrong size", path=path, expected=f"{size} bytes", observed=f"{got} bytes"
        )
    observed = bep52_root(data)
    if observed != root:
        raise DigestMismatchError(
            "content does not match", path=path, expected=_digest(root), observed=_digest(observed)
        )
