"""The compiled hashing core gives exactly the pure-Python engine's results and errors.

``hash_files`` runs each batch through ``owmanifest.manifest._hashcore`` when it is built (C,
OpenSSL's digests, the GIL released) and through Python otherwise. Everything here compares the
two on the same files: results for any sizes, piece lengths and options (regions included), and
the error, path, expected and observed values for every way a file can be bad. The tests that
need the core skip where it is not built; ``OWMANIFEST_REQUIRE_CORE=1`` (set by ``.ci/run``)
turns that skip into a failure, so CI cannot pass on the fallback alone.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from owmanifest.errors import FileVerificationError, MissingFileError
from owmanifest.manifest import document, hashing, merkle
from owmanifest.manifest.document import compiled_reader
from owmanifest.manifest.hashing import FileHashes, engine, hash_file, hash_files
from owmanifest.manifest.merkle import BLOCK_SIZE

from .fixtures import remove_file, replace_by_dangling_symlink, replace_by_directory

SETTINGS = settings(
    deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _require_core() -> Any:
    core = hashing._core()
    if core is None:
        if os.environ.get("OWMANIFEST_REQUIRE_CORE"):
            pytest.fail("OWMANIFEST_REQUIRE_CORE is set but the compiled hashing core is missing")
        pytest.skip("the compiled hashing core is not built (no C compiler at install time?)")
    return core


@pytest.fixture(params=["sha-extensions", "openssl"])
def core(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The core, its leaves hashed two at a time with the CPU's SHA extensions (ADR 0009), or
    all by OpenSSL: every comparison runs with both."""
    module = _require_core()
    before = module.sha_extensions()
    if request.param == "sha-extensions" and not module.sha_extensions(True):
        pytest.skip("this processor has no SHA extensions (or the core was built without them)")
    if request.param == "openssl":
        module.sha_extensions(False)
    try:
        yield module
    finally:
        module.sha_extensions(before)


def run(engine_name: str, monkeypatch: pytest.MonkeyPatch, fn: Callable[[], Any]) -> Any:
    """``fn()`` with the compiled core (``"compiled"``) or without it (``"python"``)."""
    with monkeypatch.context() as m:
        if engine_name == "python":
            m.setattr(hashing, "_core", lambda: None)
        return fn()


def outcome(engine_name: str, monkeypatch: pytest.MonkeyPatch, fn: Callable[[], Any]) -> Any:
    """The result, or the error as (type, message, path, expected, observed)."""
    try:
        return run(engine_name, monkeypatch, fn)
    except FileVerificationError as exc:
        return (type(exc), str(exc), exc.path, exc.expected, exc.observed)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Cut even tiny inputs into regions and parallel tasks."""
    monkeypatch.setattr(hashing, "_INLINE_BYTES", 0)
    monkeypatch.setattr(hashing, "_REGION_SIZE", 2 * BLOCK_SIZE)
    monkeypatch.setattr(hashing, "_BATCH_FILES", 3)
    yield


# --- results --------------------------------------------------------------------------------------

EDGE_SIZES = [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 2 * BLOCK_SIZE, 3 * BLOCK_SIZE + 7,
              8 * BLOCK_SIZE, 8 * BLOCK_SIZE + 1, 65 * BLOCK_SIZE + 100]  # fmt: skip


@pytest.mark.parametrize("piece_length", [BLOCK_SIZE, 2 * BLOCK_SIZE, 8 * BLOCK_SIZE, 1 << 20])
@pytest.mark.parametrize("v1", [False, True])
@pytest.mark.parametrize("sha", [False, True])
def test_edge_sizes(
    core: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    piece_length: int,
    v1: bool,
    sha: bool,
) -> None:
    paths = []
    for size in EDGE_SIZES:
        path = tmp_path / f"f{size}"
        path.write_bytes(random.Random(size).randbytes(size))
        paths.append(path)

    def hashed() -> list[FileHashes]:
        return hash_files(paths, piece_length, v1=v1, sha256=sha)

    compiled = hashed()
    assert compiled == run("python", monkeypatch, hashed)
    assert compiled == [hash_file(p, piece_length, v1=v1, sha256=sha) for p in paths]


# Sizes around every boundary of two files hashed together (run_pair, with the SHA extensions):
# the 64-byte blocks of SHA, the 55/56 bytes where its padding takes a second block, the 16 KiB
# leaves and the 32 KiB pieces below.
PAIR_SIZES = [0, 1, 55, 56, 64, 65, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 63,
              2 * BLOCK_SIZE - 56, 2 * BLOCK_SIZE, 2 * BLOCK_SIZE + 1,
              5 * BLOCK_SIZE - 9]  # fmt: skip


@pytest.mark.parametrize("v1", [False, True])
def test_every_pair_of_small_files(core: Any, tmp_path: Path, v1: bool) -> None:
    """Each file of any two read and hashed together is hashed as it is on its own."""
    paths = []
    for size in PAIR_SIZES:
        path = tmp_path / f"f{size}"
        path.write_bytes(random.Random(size).randbytes(size))
        paths.append(path)
    piece_length = 2 * BLOCK_SIZE
    alone = {p: hash_file(p, piece_length, v1=v1) for p in paths}
    jobs = {p: hashing._Job(0, str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths}
    for a in paths:
        for b in paths:  # one batch of two files, as hash_files makes them
            assert hashing._run_task([jobs[a], jobs[b]], piece_length, v1, False) == [
                alone[a],
                alone[b],
            ]


@pytest.mark.usefixtures("small_batches")
@SETTINGS
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=9 * BLOCK_SIZE), max_size=10),
    piece_length=st.sampled_from([BLOCK_SIZE, 2 * BLOCK_SIZE, 4 * BLOCK_SIZE, 16 * BLOCK_SIZE]),
    v1=st.booleans(),
    sha=st.booleans(),
    workers=st.integers(min_value=1, max_value=3),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_compiled_equals_python(
    core: Any,
    monkeypatch: pytest.MonkeyPatch,
    sizes: list[int],
    piece_length: int,
    v1: bool,
    sha: bool,
    workers: int,
    seed: int,
) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, size in enumerate(sizes):
            path = Path(tmp, f"f{i}")
            path.write_bytes(rng.randbytes(size))
            paths.append(path)
        seen: list[int] = []

        def hashed() -> list[FileHashes]:
            return hash_files(
                paths, piece_length, v1=v1, sha256=sha, workers=workers, progress=seen.append
            )

        compiled = hashed()
        assert sum(seen) == sum(sizes)
        assert compiled == run("python", monkeypatch, hashed)


def test_large_reads(core: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of several read buffers, piece lengths below and above the buffer."""
    monkeypatch.setattr(hashing, "READ_SIZE", 4 * BLOCK_SIZE)
    blob = random.Random(9).randbytes(37 * BLOCK_SIZE + 5)
    path = tmp_path / "big"
    path.write_bytes(blob)
    for piece_length in (BLOCK_SIZE, 2 * BLOCK_SIZE, 16 * BLOCK_SIZE, 64 * BLOCK_SIZE):
        got = hash_files([path], piece_length, sha256=True)[0]
        assert got == hash_file(path, piece_length, sha256=True)
        assert got.sha256 == hashlib.sha256(blob).digest()


