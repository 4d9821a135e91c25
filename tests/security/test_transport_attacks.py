"""Transport attacks: lying and slow mirrors, hostile transport plugins, a mirror that replays an
older signed manifest.

Each lie a single HTTP mirror can tell is tested on its own in
``tests/unit/test_transport_http.py`` (``test_liar_then_honest_mirror[*]``,
``test_only_liars[*]``); here they are combined, generated, and driven through the command line.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from owmanifest.cli import main
from owmanifest.manifest.model import FileEntry
from owmanifest.transport import HttpTransport, IncompleteFetchError, LocalTransport, fetch
from owmanifest.transport.base import DirectoryTransport, FetchPlan, Progress, RangeTransport

from ..unit.fixtures import DIDS
from ..unit.transport_support import LIES, RangeServer, serve
from .ledger import attack, false_accept, refused
from .support import (
    FaultServer,
    SignedDataset,
    fault_server,
    make_signed_dataset,
    tree,
    wrong_final_files,
)

SIZES = {"big.bin": 6 * 16384 + 99, "one-piece.txt": 3000, "empty": 0}
#: Lies that cost no waiting (the stalling one is tested with a short stall timeout below).
QUICK_LIES = tuple(lie for lie in LIES if lie != "stall")
EXAMPLES = int(os.environ.get("OWMANIFEST_SECURITY_EXAMPLES", "20"))


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> SignedDataset:
    return make_signed_dataset(tmp_path_factory.mktemp("transport"), SIZES)


@pytest.fixture(scope="module")
def liars(ds: SignedDataset) -> Iterator[RangeServer]:
    with serve(ds.root) as srv:
        yield srv


@pytest.fixture
def faulty(ds: SignedDataset) -> Iterator[FaultServer]:
    with fault_server(ds.root) as srv:
        yield srv


def test_every_lie_in_one_fetch_then_honest(
    ds: SignedDataset, liars: RangeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All twelve liars in a row (stalling one included), then an honest mirror: exact data,
    and every liar is named in the report."""
    import importlib

    fetch_module = importlib.import_module("owmanifest.transport.fetch")
    monkeypatch.setattr(fetch_module, "MAX_REQUEST", 2 * 16384)  # several ranges per file
    sources = [HttpTransport(liars.url(lie), timeout=30) for lie in LIES]
    sources.append(HttpTransport(liars.url()))
    attack("transport/http-lie", len(LIES))
    report = fetch(ds.verified, tmp_path / "d", sources, piece_layers=ds.layers, stall_timeout=2)
    assert tree(tmp_path / "d") == ds.data
    named = {p.source for p in report.problems}
    # every liar is named (one that sends a longer chunked body after the right bytes too)
    assert named >= {liars.url(lie) for lie in LIES}
    for s in sources:
        s.close()


@settings(
    deadline=None,
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    chain=st.lists(st.sampled_from(QUICK_LIES), min_size=1, max_size=5),
    honest_at=st.none() | st.integers(0, 5),
)
def test_any_chain_of_liars(
    ds: SignedDataset, liars: RangeServer, chain: list[str], honest_at: int | None
) -> None:
    """Any sequence of lying mirrors, with or without an honest one somewhere: with it, the
    exact data; without it, a clean failure and no wrong byte at a final path."""
    modes = list(chain)
    if honest_at is not None:
        modes.insert(min(honest_at, len(modes)), "honest")
    sources = [HttpTransport(liars.url(m), timeout=30) for m in modes]
    attack("transport/http-lie", len(chain))
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "d"
        try:
            fetch(ds.verified, dest, sources, piece_layers=ds.layers, stall_timeout=60)
        except IncompleteFetchError as exc:
            if honest_at is not None:
                raise AssertionError(f"{modes}: failed despite an honest mirror: {exc}") from exc
        else:
            if tree(dest) != ds.data:
                raise false_accept(f"http lies {modes}")
        if wrong_final_files(dest, ds.data):
            raise false_accept(f"http lies {modes}: {wrong_final_files(dest, ds.data)}")
    for s in sources:
        s.close()


# --- slow retrieval -------------------------------------------------------------------------------


@pytest.mark.parametrize("layers", [True, False], ids=["pieces", "whole-file"])
def test_slow_loris_mirror_is_abandoned_after_the_stall_timeout(
    ds: SignedDataset, faulty: FaultServer, tmp_path: Path, layers: bool
) -> None:
    """A mirror that sends one byte every 0.2 s keeps the connection alive forever; it is
    abandoned after the stall timeout (also for a file fetched whole, without a piece layer:
    a regression test, that mode used to restart the timer on every byte), and the next mirror
    delivers."""
    faulty.drip_interval = 0.2
    sources = [HttpTransport(faulty.url("slow-loris")), HttpTransport(faulty.url())]
    attack("transport/slow-loris")
    report = fetch(
        ds.verified,
        tmp_path / "d",
        sources,
        piece_layers=ds.layers if layers else {},
        stall_timeout=2,
    )
    assert tree(tmp_path / "d") == ds.data
    stalls = [p for p in report.problems if p.kind == "stall"]
    assert stalls and all(p.source == faulty.url("slow-loris") for p in stalls)
    for s in sources:
        s.close()


