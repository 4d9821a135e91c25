"""fetch(): verification before exposure, resume, fallback, paths, reports (no network)."""

from __future__ import annotations

import errno
import importlib
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from owmanifest.errors import FetchError, PathError, StallError, UsageError
from owmanifest.manifest.digest import BEP52, Digest
from owmanifest.manifest.model import FileEntry, Manifest
from owmanifest.transport import (
    DirectoryTransport,
    FetchPlan,
    FetchReport,
    IncompleteFetchError,
    LocalTransport,
    Progress,
    RangeTransport,
    fetch,
)
from owmanifest.transport import fetch as fetch_module_function
from owmanifest.transport._partial import PartialArea
from owmanifest.verify.result import VerifiedManifest
from tests.unit.transport_support import PIECE, Dataset, make_dataset

fetch_module = importlib.import_module("owmanifest.transport.fetch")

SIZES = {
    "big.bin": 7 * PIECE + 123,  # several pieces, last one short
    "one-piece.bin": PIECE,  # exactly one piece
    "one-more.bin": PIECE + 1,  # two pieces, the last of one byte
    "dir/sub/small.txt": 100,  # nested, smaller than a leaf block
    "empty": 0,
}


@pytest.fixture
def ds(tmp_path: Path) -> Dataset:
    return make_dataset(tmp_path / "src", SIZES)


class Recorder:
    """A Progress that records events and can interrupt the fetch."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.events: list[tuple[str, object]] = []
        self.interrupt_after = interrupt_after
        self.advanced = 0

    def start(self, total_bytes: int) -> None:
        self.events.append(("start", total_bytes))

    def advance(self, nbytes: int, source: str) -> None:
        self.events.append(("advance", nbytes))
        self.advanced += 1
        if self.interrupt_after is not None and self.advanced >= self.interrupt_after:
            raise KeyboardInterrupt

    def file_done(self, path: str) -> None:
        self.events.append(("file_done", path))

    def close(self) -> None:
        self.events.append(("close", None))


class Tampering(RangeTransport):
    """A local directory that can flip bytes at given offsets of given files, and records reads."""

    count = 0

    def __init__(self, directory: Path, bad: dict[str, set[int]] | None = None) -> None:
        Tampering.count += 1
        self.inner = LocalTransport(directory)
        self.name = f"{'tampering' if bad else 'honest'}-{Tampering.count}:{directory}"
        self.bad = bad or {}
        self.requests: list[tuple[str, int, int]] = []

    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        self.requests.append((entry.path, offset, length))
        pos = offset
        for chunk in self.inner.open_range(entry, offset, length):
            data = bytearray(chunk)
            for bad in self.bad.get(entry.path, ()):
                if pos <= bad < pos + len(data):
                    data[bad - pos] ^= 0xFF
            pos += len(data)
            yield bytes(data)


def run(ds: Dataset, dest: Path, sources: Sequence[object], **kw: object) -> FetchReport:
    kw.setdefault("piece_layers", ds.layers)
    return fetch(ds.verified, dest, sources, **kw)  # type: ignore[arg-type]


def partial_pieces_are_clean(ds: Dataset, dest: Path) -> None:
    """Every piece in the partial area is either all zero (never written) or correct."""
    partial = dest / ".owmanifest" / "partial"
    if not partial.exists():
        return
    with PartialArea(dest) as area:
        for entry in ds.manifest.files:
            pf = area.file(entry, PIECE)
            if not pf.data_path.exists():
                continue
            data = pf.data_path.read_bytes()
            good = ds.data[entry.path]
            for off in range(0, len(data), PIECE):
                piece = data[off : off + PIECE]
                assert piece == good[off : off + PIECE] or not any(piece), (entry.path, off)


def test_fetch_everything(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    progress = Recorder()
    report = run(ds, dest, [LocalTransport(ds.root)], progress=progress)
    ds.check(dest)
    assert sorted(report.fetched) == sorted(SIZES)
    assert report.ok and not report.present and not report.problems
    assert report.bytes_by_source == {str(ds.root): sum(SIZES.values())}
    assert not (dest / ".owmanifest").exists()  # nothing left behind
    assert progress.events[0] == ("start", sum(SIZES.values()))
    assert progress.events[-1] == ("close", None)
    assert sum(n for kind, n in progress.events if kind == "advance") == sum(SIZES.values())  # type: ignore[misc]
    assert {p for kind, p in progress.events if kind == "file_done"} == set(SIZES)


def test_present_files_are_kept_and_not_fetched(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    run(ds, dest, [LocalTransport(ds.root)])
    inode = (dest / "big.bin").stat().st_ino
    spy = Tampering(ds.root)
    progress = Recorder()
    report = run(ds, dest, [spy], progress=progress)
    assert sorted(report.present) == sorted(SIZES)
    assert report.fetched == () and spy.requests == []
    assert progress.events[0] == ("start", 0)
    assert (dest / "big.bin").stat().st_ino == inode


def test_files_changed_since_the_fetch_are_replaced_only_when_asked(
    ds: Dataset, tmp_path: Path
) -> None:
    """A file that differs and that owmanifest did not leave so may be the user's own work:
    nothing is transferred or replaced without replace=True (--force)."""
    dest = tmp_path / "dest"
    run(ds, dest, [LocalTransport(ds.root)])
    blob = bytearray(ds.data["big.bin"])
    blob[5] ^= 1
    (dest / "big.bin").write_bytes(bytes(blob))  # same size, other content: must be hashed
    (dest / "dir/sub/small.txt").write_bytes(b"short")
    spy = Tampering(ds.root)
    with pytest.raises(UsageError, match="not as a fetch of this dataset left them") as info:
        run(ds, dest, [spy])
    assert info.value.observed == "big.bin, dir/sub/small.txt"
    assert spy.requests == [] and (dest / "dir/sub/small.txt").read_bytes() == b"short"
    report = run(ds, dest, [LocalTransport(ds.root)], replace=True)
    ds.check(dest)
    assert sorted(report.replaced) == ["big.bin", "dir/sub/small.txt"]
    assert sorted(report.fetched) == ["big.bin", "dir/sub/small.txt"]


def test_a_users_file_at_a_dataset_path_is_not_replaced(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    (dest / "dir" / "sub").mkdir(parents=True)
    (dest / "dir/sub/small.txt").write_bytes(b"my own notes")
    with pytest.raises(UsageError, match="1 file"):
        run(ds, dest, [LocalTransport(ds.root)])
    assert (dest / "dir/sub/small.txt").read_bytes() == b"my own notes"
    assert not (dest / "big.bin").exists()  # refused before anything was transferred


def test_files_a_fetch_found_in_place_may_be_replaced_by_a_new_version(
    ds: Dataset, tmp_path: Path
) -> None:
    """Files already in place and verified are recorded like those fetched: a copy of the
    dataset made by hand, checked by one fetch, is updated by the next version's."""
    dest = tmp_path / "dest"
    shutil.copytree(ds.root, dest)
    assert sorted(run(ds, dest, [LocalTransport(ds.root)]).present) == sorted(SIZES)
    ds2 = make_dataset(tmp_path / "src2", SIZES, contents={"big.bin": b"v2" * 1000}, version=2)
    report = run(ds2, dest, [LocalTransport(ds2.root)])
    ds2.check(dest)
    assert report.replaced == ("big.bin",)


