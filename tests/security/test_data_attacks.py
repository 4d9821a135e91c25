"""Data attacks: damaged bytes in a dataset or on a mirror, hostile destination trees.

Every attack goes through ``verify_tree`` (a dataset on disk) *and* through ``fetch`` (the same
damage on a source): bad bytes are refused by the first and never reach a final path through
the second, and an honest source afterwards completes the fetch with exactly the signed bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from owmanifest.errors import FileVerificationError, PathError, UsageError
from owmanifest.transport import HttpTransport, IncompleteFetchError, LocalTransport, fetch
from owmanifest.transport.base import RangeTransport
from owmanifest.verify import verify_tree

from .ledger import attack, false_accept, refused
from .support import (
    FaultServer,
    SignedDataset,
    fault_server,
    make_signed_dataset,
    tree,
    wrong_final_files,
)

#: Several pieces per file (16 KiB pieces), block edges, a one-piece file, an empty file.
SIZES = {
    "big.bin": 5 * 16384 + 123,
    "edge/16384.bin": 16384,
    "edge/16385.bin": 16385,
    "small.txt": 700,
    "empty": 0,
}
EXAMPLES = int(os.environ.get("OWMANIFEST_SECURITY_EXAMPLES", "20"))


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> SignedDataset:
    return make_signed_dataset(tmp_path_factory.mktemp("data-attacks"), SIZES)


@pytest.fixture(scope="module")
def server(ds: SignedDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultServer]:
    """Serves ``<tmp>/mirrors``; each test puts its damaged copy in a subdirectory."""
    mirrors = tmp_path_factory.mktemp("mirrors")
    with fault_server(mirrors) as srv:
        yield srv


def no_bad_partial_pieces(ds: SignedDataset, dest: Path) -> None:
    """Every piece in the partial area is exactly right or never written (zeros)."""
    from .support import verified_pieces

    partial = dest / ".owmanifest" / "partial"
    if not partial.exists():
        return
    plen = ds.manifest.piece_length
    good = verified_pieces(dest, ds)
    for part in partial.glob("*.part"):
        data = part.read_bytes()
        owner = next((p for p, b in ds.data.items() if len(b) == len(data)), None)
        assert owner is not None, f"{part.name}: a partial file of no expected size"
        for i in range(-(-len(data) // plen)):
            piece = data[i * plen : (i + 1) * plen]
            if (owner, i) not in good:
                assert not any(piece), f"{owner} piece {i}: unverified bytes in the partial area"


def sources_for(kind: str, mirror: Path, server: FaultServer) -> list[RangeTransport]:
    if kind == "local":
        return [LocalTransport(mirror)]
    if kind == "local-link":
        return [LocalTransport(mirror, link=True)]
    rel = mirror.relative_to(server.directory).as_posix()
    return [HttpTransport(server.url("honest") + rel + "/", timeout=30)]


def fetch_from_damaged(
    ds: SignedDataset, server: FaultServer, mirror: Path, kind: str, damaged: str
) -> Path:
    """Fetch from the damaged mirror only (must fail for ``damaged``), then add an honest one."""
    dest = mirror.parent / "dest"
    sources = sources_for(kind, mirror, server)
    err = refused(
        "data/fetch",
        f"{kind}:{damaged}",
        lambda: fetch(ds.verified, dest, sources, piece_layers=ds.layers, stall_timeout=60),
        IncompleteFetchError,
    )
    assert err.report.failed == (damaged,), err.report
    assert not (dest / damaged).exists()
    if wrong_final_files(dest, ds.data):
        raise false_accept(f"data/fetch {kind}:{damaged}: {wrong_final_files(dest, ds.data)}")
    no_bad_partial_pieces(ds, dest)
    report = fetch(ds.verified, dest, [*sources, LocalTransport(ds.root)], piece_layers=ds.layers)
    assert damaged in report.fetched
    assert tree(dest) == ds.data
    verify_tree(ds.verified, dest, strict=True)
    for s in sources:
        s.close()
    return dest


# --- a single flipped bit, anywhere ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["local", "local-link", "http"])
@settings(
    deadline=None,
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_single_bit_flip_is_refused_by_verify_tree_and_fetch(
    ds: SignedDataset, server: FaultServer, kind: str, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(sorted(p for p, b in ds.data.items() if b)), label="file")
    offset = data.draw(st.integers(0, len(ds.data[path]) - 1), label="offset")
    bit = data.draw(st.integers(0, 7), label="bit")
    with tempfile.TemporaryDirectory(dir=server.directory) as tmp:
        mirror = Path(tmp) / "mirror"
        shutil.copytree(ds.root, mirror)
        raw = bytearray((mirror / path).read_bytes())
        raw[offset] ^= 1 << bit
        (mirror / path).write_bytes(bytes(raw))

        err = refused(
            "data/verify_tree",
            f"flip {path}@{offset}.{bit}",
            lambda: verify_tree(ds.verified, mirror),
            FileVerificationError,
        )
        assert err.report is not None
        assert [(p.path, p.kind) for p in err.report.problems] == [(path, "digest")]
        fetch_from_damaged(ds, server, mirror, kind, path)


# --- a table of other damage ----------------------------------------------------------------------


def _truncate(path: str) -> Callable[[Path], object]:
    return lambda root: (root / path).write_bytes((root / path).read_bytes()[:-1])


def _empty(path: str) -> Callable[[Path], object]:
    return lambda root: (root / path).write_bytes(b"")


def _symlink_to_wrong(path: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        other = root.parent / "elsewhere"
        other.write_bytes(b"\0" * (root / path).stat().st_size)
        (root / path).unlink()
        os.symlink(other, root / path)

    return damage


def _directory(path: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        (root / path).unlink()
        (root / path).mkdir()
        (root / path / "inside").write_bytes(b"x")

    return damage


def _missing(path: str) -> Callable[[Path], None]:
    return lambda root: (root / path).unlink()


def _swap(a: str, b: str) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        ta, tb = (root / a).read_bytes(), (root / b).read_bytes()
        (root / a).write_bytes(tb)
        (root / b).write_bytes(ta)

    return damage


#: Damage that verify_tree must report (path, kind) and that a fetch from a mirror carrying it
#: must refuse for that file.
DAMAGE: dict[str, tuple[Callable[[Path], object], str, str]] = {
    "truncated-by-one": (_truncate("big.bin"), "big.bin", "size"),
    "emptied": (_empty("small.txt"), "small.txt", "size"),
    "replaced-by-symlink-to-other-bytes": (_symlink_to_wrong("big.bin"), "big.bin", "symlink"),
    "replaced-by-directory": (_directory("small.txt"), "small.txt", "not-a-file"),
    "missing": (_missing("edge/16385.bin"), "edge/16385.bin", "missing"),
    # same-size files swapped: mix-and-match of genuine content under the wrong names
    "two-files-swapped": (_swap("edge/16384.bin", "edge/16385.bin"), "", "size"),
}


@pytest.mark.parametrize("kind", ["local", "http"])
@pytest.mark.parametrize("case", DAMAGE.values(), ids=DAMAGE.keys())
def test_damage_is_refused_by_verify_tree_and_fetch(
    ds: SignedDataset,
    server: FaultServer,
    tmp_path: Path,
    kind: str,
    case: tuple[Callable[[Path], object], str, str],
) -> None:
    damage, path, problem = case
    with tempfile.TemporaryDirectory(dir=server.directory) as tmp:
        mirror = Path(tmp) / "mirror"
        shutil.copytree(ds.root, mirror)
        damage(mirror)
        err = refused(
            "data/verify_tree",
            f"{problem} {path}",
            lambda: verify_tree(ds.verified, mirror),
            FileVerificationError,
        )
        assert err.report is not None
        kinds = {(p.path, p.kind) for p in err.report.problems}
        if path:
            assert kinds == {(path, problem)}
            fetch_from_damaged(ds, server, mirror, kind, path)
        else:  # the swap: both files have the other's size
            assert kinds == {("edge/16384.bin", "size"), ("edge/16385.bin", "size")}
            dest = Path(tmp) / "dest"
            sources = sources_for(kind, mirror, server)
            err2 = refused(
                "data/fetch",
                f"{kind}:swap",
                lambda: fetch(ds.verified, dest, sources, piece_layers=ds.layers),
                IncompleteFetchError,
            )
            assert set(err2.report.failed) == {"edge/16384.bin", "edge/16385.bin"}
            assert wrong_final_files(dest, ds.data) == []


def test_extended_file_verify_tree_refuses_and_fetch_takes_only_declared_bytes(
    ds: SignedDataset, server: FaultServer
) -> None:
    """Appended bytes: the dataset fails; a fetch reads exactly the declared size (a local
    mirror) or refuses the mirror's other version (HTTP: its Content-Range names another size)."""
    with tempfile.TemporaryDirectory(dir=server.directory) as tmp:
        mirror = Path(tmp) / "mirror"
        shutil.copytree(ds.root, mirror)
        with open(mirror / "big.bin", "ab") as f:
            f.write(b"appended by an attacker")
        err = refused(
            "data/verify_tree",
            "extended",
            lambda: verify_tree(ds.verified, mirror),
            FileVerificationError,
        )
        assert err.report is not None
        assert [(p.path, p.kind) for p in err.report.problems] == [("big.bin", "size")]
        dest = Path(tmp) / "dest-local"
        attack("data/fetch")
        fetch(ds.verified, dest, [LocalTransport(mirror)], piece_layers=ds.layers)
        assert (dest / "big.bin").read_bytes() == ds.data["big.bin"]  # not one byte more
        fetch_from_damaged(ds, server, mirror, "http", "big.bin")


