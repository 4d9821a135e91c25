"""``owmanifest fetch`` from the command line: local and HTTP sources, --only, lying mirrors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from owmanifest.cli import main

from ..unit.fixtures import ASSETS, DIDS
from ..unit.transport_support import serve

TRUST = ["--trust", DIDS["alice"], "--trust", DIDS["bob"]]


@pytest.fixture
def manifest(tmp_path: Path) -> str:
    target = tmp_path / "m.jsonld"
    shutil.copy(ASSETS / "signed.jsonld", target)
    shutil.copy(ASSETS / "unsigned.jsonld.torrent", str(target) + ".torrent")
    return str(target)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".owmanifest" not in p.parts
    }


def test_fetch_from_local_directory(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "dest"
    code, out, err = run(
        capsys,
        "fetch",
        manifest,
        str(dest),
        *TRUST,
        "--transport",
        "file",
        "--mirror",
        str(ASSETS / "dataset"),
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["ok"] is True
    assert _tree(dest) == _tree(ASSETS / "dataset")
    # again: nothing to fetch, everything already present
    code, out, err = run(
        capsys,
        "fetch",
        manifest,
        str(dest),
        *TRUST,
        "--transport",
        "file",
        "--mirror",
        str(ASSETS / "dataset"),
        "--json",
    )
    assert code == 0
    assert json.loads(out)["fetch"]["fetched"] == []


def test_fetch_keeps_the_users_own_file_unless_forced(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "README.txt").write_text("MY OWN WORK\n")
    fetch = ["fetch", manifest, str(dest), *TRUST, "--transport", "file"]
    fetch += ["--mirror", str(ASSETS / "dataset"), "--no-state"]
    code, out, err = run(capsys, *fetch, "--json")
    assert code == 2 and "not as a fetch of this dataset left them" in err and "--force" in err
    assert json.loads(out)["error"]["observed"] == "README.txt"
    assert (dest / "README.txt").read_text() == "MY OWN WORK\n"
    code, _, err = run(capsys, *fetch, "--force")
    assert code == 0, err
    assert "replaced (it differed from the manifest): README.txt" in err
    assert _tree(dest) == _tree(ASSETS / "dataset")


def test_fetch_over_http_with_only(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "dest"
    with serve(ASSETS / "dataset") as server:
        code, _, err = run(
            capsys,
            "fetch",
            manifest,
            str(dest),
            *TRUST,
            "--transport",
            "http",
            "--mirror",
            server.url(),
            "--only",
            "blocks/*",
        )
    assert code == 0, err
    got = _tree(dest)
    assert set(got) == {p for p in _tree(ASSETS / "dataset") if p.startswith("blocks/")}


def test_fetch_refuses_untrusted_manifest_before_moving_bytes(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "dest"
    with serve(ASSETS / "dataset") as server:
        code, _, _err = run(
            capsys,
            "fetch",
            manifest,
            str(dest),
            "--trust",
            DIDS["mallory"],
            "--transport",
            "http",
            "--mirror",
            server.url(),
        )
        assert server.requests == []
    assert code == 1
    assert not dest.exists() or _tree(dest) == {}


def test_fetch_lying_mirror_then_honest(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "dest"
    with serve(ASSETS / "dataset") as server:
        code, _, err = run(
            capsys,
            "fetch",
            manifest,
            str(dest),
            *TRUST,
            "--transport",
            "http",
            "--mirror",
            server.url("wrong-bytes"),
            "--mirror",
            server.url(),
        )
    assert code == 0, err
    assert _tree(dest) == _tree(ASSETS / "dataset")


def test_fetch_only_liars_fails_cleanly(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "dest"
    with serve(ASSETS / "dataset") as server:
        code, _, err = run(
            capsys,
            "fetch",
            manifest,
            str(dest),
            *TRUST,
            "--transport",
            "http",
            "--mirror",
            server.url("wrong-bytes"),
        )
    assert code == 1
    assert "wrong-bytes" in err
    # nothing unverified at a final path
    for rel, data in _tree(dest).items():
        assert data == (ASSETS / "dataset" / rel).read_bytes()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.network
def test_seed_and_fetch_over_bittorrent_from_the_command_line(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    pytest.importorskip("libtorrent")
    port = _free_port()
    seeder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "owmanifest",
            "seed",
            manifest,
            str(ASSETS / "dataset"),
            "--listen",
            f"127.0.0.1:{port}",
            "--no-dht",
            "--duration",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert seeder.stdout is not None
        magnet = seeder.stdout.readline()
        assert magnet.startswith("magnet:?xt=urn:btih:"), (
            seeder.stderr.read() if seeder.stderr else ""
        )
        dest = tmp_path / "dest"
        code, out, err = run(
            capsys,
            "fetch",
            manifest,
            str(dest),
            *TRUST,
            "--transport",
            "bittorrent",
            "--peer",
            f"127.0.0.1:{port}",
            "--no-dht",
            "--listen",
            "127.0.0.1:0",
            "--stall-timeout",
            "120",
            "--json",
        )
        assert code == 0, err
        assert json.loads(out)["bittorrent"]["hashFailures"] == 0
        assert _tree(dest) == _tree(ASSETS / "dataset")
    finally:
        seeder.terminate()
        seeder.wait(60)


def test_fetch_refuses_a_forged_sidecar(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sidecar = Path(manifest + ".torrent")
    raw = bytearray(sidecar.read_bytes())
    i = raw.find(b"4:name")
    raw[i + 8] ^= 0x01  # change the torrent's name: another info-hash
    sidecar.write_bytes(bytes(raw))
    code, _, err = run(
        capsys, "fetch", manifest, str(tmp_path / "d"), *TRUST, "--mirror", str(ASSETS / "dataset")
    )
    assert code in (1, 2)
    assert "Traceback" not in err
    assert not (tmp_path / "d").exists() or _tree(tmp_path / "d") == {}


def test_no_dht_without_peers_skips_bittorrent(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys,
        "fetch",
        manifest,
        str(tmp_path / "d"),
        *TRUST,
        "--no-dht",
        "--mirror",
        str(ASSETS / "dataset"),
    )
    assert code == 0, err
    assert "BitTorrent skipped" in err


@pytest.mark.network
def test_seed_says_when_the_port_asked_for_is_taken(
    manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """libtorrent moves to the next port when the one asked for is taken: leechers given the
    port asked for would find nobody, so seed says which one it is (found by a review)."""
    import signal
    import socket

    pytest.importorskip("libtorrent")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        seed = ["seed", manifest, str(ASSETS / "dataset"), "--listen", f"127.0.0.1:{port}"]
        code, out, err = run(capsys, *seed, "--no-dht", "--duration", "0.2", "--json")
    assert code == 0, err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back
    moved = json.loads(out)["port"]
    assert moved != port and f"port {port} was taken: seeding on port {moved}" in err
    assert f"only if told its address (fetch --peer HOST:{moved})" in err  # no DHT, no tracker


@pytest.mark.parametrize("content", [b"not bencode", b"d4:infod4:name1:xee"])
def test_seed_names_a_bad_torrent_file(
    manifest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    """fetch named the file; seed said only 'the sidecar torrent' (found by a review)."""
    pytest.importorskip("libtorrent")
    bad = tmp_path / "bad.torrent"
    bad.write_bytes(content)
    seed = ["seed", manifest, str(ASSETS / "dataset"), "--torrent", str(bad), "--no-dht"]
    code, _, err = run(capsys, *seed, "--duration", "0.1")
    assert code in (1, 2) and str(bad) in err and "Traceback" not in err


def test_a_dataset_of_empty_files_needs_no_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It has no torrent, so with only --peer given fetch said 'no source to fetch from'
    (exit 2), though there is nothing to download (found by a review)."""
    data = tmp_path / "data"
    (data / "d").mkdir(parents=True)
    (data / "a").write_bytes(b"")
    (data / "d" / "b").write_bytes(b"")
    alice = (ASSETS / "dids.txt").read_text().split()[1]
    m = str(tmp_path / "m.jsonld")
    create = ["create", str(data), "--id", "https://x.org/empty", "--version", "1"]
    assert run(capsys, *create, "--signer", alice, "-o", m)[0] == 0
    assert run(capsys, "sign", m, "--key", str(ASSETS / "alice.key"))[0] == 0
    dest = tmp_path / "dest"
    code, _, err = run(capsys, "fetch", m, str(dest), "--trust", alice, "--no-state",
                       "--peer", "127.0.0.1:9", "--no-dht")  # fmt: skip
    assert code == 0, err
    assert (dest / "a").read_bytes() == b"" and (dest / "d" / "b").read_bytes() == b""