def test_any_byte_flip_changes_the_compiled_result(core: Any, tmp_path: Path) -> None:
    blob = bytearray(random.Random(3).randbytes(5 * BLOCK_SIZE + 11))
    path = tmp_path / "f"
    path.write_bytes(blob)
    before = hash_files([path], 2 * BLOCK_SIZE)[0]
    rng = random.Random(4)
    for _ in range(20):
        where = rng.randrange(len(blob))
        blob[where] ^= 1 << rng.randrange(8)
        path.write_bytes(blob)
        after = hash_files([path], 2 * BLOCK_SIZE)[0]
        assert after.root != before.root and after.v1_pieces != before.v1_pieces
        blob[where] ^= 0xFF  # a different byte again, never the original
        before = after


def test_digests_are_hashlibs(core: Any) -> None:
    for size in (0, 1, 55, 56, 63, 64, 65, BLOCK_SIZE, 3 * BLOCK_SIZE + 1):
        data = random.Random(size).randbytes(size)
        assert core.sha256(data) == hashlib.sha256(data).digest()
        assert core.sha1(data) == hashlib.sha1(data).digest()


@SETTINGS
@given(a=st.binary(max_size=3 * BLOCK_SIZE), b=st.binary(max_size=3 * BLOCK_SIZE))
def test_two_digests_at_once_are_hashlibs(core: Any, a: bytes, b: bytes) -> None:
    assert core.sha256_two(a, b) == (hashlib.sha256(a).digest(), hashlib.sha256(b).digest())
    assert core.sha1_two(a, b) == (hashlib.sha1(a).digest(), hashlib.sha1(b).digest())


@pytest.mark.parametrize("size_b", [0, 1, 55, 56, 63, 64, 119, 120, 128, BLOCK_SIZE])
def test_two_digests_at_every_padding_boundary(core: Any, size_b: int) -> None:
    data = random.Random(size_b).randbytes(BLOCK_SIZE + 200)
    b = data[:size_b]
    for size_a in range(0, 200):
        a = data[size_a : 2 * size_a]
        assert core.sha256_two(a, b) == (hashlib.sha256(a).digest(), hashlib.sha256(b).digest())
        assert core.sha1_two(a, b) == (hashlib.sha1(a).digest(), hashlib.sha1(b).digest())