def test_extra_and_case_colliding_files(ds: SignedDataset, tmp_path: Path) -> None:
    """Files the manifest does not list are reported (and refused with ``strict``), never
    fetched; a case-colliding twin of a listed file is one of them."""
    data = tmp_path / "data"
    shutil.copytree(ds.root, data)
    (data / "SMALL.TXT").write_bytes(b"a case-colliding twin")
    (data / "edge" / "extra.bin").write_bytes(b"not in the manifest")
    os.symlink("/etc/passwd", data / "link-to-outside")
    report = verify_tree(ds.verified, data)
    assert set(report.extra) == {"SMALL.TXT", "edge/extra.bin", "link-to-outside"}
    err = refused(
        "data/verify_tree",
        "extra files (strict)",
        lambda: verify_tree(ds.verified, data, strict=True),
        FileVerificationError,
    )
    assert err.report is not None
    assert {p.kind for p in err.report.problems} == {"extra"}
    dest = tmp_path / "dest"
    attack("data/fetch")
    fetch(ds.verified, dest, [LocalTransport(data)], piece_layers=ds.layers)
    assert tree(dest) == ds.data  # neither the twin nor the extra file came along
    assert not (dest / "link-to-outside").exists()


# --- a hostile destination ------------------------------------------------------------------------


