"""BEP 52 tree math and the hashing engine, against hand-computed values and libtorrent."""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from owmanifest.errors import FileVerificationError, MissingFileError
from owmanifest.manifest import hashing
from owmanifest.manifest.hashing import FileHasher, FileHashes, hash_file, hash_files
from owmanifest.manifest.merkle import (
    BLOCK_SIZE,
    bep52_root,
    leaf_hashes,
    merkle_root,
    pad_hash,
    piece_hash,
    piece_layer,
    root_from_piece_layer,
)

PIECE_LENGTHS = [BLOCK_SIZE, 2 * BLOCK_SIZE, 4 * BLOCK_SIZE, 16 * BLOCK_SIZE]
SETTINGS = settings(
    deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def expected_hashes(data: bytes, piece_length: int) -> FileHashes:
    """The engine's answer computed the slow, obvious way."""
    leaves = leaf_hashes(data)
    layer = piece_layer(leaves, piece_length) if len(data) > piece_length else []
    padded = data + bytes(-len(data) % piece_length)
    v1 = [
        hashlib.sha1(padded[i : i + piece_length]).digest()
        for i in range(0, len(padded), piece_length)
    ]
    last = data[(len(data) - 1) // piece_length * piece_length :] if data else None
    return FileHashes(
        size=len(data),
        root=bep52_root(data),
        piece_layer=b"".join(layer),
        v1_pieces=b"".join(v1),
        v1_last_unpadded=None if last is None else hashlib.sha1(last).digest(),
        sha256=sha256(data),
    )


# --- tree math -----------------------------------------------------------------------------------


def test_pad_hashes() -> None:
    assert pad_hash(0) == bytes(32)
    assert pad_hash(1) == sha256(bytes(64))
    assert pad_hash(2) == sha256(pad_hash(1) * 2)
    with pytest.raises(ValueError):
        pad_hash(-1)


def test_hand_computed_roots() -> None:
    a, b, c = b"a" * BLOCK_SIZE, b"b" * BLOCK_SIZE, b"c" * 10
    ha, hb, hc = sha256(a), sha256(b), sha256(c)
    assert bep52_root(b"") is None
    assert bep52_root(c) == hc  # one block: the root is the hash of the (unpadded) block
    assert bep52_root(a + b) == sha256(ha + hb)
    assert bep52_root(a + b + c) == sha256(sha256(ha + hb) + sha256(hc + bytes(32)))
    assert merkle_root([ha]) == ha
    with pytest.raises(ValueError):
        merkle_root([])


def test_piece_hash_pads_to_the_piece_leaf_count() -> None:
    data = b"x" * (BLOCK_SIZE + 1)  # two leaves
    leaves = leaf_hashes(data)
    assert piece_hash(data, 2 * BLOCK_SIZE) == merkle_root(leaves)
    assert piece_hash(data, 4 * BLOCK_SIZE) == sha256(merkle_root(leaves) + pad_hash(1))
    with pytest.raises(ValueError):
        piece_hash(data, BLOCK_SIZE)  # longer than a piece
    with pytest.raises(ValueError):
        piece_hash(data, 3 * BLOCK_SIZE)  # not a power of two


@pytest.mark.parametrize("piece_length", PIECE_LENGTHS)
def test_piece_layer_of_a_multi_piece_file(piece_length: int) -> None:
    data = random.Random(piece_length).randbytes(5 * piece_length + 100)
    layer = piece_layer(leaf_hashes(data), piece_length)
    assert len(layer) == 6
    assert layer[0] == piece_hash(data[:piece_length], piece_length)
    assert layer[-1] == piece_hash(data[5 * piece_length :], piece_length)
    assert root_from_piece_layer(layer, piece_length) == bep52_root(data)


# --- properties ----------------------------------------------------------------------------------

sizes = st.integers(min_value=0, max_value=6 * BLOCK_SIZE + 3)


@SETTINGS
@given(
    data=st.data(),
    size=sizes,
    piece_length=st.sampled_from(PIECE_LENGTHS),
    v1=st.booleans(),
)
def test_streaming_in_random_chunks_equals_one_shot(
    data: st.DataObject, size: int, piece_length: int, v1: bool
) -> None:
    blob = random.Random(size).randbytes(size)
    hasher = FileHasher(piece_length, v1=v1, sha256=True)
    pos = 0
    while pos < size:
        n = data.draw(st.integers(min_value=0, max_value=3 * BLOCK_SIZE), label="chunk")
        hasher.update(memoryview(blob)[pos : pos + n])
        pos += n
    got = hasher.finish()
    want = expected_hashes(blob, piece_length)
    if not v1:
        want = FileHashes(want.size, want.root, want.piece_layer, None, None, want.sha256)
    assert got == want


@SETTINGS
@given(size=st.integers(min_value=1, max_value=5 * BLOCK_SIZE), where=st.floats(0, 1))
def test_any_byte_flip_changes_the_root(size: int, where: float) -> None:
    blob = bytearray(random.Random(size).randbytes(size))
    before = bep52_root(bytes(blob))
    blob[min(size - 1, int(where * size))] ^= 0x01
    assert bep52_root(bytes(blob)) != before


@SETTINGS
@given(size=st.integers(min_value=BLOCK_SIZE + 1, max_value=80 * BLOCK_SIZE))
def test_piece_layer_root_equals_leaf_root(size: int) -> None:
    blob = random.Random(size).randbytes(size)
    leaves = leaf_hashes(blob)
    for piece_length in (*PIECE_LENGTHS, 64 * BLOCK_SIZE):
        if size <= piece_length:  # BEP 52 has a piece layer only for files over one piece
            continue
        layer = piece_layer(leaves, piece_length)
        assert root_from_piece_layer(layer, piece_length) == merkle_root(leaves)


# The compiled core runs on threads; the pure-Python engine on processes (many small files,
# where forking is safe) or threads.
POOLS = ["threads", "python-processes", "python-threads"]


def use_pool(monkeypatch: pytest.MonkeyPatch, pool: str) -> None:
    monkeypatch.setattr(hashing, "_can_fork", lambda: pool == "python-processes")
    if pool.startswith("python-"):
        monkeypatch.setattr(hashing, "_core", lambda: None)


@pytest.fixture
def force_parallel(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make hash_files split and parallelize even tiny inputs."""
    monkeypatch.setattr(hashing, "_INLINE_BYTES", 0)
    monkeypatch.setattr(hashing, "_PROCESS_MIN_FILES", 0)
    monkeypatch.setattr(hashing, "_REGION_SIZE", 2 * BLOCK_SIZE)
    yield


@pytest.mark.usefixtures("force_parallel")
@pytest.mark.parametrize("pool", POOLS)
@settings(
    deadline=None, max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    file_sizes=st.lists(st.integers(min_value=0, max_value=7 * BLOCK_SIZE), max_size=12),
    piece_length=st.sampled_from(PIECE_LENGTHS[:3]),
    v1=st.booleans(),
    sha=st.booleans(),
)
def test_hash_files_equals_hash_file(
    monkeypatch: pytest.MonkeyPatch,
    pool: str,
    file_sizes: list[int],
    piece_length: int,
    v1: bool,
    sha: bool,
) -> None:
    use_pool(monkeypatch, pool)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, size in enumerate(file_sizes):
            path = Path(tmp, f"f{i}")
            path.write_bytes(random.Random(i * 1000 + size).randbytes(size))
            paths.append(path)
        seen: list[int] = []
        got = hash_files(paths, piece_length, v1=v1, sha256=sha, workers=2, progress=seen.append)
        assert got == [hash_file(p, piece_length, v1=v1, sha256=sha) for p in paths]
        assert sum(seen) == sum(file_sizes)


def test_the_first_failing_task_stops_every_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a task failed, no thread starts another; that failure is what the caller gets."""
    started: list[str] = []
    second_began, first_failing = threading.Event(), threading.Event()

    def task_(task: list[hashing._Job], *args: object) -> list[object]:
        path = task[0].path
        started.append(path)
        if path == "f0":  # fails while the other thread is busy with f1
            assert second_began.wait(60)
            first_failing.set()
            raise MissingFileError("file not found", path=path)
        if path == "f1":
            second_began.set()
            assert first_failing.wait(60)
            time.sleep(0.05)  # for the failure to be recorded (a margin, not a measurement)
        return []

    monkeypatch.setattr(hashing, "_run_task", task_)
    tasks = [[hashing._Job(i, f"f{i}", 1, 0)] for i in range(20)]
    with pytest.raises(MissingFileError) as info:
        hashing._run_in_threads(tasks, BLOCK_SIZE, False, False, 2, None)
    assert info.value.path == "f0"  # type: ignore[attr-defined]
    assert set(started[:2]) == {"f0", "f1"} and len(started) <= 3


def test_hash_file_matches_the_obvious_computation(tmp_path: Path) -> None:
    blob = random.Random(5).randbytes(3 * hashing.READ_SIZE + 12345)  # several reads
    path = tmp_path / "big"
    path.write_bytes(blob)
    for piece_length in (BLOCK_SIZE, 1 << 20):
        assert hash_file(path, piece_length, sha256=True) == expected_hashes(blob, piece_length)


# --- errors --------------------------------------------------------------------------------------


def test_missing_file_is_named(tmp_path: Path) -> None:
    gone = tmp_path / "gone.bin"
    with pytest.raises(MissingFileError) as info:
        hash_file(gone, BLOCK_SIZE)
    assert info.value.path == str(gone)
    with pytest.raises(MissingFileError) as info:
        hash_files([tmp_path / "x", gone], BLOCK_SIZE)
    assert info.value.path == str(tmp_path / "x")


def test_directory_and_fifo_are_not_files(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="not a regular file"):
        hash_file(tmp_path, BLOCK_SIZE)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(MissingFileError, match="not a regular file"):
        hash_file(fifo, BLOCK_SIZE)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"x")
    path.chmod(0)
    with pytest.raises(FileVerificationError) as info:
        hash_file(path, BLOCK_SIZE)
    assert info.value.path == str(path)


@pytest.mark.parametrize("change", ["grow", "shrink"])
def test_file_changing_while_read(tmp_path: Path, change: str) -> None:
    path = tmp_path / "moving"
    path.write_bytes(bytes(2 * hashing.READ_SIZE))

    def meddle(_: int) -> None:
        if change == "grow":
            with path.open("ab") as f:
                f.write(b"more")
        else:
            os.truncate(path, 10)

    with pytest.raises(FileVerificationError, match="changed while") as info:
        hash_file(path, BLOCK_SIZE, progress=meddle)
    assert info.value.path == str(path)


@pytest.mark.usefixtures("force_parallel")
@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize(
    ("meddle", "error"),
    [
        (lambda p: p.write_bytes(b"abcdef"), FileVerificationError),
        (lambda p: p.unlink(), MissingFileError),
    ],
    ids=["changed", "vanished"],
)
def test_file_changed_between_plan_and_read(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pool: str,
    meddle: Callable[[Path], object],
    error: type[Exception],
) -> None:
    use_pool(monkeypatch, pool)
    paths = [tmp_path / f"f{i}" for i in range(4)]
    for path in paths:
        path.write_bytes(b"abc")
    stats = [os.stat(p) for p in paths]  # the plan is made from these
    meddle(paths[2])
    with pytest.raises(error) as info:
        hash_files(paths, BLOCK_SIZE, workers=2, stats=stats)
    assert info.value.path == str(paths[2])  # type: ignore[attr-defined]


def _replace_keeping_size_and_mtime(path: Path) -> None:
    """Another file at ``path``: the same bytes, size and mtime, another inode and ctime."""
    st = path.stat()
    copy = path.with_name(path.name + ".copy")
    copy.write_bytes(path.read_bytes())
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(copy, path)


@pytest.mark.usefixtures("force_parallel")
@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("size", [3, 3 * BLOCK_SIZE + 5])  # read whole, and in regions
def test_keys_make_the_engine_read_the_very_file_planned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: str, size: int
) -> None:
    use_pool(monkeypatch, pool)
    paths = [tmp_path / f"f{i}" for i in range(4)]
    for path in paths:
        path.write_bytes(random.Random(size).randbytes(size))
    stats, keys = hashing.stat_files_and_keys(paths)
    assert hash_files(paths, BLOCK_SIZE, workers=2, stats=stats, keys=keys) == hash_files(
        paths, BLOCK_SIZE
    )
    _replace_keeping_size_and_mtime(paths[2])
    assert hash_files(paths, BLOCK_SIZE, workers=2, stats=stats)  # size and mtime still match
    with pytest.raises(FileVerificationError, match="another file was found") as info:
        hash_files(paths, BLOCK_SIZE, workers=2, stats=stats, keys=keys)
    assert info.value.path == str(paths[2])  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="one stat key per path"):
        hash_files(paths, BLOCK_SIZE, stats=stats, keys=keys[:-1])