@pytest.mark.parametrize("size", [0, 1, *EDGE_SIZES[2:], 64 * BLOCK_SIZE + 64])
def test_leaf_hashes_are_hashlibs(core: Any, size: int) -> None:
    """``merkle.leaf_hashes`` (what the transports check pieces with) through the core."""
    data = random.Random(size).randbytes(size)
    expected = [
        hashlib.sha256(data[i : i + BLOCK_SIZE]).digest() for i in range(0, size, BLOCK_SIZE)
    ]
    assert core.leaf_hashes(data) == b"".join(expected)
    assert merkle.leaf_hashes(data) == expected
    assert merkle.leaf_hashes(bytearray(data)) == expected
    assert merkle.leaf_hashes(memoryview(data)[:size]) == expected


def test_sha_extensions_follow_the_processor(core: Any) -> None:
    assert core.sha_extensions(False) is False
    on = core.sha_extensions(True)
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "sha_ni" in flags.split():
        assert on is True  # x86-64 with SHA: the core must use them
    assert hashing.sha_extensions() is on


# --- errors ---------------------------------------------------------------------------------------


def _fifo(p: Path) -> None:
    p.unlink()
    os.mkfifo(p)


def _grown(p: Path) -> None:
    with p.open("ab") as f:
        f.write(b"more")


def _rewritten_same_size(p: Path) -> None:
    st = p.stat()
    p.write_bytes(b"X" * st.st_size)
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def _unreadable(p: Path) -> None:
    p.chmod(0)


# Each changes file number 2 after hash_files took its stat and before it is read.
BAD_FILES: dict[str, Callable[[Path], None]] = {
    "missing": remove_file,
    "directory": replace_by_directory,
    "fifo": _fifo,
    "grown": _grown,
    "rewritten-same-size": _rewritten_same_size,
    "dangling-link": replace_by_dangling_symlink,
    "unreadable": _unreadable,
}


def _same_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    prepare: Callable[[list[Path]], Callable[[], object]],
    *,
    count: int = 4,
    size: int = 3,
    bad: int = 2,
) -> tuple[Any, ...]:
    """Both engines give the same error for file number ``bad`` (of ``count`` files of
    ``size`` bytes) gone bad after ``prepare(paths)`` made the call to run (and took whatever
    stats or plan it takes); returns that error (type, message, expected, observed)."""
    if name == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    results = []
    for engine_name in ("compiled", "python"):
        top = tmp_path / engine_name
        top.mkdir()
        paths = [top / f"f{i}" for i in range(count)]
        for path in paths:
            path.write_bytes(b"a" * size)
        call = prepare(paths)
        BAD_FILES[name](paths[bad])
        got = outcome(engine_name, monkeypatch, call)
        assert isinstance(got, tuple), f"{engine_name} accepted a {name} file"
        kind, message, path, expected, observed = got
        assert path == str(paths[bad])
        results.append((kind, message.replace(str(top), "TOP"), expected, observed))
    assert results[0] == results[1]
    return results[0]


def _hash_files_of(planned: bool) -> Callable[[list[Path]], Callable[[], object]]:
    """hash_files over the paths, with their stats taken now (``planned``) or by it."""

    def prepare(paths: list[Path]) -> Callable[[], object]:
        stats = [os.stat(p) for p in paths] if planned else None
        return functools.partial(hash_files, paths, BLOCK_SIZE, stats=stats)

    return prepare


def _after_plan_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, size: int, planned: bool
) -> None:
    kind = _same_error(tmp_path, monkeypatch, name, _hash_files_of(planned), size=size)[0]
    gone = {"missing", "dangling-link", "directory", "fifo"}  # no regular file there
    assert issubclass(kind, MissingFileError) == (name in gone)


@pytest.mark.parametrize("name", list(BAD_FILES))
@pytest.mark.parametrize("size", [3, 3 * BLOCK_SIZE])
def test_the_same_errors_after_the_plan(
    core: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, size: int
) -> None:
    _after_plan_or_not(tmp_path, monkeypatch, name, size, planned=True)


