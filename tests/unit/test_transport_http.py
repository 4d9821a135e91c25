"""HttpTransport against a loopback stdlib server that can lie in every way we know of."""

from __future__ import annotations

import base64
import importlib
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from owmanifest import __version__
from owmanifest.errors import FetchError, SizeExceededError, UsageError
from owmanifest.transport import (
    FetchReport,
    HttpTransport,
    IncompleteFetchError,
    SourceUnavailableError,
    fetch,
)
from tests.unit.transport_support import LIES, PIECE, Dataset, RangeServer, make_dataset, serve

SIZES = {
    "big.bin": 4 * PIECE + 7,  # verified piece by piece (piece layer)
    "nested/dir/one piece é.txt": 3000,  # one piece: verified by its root; quoting
    "empty": 0,
}

#: What each lie must be reported as (a fragment of the problem message), per file.
EXPECTED_REASON = {
    "wrong-bytes": "does not match",
    "short-body": "ended early",
    "too-many-bytes": "announces more bytes",
    "too-many-chunked": "longer than requested",
    "wrong-content-length": "announces fewer bytes",
    "wrong-content-range": "another byte range",
    "not-found": "does not have",
    "server-error": "HTTP 500",
    "redirect-other-host": "refusing a redirect",
    "redirect-other-port": "refusing a redirect",  # it would get the credentials (a review)
    "redirect-loop": "more than 5 redirects",
    "reset": "Connection",
    "stall": "no verified progress",
}
assert set(EXPECTED_REASON) == set(LIES)

#: A chunked body longer than the range is noticed only after the requested bytes arrived (and
#: verified): it is reported, the bytes are kept.
TRAILING = {"too-many-chunked"}