def test_stats_from_the_caller(tmp_path: Path) -> None:
    paths = [tmp_path / f"f{i}" for i in range(3)]
    for i, path in enumerate(paths):
        path.write_bytes(b"x" * (i * 20000))
    stats = [os.lstat(p) for p in paths]
    assert hash_files(paths, BLOCK_SIZE, stats=stats) == hash_files(paths, BLOCK_SIZE)
    with pytest.raises(ValueError):
        hash_files(paths, BLOCK_SIZE, stats=stats[:2])
    with pytest.raises(ValueError):
        hash_files([tmp_path], BLOCK_SIZE, stats=[os.lstat(tmp_path)])  # not a regular file
    paths[1].write_bytes(b"y" * 20001)  # changed since the caller's stat
    with pytest.raises(FileVerificationError) as info:
        hash_files(paths, BLOCK_SIZE, stats=stats)
    assert info.value.path == str(paths[1])


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FileHasher(3 * BLOCK_SIZE)
    with pytest.raises(ValueError):
        hash_files([], BLOCK_SIZE, workers=0)
    assert hash_files([], BLOCK_SIZE) == []


# --- libtorrent ----------------------------------------------------------------------------------

LIBTORRENT_SIZES = [0, 1, 16383, 16384, 16385, 2**20 + 1, 5 * 2**20 + 4321]


def test_roots_match_libtorrent(tmp_path: Path) -> None:
    lt = pytest.importorskip("libtorrent")
    top = tmp_path / "sizes"
    top.mkdir()
    rng = random.Random(52)
    for size in LIBTORRENT_SIZES:
        (top / f"f{size:08d}").write_bytes(rng.randbytes(size))
    ct = lt.create_torrent(lt.list_files(str(top)), 0, lt.create_torrent.v2_only)
    lt.set_piece_hashes(ct, str(tmp_path))
    layout = lt.torrent_info(lt.bencode(ct.generate())).layout()
    checked = 0
    for i in range(layout.num_files()):
        if layout.file_flags(i) & layout.flag_pad_file:
            continue
        path = tmp_path / layout.file_path(i)
        ours = hash_file(path, layout.piece_length()).root
        assert (ours or bytes(32)) == layout.root(i).to_bytes(), path.name
        assert bep52_root(path.read_bytes()) == ours
        checked += 1
    assert checked == len(LIBTORRENT_SIZES)
