"""Checking arriving pieces against a signed root: good pieces pass, every bad one is named."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from owmanifest.errors import DigestMismatchError, FileVerificationError, SizeMismatchError
from owmanifest.manifest.hashing import FileHasher, FileHashes
from owmanifest.manifest.merkle import BLOCK_SIZE, leaf_hashes, merkle_root, piece_hash
from owmanifest.verify.blocks import PieceVerifier, verify_bytes

PL = 2 * BLOCK_SIZE


def hashes(data: bytes, piece_length: int = PL) -> FileHashes:
    hasher = FileHasher(piece_length, v1=False)
    hasher.update(data)
    return hasher.finish()


def verifier(data: bytes, piece_length: int = PL, path: str = "d/file.bin") -> PieceVerifier:
    h = hashes(data, piece_length)
    return PieceVerifier(path, h.size, h.root, piece_length, h.piece_layer)


def pieces(data: bytes, piece_length: int = PL) -> list[bytes]:
    return [data[i : i + piece_length] for i in range(0, len(data), piece_length)]


BIG = random.Random(1).randbytes(4 * PL + 1000)  # five pieces, the last one short
SIZES = {
    "one byte": 1,
    "one block": BLOCK_SIZE,
    "one block and a byte": BLOCK_SIZE + 1,
    "exactly one piece": PL,
    "piece and a byte": PL + 1,
    "five pieces": len(BIG),
}


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_good_pieces_pass(size: int) -> None:
    data = random.Random(size).randbytes(size)
    checker = verifier(data)
    assert checker.num_pieces == len(pieces(data))
    offset = 0
    for index, piece in enumerate(pieces(data)):
        assert checker.piece_span(index) == (offset, len(piece))
        checker.verify_piece(index, piece)
        checker.verify_piece(index, memoryview(bytearray(piece)))
        offset += len(piece)
    assert offset == size


def test_small_file_piece_hash_is_the_unpadded_root() -> None:
    data = random.Random(3).randbytes(BLOCK_SIZE + 5)  # two leaves in a four-leaf piece
    big_pieces = 4 * BLOCK_SIZE
    checker = verifier(data, big_pieces)
    assert checker.num_pieces == 1
    checker.verify_piece(0, data)
    # the padded subtree root (what a piece of a larger file would use) is different
    assert piece_hash(data, big_pieces) != merkle_root(leaf_hashes(data))


def _flip(index: int, at: int) -> Callable[[list[bytes]], tuple[int, bytes]]:
    def bad(ps: list[bytes]) -> tuple[int, bytes]:
        piece = bytearray(ps[index])
        piece[at] ^= 0x80
        return index, bytes(piece)

    return bad


BAD: dict[str, tuple[Callable[[list[bytes]], tuple[int, bytes]], type[FileVerificationError]]] = {
    "first byte flipped": (_flip(0, 0), DigestMismatchError),
    "middle byte flipped": (_flip(2, PL // 2), DigestMismatchError),
    "last piece last byte flipped": (_flip(4, -1), DigestMismatchError),
    "short": (lambda ps: (1, ps[1][:-1]), SizeMismatchError),
    "long": (lambda ps: (1, ps[1] + b"\x00"), SizeMismatchError),
    "empty": (lambda ps: (0, b""), SizeMismatchError),
    "last piece zero-padded": (lambda ps: (4, ps[4] + bytes(PL - len(ps[4]))), SizeMismatchError),
    "wrong index": (lambda ps: (2, ps[3]), DigestMismatchError),
    "zeros": (lambda ps: (3, bytes(PL)), DigestMismatchError),
}


@pytest.mark.parametrize(("make", "error"), BAD.values(), ids=BAD.keys())
def test_bad_pieces_are_named(
    make: Callable[[list[bytes]], tuple[int, bytes]], error: type[FileVerificationError]
) -> None:
    checker = verifier(BIG)
    index, data = make(pieces(BIG))
    with pytest.raises(error) as info:
        checker.verify_piece(index, data)
    assert type(info.value) is error
    assert info.value.path == "d/file.bin"
    assert info.value.expected is not None and info.value.observed is not None
    assert info.value.expected != info.value.observed
    if error is DigestMismatchError:
        assert str(info.value.expected).startswith("bep52:")
        assert str(info.value.observed).startswith("bep52:")
        assert f"piece {index}" in str(info.value)


def test_bad_pieces_of_a_small_file() -> None:
    data = b"hello world"
    checker = verifier(data)
    with pytest.raises(DigestMismatchError) as info:
        checker.verify_piece(0, b"hello World")
    assert str(info.value.expected) == f"bep52:{hashes(data).root.hex()}"  # type: ignore[union-attr]
    with pytest.raises(SizeMismatchError):
        checker.verify_piece(0, data + b"!")


@pytest.mark.parametrize("index", [-1, 5, 100])
def test_index_out_of_range(index: int) -> None:
    checker = verifier(BIG)
    with pytest.raises(FileVerificationError, match="no such piece") as info:
        checker.verify_piece(index, b"x")
    assert info.value.path == "d/file.bin"
    with pytest.raises(IndexError):
        checker.piece_span(index)


def test_empty_file_has_no_pieces() -> None:
    checker = PieceVerifier("e", 0, None, PL, None)
    assert checker.num_pieces == 0
    with pytest.raises(FileVerificationError):
        checker.verify_piece(0, b"")


def test_piece_layer_is_checked_against_the_root() -> None:
    h = hashes(BIG)
    layer = bytearray(h.piece_layer)
    layer[40] ^= 1
    with pytest.raises(DigestMismatchError) as info:
        PieceVerifier("f", h.size, h.root, PL, bytes(layer))
    assert info.value.path == "f"
    assert str(info.value.expected) == f"bep52:{h.root.hex()}"  # type: ignore[union-attr]
    with pytest.raises(DigestMismatchError, match="wrong length"):
        PieceVerifier("f", h.size, h.root, PL, h.piece_layer[:-32])
    with pytest.raises(DigestMismatchError):  # a layer for another piece length
        PieceVerifier("f", h.size, h.root, 2 * PL, hashes(BIG, 2 * PL).piece_layer + bytes(32))
    with pytest.raises(ValueError):
        PieceVerifier("f", h.size, h.root, PL, None)


def test_inconsistent_arguments() -> None:
    h = hashes(b"abc")
    with pytest.raises(ValueError):
        PieceVerifier("f", 0, h.root, PL, None)
    with pytest.raises(ValueError):
        PieceVerifier("f", 3, None, PL, None)
    with pytest.raises(ValueError):
        PieceVerifier("f", 3, h.root, 3 * BLOCK_SIZE, None)
    with pytest.raises(ValueError):
        PieceVerifier("f", -1, None, PL, None)


def test_verify_bytes() -> None:
    h = hashes(BIG)
    verify_bytes("f", BIG, len(BIG), h.root)
    verify_bytes("e", b"", 0, None)
    with pytest.raises(SizeMismatchError) as size_info:
        verify_bytes("f", BIG[:-1], len(BIG), h.root)
    assert size_info.value.path == "f"
    flipped = bytearray(BIG)
    flipped[12345] ^= 4
    with pytest.raises(DigestMismatchError) as info:
        verify_bytes("f", bytes(flipped), len(BIG), h.root)
    assert str(info.value.expected) == f"bep52:{h.root.hex()}"  # type: ignore[union-attr]
    assert str(info.value.observed).startswith("bep52:")
    with pytest.raises(DigestMismatchError):
        verify_bytes("e", b"", 0, h.root)
