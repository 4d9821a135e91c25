"""owmeta-core (PyOpenWorm) fetching real OpenWorm bundles through owmanifest.

The shared bundle archives are imported into a manifest signed with the fixed test key
``alice``; ``owm`` (owmeta-core's own command line, in a subprocess with its own profile and
bundle cache) gets an ``owmanifest+...`` remote and runs ``owm bundle fetch`` for
``openworm/owmeta-data`` version 6 (and, through owmeta-core, its dependencies); the installed
bundle is then opened and queried through owmeta-core. Over BitTorrent from a loopback seeder,
then with the seeder down and an HTTP mirror up. A tampered archive and a manifest signed by an
untrusted key are refused before anything reaches the bundle cache.

Everything skips, with the reason, when owmeta-core (the ``owmeta`` extra) is not installed.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from owmanifest.errors import UsageError
from owmanifest.verify.truststore import TrustStore
from tests.unit.fixtures import DIDS

pytest.importorskip(
    "owmeta_core.bundle",
    reason="owmeta-core is not installed: pip install -e '.[test,owmeta]' to run these tests",
)
if "owmanifest" not in {ep.name for ep in metadata.entry_points(group="owmeta_core.loaders")}:
    pytest.skip(
        "owmanifest's owmeta-core entry points are not installed (pip install -e '.[owmeta]')",
        allow_module_level=True,
    )

from owmanifest.integrations.owmeta import (
    MANIFEST_PROPERTY,
    FetchOptions,
    ManifestSource,
    OwmanifestBundleLoader,
    OwmanifestDataSourceDirLoader,
    OwmanifestURLConfig,
)

from ..unit.transport_support import RangeServer, serve
from .owmeta_support import (
    Owm,
    Published,
    closed_port,
    files_under,
    publish,
    query_bundle,
    tampered_copy,
)

pytestmark = pytest.mark.network

DATA = "openworm/owmeta-data"
ARCHIVE_6 = "owmeta-bundles/bundles/openworm%2Fowmeta-data/6.tar.xz"


@pytest.fixture(scope="module")
def index(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "owmeta-bundles" / "index.json"
    if not path.is_file():
        pytest.skip(f"the published owmeta bundle index is not at {path}")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("site")


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[RangeServer]:
    """A loopback HTTP server (Range-capable) serving ``site``."""
    with serve(site) as running:
        yield running


@pytest.fixture(scope="module")
def mirror(server: RangeServer) -> str:
    """The base URL of ``site`` on ``server``."""
    return server.url()


@pytest.fixture(scope="module")
def published(index: Path, site: Path, mirror: str) -> Published:
    """The real bundle archives, signed by alice, mirrored at ``<mirror>owmeta-bundles/``."""
    return publish(index, site, "owmeta-bundles", base_url=mirror + "owmeta-bundles/")


@pytest.fixture(scope="module")
def untrusted(index: Path, site: Path, mirror: str) -> Published:
    """The same archives in a manifest made and signed by mallory."""
    return publish(
        index, site, "mallory-bundles", base_url=mirror + "mallory-bundles/", signer="mallory"
    )


@pytest.fixture
def owm(tmp_path: Path) -> Owm:
    return Owm(tmp_path)


def _trust_alice() -> None:
    TrustStore.default().add(DIDS["alice"], name="test maintainer")


def _check_installed(owm: Owm) -> None:
    """owmeta-data 6 and its dependencies are installed, and owmeta-core can query them."""
    for bundle_id, version in ((DATA, 6), ("openworm/owmeta-core", 1)):
        bdir = owm.bundles / bundle_id.replace("/", "%2F") / str(version)
        assert (bdir / "manifest").is_file(), files_under(owm.bundles)
    info = query_bundle(owm.bundles, DATA, 6)
    assert info["manifest"]["id"] == DATA and info["manifest"]["version"] == 6
    assert len(info["contexts"]) > 100, info["contexts"][:5]
    assert all(c.startswith("http://") for c in info["contexts"])
    assert info["graphs"] > 100
    assert info["triples"] > 10_000


def _bittorrent() -> object:
    try:
        from owmanifest.transport import bittorrent
    except ImportError as exc:
        pytest.skip(f"owmanifest.transport.bittorrent is not available: {exc}")
    return bittorrent


# --- the happy paths ------------------------------------------------------------------------------


def test_owm_fetches_a_signed_bundle_over_bittorrent(published: Published, owm: Owm) -> None:
    bt: object = _bittorrent()
    _trust_alice()
    seeder_class = getattr(bt, "Seeder")  # noqa: B009
    with seeder_class(
        published.manifest,
        published.torrent,
        published.layout,
        listen="127.0.0.1:0",
        dht=False,
    ) as seeder:
        seeder.wait_ready(timeout=120)
        added = owm.add_remote(
            "openworm-signed",
            f"owmanifest+file://{published.manifest_path}",
            "--peers",
            f"127.0.0.1:{seeder.port}",
            "--no-dht",
            "--listen",
            "127.0.0.1:0",
            "--transports",
            "bittorrent",
        )
        assert added.returncode == 0, added.stderr
        assert "owmanifest+file://" in added.stdout and "bittorrent" in added.stdout
        result = owm.fetch(DATA, 6)
        assert result.returncode == 0, result.stdout + result.stderr
        uploaded = seeder.status()["uploaded"]
    assert uploaded >= published.manifest.file("bundles/openworm%2Fowmeta-data/6.tar.xz").size
    _check_installed(owm)


def test_owm_falls_back_to_an_http_mirror_when_the_seeder_is_down(
    published: Published, owm: Owm, server: RangeServer, mirror: str, tmp_path: Path
) -> None:
    trust_file = tmp_path / "openworm-trust.json"
    trust_file.write_text(
        json.dumps({"type": "owmanifest-trust", "version": 1, "keys": [{"id": DIDS["alice"]}]})
    )
    added = owm.add_remote(
        "openworm-signed",
        f"owmanifest+{mirror}owmeta-bundles.jsonld",
        "--trust-file",
        str(trust_file),
        "--peers",
        f"127.0.0.1:{closed_port()}",
        "--no-dht",
        "--listen",
        "127.0.0.1:0",
        "--stall-timeout",
        "5",
    )
    assert added.returncode == 0, added.stderr
    before = len([r for r in server.requests if r.path == ARCHIVE_6])
    result = owm.fetch(DATA, None)  # the latest version the signed manifest lists: 6
    assert result.returncode == 0, result.stdout + result.stderr
    _check_installed(owm)
    # the archive came from the mirror the signed manifest lists
    assert published.manifest.mirrors == (mirror + "owmeta-bundles/",)
    assert len([r for r in server.requests if r.path == ARCHIVE_6]) > before


def test_the_remote_reads_back_from_its_file(published: Published, owm: Owm) -> None:
    assert owm.add_remote("r", f"owmanifest+file://{published.manifest_path}").returncode == 0
    shown = owm.run("bundle", "remote", "--user", "show", "r")
    assert shown.returncode == 0, shown.stderr
    assert f"owmanifest+file://{published.manifest_path}" in shown.stdout
    assert "your owmanifest trust store" in shown.stdout
    bad = owm.add_remote("s", f"owmanifest+file://{published.manifest_path}", "--transports", "ftp")
    assert bad.returncode != 0 and "unknown transport" in bad.stderr
    # a relative mirror directory is kept as the absolute one it named when the remote was
    # added, not re-read against every later fetch's working directory (found by a review)
    url = f"owmanifest+file://{published.manifest_path}"
    added = owm.add_remote("t", url, "--mirrors", "./copy,https://mirror.example/b/")
    assert added.returncode == 0, added.stderr
    shown = owm.run("bundle", "remote", "--user", "show", "t")
    assert str(owm.work / "copy") in shown.stdout and "https://mirror.example/b/" in shown.stdout
    config = OwmanifestURLConfig(url, mirrors=["rel/dir"], torrent="t.torrent")
    assert config.mirrors == [os.path.abspath("rel/dir")]
    assert config.torrent == os.path.abspath("t.torrent")


# --- refusals -------------------------------------------------------------------------------------


def _refused(owm: Owm, result: object, *needles: str) -> None:
    code = getattr(result, "returncode")  # noqa: B009
    err = getattr(result, "stderr")  # noqa: B009
    assert code != 0, err
    assert "LoadFailed" in err, err
    for needle in needles:
        assert needle in err, err
    assert "No loader could be found" in err, err
    # nothing reached owmeta-core's bundle cache: no bundle directory, no file
    assert files_under(owm.bundles) == []
    assert not (owm.bundles / DATA.replace("/", "%2F") / "6").exists()


def test_a_tampered_archive_is_refused_before_unpacking(
    published: Published, owm: Owm, tmp_path: Path
) -> None:
    _trust_alice()
    bad_site = tmp_path / "bad-site"
    tampered_copy(published.layout, bad_site, DATA, 6)
    with serve(bad_site) as bad_mirror:
        added = owm.add_remote(
            "openworm-signed",
            f"owmanifest+file://{published.manifest_path}",
            "--mirrors",
            bad_mirror.url(),
            "--no-manifest-mirrors",
            "--transports",
            "http",
        )
        assert added.returncode == 0, added.stderr
        result = owm.fetch(DATA, 6)
        served = [r.path for r in bad_mirror.requests]
    assert "bundles/openworm%2Fowmeta-data/6.tar.xz" in served  # it was offered the bad bytes
    _refused(owm, result, "could not be fetched", "6.tar.xz")
    # and the bad bytes are not at a final path in owmanifest's download cache either
    assert not [p for p in files_under(owm.cache) if p.endswith("6.tar.xz")]


def test_a_manifest_signed_by_an_untrusted_key_is_refused(untrusted: Published, owm: Owm) -> None:
    _trust_alice()
    added = owm.add_remote("mallory", f"owmanifest+file://{untrusted.manifest_path}")
    assert added.returncode == 0, added.stderr
    result = owm.fetch(DATA, 6)
    _refused(owm, result, "0 of the required 1 trusted signatures")
    assert files_under(owm.cache) == []  # not a byte was downloaded


# --- the API, as owmeta-core uses it ------------------------------------------------------------


def test_errors_reach_owmeta_core_as_its_load_failed(
    untrusted: Published, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from owmeta_core.bundle import Fetcher, Remote
    from owmeta_core.bundle.exceptions import NoBundleLoader
    from owmeta_core.bundle.loaders import LoadFailed

    _trust_alice()
    config = OwmanifestURLConfig(
        f"owmanifest+file://{untrusted.manifest_path}", cache_dir=str(tmp_path / "cache")
    )
    assert OwmanifestBundleLoader.can_load_from(config)
    loader = OwmanifestBundleLoader(config)
    loader.base_directory = str(tmp_path / "direct" / "6")
    with pytest.raises(LoadFailed) as info:
        loader.load(DATA, 6)
    assert "trusted signatures" in str(info.value)
    assert "expected >= 1 signatures, observed 0" in str(info.value)

    bundles = tmp_path / "bundles"
    fetcher = Fetcher(str(bundles), [Remote("mallory", [config])])
    with caplog.at_level(logging.WARNING), pytest.raises(NoBundleLoader):
        fetcher.fetch(DATA, 6)
    failures = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert any(isinstance(e, LoadFailed) and "trusted signatures" in str(e) for e in failures)
    assert files_under(bundles) == []


def test_an_unexpected_exception_still_reaches_owmeta_core_as_load_failed(
    untrusted: Published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A defect (any exception that is not owmanifest's) must not end owm's whole fetch: owm
    tries the next remote only on LoadFailed (a review found http.client's and OSError
    escaping)."""
    from owmeta_core.bundle.loaders import LoadFailed

    def broken(self: object) -> None:
        raise RuntimeError("a defect")

    monkeypatch.setattr(ManifestSource, "verified", broken)
    config = OwmanifestURLConfig(
        f"owmanifest+file://{untrusted.manifest_path}", cache_dir=str(tmp_path / "cache")
    )
    loader = OwmanifestBundleLoader(config)
    loader.base_directory = str(tmp_path / "direct" / "6")
    assert loader.can_load(DATA, 6)  # load() then says why
    for call in (lambda: loader.bundle_versions(DATA), lambda: loader.load(DATA, 6)):
        with pytest.raises(LoadFailed, match="RuntimeError: a defect"):
            call()