class EditsOnExposure(Recorder):
    """A Progress that, once ``path`` is in place, writes ``content`` over ``target`` (a user
    at work in the destination while the fetch goes on)."""

    def __init__(self, path: str, target: Path, content: bytes) -> None:
        super().__init__()
        self.path, self.target, self.content = path, target, content

    def file_done(self, path: str) -> None:
        super().file_done(path)
        if path == self.path:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.target.write_bytes(self.content)


def test_a_file_edited_after_it_was_put_in_place_is_not_recorded_as_left(
    ds: Dataset, tmp_path: Path
) -> None:
    """What is recorded is each file as the fetch left it, not as it is when the fetch ends:
    an edit made meanwhile is the user's, and the next version does not replace it unasked."""
    dest = tmp_path / "dest"
    edited = ds.data["big.bin"][:-1] + b"!"
    run(
        ds,
        dest,
        [LocalTransport(ds.root)],
        progress=EditsOnExposure("big.bin", dest / "big.bin", edited),
    )
    assert (dest / "big.bin").read_bytes() == edited
    ds2 = make_dataset(tmp_path / "src2", SIZES, contents={"big.bin": b"v2" * 1000}, version=2)
    with pytest.raises(UsageError, match="not as a fetch of this dataset left them") as info:
        run(ds2, dest, [LocalTransport(ds2.root)])
    assert info.value.observed == "big.bin"
    assert (dest / "big.bin").read_bytes() == edited


@pytest.mark.parametrize(
    "planned",
    [
        pytest.param("absent", id="a-file-created-where-none-was"),
        pytest.param("left-by-a-fetch", id="a-file-a-fetch-left-edited"),
        pytest.param("forced", id="a-file-forced-over-edited-again"),
    ],
)
def test_a_final_path_that_changes_during_the_fetch_is_left_as_it_is(
    ds: Dataset, tmp_path: Path, planned: str
) -> None:
    """The plan's decision (absent, or replaceable) holds for the file the plan saw: one that
    appears or changes before its turn to be moved into place is left, and reported."""
    dest = tmp_path / "dest"
    replace = False
    if planned != "absent":
        run(ds, dest, [LocalTransport(ds.root)])
        if planned == "forced":
            (dest / "dir/sub/small.txt").write_bytes(b"not the dataset's")
            replace = True
    ds2 = make_dataset(
        tmp_path / "src2",
        SIZES,
        contents={"big.bin": b"v2" * 1000, "dir/sub/small.txt": b"new"},
        version=2,
    )
    # "big.bin" is moved into place before "dir/sub/small.txt" (the order of paths).
    user = EditsOnExposure("big.bin", dest / "dir/sub/small.txt", b"the user's notes")
    spy = Tampering(ds2.root)
    with pytest.raises(IncompleteFetchError, match="changed during the fetch") as info:
        run(ds2, dest, [LocalTransport(ds2.root), spy], progress=user, replace=replace)
    assert info.value.report.failed == ("dir/sub/small.txt",)
    assert spy.requests == []  # left: no other source is asked for it
    assert (dest / "dir/sub/small.txt").read_bytes() == b"the user's notes"
    assert (dest / "big.bin").read_bytes() == b"v2" * 1000
    with pytest.raises(UsageError, match="not as a fetch of this dataset left them"):
        run(ds2, dest, [LocalTransport(ds2.root)])  # still the user's: not replaced unasked
    report = run(ds2, dest, [LocalTransport(ds2.root)], replace=True)
    assert report.fetched == ("dir/sub/small.txt",)
    ds2.check(dest)


