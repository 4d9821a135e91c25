"""Partial-area bookkeeping: state files, resume re-verification, locking, symlink refusal."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from owmanifest.errors import PathError, UsageError
from owmanifest.transport._partial import PartialArea, _unruns, runs
from owmanifest.verify.blocks import PieceVerifier
from tests.unit.transport_support import PIECE, Dataset, make_dataset


@given(st.sets(st.integers(0, 200)))
@settings(deadline=None)
def test_runs_round_trip(indices: set[int]) -> None:
    encoded = runs(indices)
    assert _unruns(json.loads(json.dumps(encoded)), 1000) == indices
    for (a, b), (c, _) in itertools.pairwise(encoded):
        assert a < b < c  # sorted, merged, non-adjacent


@pytest.mark.parametrize(
    "junk",
    [None, "x", [1, 2], [[1]], [["a", 2]], [[True, 3]], [[5, 2]], [[-3, 2]], [[0, 10**9]]],
    ids=repr,
)
def test_unruns_ignores_junk(junk: object) -> None:
    assert _unruns(junk, 8) <= set(range(8))


@pytest.fixture
def ds(tmp_path: Path) -> Dataset:
    return make_dataset(tmp_path / "src", {"big.bin": 5 * PIECE + 100})


def checker(ds: Dataset) -> PieceVerifier:
    e = ds.entry("big.bin")
    assert e.root is not None
    return PieceVerifier(e.path, e.size, e.root.value, PIECE, ds.layers[e.root.value])


def write_pieces(ds: Dataset, dest: Path, indices: list[int]) -> None:
    c = checker(ds)
    blob = ds.data["big.bin"]
    with PartialArea(dest) as area:
        pf = area.file(ds.entry("big.bin"), PIECE)
        for i in indices:
            off, n = c.piece_span(i)
            pf.write_piece(i, off, blob[off : off + n])
        pf.close()


def test_state_survives_and_is_reverified(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    write_pieces(ds, dest, [0, 2, 3, 5])
    with PartialArea(dest) as area:
        pf = area.file(ds.entry("big.bin"), PIECE)
        state = json.loads(pf.state_path.read_text())
        assert state["verified"] == [[0, 1], [2, 4], [5, 6]]
        assert state["root"] == str(ds.entry("big.bin").root)
        # corrupt piece 2 on disk: resume must notice, not trust the state
        with open(pf.data_path, "r+b") as f:
            f.seek(2 * PIECE + 7)
            f.write(b"!")
        have = pf.load(checker(ds))
        assert pf.verified == {0, 3, 5}
        assert have == 2 * PIECE + 100
        assert json.loads(pf.state_path.read_text())["verified"] == [[0, 1], [3, 4], [5, 6]]


def _claim_only(pf_state: Path, field: str | None) -> None:
    state = json.loads(pf_state.read_text())
    state["verified"] = [[0, 1]]
    if field is not None:
        state[field] = "something else"
    pf_state.write_text(json.dumps(state))


def test_pieces_written_after_the_last_state_save_are_found(ds: Dataset, tmp_path: Path) -> None:
    """The state lists piece 0 only (a crash came before it was saved again): pieces 1 and 2,
    written and right, are verified too; a wrong piece is not; never-written ones stay holes."""
    dest = tmp_path / "dest"
    dest.mkdir()
    write_pieces(ds, dest, [0, 1, 2, 4])
    with PartialArea(dest) as area:
        pf = area.file(ds.entry("big.bin"), PIECE)
        _claim_only(pf.state_path, None)
        with open(pf.data_path, "r+b") as f:
            f.seek(4 * PIECE)
            f.write(b"!")
        assert pf.load(checker(ds)) == 3 * PIECE
        assert pf.verified == {0, 1, 2}
        assert json.loads(pf.state_path.read_text())["verified"] == [[0, 3]]


@pytest.mark.parametrize("field", ["root", "size", "path", "piece_length", "format"])
def test_state_for_another_file_means_a_full_check(ds: Dataset, tmp_path: Path, field: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    write_pieces(ds, dest, [0, 1, 2])
    with PartialArea(dest) as area:
        pf = area.file(ds.entry("big.bin"), PIECE)
        _claim_only(pf.state_path, field)
        assert pf.load(checker(ds)) == 3 * PIECE
        assert pf.verified == {0, 1, 2}
        assert json.loads(pf.state_path.read_text())["verified"] == [[0, 3]]


def test_without_a_checker_nothing_is_trusted(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    write_pieces(ds, dest, [0, 1])
    with PartialArea(dest) as area:
        assert area.file(ds.entry("big.bin"), PIECE).load(None) == 0


def test_garbage_state_means_a_full_check(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    write_pieces(ds, dest, [0, 4])
    with PartialArea(dest) as area:
        pf = area.file(ds.entry("big.bin"), PIECE)
        pf.state_path.write_text("{not json")
        assert pf.load(checker(ds)) == 2 * PIECE
        assert pf.verified == {0, 4}


def test_seed_from_an_older_file(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    old = bytearray(ds.data["big.bin"])
    old[3 * PIECE] ^= 1  # an older version differing in piece 3, and shorter
    seed = tmp_path / "old.bin"
    seed.write_bytes(bytes(old[: 5 * PIECE]))
    with PartialArea(dest) as area:
        pf = area.file(ds.entry("big.bin"), PIECE)
        assert pf.load(checker(ds), seed) == 4 * PIECE
        assert pf.verified == {0, 1, 2, 4}
    link = tmp_path / "link.bin"
    os.symlink(seed, link)
    dest2 = tmp_path / "dest2"
    dest2.mkdir()
    with PartialArea(dest2) as area:  # a symbolic link is never read
        assert area.file(ds.entry("big.bin"), PIECE).load(checker(ds), link) == 0


def test_rescan_finds_pieces_written_by_others(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    blob = bytearray(ds.data["big.bin"])
    blob[PIECE + 3] ^= 1  # piece 1 bad
    with PartialArea(dest) as area:
        pf = area.file(ds.entry("big.bin"), PIECE)
        pf.data_path.write_bytes(bytes(blob[: 4 * PIECE]))  # pieces 4 and 5 missing
        assert pf.rescan(checker(ds)) == 3 * PIECE
        assert pf.verified == {0, 2, 3}


def test_lock_excludes_a_second_fetch(tmp_path: Path) -> None:
    with PartialArea(tmp_path), pytest.raises(UsageError, match="another owmanifest fetch"):
        PartialArea(tmp_path).open()
    with PartialArea(tmp_path):  # released
        pass


def test_empty_working_area_is_removed(tmp_path: Path) -> None:
    with PartialArea(tmp_path):
        assert (tmp_path / ".owmanifest" / "partial").is_dir()
    assert not (tmp_path / ".owmanifest").exists()


def test_temporaries_left_by_a_crash_are_removed(tmp_path: Path) -> None:
    partial = tmp_path / ".owmanifest" / "partial"
    partial.mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (partial / ".abc.json.0123456789ab.tmp").write_text("{")  # killed between write and rename
    (partial / "bittorrent" / "v2").mkdir(parents=True)
    (partial / "bittorrent" / "v2" / ".resume.bencode.ffff.tmp").write_bytes(b"d")
    os.symlink(outside, partial / ".planted.tmp")
    with PartialArea(tmp_path):
        assert not list(partial.rglob("*.tmp"))
    assert outside.read_text() == "keep me"  # the link was removed, not followed


def test_atomic_writes_leave_no_temporaries(tmp_path: Path) -> None:
    from owmanifest._atomic import write_atomic

    target = tmp_path / "state.json"
    for fsync in (True, False):
        write_atomic(target, b"{}", fsync=fsync)
        write_atomic(target, b"[]", fsync=fsync)
        assert target.read_bytes() == b"[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    with pytest.raises(FileExistsError):
        write_atomic(target, b"no", overwrite=False)
    assert target.read_bytes() == b"[]"


@pytest.mark.parametrize("which", [".owmanifest", ".owmanifest/partial"])
def test_symlinked_working_area_is_refused(tmp_path: Path, which: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    if which == ".owmanifest/partial":
        (dest / ".owmanifest").mkdir()
    os.symlink(elsewhere, dest / which)
    with pytest.raises(PathError):
        PartialArea(dest).open()
    assert list(elsewhere.iterdir()) == []