@pytest.fixture(autouse=True)
def small_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ask for at most two pieces per request, so big.bin needs several (offset > 0) ranges."""
    import importlib

    monkeypatch.setattr(
        importlib.import_module("owmanifest.transport.fetch"), "MAX_REQUEST", 2 * PIECE
    )


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return make_dataset(tmp_path_factory.mktemp("http") / "src", SIZES)


@pytest.fixture(scope="module")
def server(ds: Dataset) -> Iterator[RangeServer]:
    with serve(ds.root) as srv:
        yield srv


def get(
    ds: Dataset, server: RangeServer, dest: Path, modes: list[str], **kw: object
) -> FetchReport:
    sources = [HttpTransport(server.url(m), timeout=30) for m in modes]
    try:
        return fetch(
            ds.verified,
            dest,
            sources,
            piece_layers=ds.layers,
            # a timeout, not a timing assertion: short only where a mirror stalls on purpose
            stall_timeout=2.0 if "stall" in modes else 60.0,
            **kw,  # type: ignore[arg-type]
        )
    finally:
        for s in sources:
            s.close()


def no_bad_data(ds: Dataset, dest: Path) -> None:
    """Every file at a final path is right; every piece in the partial area is right or zero."""
    for path, blob in ds.data.items():
        if (dest / path).exists():
            assert (dest / path).read_bytes() == blob
    partial = dest / ".owmanifest" / "partial"
    if partial.exists():
        for part in partial.glob("*.part"):
            data = part.read_bytes()
            good = next(b for b in ds.data.values() if len(b) == len(data))
            for off in range(0, len(data), PIECE):
                piece = data[off : off + PIECE]
                assert piece == good[off : off + PIECE] or not any(piece)


@pytest.mark.parametrize("lie", LIES)
def test_liar_then_honest_mirror(
    ds: Dataset, server: RangeServer, tmp_path: Path, lie: str
) -> None:
    dest = tmp_path / "dest"
    report = get(ds, server, dest, [lie, "honest"])
    ds.check(dest)
    liar = server.url(lie)
    problems = [p for p in report.problems if p.source == liar]
    assert problems, report
    assert all(EXPECTED_REASON[lie] in p.message for p in problems), problems
    if lie != "stall":  # a stalled mirror is abandoned for every file at once
        assert {p.path for p in problems} == {"big.bin", "nested/dir/one piece é.txt"}
    honest_bytes = report.bytes_by_source[server.url("honest")]
    assert honest_bytes + report.bytes_by_source.get(liar, 0) == sum(SIZES.values())


@pytest.mark.parametrize("lie", sorted(set(LIES) - TRAILING))
def test_only_liars(ds: Dataset, server: RangeServer, tmp_path: Path, lie: str) -> None:
    dest = tmp_path / "dest"
    other = "wrong-bytes" if lie != "wrong-bytes" else "not-found"
    with pytest.raises(IncompleteFetchError) as info:
        get(ds, server, dest, [lie, other])
    message = str(info.value)
    assert "2 of 3 file(s) could not be fetched" in message
    assert server.url(lie) in message and server.url(other) in message
    assert f"{server.url(lie)}: {server.url(lie)}" not in message  # named once per line
    assert EXPECTED_REASON[lie] in message and EXPECTED_REASON[other] in message
    assert not (dest / "big.bin").exists()
    assert (dest / "empty").exists()
    no_bad_data(ds, dest)


def test_honest_mirror_keeps_one_connection(
    ds: Dataset, server: RangeServer, tmp_path: Path
) -> None:
    before = len(server.requests)
    report = get(ds, server, tmp_path / "dest", ["honest"])
    ds.check(tmp_path / "dest")
    assert report.bytes_by_source == {server.url("honest"): sum(SIZES.values())}
    mine = server.requests[before:]
    # big.bin in ranges of at most two pieces (see small_requests), the small file whole
    assert [r.range for r in mine] == [
        f"bytes=0-{2 * PIECE - 1}",
        f"bytes={2 * PIECE}-{4 * PIECE - 1}",
        f"bytes={4 * PIECE}-{4 * PIECE + 6}",
        "bytes=0-2999",
    ]
    assert len({r.client_port for r in mine}) == 1  # kept alive
    headers = server.headers_seen[before]
    assert headers["User-Agent"] == f"owmanifest/{__version__}"
    assert headers["Accept-Encoding"] == "identity"
    assert "Authorization" not in headers


def test_kept_alive_connection_closed_by_the_server_is_retried(
    ds: Dataset, server: RangeServer, tmp_path: Path
) -> None:
    before = len(server.requests)
    report = get(ds, server, tmp_path / "dest", ["drop-keepalive"])
    ds.check(tmp_path / "dest")
    assert not report.problems
    mine = server.requests[before:]
    assert len(mine) == 4 and len({r.client_port for r in mine}) == 4  # a new one each time


def test_same_host_redirect_is_followed(ds: Dataset, server: RangeServer, tmp_path: Path) -> None:
    report = get(ds, server, tmp_path / "dest", ["redirect-same-host"])
    ds.check(tmp_path / "dest")
    assert not report.problems


def test_resume_asks_only_for_missing_pieces(
    ds: Dataset, server: RangeServer, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    with pytest.raises(IncompleteFetchError):
        get(ds, server, dest, ["reset"])  # half of the first range arrives: piece 0 verifies
    before = len(server.requests)
    get(ds, server, dest, ["honest"])
    ds.check(dest)
    ranges = sorted(str(r.range) for r in server.requests[before:] if r.path == "big.bin")
    assert ranges == [f"bytes={PIECE}-{3 * PIECE - 1}", f"bytes={3 * PIECE}-{4 * PIECE + 6}"]


def test_bearer_token_from_environment(
    ds: Dataset, server: RangeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_TOKEN", "s3cret")
    t = HttpTransport(server.url(), token_env="MY_TOKEN")
    before = len(server.requests)
    b"".join(t.read_range(ds.entry("big.bin"), 0, 10))
    assert server.headers_seen[before]["Authorization"] == "Bearer s3cret"
    t.close()


def test_basic_auth_from_environment(
    ds: Dataset, server: RangeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OWMANIFEST_HTTP_TOKEN", raising=False)
    monkeypatch.setenv("OWMANIFEST_HTTP_USER", "worm")
    monkeypatch.setenv("OWMANIFEST_HTTP_PASSWORD", "c.elegans")
    t = HttpTransport(server.url())
    before = len(server.requests)
    b"".join(t.read_range(ds.entry("big.bin"), 0, 10))
    expected = "Basic " + base64.b64encode(b"worm:c.elegans").decode()
    assert server.headers_seen[before]["Authorization"] == expected
    t.close()


def test_credentials_never_sent_in_clear_to_remote_hosts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OWMANIFEST_HTTP_TOKEN", "s3cret")
    t = HttpTransport("http://mirror.example.org/ds/")
    assert "Authorization" not in t._headers(("http", "mirror.example.org", 80), 0, 1)
    assert t._headers(("https", "mirror.example.org", 443), 0, 1)["Authorization"]
    assert t._headers(("http", "127.0.0.1", 8080), 0, 1)["Authorization"]
    assert "Authorization" not in HttpTransport("https://mirror.example.org/", auth=False)._headers(
        ("https", "mirror.example.org", 443), 0, 1
    )


BAD_URLS = [
    "ftp://example.org/ds/",
    "example.org/ds/",
    "https://user:pw@example.org/ds/",
    "https://example.org/ds/?x=1",
    "https://example.org/ds/#frag",
    "https://example.org:99999/ds/",
    "https:///ds/",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_mirror_urls(url: str) -> None:
    with pytest.raises(UsageError):
        HttpTransport(url)


def test_url_layout_is_bep19() -> None:
    t = HttpTransport("https://example.org/data/worm")
    from owmanifest.manifest.model import FileEntry

    entry = FileEntry("a b/c#d?é.txt", 1, None)
    assert t.url_for(entry) == "https://example.org/data/worm/a%20b/c%23d%3F%C3%A9.txt"


def test_unreachable_mirror_is_unavailable(ds: Dataset) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    t = HttpTransport(f"http://127.0.0.1:{port}/ds/")
    with pytest.raises(SourceUnavailableError, match="cannot connect"):
        b"".join(t.read_range(ds.entry("big.bin"), 0, 10))


def test_a_mirror_without_range_support_is_read_once_front_to_back(
    ds: Dataset, server: RangeServer, tmp_path: Path
) -> None:
    """A mirror that answers every range with the whole file (200, as ``python -m
    http.server``) still serves a file fetched in several ranges, in one request: the rest of
    the body is kept for the next range (found by a review: such mirrors failed every file
    larger than one request, and every resume)."""
    before = len(server.requests)
    report = get(ds, server, tmp_path / "dest", ["ignore-range"])
    ds.check(tmp_path / "dest")
    assert not report.problems
    big = [r for r in server.requests[before:] if r.path == "big.bin"]
    assert len(big) == 1  # 3 ranges (see small_requests), one request


def test_a_resume_from_a_mirror_without_range_support_skips_to_the_gap(
    ds: Dataset, server: RangeServer, tmp_path: Path
) -> None:
    """Pieces already verified are not written again; the mirror's bytes before the first
    missing one are read and dropped, once."""
    dest = tmp_path / "dest"
    with pytest.raises(IncompleteFetchError):  # the first two pieces of big.bin, then a lie
        get(ds, server, dest, ["short-body"])
    before = len(server.requests)
    report = get(ds, server, dest, ["ignore-range"])
    ds.check(dest)
    assert not report.problems
    assert len([r for r in server.requests[before:] if r.path == "big.bin"]) == 1


def test_ranges_with_gaps_from_a_mirror_without_range_support_read_the_file_once(
    ds: Dataset, server: RangeServer
) -> None:
    """Each range that started after the held body's position asked for the whole file
    again: a resume with scattered missing pieces cost one whole file per gap (a review)."""
    entry = ds.entry("big.bin")
    t = HttpTransport(server.url("ignore-range"))
    before = len(server.requests)
    for index in (0, 2, 3):  # pieces 1 and 3+ are skipped by the reader, not asked again
        data = b"".join(t.read_range(entry, index * PIECE, 100))
        assert data == ds.data["big.bin"][index * PIECE : index * PIECE + 100]
    assert len(server.requests) - before == 1
    t.close()


def test_skipping_to_the_range_says_the_mirror_is_alive(
    ds: Dataset, server: RangeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Skipping the verified start of a large file on resume took longer than the stall
    timeout, which counts verified bytes: every resume stalled (found by a review)."""
    monkeypatch.setattr(importlib.import_module("owmanifest.transport.http"), "_ALIVE_BYTES", PIECE)
    entry = ds.entry("big.bin")
    t = HttpTransport(server.url("ignore-range"))
    beats: list[None] = []
    t._on_alive = lambda: beats.append(None)
    assert b"".join(t.read_range(entry, 3 * PIECE, 10)) == ds.data["big.bin"][3 * PIECE :][:10]
    assert beats  # (once per chunk of at least _ALIVE_BYTES read)
    t.close()