@pytest.mark.parametrize(
    "meanwhile",
    [
        pytest.param(lambda src, dest: os.chmod(dest / "big.bin", 0o600), id="chmod"),
        pytest.param(lambda src, dest: os.unlink(src / "big.bin"), id="mirror-copy-removed"),
        pytest.param(
            lambda src, dest: os.link(dest / "big.bin", src / "another-name"), id="another-link"
        ),
    ],
)
def test_metadata_and_link_count_changes_do_not_make_a_file_the_users(
    tmp_path: Path, meanwhile: object
) -> None:
    """A file hard-linked into place (--link) gets a new ctime whenever another of its names
    comes or goes, and any file with chmod: it is still as the fetch left it."""
    ds = make_dataset(tmp_path / "src", SIZES)
    dest = tmp_path / "dest"
    run(ds, dest, [LocalTransport(ds.root, link=True)])
    assert (dest / "big.bin").stat().st_nlink == 2
    time.sleep(0.01)
    meanwhile(ds.root, dest)  # type: ignore[operator]
    ds2 = make_dataset(tmp_path / "src2", SIZES, contents={"big.bin": b"v2" * 1000}, version=2)
    report = run(ds2, dest, [LocalTransport(ds2.root)])
    assert report.replaced == ("big.bin",)
    ds2.check(dest)


def _deduplicated_mirror(tmp_path: Path) -> tuple[Dataset, Path]:
    """v1 from a mirror that keeps its two identical files as one (hardlink, rdfind), fetched
    with --link: both final paths are one file. v2 changes both."""
    same = b"same bytes" * 100
    ds = make_dataset(tmp_path / "src", SIZES, contents={"big.bin": same, "one-piece.bin": same})
    os.unlink(ds.root / "one-piece.bin")
    os.link(ds.root / "big.bin", ds.root / "one-piece.bin")
    run(ds, tmp_path / "dest", [LocalTransport(ds.root, link=True)])
    contents = {"big.bin": b"v2" * 600, "one-piece.bin": b"also v2" * 100}
    ds2 = make_dataset(tmp_path / "src2", SIZES, contents=contents, version=2)
    return ds2, ds2.root


def _renamed_in_the_mirror(tmp_path: Path) -> tuple[Dataset, Path]:
    """v1 fetched with --link; the mirror's v2 renames one file over another (mv) and writes
    the new one, so linking the first links the inode the second still has in place."""
    mirror = tmp_path / "mirror"
    ds = make_dataset(
        mirror, SIZES, contents={"big.bin": b"X" * 1000, "one-piece.bin": b"Y" * 1000}
    )
    run(ds, tmp_path / "dest", [LocalTransport(mirror, link=True)])
    contents = {"big.bin": b"Y" * 1000, "one-piece.bin": b"Z" * 1000}
    ds2 = make_dataset(tmp_path / "src2", SIZES, contents=contents, version=2)
    os.replace(mirror / "one-piece.bin", mirror / "big.bin")
    (mirror / "one-piece.bin").write_bytes(b"Z" * 1000)
    assert (mirror / "big.bin").stat().st_ino == (tmp_path / "dest/one-piece.bin").stat().st_ino
    return ds2, mirror


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(_deduplicated_mirror, id="a-deduplicated-mirror"),
        pytest.param(_renamed_in_the_mirror, id="a-file-renamed-in-the-mirror"),
    ],
)
def test_the_fetchs_own_link_changes_are_not_changes_during_the_fetch(
    tmp_path: Path, setup: Any
) -> None:
    """Replacing or linking one name of a file with other names changes the ctime of the
    others: a later file of the same fetch is still as planned (found by a review)."""
    dest = tmp_path / "dest"
    ds2, mirror = setup(tmp_path)
    time.sleep(0.01)
    report = run(ds2, dest, [LocalTransport(mirror, link=True)])
    assert sorted(report.replaced) == ["big.bin", "one-piece.bin"]
    ds2.check(dest)


def _cross_device(monkeypatch: pytest.MonkeyPatch, meanwhile: dict[str, bytes]) -> list[str]:
    """Make every move out of the partial area fail with EXDEV, as across a mount point
    inside the destination, after writing ``meanwhile``'s content at the final paths named
    there (a user at work during the copy); returns the final paths so refused."""
    refused: list[str] = []
    real = os.replace
    inside = f"{os.sep}.owmanifest{os.sep}"

    def replace(src: str, dst: str) -> None:
        if inside in os.fspath(src) and inside not in os.fspath(dst):
            refused.append(os.fspath(dst))
            if Path(dst).name in meanwhile:
                Path(dst).write_bytes(meanwhile[Path(dst).name])
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return refused


