"""Our torrents against libtorrent 2.x: it loads them, agrees on every root, and builds the
same ``info`` dictionary (hence the same info-hashes) over the same directory.

The one known exception is documented in docs/adr/0001-bep52-merkle-roots.md and tested in
``test_libtorrent_string_order_trap``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from owmanifest.manifest.bencode import bdecode, bencode
from owmanifest.manifest.hashing import FileHashes, hash_files
from owmanifest.manifest.torrent import TorrentFile, build_torrent, info_hashes, parse_torrent

lt = pytest.importorskip("libtorrent")

KiB = 1024


def _write(top: Path, files: dict[str, int], seed: int = 0) -> Path:
    rng = random.Random(seed)
    top.mkdir()
    for rel, size in files.items():
        path = top / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        path.chmod(0o644)
    return top


def _many_small(top: Path) -> Path:
    rng = random.Random(9)
    files = {f"d{i % 7}/sub{i % 3}/f{i:04d}.dat": rng.randint(1, 3000) for i in range(300)}
    files["d0/empty"] = 0
    return _write(top, files)


TREES: dict[str, Callable[[Path], Path]] = {
    "mixed": lambda top: _write(
        top,
        {
            "README": 100,
            "empty": 0,
            "exact.bin": 16 * KiB,
            "data/big.bin": 5 * 16 * KiB + 123,
            "data/sub/deep/x.csv": 4000,
            "data/two-pieces": 32 * KiB,
            "z/last-empty": 0,
        },
    ),
    "single file": lambda top: _write(top, {"only.bin": 70 * KiB + 1}),
    "single small file": lambda top: _write(top, {"only.txt": 10}),
    "aligned": lambda top: _write(top, {"a": 64 * KiB, "b/c": 128 * KiB}),
    "empty last": lambda top: _write(top, {"a": 5, "b": 0}),
    "empty first": lambda top: _write(top, {"a": 0, "b": 5, "c": 0}),
    "uppercase and utf-8": lambda top: _write(top, {"B/z": 5, "a": 7, "é/ü": 9, "Z": 1}),
    "many small files": _many_small,
}


def _ours(top: Path, piece_length: int, **options: Any) -> tuple[bytes, dict[str, FileHashes]]:
    rels = sorted(p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file())
    hashes = hash_files([top / r for r in rels], piece_length, v1=options.get("hybrid", True))
    files = [TorrentFile(r, h.size, h) for r, h in zip(rels, hashes, strict=True)]
    return build_torrent(top.name, files, piece_length, **options), {
        f.path: f.hashes for f in files
    }


def _theirs(
    top: Path,
    piece_length: int,
    flags: int = 0,
    private: bool = False,
    trackers: tuple[str, ...] = (),
    web_seeds: tuple[str, ...] = (),
) -> dict[bytes, Any]:
    ct = lt.create_torrent(lt.list_files(str(top)), piece_length, flags)
    if private:
        ct.set_priv(True)
    for tracker in trackers:
        ct.add_tracker(tracker)
    for seed in web_seeds:
        ct.add_url_seed(seed)
    lt.set_piece_hashes(ct, str(top.parent))
    generated: dict[bytes, Any] = ct.generate()
    generated.pop(b"creation date", None)
    return generated


def _lt_hashes(data: bytes) -> tuple[str | None, str]:
    ih = lt.torrent_info(data).info_hashes()
    v1 = ih.v1.to_bytes().hex() if ih.has_v1() else None
    return v1, ih.v2.to_bytes().hex()


def _check_loads_with_our_roots(data: bytes, top: Path, ours: dict[str, FileHashes]) -> None:
    ti = lt.torrent_info(data)  # (a) libtorrent loads it
    layout = ti.layout()
    seen = {}
    for i in range(layout.num_files()):
        if layout.file_flags(i) & layout.flag_pad_file:
            continue
        path = Path(layout.file_path(i))
        if len(ours) == 1 and path.parts[0] != top.name:
            # a v2-only torrent whose tree holds one file is a single-file torrent to libtorrent
            assert info_hashes(data).v1 is None
            path = top.name / path
        seen[path.relative_to(top.name).as_posix()] = layout.root(i).to_bytes()
    # (b) the same root for every file (libtorrent reports 32 zero bytes for empty files)
    assert seen == {rel: h.root or bytes(32) for rel, h in ours.items()}


@pytest.mark.parametrize("piece_length", [16 * KiB, 32 * KiB])
@pytest.mark.parametrize("tree", TREES.values(), ids=TREES.keys())
def test_hybrid_identical_to_libtorrent(
    tmp_path: Path, tree: Callable[[Path], Path], piece_length: int
) -> None:
    top = tree(tmp_path / "dataset")
    data, ours = _ours(top, piece_length)
    _check_loads_with_our_roots(data, top, ours)
    theirs = _theirs(top, piece_length)
    # (c) byte-identical info dictionary and piece layers, hence the same info-hashes
    decoded = bdecode(data)
    assert isinstance(decoded, dict)
    assert bencode(decoded[b"info"]) == bytes(lt.bencode(theirs[b"info"]))
    assert data == bytes(lt.bencode(theirs))
    ih = info_hashes(data)
    assert (ih.v1, ih.v2) == _lt_hashes(bytes(lt.bencode(theirs)))
    assert (ih.v1, ih.v2) == _lt_hashes(data)
    # deterministic, and our own parser accepts it
    assert _ours(top, piece_length)[0] == data
    assert parse_torrent(data).info_hashes == ih


@pytest.mark.parametrize("tree", ["mixed", "many small files", "single file"])
def test_v2_only_identical_to_libtorrent(tmp_path: Path, tree: str) -> None:
    top = TREES[tree](tmp_path / "dataset")
    data, ours = _ours(top, 16 * KiB, hybrid=False)
    _check_loads_with_our_roots(data, top, ours)
    theirs = _theirs(top, 16 * KiB, flags=lt.create_torrent.v2_only)
    assert data == bytes(lt.bencode(theirs))
    assert info_hashes(data).v1 is None


@pytest.mark.parametrize(
    ("trackers", "web_seeds"),
    [
        ((), ()),
        (("http://t/announce",), ("http://w/",)),
        (("http://a/", "udp://b:1"), ("http://w1/", "http://w2/")),
    ],
)
def test_private_trackers_and_web_seeds_identical(
    tmp_path: Path, trackers: tuple[str, ...], web_seeds: tuple[str, ...]
) -> None:
    top = TREES["mixed"](tmp_path / "dataset")
    data, _ = _ours(top, 16 * KiB, private=True, trackers=trackers, web_seeds=web_seeds)
    theirs = _theirs(top, 16 * KiB, private=True, trackers=trackers, web_seeds=web_seeds)
    assert data == bytes(lt.bencode(theirs))
    parsed = parse_torrent(data)
    assert parsed.private and parsed.trackers == trackers and parsed.web_seeds == web_seeds
    loaded = lt.load_torrent_buffer(data)
    assert loaded.ti.priv()
    assert list(loaded.trackers) == list(trackers)


def test_libtorrent_string_order_trap(tmp_path: Path) -> None:
    """``a/x``, ``a-b/x``, ``a.b``: BEP 52 orders by components (a/x first); libtorrent 2.1.1
    sorts its v1 file list by whole path strings (a-b/x, a.b, a/x), so its own hybrid torrent
    does not match its file tree and libtorrent itself refuses to load it. Ours follows the file
    tree, loads, and has libtorrent's roots."""
    top = _write(tmp_path / "dataset", {"a/x": 10, "a-b/x": 10, "a.b": 10, "Z": 10})
    data, ours = _ours(top, 16 * KiB)
    _check_loads_with_our_roots(data, top, ours)
    assert [p for p, _, _ in parse_torrent(data).files] == ["Z", "a/x", "a-b/x", "a.b"]
    theirs = bytes(lt.bencode(_theirs(top, 16 * KiB)))
    try:
        lt.torrent_info(theirs)
    except RuntimeError:
        return  # libtorrent 2.1.1: "the v1 and v2 file metadata does not match"
    assert data == theirs  # a fixed libtorrent would agree with us


@pytest.mark.network
def test_libtorrent_session_checks_our_hashes(tmp_path: Path) -> None:
    """A libtorrent session rechecks the data against our v1 pieces and v2 piece layers."""
    top = TREES["mixed"](tmp_path / "dataset")
    data, _ = _ours(top, 16 * KiB)
    session = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "alert_mask": 0,
        }
    )
    try:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(data)
        params.save_path = str(tmp_path)
        handle = session.add_torrent(params)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = handle.status()
            if status.state == lt.torrent_status.seeding and not status.errc.value():
                break
            time.sleep(0.05)
        status = handle.status()
        assert status.state == lt.torrent_status.seeding, status.state
        assert status.num_pieces == params.ti.num_pieces()
        assert os.path.isfile(tmp_path / "dataset" / "data" / "big.bin")
    finally:
        del session
