"""The sidecar torrent: piece-length rule, determinism, parsing and tamper detection.

libtorrent interoperability is in tests/integration/test_libtorrent_compat.py.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from owmanifest.errors import InvalidManifestError, UsageError
from owmanifest.manifest.bencode import bdecode as _bdecode
from owmanifest.manifest.bencode import bencode
from owmanifest.manifest.hashing import FileHasher
from owmanifest.manifest.torrent import (
    InfoHashes,
    TorrentFile,
    build_torrent,
    choose_piece_length,
    info_hashes,
    parse_torrent,
)

KiB = 1024
MiB = 1024 * KiB
PL = 16 * KiB


def bdecode(data: bytes) -> Any:
    """Decoded bencoding, typed loosely for the tests' digging."""
    return _bdecode(data)


def torrent_files(contents: dict[str, bytes], piece_length: int = PL) -> list[TorrentFile]:
    out = []
    for path, data in contents.items():
        hasher = FileHasher(piece_length)
        hasher.update(data)
        out.append(TorrentFile(path, len(data), hasher.finish()))
    return out


rng = random.Random(47)
CONTENTS = {
    "b/big.bin": rng.randbytes(3 * PL + 7),
    "a.txt": b"hello",
    "b/empty": b"",
    "exact": rng.randbytes(PL),
    "b/c/deep": rng.randbytes(100),
}


@pytest.mark.parametrize(
    ("total", "piece"),
    [
        (0, 16 * KiB),
        (1, 16 * KiB),
        (2048 * 16 * KiB, 16 * KiB),
        (2048 * 16 * KiB + 1, 32 * KiB),
        (1024 * MiB, 512 * KiB),
        (2048 * 16 * MiB, 16 * MiB),
        (10 * 2048 * 16 * MiB, 16 * MiB),  # capped
    ],
)
def test_choose_piece_length(total: int, piece: int) -> None:
    assert choose_piece_length(total) == piece


def test_build_is_deterministic_and_order_independent() -> None:
    files = torrent_files(CONTENTS)
    first = build_torrent("ds", files, PL)
    assert build_torrent("ds", list(reversed(files)), PL) == first
    assert build_torrent("ds", sorted(files, key=lambda f: f.size), PL) == first


def test_layout() -> None:
    torrent = bdecode(build_torrent("ds", torrent_files(CONTENTS), PL))
    assert isinstance(torrent, dict)
    assert set(torrent) == {b"info", b"piece layers"}
    info = torrent[b"info"]
    assert isinstance(info, dict)
    assert set(info) == {
        b"file tree",
        b"files",
        b"meta version",
        b"name",
        b"piece length",
        b"pieces",
    }
    v1 = info[b"files"]
    assert isinstance(v1, list)
    assert [(e[b"path"], e[b"length"]) for e in v1 if isinstance(e, dict)] == [
        ([b"a.txt"], 5),
        ([b".pad", b"16379"], 16379),
        ([b"b", b"big.bin"], 3 * PL + 7),
        ([b".pad", b"16377"], 16377),
        ([b"b", b"c", b"deep"], 100),
        ([b".pad", b"16284"], 16284),
        ([b"b", b"empty"], 0),
        ([b"exact"], PL),
    ]
    assert info[b"pieces"] == b"".join(
        h.hashes.v1_pieces or b"" for h in sorted(torrent_files(CONTENTS), key=lambda f: f.path)
    )


def test_parse_round_trip() -> None:
    files = torrent_files(CONTENTS)
    data = build_torrent(
        "ds",
        files,
        PL,
        private=True,
        trackers=["http://t1/a", "http://t2/a"],
        web_seeds=["http://w/"],
    )
    parsed = parse_torrent(data)
    by_path = {f.path: f for f in files}
    assert parsed.name == "ds"
    assert parsed.piece_length == PL
    assert parsed.private
    assert [p for p, _, _ in parsed.files] == ["a.txt", "b/big.bin", "b/c/deep", "b/empty", "exact"]
    for path, size, root in parsed.files:
        assert (size, root) == (by_path[path].size, by_path[path].hashes.root)
    big = by_path["b/big.bin"].hashes
    assert parsed.piece_layers == {big.root: big.piece_layer}
    assert parsed.trackers == ("http://t1/a", "http://t2/a")
    assert parsed.web_seeds == ("http://w/",)
    assert parsed.info_hashes == info_hashes(data)


def test_info_hashes_are_hashes_of_info() -> None:
    data = build_torrent("ds", torrent_files(CONTENTS), PL)
    info = bencode(bdecode(data)[b"info"])
    assert info in data
    assert info_hashes(data) == InfoHashes(
        v1=hashlib.sha1(info).hexdigest(), v2=hashlib.sha256(info).hexdigest()
    )
    assert len(info_hashes(data).v2) == 64