def test_a_data_source_naming_a_manifest_gets_a_verified_directory(
    tmp_path: Path, mirror: str, site: Path
) -> None:
    from owmeta_core import connect
    from owmeta_core.context import Context
    from owmeta_core.datasource import DataSource
    from owmeta_core.datasource_loader import LoadFailed
    from rdflib.term import URIRef

    from owmanifest.manifest.builder import build_manifest
    from owmanifest.manifest.document import load_document
    from owmanifest.manifest.jsonld import dumps, manifest_to_jsonld
    from owmanifest.signing import sign_document
    from tests.unit.fixtures import key

    data = site / "connectome"
    (data / "tables").mkdir(parents=True, exist_ok=True)
    (data / "tables" / "neurons.csv").write_text("AVAL,interneuron\nAVAR,interneuron\n")
    (data / "README").write_text("neurons of C. elegans\n")
    built = build_manifest(
        data,
        dataset_id="https://openworm.org/data/connectome-test",
        version=3,
        signers=[DIDS["alice"]],
        threshold=1,
        mirrors=[mirror + "connectome/"],
        created="2026-01-01T00:00:00Z",
    )
    signed = sign_document(
        load_document(dumps(manifest_to_jsonld(built.manifest)), source="c.jsonld"), key("alice")
    )
    (site / "connectome.jsonld").write_bytes(signed)

    conn = connect({"rdf.source": "default"})
    with conn:
        graph = conn.rdf.get_context(URIRef("http://example.org/ctx"))
        graph.add(
            (
                URIRef("http://example.org/connectome-ds"),
                URIRef(MANIFEST_PROPERTY),
                URIRef(mirror + "connectome.jsonld"),
            )
        )
        ctx = conn(Context)(ident="http://example.org/ctx")
        ds = ctx.stored(DataSource)(ident="http://example.org/connectome-ds")
        other = ctx.stored(DataSource)(ident="http://example.org/plain-ds")

        loader = OwmanifestDataSourceDirLoader(
            options=FetchOptions(transports=("http",), state=False)
        )
        loader.base_directory = str(tmp_path / "dsd")
        assert loader.can_load(ds) and not loader.can_load(other)

        with pytest.raises(LoadFailed):  # nobody trusted yet
            loader(ds)
        assert files_under(tmp_path / "dsd") == []

        _trust_alice()
        directory = Path(loader(ds))  # owmeta-core's own __call__: checks it is under base
        assert directory.is_relative_to(tmp_path / "dsd")
        assert (directory / "tables" / "neurons.csv").read_text().startswith("AVAL")
        assert (directory / "README").is_file()

    names = {ep.name for ep in metadata.entry_points(group="owmeta_core.datasource_dir_loader")}
    assert "owmanifest" in names


def test_a_bad_remote_url_is_a_message_not_a_traceback(owm: Owm) -> None:
    bad = owm.add_remote("x", "owmanifest+file://remotehost/path")
    assert bad.returncode != 0
    assert "not the URL of a manifest" in bad.stderr and "Traceback" not in bad.stderr
    with pytest.raises(UsageError):  # still owmanifest's error, from Python
        OwmanifestURLConfig("owmanifest+file://remotehost/path")