def test_symlink_at_final_path_is_replaced_never_followed(
    ds: SignedDataset, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"must not change")
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(victim, dest / "small.txt")
    attack("data/destination")
    # not ours: not replaced unasked
    with pytest.raises(UsageError, match="not as a fetch of this dataset left them"):
        fetch(ds.verified, dest, [LocalTransport(ds.root)], piece_layers=ds.layers)
    assert (dest / "small.txt").is_symlink() and victim.read_bytes() == b"must not change"
    report = fetch(
        ds.verified, dest, [LocalTransport(ds.root)], piece_layers=ds.layers, replace=True
    )
    assert "small.txt" in report.replaced
    assert not (dest / "small.txt").is_symlink()
    assert (dest / "small.txt").read_bytes() == ds.data["small.txt"]
    assert victim.read_bytes() == b"must not change"


def test_hard_link_at_final_path_is_replaced_not_written_through(
    ds: SignedDataset, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"x" * len(ds.data["small.txt"]))  # right size, wrong bytes
    dest = tmp_path / "dest"
    dest.mkdir()
    os.link(victim, dest / "small.txt")
    attack("data/destination")
    # not ours: not replaced unasked
    with pytest.raises(UsageError, match="not as a fetch of this dataset left them"):
        fetch(ds.verified, dest, [LocalTransport(ds.root)], piece_layers=ds.layers)
    assert victim.read_bytes() == b"x" * len(ds.data["small.txt"])
    fetch(ds.verified, dest, [LocalTransport(ds.root)], piece_layers=ds.layers, replace=True)
    assert (dest / "small.txt").read_bytes() == ds.data["small.txt"]
    assert victim.read_bytes() == b"x" * len(ds.data["small.txt"])