def test_read_range_checks_without_fetch(ds: Dataset, server: RangeServer) -> None:
    entry = ds.entry("big.bin")
    with pytest.raises(SizeExceededError):
        b"".join(HttpTransport(server.url("too-many-bytes")).read_range(entry, 0, 100))
    with pytest.raises(FetchError, match="another byte range"):
        b"".join(HttpTransport(server.url("wrong-content-range")).read_range(entry, 0, 100))
    data = b"".join(HttpTransport(server.url("ignore-range")).read_range(entry, 0, entry.size))
    assert data == ds.data["big.bin"]  # 200 is fine for the whole file


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    proc = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    if proc.returncode:
        pytest.skip(f"openssl could not make a certificate: {proc.stderr.strip()}")
    return cert, key


@pytest.fixture(scope="module")
def tls_server(ds: Dataset, tls_files: tuple[Path, Path]) -> Iterator[RangeServer]:
    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serve(ds.root, context) as srv:
        yield srv


def test_tls_certificates_are_verified_by_default(ds: Dataset, tls_server: RangeServer) -> None:
    t = HttpTransport(tls_server.url())
    with pytest.raises(SourceUnavailableError, match="TLS handshake failed"):
        b"".join(t.read_range(ds.entry("big.bin"), 0, 10))


def test_tls_with_a_trusted_certificate(
    ds: Dataset,
    tls_server: RangeServer,
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OWMANIFEST_HTTP_TOKEN", "tls-token")
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    before = len(tls_server.requests)
    with HttpTransport(tls_server.url(), ssl_context=context) as t:
        fetch(ds.verified, tmp_path / "dest", [t], piece_layers=ds.layers)
    ds.check(tmp_path / "dest")
    assert tls_server.headers_seen[before]["Authorization"] == "Bearer tls-token"


def test_no_redirect_from_https_to_http(
    ds: Dataset, tls_server: RangeServer, tls_files: tuple[Path, Path]
) -> None:
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    t = HttpTransport(tls_server.url("redirect-downgrade"), ssl_context=context)
    with pytest.raises(FetchError, match="refusing a redirect"):
        b"".join(t.read_range(ds.entry("big.bin"), 0, 10))
