"""Fetching from a real nginx (Debian package) on loopback: full fetch, interrupt, resume.

The server is started from a configuration file written here (``-p PREFIX -c CONF``,
``daemon off;``, pid and logs in the temporary directory). Requests are counted in nginx's own
access log, so the resume test checks what the server saw, not what the client believes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from owmanifest.transport import FetchReport, HttpTransport, IncompleteFetchError, fetch
from owmanifest.transport._partial import PartialArea
from tests.nginx_support import NGINX
from tests.nginx_support import nginx as start_nginx
from tests.unit.transport_support import PIECE, Dataset, make_dataset

pytestmark = pytest.mark.network

SIZES = {
    "a/b/c/medium.dat": 200_000,  # 13 pieces, nested
    "big/huge.bin": 3 * 1024 * 1024 + 5,  # 193 pieces
    "empty.dat": 0,
    "exact.bin": 4 * PIECE,  # a whole number of pieces
    "small file.txt": 500,  # one piece, a space in the name
}


LOG_LINE = re.compile(r'^(\d+) (\d+) "GET (\S+) HTTP/1\.1" (\d+) "([^"]*)" (\d+)$')


@dataclass
class Hit:
    connection: int
    path: str
    status: int
    range: str
    sent: int


@dataclass
class Nginx:
    url: str
    access_log: Path

    def hits(self) -> list[Hit]:
        out = []
        for line in self.access_log.read_text().splitlines():
            m = LOG_LINE.match(line)
            assert m, line
            conn, _, uri, status, rng, sent = m.groups()
            out.append(Hit(int(conn), uri, int(status), rng, int(sent)))
        return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    base = tmp_path_factory.mktemp("nginx-data")
    return make_dataset(base / "www" / "ds", SIZES)


@pytest.fixture(scope="module")
def nginx(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx-light)")
    prefix = tmp_path_factory.mktemp("nginx")
    try:
        server = start_nginx(dataset.root.parent, prefix)
        url = server.__enter__()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield Nginx(url + "ds/", prefix / "access.log")
    finally:
        server.__exit__(None, None, None)


class StopAfter:
    """A Progress that interrupts the fetch (like Ctrl-C) after ``n`` verified pieces."""

    def __init__(self, n: int) -> None:
        self.n = n

    def start(self, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int, source: str) -> None:
        self.n -= 1
        if self.n <= 0:
            raise KeyboardInterrupt

    def file_done(self, path: str) -> None:
        pass

    def close(self) -> None:
        pass


def run(dataset: Dataset, nginx: Nginx, dest: Path, **kw: object) -> FetchReport:
    with HttpTransport(nginx.url) as mirror:
        return fetch(
            dataset.verified,
            dest,
            [mirror],
            piece_layers=dataset.layers,
            **kw,  # type: ignore[arg-type]
        )


def verified_pieces(dataset: Dataset, dest: Path) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    with PartialArea(dest) as area:
        for entry in dataset.manifest.files:
            pf = area.file(entry, dataset.manifest.piece_length)
            if pf.state_path.exists():
                state = json.loads(pf.state_path.read_text())
                out[entry.path] = {i for a, b in state["verified"] for i in range(a, b)}
    return out


def pieces_of(rng: str, size: int) -> set[int]:
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
    assert m, rng
    first, last = int(m.group(1)), int(m.group(2) or size - 1)
    return set(range(first // PIECE, last // PIECE + 1))


def test_fetch_whole_dataset(dataset: Dataset, nginx: Nginx, tmp_path: Path) -> None:
    before = len(nginx.hits())
    report = run(dataset, nginx, tmp_path / "dest")
    dataset.check(tmp_path / "dest")
    assert sorted(report.fetched) == sorted(SIZES)
    assert report.bytes_by_source == {nginx.url: sum(SIZES.values())}
    hits = nginx.hits()[before:]
    assert all(h.status == 206 for h in hits)
    assert len(hits) == 4  # one range per non-empty file
    assert len({h.connection for h in hits}) == 1  # one kept-alive connection
    assert not (tmp_path / "dest" / ".owmanifest").exists()


def test_interrupt_and_resume(dataset: Dataset, nginx: Nginx, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    with pytest.raises(KeyboardInterrupt):
        run(dataset, nginx, dest, progress=StopAfter(13 + 40))  # medium.dat, then 40 pieces
    assert (dest / "a/b/c/medium.dat").read_bytes() == dataset.data["a/b/c/medium.dat"]
    assert not (dest / "big/huge.bin").exists()  # nothing unverified at a final path
    done = verified_pieces(dataset, dest)
    assert len(done["big/huge.bin"]) >= 40
    before = len(nginx.hits())
    report = run(dataset, nginx, dest)
    dataset.check(dest)
    assert set(report.present) == {"a/b/c/medium.dat", "empty.dat"}  # empty files first
    hits = nginx.hits()[before:]
    assert "/ds/a/b/c/medium.dat" not in {h.path for h in hits}
    for hit in hits:
        path = hit.path.removeprefix("/ds/").replace("%20", " ")
        asked = pieces_of(hit.range, SIZES[path])
        assert not asked & done.get(path, set()), f"verified pieces fetched again: {hit}"
    huge = [h for h in hits if h.path == "/ds/big/huge.bin"]
    assert sum(h.sent for h in huge) == SIZES["big/huge.bin"] - len(done["big/huge.bin"]) * PIECE


def test_missing_file_on_mirror(dataset: Dataset, nginx: Nginx, tmp_path: Path) -> None:
    entry = dataset.entry("small file.txt")
    with (
        HttpTransport(nginx.url + "nowhere/") as mirror,
        pytest.raises(IncompleteFetchError) as info,
    ):
        fetch(dataset.verified, tmp_path / "dest", [mirror], files=[entry])
    assert "HTTP 404" in str(info.value)