def test_slow_loris_through_the_command_line(
    ds: SignedDataset, faulty: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faulty.drip_interval = 0.2
    attack("transport/slow-loris")
    code = main(
        [
            "fetch",
            str(ds.manifest_path),
            str(tmp_path / "d"),
            "--trust",
            DIDS["alice"],
            "--transport",
            "http",
            "--stall-timeout",
            "2",
            "--mirror",
            faulty.url("slow-loris"),
            "--mirror",
            faulty.url(),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert tree(tmp_path / "d") == ds.data


def test_only_a_slow_loris_fails_cleanly(
    ds: SignedDataset, faulty: FaultServer, tmp_path: Path
) -> None:
    faulty.drip_interval = 0.2
    source = HttpTransport(faulty.url("slow-loris"))
    err = refused(
        "transport/slow-loris",
        "alone",
        lambda: fetch(ds.verified, tmp_path / "d", [source], stall_timeout=2),
        IncompleteFetchError,
    )
    assert "no verified progress" in str(err)
    assert tree(tmp_path / "d") == {"empty": b""}
    source.close()


# --- hostile transport plugins --------------------------------------------------------------------


class _Plugin(RangeTransport):
    """A third-party range transport with a bug (or a grudge), chosen by ``how``."""

    def __init__(self, ds: SignedDataset, how: str, release: threading.Event) -> None:
        self.ds, self.how, self.release, self.name = ds, how, release, f"plugin:{how}"

    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        data = self.ds.data[entry.path][offset : offset + length]
        if self.how == "wrong-bytes":
            yield bytes([data[0] ^ 1]) + data[1:]
        elif self.how == "too-many-bytes":
            yield data + b"!"
        elif self.how == "too-few-bytes":
            yield data[:-1]
        elif self.how == "not-bytes":
            yield data.decode("latin-1")  # type: ignore[misc]
        elif self.how == "raises":
            raise ZeroDivisionError("plugin bug")
        elif self.how == "hangs-without-abort":
            self.release.wait(600)
            yield data
        else:
            yield data

    def link_file(self, entry: FileEntry, target: Path) -> bool:
        if self.how == "link-symlink-to-right-bytes":
            os.symlink(self.ds.root / entry.path, target)
            return True
        if self.how == "link-wrong-file":
            target.write_bytes(b"\0" * entry.size)
            return True
        if self.how == "link-directory":
            target.mkdir()
            return True
        return self.how == "link-claims-but-does-nothing"


PLUGIN_BUGS = [
    "wrong-bytes",
    "too-many-bytes",
    "too-few-bytes",
    "not-bytes",
    "raises",
    "hangs-without-abort",
    "link-symlink-to-right-bytes",
    "link-wrong-file",
    "link-directory",
    "link-claims-but-does-nothing",
]


@pytest.mark.parametrize("how", PLUGIN_BUGS)
def test_hostile_range_plugin(
    ds: SignedDataset, tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a range plugin does, the fetcher exposes only verified regular files; an honest
    source after it completes the fetch (a plugin that hangs and ignores ``abort()`` costs the
    stall timeout plus the abort grace, shortened here, and one leaked daemon thread)."""
    import importlib

    monkeypatch.setattr(importlib.import_module("owmanifest.transport.fetch"), "_ABORT_GRACE", 0.5)
    release = threading.Event()
    plugin = _Plugin(ds, how, release)
    dest = tmp_path / "d"
    attack("transport/plugin")
    try:
        fetch(
            ds.verified,
            dest,
            [plugin, LocalTransport(ds.root)],
            piece_layers=ds.layers,
            stall_timeout=2,
        )
    finally:
        release.set()
    assert tree(dest) == ds.data
    for path in ds.data:
        if (dest / path).is_symlink():
            raise false_accept(f"plugin {how}: a symbolic link at {path}")
    assert not (dest / ".owmanifest").exists()


class _DirPlugin(DirectoryTransport):
    """A third-party directory transport (like BitTorrent) with a bug, chosen by ``how``."""

    def __init__(self, ds: SignedDataset, how: str) -> None:
        self.ds, self.how, self.name = ds, how, f"dir-plugin:{how}"

    def fetch_into(self, plan: FetchPlan, partial_dir: Path, progress: Progress) -> None:
        for f in plan.files:
            good = self.ds.data[f.entry.path]
            if self.how == "symlink-to-right-bytes":
                f.partial_path.unlink()
                f.partial_path.symlink_to(self.ds.root / f.entry.path)
            elif self.how == "garbage":
                f.partial_path.write_bytes(os.urandom(len(good)))
            elif self.how == "one-bad-piece":
                f.partial_path.write_bytes(b"\xff" * min(len(good), 16384) + good[16384:])
            elif self.how == "truncates":
                f.partial_path.write_bytes(b"")
            elif self.how == "directory":
                f.partial_path.unlink()
                f.partial_path.mkdir()
            elif self.how == "raises":
                raise RuntimeError("plugin bug")


DIR_PLUGIN_BUGS = [
    "symlink-to-right-bytes",
    "garbage",
    "one-bad-piece",
    "truncates",
    "directory",
    "raises",
]


@pytest.mark.parametrize("how", DIR_PLUGIN_BUGS)
def test_hostile_directory_plugin(ds: SignedDataset, tmp_path: Path, how: str) -> None:
    """Bytes a directory transport leaves in the partial area are verified as a regular file
    (a regression test: a symbolic link to the right bytes used to be replaced by an empty
    file that was then moved into place, unverified); good pieces are kept, bad ones fetched
    again from the next source."""
    dest = tmp_path / "d"
    attack("transport/plugin")
    report = fetch(
        ds.verified,
        dest,
        [_DirPlugin(ds, how), LocalTransport(ds.root)],
        piece_layers=ds.layers,
    )
    if tree(dest) != ds.data or wrong_final_files(dest, ds.data):
        raise false_accept(f"directory plugin {how}")
    assert report.fetched
    if how == "one-bad-piece":  # only the first piece of big.bin came from the next source
        assert report.bytes_by_source[str(ds.root)] == 16384 + 3000


# --- a mirror that replays an older signed manifest -----------------------------------------------


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SignedDataset]:
    """Three signed manifests of one dataset: v1, v2 (linking v1), and a forked v2'."""
    base = tmp_path_factory.mktemp("versions")
    v1 = make_signed_dataset(base / "v1", {"a.bin": 40_000, "b.txt": 100}, name="v1.jsonld")
    v2 = make_signed_dataset(
        base / "v2",
        {"a.bin": 40_000, "b.txt": 120},
        version=2,
        previous=v1.verified.canonical_hash,
        name="v2.jsonld",
    )
    fork = make_signed_dataset(
        base / "fork",
        {"a.bin": 40_000, "b.txt": 121},
        version=2,
        previous=v1.verified.canonical_hash,
        name="v2-fork.jsonld",
    )
    return {"v1": v1, "v2": v2, "fork": fork}


def _site(versions: dict[str, SignedDataset], root: Path) -> Path:
    """A mirror's web root: each version's manifest and data under its own directory."""
    for name, v in versions.items():
        shutil.copytree(v.root, root / name / "data")
        shutil.copy(v.manifest_path, root / name / "manifest.jsonld")
        shutil.copy(str(v.manifest_path) + ".torrent", root / name / "manifest.jsonld.torrent")
    return root


def _download(url: str, target: Path) -> Path:
    """What a user does: fetch the manifest (and its torrent) from the mirror."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".torrent"):
        with urllib.request.urlopen(url + suffix, timeout=60) as resp:  # loopback only
            Path(str(target) + suffix).write_bytes(resp.read())
    return target


def test_mirror_replaying_an_older_manifest_is_refused(
    versions: dict[str, SignedDataset], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After v2 was verified, the mirror serves v1 (genuinely signed): ``owmanifest fetch``
    exits 1 before moving a byte, and the verified v2 files stay as they are. Then a forked
    v2 (same version, other content) is refused too; ``--allow-downgrade`` overrides, loudly."""
    site = _site(versions, tmp_path / "site")
    dest = tmp_path / "dataset"
    trust = ["--trust", DIDS["alice"], "--transport", "http", "--no-manifest-mirrors"]
    with fault_server(site) as mirror:

        def fetch_version(name: str, *extra: str) -> tuple[int, str]:
            local = _download(
                mirror.url() + f"{name}/manifest.jsonld", tmp_path / name / "m.jsonld"
            )
            before = len(mirror.requests())
            code = main(
                [
                    "fetch",
                    str(local),
                    str(dest),
                    *trust,
                    "--mirror",
                    mirror.url() + f"{name}/data/",
                    *extra,
                ]
            )
            data_requests = [r for r in mirror.requests()[before:] if "/data/" in "/" + r.path]
            err = capsys.readouterr().err
            if code:
                assert data_requests == [], "bytes moved for a refused manifest"
            return code, err

        code, err = fetch_version("v2")
        assert code == 0, err
        assert tree(dest) == versions["v2"].data

        code, err = refused_cli("rollback: v1 after v2", lambda: fetch_version("v1"))
        assert "older than version 2" in err and "rollback" in err
        assert tree(dest) == versions["v2"].data  # nothing verified was lost

        code, err = refused_cli("freeze/fork: another v2", lambda: fetch_version("fork"))
        assert "already verified with different content" in err
        assert tree(dest) == versions["v2"].data

        code, err = fetch_version("v1", "--allow-downgrade")
        assert code == 0 and "WARNING" in err
        assert tree(dest) == versions["v1"].data


def refused_cli(name: str, run: object) -> tuple[int, str]:
    attack("transport/rollback")
    code, err = run()  # type: ignore[operator]
    if code == 0:
        raise false_accept(f"transport/rollback/{name}")
    assert code == 1, err
    return int(code), str(err)