def test_across_a_mount_point_files_are_copied_into_place(
    ds: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy next to the final path, then a rename; the final path is checked again after
    the copy, and the copy never stays behind."""
    dest = tmp_path / "dest"
    meanwhile = {"small.txt": b"the user's notes"}
    refused = _cross_device(monkeypatch, meanwhile)
    with pytest.raises(IncompleteFetchError, match="changed during the fetch") as info:
        run(ds, dest, [LocalTransport(ds.root)])
    assert info.value.report.failed == ("dir/sub/small.txt",)
    assert len(refused) == len(SIZES)
    assert (dest / "dir/sub/small.txt").read_bytes() == b"the user's notes"
    assert not [p for p in dest.rglob("*") if "owmanifest-tmp" in p.name]
    meanwhile.clear()
    # Recorded as copied into place: the next version replaces them unasked.
    ds2 = make_dataset(tmp_path / "src2", SIZES, contents={"big.bin": b"v2" * 1000}, version=2)
    big = [ds2.manifest.file("big.bin")]
    assert run(ds2, dest, [LocalTransport(ds2.root)], files=big).replaced == ("big.bin",)
    os.unlink(dest / "dir/sub/small.txt")
    run(ds2, dest, [LocalTransport(ds2.root)])
    ds2.check(dest)
    assert not (dest / ".owmanifest").exists()


def test_new_version_fetches_only_changed_pieces(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    run(ds, dest, [LocalTransport(ds.root)])
    old = ds.data["big.bin"]
    new = bytearray(old[: 6 * PIECE] + b"appended in version 2" * 5000)
    new[2 * PIECE + 1] ^= 1
    ds2 = make_dataset(tmp_path / "src2", SIZES, contents={"big.bin": bytes(new)}, version=2)
    spy = Tampering(ds2.root)
    report = run(ds2, dest, [spy])
    ds2.check(dest)
    assert report.replaced == ("big.bin",)
    asked = {o // PIECE for p, o, n in spy.requests for o in range(o, o + n, PIECE)}
    assert asked == {2} | set(range(6, -(-len(new) // PIECE)))


def test_symlink_at_final_path_is_replaced_not_followed(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"do not touch")
    os.symlink(victim, dest / "big.bin")
    with pytest.raises(UsageError, match="not as a fetch of this dataset left them"):
        run(ds, dest, [LocalTransport(ds.root)])  # not owmanifest's: not replaced unasked
    assert (dest / "big.bin").is_symlink()
    report = run(ds, dest, [LocalTransport(ds.root)], replace=True)
    assert victim.read_bytes() == b"do not touch"
    assert not (dest / "big.bin").is_symlink()
    ds.check(dest)
    assert "big.bin" in report.replaced


def test_symlink_with_right_content_is_not_trusted(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(ds.root / "big.bin", dest / "big.bin")
    report = run(ds, dest, [LocalTransport(ds.root)], replace=True)
    assert "big.bin" in report.fetched and not (dest / "big.bin").is_symlink()


def test_symlinked_parent_directory_is_refused(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, dest / "dir")
    with pytest.raises(PathError, match="symbolic link"):
        run(ds, dest, [LocalTransport(ds.root)])
    assert list(outside.iterdir()) == []
    assert not (dest / "big.bin").exists()  # refused before any byte moved


def _manifest_with(ds: Dataset, entries: tuple[FileEntry, ...]) -> VerifiedManifest:
    m = ds.manifest
    manifest = Manifest(m.id, m.version, entries, m.signers, m.threshold, m.piece_length)
    v = ds.verified
    return VerifiedManifest(manifest, v.canonical_hash, v.signers, v.proofs, v.source)


@pytest.mark.parametrize(
    "path", [".owmanifest/partial/x", ".OWManifest/lock", "../escape", "/abs", "a/../../b"]
)
def test_paths_outside_or_in_the_working_area_are_refused(
    ds: Dataset, tmp_path: Path, path: str
) -> None:
    entry = FileEntry(path, 3, Digest(BEP52, bytes(32)))
    verified = _manifest_with(ds, (entry,))
    with pytest.raises(PathError):
        fetch(verified, tmp_path / "dest", [LocalTransport(ds.root)])
    assert not (tmp_path / "escape").exists() and not (tmp_path / "b").exists()


def test_directory_in_the_way_fails_that_file_only(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    (dest / "big.bin").mkdir(parents=True)
    with pytest.raises(IncompleteFetchError) as info:
        run(ds, dest, [LocalTransport(ds.root)])
    assert info.value.report.failed == ("big.bin",)
    assert "not a regular file" in str(info.value)
    ds.check(dest, ["one-piece.bin", "dir/sub/small.txt", "empty"])


@pytest.mark.parametrize("force", [False, True])
def test_a_file_where_a_directory_goes_fails_the_files_below_only(
    ds: Dataset, tmp_path: Path, force: bool
) -> None:
    """It aborted the whole fetch, even with --force (found by a review); the user's file is
    kept, and only the dataset's files below that path fail."""
    dest = tmp_path / "dest"
    (dest / "dir").mkdir(parents=True)
    (dest / "dir" / "sub").write_bytes(b"mine\n")
    with pytest.raises(IncompleteFetchError) as info:
        run(ds, dest, [LocalTransport(ds.root)], replace=force)
    assert info.value.report.failed == ("dir/sub/small.txt",)
    assert "in the way" in str(info.value)
    assert (dest / "dir" / "sub").read_bytes() == b"mine\n"
    ds.check(dest, ["big.bin", "one-piece.bin", "empty"])


def test_only_selected_files(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    wanted = [ds.entry("big.bin"), ds.entry("empty"), ds.entry("big.bin")]
    report = run(ds, dest, [LocalTransport(ds.root)], files=wanted)
    assert sorted(report.fetched) == ["big.bin", "empty"]
    assert not (dest / "one-piece.bin").exists()


def test_bad_arguments(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    src = [LocalTransport(ds.root)]
    with pytest.raises(TypeError, match="VerifiedManifest"):
        fetch(ds.manifest, dest, src)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="not a file of the manifest"):
        run(ds, dest, src, files=[FileEntry("nope", 1, Digest(BEP52, bytes(32)))])
    e = ds.entry("big.bin")
    with pytest.raises(UsageError, match="differs"):
        run(ds, dest, src, files=[FileEntry(e.path, e.size + 1, e.root)])
    with pytest.raises(UsageError, match="stall timeout"):
        run(ds, dest, src, stall_timeout=0)
    with pytest.raises(UsageError, match="not a transport"):
        run(ds, dest, ["https://example.org/"])


def test_no_sources_lists_every_file(ds: Dataset, tmp_path: Path) -> None:
    with pytest.raises(IncompleteFetchError) as info:
        run(ds, tmp_path / "dest", [])
    assert "4 of 5 file(s) could not be fetched" in str(info.value)
    assert info.value.report.fetched == ("empty",)


def test_bad_piece_drops_the_source_for_that_file(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    liar = Tampering(ds.root, {"big.bin": {3 * PIECE + 5}})
    honest = Tampering(ds.root)
    progress = Recorder()
    report = run(ds, dest, [liar, honest], progress=progress)
    ds.check(dest)
    # progress counted every byte once, including pieces kept after the bad one
    advanced = sum(n for kind, n in progress.events if kind == "advance")  # type: ignore[misc]
    assert advanced == sum(SIZES.values())
    # The liar's pieces that verified were kept: those before the bad one, and any after it
    # that were already being verified (pieces are checked on worker threads, in parallel).
    # Only the bad piece and what the liar did not get to are asked of the honest source.
    small = sum(s for p, s in SIZES.items() if p != "big.bin")
    from_liar = report.bytes_by_source[liar.name]
    assert 3 * PIECE + small <= from_liar <= SIZES["big.bin"] - PIECE + small
    assert report.bytes_by_source[honest.name] == SIZES["big.bin"] + small - from_liar
    assert honest.requests[0][:2] == ("big.bin", 3 * PIECE)
    assert all(path == "big.bin" for path, _, _ in honest.requests)
    (problem,) = report.problems
    assert (problem.source, problem.path, problem.kind) == (liar.name, "big.bin", "digest")
    assert "piece 3" in problem.message


@pytest.mark.parametrize("kind", ["fifo", "symlink-to-fifo"])
def test_a_fifo_in_a_mirror_fails_that_file_only(ds: Dataset, tmp_path: Path, kind: str) -> None:
    """Opening a FIFO waited for a writer forever: the stall dropped the whole mirror, and
    every other file it held was lost (found by a review)."""
    mirror = tmp_path / "mirror"
    shutil.copytree(ds.root, mirror)
    (mirror / "big.bin").unlink()
    if kind == "fifo":
        os.mkfifo(mirror / "big.bin")
    else:
        os.mkfifo(tmp_path / "pipe")
        (mirror / "big.bin").symlink_to(tmp_path / "pipe")
    dest = tmp_path / "dest"
    local = LocalTransport(mirror)
    with pytest.raises(FetchError) as info:
        run(ds, dest, [local], stall_timeout=60)
    report = info.value.report  # type: ignore[attr-defined]
    (problem,) = report.problems
    assert problem.path == "big.bin" and "not a regular file" in problem.message
    assert "a FIFO" in problem.message
    for path, size in SIZES.items():  # every other file came from that mirror
        if path != "big.bin":
            assert (dest / path).stat().st_size == size
    assert report.bytes_by_source[local.name] == sum(SIZES.values()) - SIZES["big.bin"]


class SlowToStart(RangeTransport):
    """Works for a while before its first byte of each range, saying it is alive."""

    def __init__(self, directory: Path, seconds: float) -> None:
        self.directory = directory
        self.seconds = seconds
        self.name = "slow-to-start"

    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            time.sleep(0.05)
            self.alive()
        yield (self.directory / entry.path).read_bytes()[offset : offset + length]


def test_a_transport_that_says_it_is_alive_does_not_stall(ds: Dataset, tmp_path: Path) -> None:
    # e.g. an HTTP mirror without range support skipping to the range (Transport.alive)
    source = SlowToStart(ds.root, 2.5)  # longer than the timeout, with 1 s to spare
    run(ds, tmp_path / "dest", [source], stall_timeout=1.0, files=[ds.entry("big.bin")])
    ds.check(tmp_path / "dest", ["big.bin"])


class BreaksAfter(RangeTransport):
    """Serves ranges of ``big.bin`` a piece per chunk, and resets after ``pieces`` chunks."""

    def __init__(self, directory: Path, pieces: int) -> None:
        self.directory = directory
        self.pieces = pieces
        self.name = f"breaks-after-{pieces}"

    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        data = (self.directory / entry.path).read_bytes()[offset : offset + length]
        for i, start in enumerate(range(0, len(data), PIECE)):
            if entry.path == "big.bin" and i == self.pieces:
                raise ConnectionResetError("connection reset by peer")
            yield data[start : start + PIECE]


class SlowProgress(Recorder):
    """Keeps the fetcher busy, so the reader thread batches what it receives."""

    def advance(self, nbytes: int, source: str) -> None:
        time.sleep(0.02)
        super().advance(nbytes, source)


def test_bytes_received_before_a_reset_are_kept(ds: Dataset, tmp_path: Path) -> None:
    breaking = BreaksAfter(ds.root, 5)
    honest = Tampering(ds.root)
    report = run(ds, tmp_path / "dest", [breaking, honest], progress=SlowProgress())
    ds.check(tmp_path / "dest")
    # every piece that arrived before the reset was verified and kept, batched or not
    assert [r for r in honest.requests if r[0] == "big.bin"] == [
        ("big.bin", 5 * PIECE, SIZES["big.bin"] - 5 * PIECE)
    ]
    (problem,) = report.problems
    assert (problem.source, problem.path) == (breaking.name, "big.bin")
    assert "reset" in problem.message


def test_hashing_threads_end_with_the_fetch(
    ds: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importlib.import_module("owmanifest.transport.fetch"), "_WORKERS", 3)
    liar = Tampering(ds.root, {"big.bin": {PIECE}})
    run(ds, tmp_path / "dest", [liar, Tampering(ds.root)])
    ds.check(tmp_path / "dest")
    assert not [t for t in threading.enumerate() if t.name.startswith("owmanifest-verify")]


def test_one_core_verifies_inline_and_stops_at_the_bad_piece(
    ds: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch_module = importlib.import_module("owmanifest.transport.fetch")
    monkeypatch.setattr(fetch_module, "_WORKERS", 1)
    before = {t.name for t in threading.enumerate()}
    liar = Tampering(ds.root, {"big.bin": {3 * PIECE + 5}})
    honest = Tampering(ds.root)
    report = run(ds, tmp_path / "dest", [liar, honest])
    ds.check(tmp_path / "dest")
    # Verified in the fetching thread: nothing after the bad piece was kept from the liar.
    small = sum(s for p, s in SIZES.items() if p != "big.bin")
    assert report.bytes_by_source[liar.name] == 3 * PIECE + small
    assert honest.requests == [("big.bin", 3 * PIECE, 4 * PIECE + 123)]
    started = {t.name for t in threading.enumerate()} - before
    assert not any(name.startswith("owmanifest-verify") for name in started)


def test_only_liars_fail_with_a_listing_and_write_nothing_bad(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    liars = [
        # Both lie about piece 2 (so no source has it); the second lies about piece 5 too.
        Tampering(ds.root, {"big.bin": {PIECE * 2}, "one-piece.bin": {0}}),
        Tampering(ds.root, {"big.bin": {PIECE * 2, PIECE * 5}, "one-piece.bin": {PIECE - 1}}),
    ]
    with pytest.raises(IncompleteFetchError) as info:
        run(ds, dest, liars)
    message = str(info.value)
    assert "2 of 5 file(s) could not be fetched" in message
    for liar in liars:
        assert message.count(liar.name) == 2  # one line per file per source
    assert message.count("piece 2 does not match") == 2
    report = info.value.report
    assert sorted(report.failed) == ["big.bin", "one-piece.bin"]
    assert not (dest / "big.bin").exists() and not (dest / "one-piece.bin").exists()
    ds.check(dest, ["one-more.bin", "dir/sub/small.txt", "empty"])
    partial_pieces_are_clean(ds, dest)
    # a later run with an honest source finishes without asking for verified pieces again
    honest = Tampering(ds.root)
    run(ds, dest, [honest])
    ds.check(dest)
    assert ("big.bin", 0, PIECE * 7 + 123) not in honest.requests
    asked = {(p, o) for p, o, _ in honest.requests}
    assert ("big.bin", 2 * PIECE) in asked  # the piece no liar had right
    assert all(o >= 2 * PIECE for p, o in asked if p == "big.bin")  # 0 and 1 verified


def test_interrupt_and_resume(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    first = Tampering(ds.root)
    with pytest.raises(KeyboardInterrupt):
        run(ds, dest, [first], progress=Recorder(interrupt_after=4))
    # nothing incomplete at a final path
    for path in SIZES:
        if (dest / path).exists():
            assert (dest / path).read_bytes() == ds.data[path]
    partial_pieces_are_clean(ds, dest)
    verified = {}
    with PartialArea(dest) as area:
        for entry in ds.manifest.files:
            pf = area.file(entry, PIECE)
            if pf.state_path.exists():
                import json

                state = json.loads(pf.state_path.read_text())
                verified[entry.path] = {i for a, b in state["verified"] for i in range(a, b)}
    assert verified and any(verified.values())
    second = Tampering(ds.root)
    run(ds, dest, [second])
    ds.check(dest)
    for path, offset, length in second.requests:
        asked = set(range(offset // PIECE, -(-(offset + length) // PIECE)))
        assert not asked & verified.get(path, set()), (path, offset, length)


@pytest.mark.parametrize("extra", [1, PIECE + 3])
def test_a_partial_file_longer_than_the_file_is_cut_to_size(
    ds: Dataset, tmp_path: Path, extra: int
) -> None:
    """Every piece verified but the whole file never matched, so nothing was asked of any
    source and the file could not be fetched until the partial area was deleted (found by a
    review: a file that shrank between versions, or a directory transport's extra bytes)."""
    dest = tmp_path / "dest"
    dest.mkdir()
    with PartialArea(dest) as area:
        pf = area.file(ds.entry("big.bin"), PIECE)
        pf.data_path.write_bytes(ds.data["big.bin"] + b"\xff" * extra)
    source = Tampering(ds.root)
    run(ds, dest, [source])
    ds.check(dest)
    assert not [r for r in source.requests if r[0] == "big.bin"]  # its pieces were all there


def test_without_piece_layer_whole_file_is_verified(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    liar = Tampering(ds.root, {"big.bin": {PIECE * 6}})
    honest = Tampering(ds.root)
    report = run(ds, dest, [liar, honest], piece_layers={})
    ds.check(dest)
    big = [p for p in report.problems if p.path == "big.bin"]
    assert [(p.source, p.kind) for p in big] == [(liar.name, "digest")]
    assert ("big.bin", 0, 7 * PIECE + 123) in honest.requests  # fetched whole


def test_bad_piece_layer_falls_back_to_whole_file(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    root = ds.entry("big.bin").root
    assert root is not None
    layers = dict(ds.layers)
    layers[root.value] = bytes(len(layers[root.value]))
    report = run(ds, dest, [LocalTransport(ds.root)], piece_layers=layers)
    ds.check(dest)
    assert [(p.path, p.kind) for p in report.problems] == [("big.bin", "layer")]


def test_link_mode_hard_links_verified_files(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    report = run(ds, dest, [LocalTransport(ds.root, link=True)])
    ds.check(dest)
    for path in SIZES:
        if SIZES[path]:
            assert (dest / path).stat().st_ino == (ds.root / path).stat().st_ino
    assert sorted(report.fetched) == sorted(SIZES)


def test_link_mode_never_links_a_wrong_file(ds: Dataset, tmp_path: Path) -> None:
    bad_src = tmp_path / "bad"
    shutil.copytree(ds.root, bad_src)
    blob = bytearray(ds.data["big.bin"])
    blob[-1] ^= 1
    (bad_src / "big.bin").write_bytes(bytes(blob))
    dest = tmp_path / "dest"
    report = run(ds, dest, [LocalTransport(bad_src, link=True), LocalTransport(ds.root)])
    ds.check(dest)
    assert (dest / "big.bin").stat().st_ino != (bad_src / "big.bin").stat().st_ino
    assert [(p.path, p.kind) for p in report.problems] == [("big.bin", "digest")]


class Blocking(RangeTransport):
    """Sends the first piece, then blocks until aborted (or released)."""

    def __init__(self, directory: Path, abortable: bool = True) -> None:
        self.inner = LocalTransport(directory)
        self.name = "blocking"
        self.abortable = abortable
        self.wake = threading.Event()
        self.calls = 0

    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        self.calls += 1
        data = b"".join(self.inner.open_range(entry, offset, length))
        yield data[:PIECE]
        self.wake.wait(60)
        raise ConnectionResetError("aborted")

    def abort(self) -> None:
        if self.abortable:
            self.wake.set()


@pytest.mark.parametrize("abortable", [True, False], ids=["abortable", "not-abortable"])
def test_stall_drops_the_source_for_every_file(
    ds: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, abortable: bool
) -> None:
    monkeypatch.setattr(fetch_module, "_ABORT_GRACE", 0.1)
    dest = tmp_path / "dest"
    blocking = Blocking(ds.root, abortable)
    try:
        report = run(ds, dest, [blocking, LocalTransport(ds.root)], stall_timeout=1.0)
    finally:
        blocking.wake.set()
    ds.check(dest)
    assert blocking.calls == 1  # never asked again after stalling
    kinds = {(p.source, p.kind) for p in report.problems}
    assert ("blocking", "stall") in kinds
    assert report.bytes_by_source["blocking"] == PIECE  # the piece it did send verified


def test_stall_error_in_listing(ds: Dataset, tmp_path: Path) -> None:
    blocking = Blocking(ds.root)
    try:
        with pytest.raises(IncompleteFetchError) as info:
            run(ds, tmp_path / "dest", [blocking], stall_timeout=0.5)
    finally:
        blocking.wake.set()
    message = str(info.value)
    assert "no verified progress for 0.5 s" in message
    assert "not tried" in message  # the other files were not attempted on a stalled source


class Copying(DirectoryTransport):
    """A DirectoryTransport that copies files from a directory into the partial paths."""

    def __init__(self, directory: Path, corrupt: bool = False, error: Exception | None = None):
        self.directory = directory
        self.corrupt = corrupt
        self.error = error
        self.name = f"copying:{directory}"
        self.plans: list[FetchPlan] = []

    def fetch_into(self, plan: FetchPlan, partial_dir: Path, progress: Progress) -> None:
        self.plans.append(plan)
        assert partial_dir.name == "partial"
        for f in plan.files:
            assert f.partial_path.parent == partial_dir
            data = bytearray((self.directory / f.entry.path).read_bytes())
            if self.corrupt:
                data[len(data) // 2] ^= 1
            f.partial_path.write_bytes(bytes(data))
            progress.advance(len(data), self.name)
            if self.error is not None:
                raise self.error


def test_directory_transport(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    copier = Copying(ds.root)
    report = run(ds, dest, [copier])
    ds.check(dest)
    (plan,) = copier.plans
    assert sorted(f.entry.path for f in plan.files) == sorted(p for p in SIZES if SIZES[p])
    root = ds.entry("big.bin").root
    assert root is not None
    assert {f.entry.path: f.piece_layer for f in plan.files}["big.bin"] == ds.layers[root.value]
    assert report.bytes_by_source == {copier.name: sum(SIZES.values())}


def test_directory_transport_bad_data_falls_back(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    honest = Tampering(ds.root)
    report = run(ds, dest, [Copying(ds.root, corrupt=True), honest])
    ds.check(dest)
    # salvage: only the corrupted piece of big.bin is fetched again
    big = [r for r in honest.requests if r[0] == "big.bin"]
    assert big == [("big.bin", (7 * PIECE + 123) // 2 // PIECE * PIECE, PIECE)]
    assert {p.kind for p in report.problems} == {"fetch"}


def test_directory_transport_error_is_reported(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    copier = Copying(ds.root, error=StallError("no peers for 60 s"))
    report = run(ds, dest, [copier, LocalTransport(ds.root)])
    ds.check(dest)
    assert any(p.kind == "stall" and p.path is None for p in report.problems)


def test_second_fetch_on_same_destination_is_refused(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with PartialArea(dest), pytest.raises(UsageError, match="another owmanifest fetch"):
        run(ds, dest, [LocalTransport(ds.root)])


def test_fetch_is_the_function(ds: Dataset) -> None:
    assert callable(fetch_module_function) and fetch_module_function is fetch


@given(
    sizes=st.lists(st.integers(1, 6 * PIECE), min_size=1, max_size=4),
    bad=st.lists(st.tuples(st.integers(0, 3), st.floats(0, 1, exclude_max=True)), max_size=6),
    layers=st.booleans(),
)
@settings(
    deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_property_liars_never_reach_final_paths(
    tmp_path_factory: pytest.TempPathFactory,
    sizes: list[int],
    bad: list[tuple[int, float]],
    layers: bool,
) -> None:
    base = tmp_path_factory.mktemp("prop")
    ds = make_dataset(base / "src", {f"f{i}.bin": n for i, n in enumerate(sizes)})
    corrupt: dict[str, set[int]] = {}
    for index, where in bad:
        if index < len(sizes):
            corrupt.setdefault(f"f{index}.bin", set()).add(int(where * sizes[index]))
    liar = Tampering(ds.root, corrupt)
    dest = base / "dest"
    kw: dict[str, object] = {} if layers else {"piece_layers": {}}
    try:
        run(ds, dest, [liar], **kw)
    except IncompleteFetchError as exc:
        assert sorted(exc.report.failed) == sorted(corrupt)
    for path, blob in ds.data.items():
        final = dest / path
        if path in corrupt:
            assert not final.exists()
        else:
            assert final.read_bytes() == blob
    if layers:
        partial_pieces_are_clean(ds, dest)
    run(ds, dest, [liar, Tampering(ds.root)], **kw)
    ds.check(dest)


class Rechunking(Tampering):
    """Like :class:`Tampering`, but hands the bytes over in chunks of the given sizes (cycled)."""

    def __init__(
        self, directory: Path, chunks: list[int], bad: dict[str, set[int]] | None = None
    ) -> None:
        super().__init__(directory, bad)
        self.chunks = chunks

    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        data = b"".join(super().open_range(entry, offset, length))
        pos, i = 0, 0
        while pos < len(data):
            n = self.chunks[i % len(self.chunks)]
            yield data[pos : pos + n]
            pos, i = pos + n, i + 1


@given(
    chunks=st.lists(st.integers(1, 3 * PIECE), min_size=1, max_size=8),
    bad=st.sets(st.integers(0, 7 * PIECE + 122), max_size=3),
    slow=st.booleans(),
)
@settings(
    deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_property_any_chunking_gives_the_same_verified_pieces(
    ds: Dataset,
    tmp_path_factory: pytest.TempPathFactory,
    chunks: list[int],
    bad: set[int],
    slow: bool,
) -> None:
    """However a source cuts its answer (pieces split across chunks, several pieces in one,
    batches joined while the fetcher is busy), exactly the pieces it sent right are kept."""
    dest = tmp_path_factory.mktemp("chunks") / "dest"
    source = Rechunking(ds.root, chunks, {"big.bin": bad})
    progress = SlowProgress() if slow else Recorder()
    try:
        run(ds, dest, [source], progress=progress)
        assert not bad
    except IncompleteFetchError as exc:
        assert bad and exc.report.failed == ("big.bin",)
    partial_pieces_are_clean(ds, dest)
    ds.check(dest, [p for p in SIZES if p != "big.bin" or not bad])
    honest = Tampering(ds.root)
    run(ds, dest, [honest])
    ds.check(dest)
    # the honest source was asked at most for the pieces from the first bad one on
    if bad:
        first_bad = min(bad) // PIECE * PIECE
        assert all(p == "big.bin" and o >= first_bad for p, o, _ in honest.requests)
    else:
        assert honest.requests == []


def test_failure_is_a_fetch_error(ds: Dataset, tmp_path: Path) -> None:
    with pytest.raises(FetchError):
        run(ds, tmp_path / "dest", [Tampering(ds.root, {"empty": {0}, "big.bin": {0}})])


class Corrupter(Recorder):
    """Damages piece 0 of big.bin in the partial area once its last piece arrived."""

    def __init__(self, dest: Path) -> None:
        super().__init__()
        self.dest = dest
        self.done = False

    def advance(self, nbytes: int, source: str) -> None:
        super().advance(nbytes, source)
        if not self.done and nbytes == 123:  # the last piece of big.bin
            self.done = True
            (part,) = [
                p
                for p in (self.dest / ".owmanifest" / "partial").glob("*.part")
                if p.stat().st_size == SIZES["big.bin"]
            ]
            with open(part, "r+b") as f:
                f.write(b"\xff")


def test_partial_file_changed_before_exposure(ds: Dataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    second = Tampering(ds.root)
    report = run(ds, dest, [Tampering(ds.root), second], progress=Corrupter(dest))
    ds.check(dest)
    assert [(p.path, p.source) for p in report.problems] == [("big.bin", "partial area")]
    assert second.requests == [("big.bin", 0, PIECE)]  # only the damaged piece again


def test_destination_errors_are_fetch_errors(
    ds: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from owmanifest.transport._partial import PartialFile

    def full(self: PartialFile, index: int, offset: int, data: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(self.data_path))

    monkeypatch.setattr(PartialFile, "write_piece", full)
    with pytest.raises(FetchError, match="No space left") as info:
        run(ds, tmp_path / "dest", [LocalTransport(ds.root)])
    assert isinstance(info.value.__cause__, OSError)
    monkeypatch.undo()  # the disk has room again: the lock was released, a re-run works
    run(ds, tmp_path / "dest", [LocalTransport(ds.root)])
    ds.check(tmp_path / "dest")