def test_trackers_and_web_seeds_do_not_change_info_hashes() -> None:
    files = torrent_files(CONTENTS)
    plain = info_hashes(build_torrent("ds", files, PL))
    assert (
        info_hashes(build_torrent("ds", files, PL, trackers=["udp://t:1"], web_seeds=["http://w/"]))
        == plain
    )
    assert info_hashes(build_torrent("ds", files, PL, private=True)) != plain
    assert info_hashes(build_torrent("other", files, PL)) != plain


def test_v2_only() -> None:
    files = torrent_files(CONTENTS)
    data = build_torrent("ds", files, PL, hybrid=False)
    info = bdecode(data)[b"info"]
    assert b"files" not in info and b"pieces" not in info
    parsed = parse_torrent(data)
    assert parsed.info_hashes.v1 is None
    assert [p for p, _, _ in parsed.files] == sorted(f.path for f in files)


def test_single_file_has_no_pad_and_an_unpadded_last_piece() -> None:
    data = rng.randbytes(2 * PL + 5)
    (only,) = torrent_files({"one": data})
    info = bdecode(build_torrent("ds", [only], PL))[b"info"]
    assert info[b"files"] == [{b"length": len(data), b"path": [b"one"]}]
    assert info[b"pieces"] == b"".join(
        hashlib.sha1(data[i : i + PL]).digest() for i in range(0, len(data), PL)
    )


def test_component_order_not_string_order() -> None:
    # "a/x" < "a-b/x" < "a.b" by components, though "a-b/x" < "a.b" < "a/x" as strings
    files = torrent_files({"a.b": b"1", "a-b/x": b"2", "a/x": b"3"})
    parsed = parse_torrent(build_torrent("ds", files, PL))
    assert [p for p, _, _ in parsed.files] == ["a/x", "a-b/x", "a.b"]


BAD_BUILDS: dict[str, tuple[str, dict[str, bytes]]] = {
    "name-with-slash": ("bad/name", {"a": b"1"}),
    "name-dotdot": ("..", {"a": b"1"}),
    "parent-segment": ("ds", {"../a": b"1"}),
    "inner-parent-segment": ("ds", {"a/../b": b"1"}),
    "dot-segment": ("ds", {"a/./b": b"1"}),
    "trailing-dot-segment": ("ds", {"a/.": b"1"}),
    "absolute": ("ds", {"/a": b"1"}),
    "empty-segment": ("ds", {"a//b": b"1"}),
    "trailing-slash": ("ds", {"a/": b"1"}),
    "empty-path": ("ds", {"": b"1"}),
    "nul": ("ds", {"a\x00b": b"1"}),
    "file-is-a-directory": ("ds", {"a": b"1", "a/b": b"2"}),
    "file-is-a-deeper-directory": ("ds", {"d": b"1", "d/x/y": b"2", "d-x": b"3"}),
}


@pytest.mark.parametrize(("name", "contents"), BAD_BUILDS.values(), ids=BAD_BUILDS.keys())
def test_build_rejects_bad_names_and_paths(name: str, contents: dict[str, bytes]) -> None:
    with pytest.raises(ValueError):
        build_torrent(name, torrent_files(contents), PL)


def test_build_rejects_a_path_twice() -> None:
    files = torrent_files({"a": b"1"}) * 2
    with pytest.raises(ValueError, match="collides"):
        build_torrent("ds", files, PL)


@settings(max_examples=200, deadline=None)
@given(st.sets(st.text(alphabet="ab-./\x01é", min_size=1, max_size=6), min_size=1, max_size=6))
def test_files_in_component_order_and_no_file_a_directory(paths: set[str]) -> None:
    """For any paths: refused when one is not a plain relative path or is a directory of
    another; else listed in the order of their component lists (as bytes)."""
    parts = {p: p.split("/") for p in paths}
    bad = any(c in ("", ".", "..") for p in paths for c in parts[p]) or any(
        a != b and parts[b][: len(parts[a])] == parts[a] for a in paths for b in paths
    )
    files = torrent_files(dict.fromkeys(paths, b"x"))
    if bad:
        with pytest.raises(ValueError):
            build_torrent("ds", files, PL)
        return
    parsed = parse_torrent(build_torrent("ds", files, PL))
    expected = sorted(paths, key=lambda p: [c.encode() for c in parts[p]])
    assert [p for p, _, _ in parsed.files] == expected


def test_build_rejects_no_data_and_mismatched_hashes() -> None:
    with pytest.raises(UsageError):
        build_torrent("ds", torrent_files({"e": b""}), PL)
    with pytest.raises(UsageError):
        build_torrent("ds", [], PL)
    (f,) = torrent_files({"a": b"x" * (PL + 1)})
    with pytest.raises(ValueError, match="piece layer"):
        build_torrent("ds", [f], 2 * PL)  # hashed at another piece length
    with pytest.raises(ValueError, match="size"):
        build_torrent("ds", [TorrentFile("a", 3, f.hashes)], PL)
    hasher = FileHasher(PL, v1=False)
    hasher.update(b"abc")
    with pytest.raises(ValueError, match="v1"):
        build_torrent("ds", [TorrentFile("a", 3, hasher.finish())], PL)
    with pytest.raises(ValueError):
        build_torrent("ds", [f], 3 * PL)


