"""The owmeta integration's owmeta-core-independent half: manifest URLs, trust, ManifestSource.

These run without the ``owmeta`` extra: ``owmanifest.integrations.owmeta`` imports without
owmeta-core, and :class:`ManifestSource` (what both loaders use) is plain owmanifest.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from owmanifest.errors import FetchError, PolicyError, RollbackError, UsageError
from owmanifest.integrations.owmeta import (
    FetchOptions,
    ManifestSource,
    manifest_url,
    trust_policy,
)
from owmanifest.manifest.builder import build_manifest
from owmanifest.manifest.document import load_document
from owmanifest.manifest.jsonld import dumps, manifest_to_jsonld
from owmanifest.signing import sign_document
from owmanifest.verify.truststore import TrustStore

from .fixtures import DIDS, key
from .transport_support import RangeServer, serve

CREATED = "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("owmanifest+https://h/b.jsonld", "https://h/b.jsonld"),
        ("owmanifest+http://127.0.0.1:8/x/b.jsonld", "http://127.0.0.1:8/x/b.jsonld"),
        ("owmanifest+file:///srv/b.jsonld", "file:///srv/b.jsonld"),
        ("https://h/b.jsonld", "https://h/b.jsonld"),
        ("file:///srv/b.jsonld", "file:///srv/b.jsonld"),
    ],
)
def test_manifest_url(url: str, expected: str) -> None:
    assert manifest_url(url) == expected


@pytest.mark.parametrize(
    "url", ["owmanifest+ftp://h/b", "owmanifest+file://otherhost/b", "owmanifest:b", "/srv/b"]
)
def test_manifest_url_refuses_other_urls(url: str) -> None:
    with pytest.raises(UsageError, match="not the URL of a manifest"):
        manifest_url(url)


@pytest.mark.parametrize(
    "kwargs",
    [{"transports": ("ftp",)}, {"transports": ()}, {"stall_timeout": 0}, {"timeout": -1}],
)
def test_fetch_options_refuse_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        FetchOptions(**kwargs)  # type: ignore[arg-type]


def test_trust_policy_sources(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no trusted keys"):
        trust_policy(FetchOptions())
    assert DIDS["bob"] in trust_policy(FetchOptions(trust=(DIDS["bob"],))).trusted
    trust_file = tmp_path / "trust.json"
    trust_file.write_text(
        json.dumps({"type": "owmanifest-trust", "version": 1, "keys": [{"id": DIDS["carol"]}]})
    )
    policy = trust_policy(FetchOptions(trust_files=(str(trust_file),)))
    assert policy.trusted == {DIDS["carol"]}
    TrustStore.default().add(DIDS["alice"])
    assert trust_policy(FetchOptions()).trusted == {DIDS["alice"]}
    TrustStore.default().revoke(DIDS["carol"], reason="test")
    both = trust_policy(FetchOptions(trust_files=(str(trust_file),), trust=(DIDS["bob"],)))
    assert DIDS["carol"] in both.revoked and both.trusted == {DIDS["bob"]}
    # the remote's trust replaces the store: when it leaves nobody trusted, nobody is (a review
    # found the whole store trusted instead), whether the file's keys are revoked or absent
    with pytest.raises(PolicyError, match="trusts no key"):
        trust_policy(FetchOptions(trust_files=(str(trust_file),)))
    with pytest.raises(PolicyError, match="trusts no key"):
        trust_policy(FetchOptions(trust=(DIDS["carol"],)))


def _publish(root: Path, version: int, mirror: str) -> Path:
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "a.csv").write_text(f"version,{version}\n" * 100)
    (data / "sub").mkdir(exist_ok=True)
    (data / "sub" / "b.bin").write_bytes(bytes(range(256)) * 300)
    built = build_manifest(
        data,
        dataset_id="https://openworm.org/data/source-test",
        version=version,
        signers=[DIDS["alice"]],
        threshold=1,
        mirrors=[mirror + "data/"],
        created=CREATED,
    )
    signed = sign_document(
        load_document(dumps(manifest_to_jsonld(built.manifest)), source="s.jsonld"),
        key("alice"),
        created=CREATED,
    )
    path = root / f"v{version}.jsonld"
    path.write_bytes(signed)
    assert built.torrent is not None
    (root / f"v{version}.jsonld.torrent").write_bytes(built.torrent)
    return path


@contextlib.contextmanager
def _site_with_v2(tmp_path: Path) -> Iterator[tuple[Path, RangeServer]]:
    """Version 2 of the test dataset published on a loopback HTTP server, alice trusted."""
    site = tmp_path / "site"
    site.mkdir()
    with serve(site) as server:
        _publish(site, 2, server.url())
        TrustStore.default().add(DIDS["alice"])
        yield site, server


def test_manifest_source_verifies_then_fetches_over_http(tmp_path: Path) -> None:
    with _site_with_v2(tmp_path) as (site, server):
        source = ManifestSource(
            f"owmanifest+{server.url()}v2.jsonld", FetchOptions(transports=("http",))
        )
        vm = source.verified()
        assert vm.manifest.version == 2 and vm.signers == (DIDS["alice"],)
        dest = source.fetch(tmp_path / "dest")
        assert (dest / "a.csv").read_text() == (site / "data" / "a.csv").read_text()
        assert (dest / "sub" / "b.bin").read_bytes() == (
            site / "data" / "sub" / "b.bin"
        ).read_bytes()

        # rollback protection: version 2 is recorded, version 1 is now refused
        _publish(site, 1, server.url())
        with pytest.raises(RollbackError, match="older"):
            ManifestSource(f"owmanifest+{server.url()}v1.jsonld").verified()

        missing = ManifestSource(f"owmanifest+{server.url()}nope.jsonld")
        with pytest.raises(FetchError) as info:
            missing.verified()
        assert info.value.observed == "HTTP 404"
        with pytest.raises(FetchError):  # the failure is remembered, not retried
            missing.verified()


def test_manifest_source_refuses_an_untrusted_manifest_before_any_transfer(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    with serve(site) as server:
        _publish(site, 1, server.url())
        TrustStore.default().add(DIDS["bob"])
        source = ManifestSource(f"owmanifest+{server.url()}v1.jsonld")
        with pytest.raises(PolicyError, match="trusted signatures"):
            source.fetch(tmp_path / "dest")
        assert not (tmp_path / "dest").exists()
        assert [r.path for r in server.requests] == ["v1.jsonld"]


@pytest.mark.parametrize(
    ("options", "bittorrent"),
    [
        pytest.param({"dht": False}, False, id="no-dht-no-peer"),
        pytest.param({"dht": False, "peers": ("127.0.0.1:6881",)}, True, id="a-peer"),
        pytest.param(
            {"dht": False, "trackers": ("http://127.0.0.1:1/announce",)}, True, id="tracker"
        ),
        pytest.param({}, True, id="dht"),
    ],
)
def test_bittorrent_is_left_out_when_it_cannot_find_peers(
    tmp_path: Path, options: dict[str, object], bittorrent: bool
) -> None:
    """With no DHT, peer or tracker, BitTorrent would only wait out the stall timeout, for
    every bundle (found by a review: 60 s each): the command line's rule, shared."""
    with _site_with_v2(tmp_path) as (_, server):
        source = ManifestSource(
            f"owmanifest+{server.url()}v2.jsonld",
            FetchOptions(transports=("bittorrent", "http"), **options),  # type: ignore[arg-type]
        )
        sources = source.sources()
        try:
            names = [type(s).__name__ for s in sources]
        finally:
            for s in sources:
                s.close()
    assert ("BitTorrentTransport" in names) is bittorrent
    assert "HttpTransport" in names


@contextlib.contextmanager
def _raw_server(answer: bytes) -> Iterator[str]:
    """A server that answers every request with ``answer`` (raw bytes) and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)

    def serve_forever() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(answer)

    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/m.jsonld"
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (b"garbage\r\n\r\n", "BadStatusLine"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"x" * 70000 + b"\r\n\r\n", "LineTooLong|got more than"),
        (b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"a"', "cut short"),
    ],
    ids=["bad-status-line", "header-too-long", "truncated-body"],
)
def test_a_misbehaving_manifest_server_is_a_fetch_error(answer: bytes, match: str) -> None:
    """Not a bare http.client exception (which ended owm's whole fetch), nor a truncated body
    read as bad JSON (found by a review)."""
    with _raw_server(answer) as url, pytest.raises(FetchError, match=match) as info:
        ManifestSource(f"owmanifest+{url}", FetchOptions(trust=(DIDS["alice"],))).verified()
    if "cut short" in match:
        assert (info.value.expected, info.value.observed) == ("1000 bytes", "4 bytes")