def test_symlinked_parent_directory_is_refused(ds: SignedDataset, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / "edge")
    refused(
        "data/destination",
        "symlinked parent",
        lambda: fetch(ds.verified, dest, [LocalTransport(ds.root)], piece_layers=ds.layers),
        PathError,
    )
    assert list(outside.iterdir()) == []


def test_symlinked_working_area_is_refused(ds: SignedDataset, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(outside, dest / ".owmanifest")
    refused(
        "data/destination",
        "symlinked .owmanifest",
        lambda: fetch(ds.verified, dest, [LocalTransport(ds.root)], piece_layers=ds.layers),
        PathError,
    )
    assert list(outside.iterdir()) == []


def test_directory_at_final_path_is_kept_and_reported(ds: SignedDataset, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    (dest / "small.txt").mkdir(parents=True)
    (dest / "small.txt" / "mine").write_bytes(b"a user's file")
    err = refused(
        "data/destination",
        "directory at final path",
        lambda: fetch(ds.verified, dest, [LocalTransport(ds.root)], piece_layers=ds.layers),
        IncompleteFetchError,
    )
    assert err.report.failed == ("small.txt",)
    assert (dest / "small.txt" / "mine").read_bytes() == b"a user's file"


def test_tampered_partial_area_is_never_trusted(ds: SignedDataset, tmp_path: Path) -> None:
    """Bytes planted in the partial area (and a state that vouches for them) are verified
    again on resume: the bad piece is fetched anew, the final file is exact."""
    from owmanifest.transport._partial import PartialArea

    dest = tmp_path / "dest"
    entry = ds.manifest.file("big.bin")
    with PartialArea(dest.resolve() if dest.exists() else _mk(dest)) as area:
        part = area.file(entry, ds.manifest.piece_length)
        good = ds.data["big.bin"]
        for i in range(ds.pieces("big.bin")):
            off = i * 16384
            piece = good[off : off + 16384]
            part.write_piece(i, off, piece if i != 2 else b"\xff" * len(piece))
        part.close()  # the state now claims every piece, piece 2 included
    attack("data/partial-area")
    report = fetch(ds.verified, dest, [LocalTransport(ds.root)], piece_layers=ds.layers)
    assert (dest / "big.bin").read_bytes() == good
    assert report.bytes_by_source[str(ds.root)] >= 16384  # piece 2 came again


def test_symlink_planted_in_partial_area_is_not_followed(ds: SignedDataset, tmp_path: Path) -> None:
    import hashlib

    victim = tmp_path / "victim"
    victim.write_bytes(b"must not change")
    dest = tmp_path / "dest"
    partial = dest / ".owmanifest" / "partial"
    partial.mkdir(parents=True)
    keyname = hashlib.sha256(b"big.bin").hexdigest()[:40]
    os.symlink(victim, partial / f"{keyname}.part")
    attack("data/partial-area")
    fetch(ds.verified, dest, [LocalTransport(ds.root)], piece_layers=ds.layers)
    assert victim.read_bytes() == b"must not change"
    assert (dest / "big.bin").read_bytes() == ds.data["big.bin"]


def test_two_fetches_into_one_destination_are_refused(ds: SignedDataset, tmp_path: Path) -> None:
    from owmanifest.transport._partial import PartialArea

    dest = _mk(tmp_path / "dest")
    with PartialArea(dest):
        refused(
            "data/destination",
            "concurrent fetch",
            lambda: fetch(ds.verified, dest, [LocalTransport(ds.root)], piece_layers=ds.layers),
            UsageError,
        )


def _mk(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()