# --- tampering -----------------------------------------------------------------------------------

Mutation = Callable[[Any], None]


def _info(t: dict[bytes, Any]) -> dict[bytes, Any]:
    info: dict[bytes, Any] = t[b"info"]
    return info


def _flip_layer(t: dict[bytes, Any]) -> None:
    layers = t[b"piece layers"]
    root = next(iter(layers))
    layer = bytearray(layers[root])
    layer[5] ^= 1
    layers[root] = bytes(layer)


def _short_layer(t: dict[bytes, Any]) -> None:
    layers = t[b"piece layers"]
    root = next(iter(layers))
    layers[root] = layers[root][:-32]


def _swap_v1(t: dict[bytes, Any]) -> None:
    files = _info(t)[b"files"]
    files[0], files[2] = files[2], files[0]


def _set(path: tuple[bytes | int, ...], value: Any) -> Mutation:
    def mutate(t: Any) -> None:
        node = t
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path: tuple[bytes | int, ...]) -> Mutation:
    def mutate(t: Any) -> None:
        node = t
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


BIG = (b"info", b"file tree", b"b", b"big.bin", b"", b"")
TAMPERED: dict[str, Mutation] = {
    "piece layer byte flipped": _flip_layer,
    "piece layer truncated": _short_layer,
    "piece layer missing": lambda t: t[b"piece layers"].clear(),
    "extra piece layer": lambda t: t[b"piece layers"].update({b"\x01" * 32: b"\x02" * 32}),
    "pieces root changed": _set((*BIG[:-1], b"pieces root"), b"\x03" * 32),
    "length changed": _set((*BIG[:-1], b"length"), 3 * PL + 8),
    "meta version 1": _set((b"info", b"meta version"), 1),
    "piece length not a power of two": _set((b"info", b"piece length"), 3 * PL),
    "piece length too small": _set((b"info", b"piece length"), 8 * KiB),
    "name with slash": _set((b"info", b"name"), b"a/b"),
    "name not UTF-8": _set((b"info", b"name"), b"\xff"),
    "dot-dot path": _set(
        (b"info", b"file tree", b".."), {b"": {b"length": 1, b"pieces root": b"\x00" * 32}}
    ),
    "empty file with root": _set(
        (b"info", b"file tree", b"b", b"empty", b"", b"pieces root"), b"\x00" * 32
    ),
    "symlink attribute": _set((*BIG[:-1], b"attr"), b"l"),
    "file is also a directory": _set(
        (b"info", b"file tree", b"exact", b"sub"), {b"": {b"length": 0}}
    ),
    "no file tree": _delete((b"info", b"file tree")),
    "v1 files reordered": _swap_v1,
    "v1 pad missing": lambda t: _info(t)[b"files"].pop(1),
    "v1 pad wrong size": _set((b"info", b"files", 1, b"length"), 5),
    "v1 file renamed": _set((b"info", b"files", 0, b"path"), [b"A.txt"]),
    "v1 pieces truncated": lambda t: _info(t).update({b"pieces": _info(t)[b"pieces"][:-20]}),
    "v1 files without pieces": _delete((b"info", b"pieces")),
    "private is 2": _set((b"info", b"private"), 2),
    "info not a dict": _set((b"info",), [1]),
    "announce not text": _set((b"announce",), 5),
}


@pytest.mark.parametrize("mutate", TAMPERED.values(), ids=TAMPERED.keys())
def test_parse_rejects_tampered(mutate: Mutation) -> None:
    data = build_torrent("ds", torrent_files(CONTENTS), PL)
    torrent = bdecode(data)
    mutate(torrent)
    with pytest.raises(InvalidManifestError) as info:
        parse_torrent(bencode(torrent), source="ds.torrent")
    assert info.value.path == "ds.torrent"


def test_tampered_layer_reports_both_roots() -> None:
    files = torrent_files(CONTENTS)
    torrent = bdecode(build_torrent("ds", files, PL))
    _flip_layer(torrent)
    with pytest.raises(InvalidManifestError) as info:
        parse_torrent(bencode(torrent))
    big = next(f for f in files if f.path == "b/big.bin")
    assert big.hashes.root is not None
    assert str(info.value.expected) == f"bep52:{big.hashes.root.hex()}"
    assert str(info.value.observed).startswith("bep52:")
    assert info.value.observed != info.value.expected


def test_parse_rejects_non_canonical_bencoding() -> None:
    data = build_torrent("ds", torrent_files(CONTENTS), PL)
    with pytest.raises(InvalidManifestError):
        parse_torrent(data + b"\n")
    with pytest.raises(InvalidManifestError):
        info_hashes(b"d4:infoi1ee")