@pytest.mark.parametrize(
    "name", ["missing", "directory", "fifo", "dangling-link", "grown", "unreadable"]
)
def test_the_same_errors_when_planning(
    core: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """hash_files takes the stats itself (the compiled core's stat pass, or os.stat)."""
    if name == "grown":  # nothing to see at planning time: the file is simply larger
        top = tmp_path / "t"
        top.mkdir()
        path = top / "f"
        path.write_bytes(b"abc")
        _grown(path)
        assert hash_files([path], BLOCK_SIZE) == run(
            "python", monkeypatch, lambda: hash_files([path], BLOCK_SIZE)
        )
        return
    _after_plan_or_not(tmp_path, monkeypatch, name, 3, planned=False)


@pytest.mark.parametrize("follow", [True, False])
def test_stat_files_follows_links_on_request(
    core: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, follow: bool
) -> None:
    """Both engines: a link to a regular file is one only when links are followed."""
    (tmp_path / "f").write_bytes(b"abc")
    (tmp_path / "link").symlink_to("f")
    paths = [tmp_path / "f", tmp_path / "link"]
    results = [
        outcome(e, monkeypatch, lambda: hashing.stat_files(paths, follow_symlinks=follow))
        for e in ("compiled", "python")
    ]
    assert results[0] == results[1]
    if follow:
        assert results[0].sizes == [3, 3]
    else:
        link = str(paths[1])
        assert results[0][:3] == (MissingFileError, f"{link}: not a regular file", link)


@pytest.mark.parametrize("name", list(BAD_FILES))
@pytest.mark.parametrize("bad", [0, 1])
def test_the_same_errors_in_a_pair(
    core: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, bad: int
) -> None:
    """Two small files in one batch (read and hashed together with the SHA extensions): the
    file that went bad after the plan, first or second, is the one named, as in Python."""

    def prepare(paths: list[Path]) -> Callable[[], object]:
        jobs = [hashing._Job(i, str(p), p.stat().st_size, p.stat().st_mtime_ns) for i, p in
                enumerate(paths)]  # fmt: skip
        return functools.partial(hashing._run_task, jobs, BLOCK_SIZE, True, False)

    _same_error(tmp_path, monkeypatch, name, prepare, count=2, size=3 * BLOCK_SIZE, bad=bad)


def test_a_file_that_shrinks_after_the_open(core: Any, tmp_path: Path) -> None:
    """The size and mtime are checked again after the read (here: a shorter read)."""
    path = tmp_path / "f"
    path.write_bytes(b"a" * 100)
    st = os.stat(path)
    os.truncate(path, 50)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the size alone gives it away
    with pytest.raises(FileVerificationError, match="changed while") as info:
        hash_files([path], BLOCK_SIZE, stats=[st])
    assert info.value.path == str(path)
    assert info.value.observed == "50 bytes"


# --- the interface --------------------------------------------------------------------------------

B = BLOCK_SIZE
# (jobs, piece length, buffer size) that hash_jobs refuses before it reads anything
BAD_CALLS: dict[str, tuple[Any, int, int]] = {
    "piece-not-power-of-two": ([], 3 * B, B),
    "piece-too-small": ([], B // 2, B),
    "buffer-not-blocks": ([], B, B + 1),
    "buffer-too-large": ([], B, 1 << 30),
    "job-not-tuple": ([[0, b"x", 0, 0, 0, -1]], B, B),
    "job-short": ([(0, b"x", 0, 0, 0)], B, B),
    "path-int": ([(0, 5, 0, 0, 0, -1)], B, B),
    "path-nul": ([(0, b"x\0y", 0, 0, 0, -1)], B, B),
    "path-str-nul": ([(0, "x\0y", 0, 0, 0, -1)], B, B),
    "size-negative": ([(0, b"x", -1, 0, 0, -1)], B, B),
    "region-unaligned": ([(0, b"x", 10 * B, 0, 5, B)], B, B),
    "region-past-end": ([(0, b"x", B, 0, 0, 2 * B)], B, B),
    "size-not-int": ([(0, b"x", "3", 0, 0, -1)], B, B),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_calls_raise(core: Any, name: str) -> None:
    jobs, piece_length, buffer_size = BAD_CALLS[name]
    with pytest.raises((TypeError, ValueError)):
        core.hash_jobs(jobs, piece_length, False, False, buffer_size)


def test_pure_python_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OWMANIFEST_PURE_PYTHON", "1")
    hashing._core.cache_clear()
    document._compiled_reader.cache_clear()
    try:
        assert engine() == "python"
        assert hashing._core() is None
        assert not compiled_reader()
    finally:
        monkeypatch.delenv("OWMANIFEST_PURE_PYTHON")
        hashing._core.cache_clear()
        document._compiled_reader.cache_clear()


def test_the_core_is_built_where_ci_requires_it() -> None:
    if not os.environ.get("OWMANIFEST_REQUIRE_CORE"):
        pytest.skip("OWMANIFEST_REQUIRE_CORE is not set")
    assert engine() == "compiled"
    assert compiled_reader()  # the other compiled part: the verifier's one pass (ADR 0008)


def test_version_names_the_engine(capsys: pytest.CaptureFixture[str]) -> None:
    from owmanifest.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code in (0, None)
    out = capsys.readouterr().out
    assert out.startswith("owmanifest ")
    assert ("compiled core" if engine() == "compiled" else "pure Python") in out
    reading = out.split("manifest reading: ")[1]
    assert reading.startswith("compiled" if compiled_reader() else "pure Python")
