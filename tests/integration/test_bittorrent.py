"""BitTorrent on loopback with real libtorrent sessions: seed, fetch, resume, bad peers, trackers.

Every swarm runs on 127.0.0.1 with the DHT, LSD, UPnP and NAT-PMP off. Nothing here asserts on
time; waits are generous. What the swarm did is read from ``BitTorrentTransport.last_stats``
(libtorrent's own counters and alerts) and from the seeders' upload counters.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from owmanifest.errors import (
    DependencyError,
    FetchError,
    MissingFileError,
    PathError,
    UsageError,
    VerificationError,
)
from owmanifest.manifest.torrent import info_hashes
from owmanifest.transport import IncompleteFetchError, fetch, open_transport
from owmanifest.transport._lt import magnet_uri, parse_endpoint
from owmanifest.transport.bittorrent import (
    BitTorrentTransport,
    Seeder,
    SwarmStats,
    _parse_uri,
    _web_seed_for_mirror,
    check_torrent,
    manifest_magnet_uri,
)
from owmanifest.verify.tree import verify_tree
from tests.integration.bt_support import (
    OPENTRACKER,
    PIECE,
    Counting,
    LyingSeeder,
    StopAfter,
    SwarmDataset,
    corrupt_copy,
    make_dataset,
    opentracker,
)
from tests.nginx_support import NGINX, nginx

lt = pytest.importorskip("libtorrent")

pytestmark = pytest.mark.network

MiB = 1024 * 1024
LOOPBACK = "127.0.0.1:0"
#: libtorrent does not rate-limit local peers unless told to
LIMITS_APPLY = {"ignore_limits_on_local_network": False}


@pytest.fixture(scope="module", autouse=True)
def _registry_untouched() -> Iterator[None]:
    """Tests here load the magnet/bittorrent built-ins through the registry; forget them
    afterwards, as other tests expect a registry in which nothing was loaded yet."""
    from owmanifest.transport import registry

    before = dict(registry._loaded)
    yield
    registry._loaded.clear()
    registry._loaded.update(before)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> SwarmDataset:
    return make_dataset(tmp_path_factory.mktemp("bt") / "bt-test")


@pytest.fixture(scope="module")
def seeder(dataset: SwarmDataset) -> Iterator[Seeder]:
    with Seeder(dataset.manifest, dataset.torrent, dataset.root, listen=LOOPBACK, dht=False) as s:
        s.wait_ready(120)
        yield s


def leecher(dataset: SwarmDataset, *peers: int, **kw: object) -> BitTorrentTransport:
    return BitTorrentTransport(
        torrent=kw.pop("torrent", dataset.torrent),  # type: ignore[arg-type]
        peers=[f"127.0.0.1:{p}" for p in peers],
        dht=False,
        listen=LOOPBACK,
        **kw,  # type: ignore[arg-type]
    )


def stats(transport: BitTorrentTransport) -> SwarmStats:
    assert transport.last_stats is not None
    return transport.last_stats


def assert_complete(dataset: SwarmDataset, dest: Path) -> None:
    dataset.check(dest)
    assert verify_tree(dataset.verified, dest).ok
    assert not (dest / ".owmanifest").exists(), "the partial area was not cleaned up"


# --- (1) one seeder, one leecher -----------------------------------------------------------------


def test_fetch_from_one_seeder(dataset: SwarmDataset, seeder: Seeder, tmp_path: Path) -> None:
    transport = leecher(dataset, seeder.port)
    progress = Counting()
    report = fetch(dataset.verified, tmp_path, [transport], progress=progress)
    assert sorted(report.fetched) == sorted(f.path for f in dataset.manifest.files)
    assert report.bytes_by_source == {"bittorrent": dataset.total}
    assert_complete(dataset, tmp_path)
    s = stats(transport)
    assert s.pieces_at_start == 0 and s.pieces_at_end == s.num_pieces
    assert s.hash_failures == 0 and not s.banned_peers and not s.metadata_from_peers
    # progress: only verified bytes, exactly what was missing
    assert progress.advanced == progress.total == dataset.total
    # a second fetch finds everything in place and does not start a session
    again = fetch(dataset.verified, tmp_path, [leecher(dataset, seeder.port)])
    assert again.fetched == () and len(again.present) == len(dataset.manifest.files)


def test_only_some_files(dataset: SwarmDataset, seeder: Seeder, tmp_path: Path) -> None:
    wanted = [dataset.manifest.file("traces/run-02.npy"), dataset.manifest.file("README.txt")]
    transport = leecher(dataset, seeder.port)
    report = fetch(dataset.verified, tmp_path, [transport], files=wanted)
    assert sorted(report.fetched) == ["README.txt", "traces/run-02.npy"]
    on_disk = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert on_disk == ["README.txt", "traces/run-02.npy"]  # nothing else, not even elsewhere
    # pieces of files not asked for were not downloaded (pad bytes aside)
    wanted_pieces = sum(-(-f.size // PIECE) for f in wanted)
    assert stats(transport).payload_downloaded <= wanted_pieces * PIECE


# --- (2) two seeders -----------------------------------------------------------------------------


def test_two_seeders_one_leecher(dataset: SwarmDataset, tmp_path: Path) -> None:
    limit = {
        **LIMITS_APPLY,
        "upload_rate_limit": 2 * MiB,
    }  # neither can serve it all before the other joins
    kw = {"listen": LOOPBACK, "dht": False, "settings": limit}
    with (
        Seeder(dataset.manifest, dataset.torrent, dataset.root, **kw) as a,  # type: ignore[arg-type]
        Seeder(dataset.manifest, None, dataset.root, **kw) as b,  # type: ignore[arg-type]
    ):
        a.wait_ready(120)
        b.wait_ready(120)
        transport = leecher(dataset, a.port, b.port)
        fetch(dataset.verified, tmp_path, [transport])
        up_a, up_b = a.status()["uploaded"], b.status()["uploaded"]
    assert_complete(dataset, tmp_path)
    assert up_a > 0 and up_b > 0, (up_a, up_b)
    assert up_a + up_b >= dataset.total


# --- (3) interrupted, then resumed ---------------------------------------------------------------


def _interrupted(dataset: SwarmDataset, dest: Path) -> SwarmStats:
    """Fetch until about a third of the bytes verified, then interrupt (like Ctrl-C)."""
    slow = {**LIMITS_APPLY, "upload_rate_limit": 1 * MiB}
    with Seeder(
        dataset.manifest, dataset.torrent, dataset.root, listen=LOOPBACK, dht=False, settings=slow
    ) as s:
        s.wait_ready(120)
        transport = leecher(dataset, s.port)
        with pytest.raises(KeyboardInterrupt):
            fetch(
                dataset.verified,
                dest,
                [transport],
                piece_layers=dataset.layers,
                progress=StopAfter(dataset.total // 3),
            )
    first = stats(transport)
    assert 0 < first.pieces_at_end < first.num_pieces
    v2 = dataset.manifest.info_hash_v2
    assert v2 is not None
    work = dest / ".owmanifest" / "partial" / "bittorrent" / v2
    assert (work / "resume.bencode").is_file() and (work / "resume.json").is_file()
    return first


def test_interrupted_fetch_resumes_without_downloading_again(
    dataset: SwarmDataset, seeder: Seeder, tmp_path: Path
) -> None:
    first = _interrupted(dataset, tmp_path)
    transport = leecher(dataset, seeder.port)
    fetch(dataset.verified, tmp_path, [transport], piece_layers=dataset.layers)
    assert_complete(dataset, tmp_path)
    second = stats(transport)
    assert second.resumed and not second.checked, second.resume_rejected
    assert second.pieces_at_start > 0
    # every piece finished before the interruption was kept, none was downloaded twice (the
    # fetcher itself may have moved files complete after the first run into place: their
    # pieces are in neither count of the second run)
    downloaded_again = second.pieces_at_end - second.pieces_at_start
    assert first.pieces_at_end + downloaded_again == second.num_pieces
    # and libtorrent received no more than those pieces (pad bytes included)
    assert second.payload_downloaded <= downloaded_again * PIECE


def test_changed_partial_file_drops_resume_data(
    dataset: SwarmDataset, seeder: Seeder, tmp_path: Path
) -> None:
    first = _interrupted(dataset, tmp_path)
    # damage a partial file behind libtorrent's back (same size): its resume data no longer
    # describes it, so libtorrent must check the files instead of trusting it
    parts = sorted((tmp_path / ".owmanifest" / "partial").glob("*.part"), key=os.path.getsize)
    victim = parts[-1]
    with open(victim, "r+b") as f:
        f.write(b"\xff" * 100)
    transport = leecher(dataset, seeder.port)
    fetch(dataset.verified, tmp_path, [transport], piece_layers=dataset.layers)
    assert_complete(dataset, tmp_path)
    second = stats(transport)
    assert not second.resumed and second.checked
    assert second.resume_rejected is not None and "changed" in second.resume_rejected
    assert second.pieces_at_start > 0  # the check still found the good pieces
    assert second.pieces_at_start <= first.pieces_at_end


# --- (4) peer discovery through a real tracker ---------------------------------------------------


@pytest.mark.skipif(
    OPENTRACKER is None, reason="opentracker is not installed (apt-get install opentracker)"
)
def test_peers_found_through_opentracker(dataset: SwarmDataset, tmp_path: Path) -> None:
    with (
        opentracker(dataset.manifest) as url,
        Seeder(
            dataset.manifest,
            dataset.torrent,
            dataset.root,
            listen=LOOPBACK,
            dht=False,
            trackers=[url],
        ) as s,
    ):
        s.wait_ready(120)
        deadline = time.monotonic() + 60  # the tracker must know the seeder first
        while not s.status()["announced"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert s.status()["announced"] == [url], repr(s.status())
        transport = BitTorrentTransport(
            torrent=dataset.torrent, trackers=[url], dht=False, listen=LOOPBACK
        )
        assert transport.peers == ()
        fetch(dataset.verified, tmp_path / "dest", [transport], stall_timeout=120)
        assert s.status()["uploaded"] >= dataset.total
    assert_complete(dataset, tmp_path / "dest")


# --- (5) a peer that serves corrupted data -------------------------------------------------------


def test_corrupt_peer_is_banned(dataset: SwarmDataset, tmp_path: Path) -> None:
    corrupt_copy(dataset.root, tmp_path / "bad")
    liar = LyingSeeder(dataset, tmp_path / "bad")
    try:
        honest_limit = {
            **LIMITS_APPLY,
            "upload_rate_limit": 2 * MiB,
        }  # so the liar gets to send something
        with Seeder(
            dataset.manifest,
            dataset.torrent,
            dataset.root,
            listen=LOOPBACK,
            dht=False,
            settings=honest_limit,
        ) as honest:
            honest.wait_ready(120)
            transport = leecher(dataset, liar.port, honest.port)
            fetch(dataset.verified, tmp_path / "dest", [transport], piece_layers=dataset.layers)
        assert liar.uploaded() > 0
    finally:
        liar.close()
    assert_complete(dataset, tmp_path / "dest")
    s = stats(transport)
    assert s.hash_failures > 0, s
    assert f"127.0.0.1:{liar.port}" in s.banned_peers, s


# --- (6) magnet only: the metadata comes from the peer -------------------------------------------


def test_magnet_only(dataset: SwarmDataset, seeder: Seeder, tmp_path: Path) -> None:
    uri = seeder.magnet_uri
    assert f"xt=urn:btih:{dataset.manifest.info_hash_v1}" in uri
    assert f"xt=urn:btmh:1220{dataset.manifest.info_hash_v2}" in uri
    assert f"x.pe=127.0.0.1:{seeder.port}" in uri
    transport = open_transport(uri, dht=False, listen=LOOPBACK)
    assert isinstance(transport, BitTorrentTransport) and transport.torrent is None
    report = fetch(dataset.verified, tmp_path, [transport], piece_layers=dataset.layers)
    assert report.bytes_by_source == {uri: dataset.total}
    assert_complete(dataset, tmp_path)
    assert stats(transport).metadata_from_peers


@pytest.mark.parametrize(
    "sizes",
    [
        {"a.bin": 300_000, "b/c.txt": 5_000},
        # one file at the top: libtorrent's name() is the file's, not the torrent's (a review)
        {"only.bin": 40_000},
    ],
    ids=["tree", "one-file"],
)
def test_v2_only_torrent(tmp_path: Path, sizes: dict[str, int]) -> None:
    ds = make_dataset(tmp_path / "v2", sizes, hybrid=False)
    assert ds.manifest.info_hash_v1 is None
    with Seeder(ds.manifest, None, ds.root, listen=LOOPBACK, dht=False) as s:
        s.wait_ready(120)
        assert "btih" not in s.magnet_uri
        transport = BitTorrentTransport(s.magnet_uri, dht=False, listen=LOOPBACK)
        fetch(ds.verified, tmp_path / "dest", [transport])
    assert_complete(ds, tmp_path / "dest")


def test_magnet_for_another_torrent_is_refused(
    dataset: SwarmDataset, seeder: Seeder, tmp_path: Path
) -> None:
    uri = magnet_uri(
        info_hash_v1="11" * 20, info_hash_v2="22" * 32, peers=[f"127.0.0.1:{seeder.port}"]
    )
    with pytest.raises(IncompleteFetchError, match="names another torrent"):
        fetch(dataset.verified, tmp_path, [BitTorrentTransport(uri, dht=False, listen=LOOPBACK)])


def test_peer_without_the_torrent_stalls(dataset: SwarmDataset, tmp_path: Path) -> None:
    """A peer that only has another torrent under the same name cannot provide our metadata
    (the info-hash differs): nothing is downloaded, and the fetch stalls with a clear error."""
    other = make_dataset(tmp_path / "other", {"x.bin": 100_000}, dataset_id=dataset.manifest.id)
    with Seeder(other.manifest, other.torrent, other.root, listen=LOOPBACK, dht=False) as s:
        s.wait_ready(120)
        transport = BitTorrentTransport(peers=[f"127.0.0.1:{s.port}"], dht=False, listen=LOOPBACK)
        with pytest.raises(IncompleteFetchError, match="no verified progress"):
            fetch(dataset.verified, tmp_path / "dest", [transport], stall_timeout=3)
    assert not any((tmp_path / "dest").glob("neurons/**/*"))


# --- BEP 19 web seeds ---------------------------------------------------------------------------


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx-light)")
def test_web_seeds(dataset: SwarmDataset, tmp_path: Path) -> None:
    """libtorrent asks a web seed for ``<url><torrent name>/<path>``: a good one serves the
    whole dataset alone; a bad one is banned and the swarm provides the rest."""
    www = dataset.root.parent  # .../bt-test: the torrent name is the directory name
    bad_www = tmp_path / "bad-www"
    corrupt_copy(dataset.root, bad_www / dataset.root.name)
    for tree in (www, bad_www):
        for path in [tree, *tree.rglob("*")]:  # nginx workers must read it
            path.chmod(0o755 if path.is_dir() else 0o644)
    with nginx(www, tmp_path / "ngx") as good, nginx(bad_www, tmp_path / "ngx-bad") as bad:
        alone = BitTorrentTransport(
            torrent=dataset.torrent, web_seeds=[good], dht=False, listen=LOOPBACK
        )
        fetch(dataset.verified, tmp_path / "a", [alone], piece_layers=dataset.layers)
        assert_complete(dataset, tmp_path / "a")
        slow = {**LIMITS_APPLY, "upload_rate_limit": 2 * MiB}  # so the bad seed gets its turn
        with Seeder(
            dataset.manifest, None, dataset.root, listen=LOOPBACK, dht=False, settings=slow
        ) as seeder:
            seeder.wait_ready(120)
            mixed = leecher(dataset, seeder.port, web_seeds=[bad])
            fetch(dataset.verified, tmp_path / "b", [mixed], piece_layers=dataset.layers)
        assert_complete(dataset, tmp_path / "b")
    s = stats(mixed)
    assert s.hash_failures > 0
    assert any(bad in p and "banned" in p for p in s.problems), s.problems


# --- the sidecar torrent is authenticated by the manifest ---------------------------------------


def test_check_torrent_accepts_the_committed_assets() -> None:
    from owmanifest.verify.manifest import verify_manifest
    from owmanifest.verify.policy import TrustPolicy
    from tests.unit.fixtures import ASSETS, DIDS

    policy = TrustPolicy.from_keys(DIDS.values())
    verified = verify_manifest((ASSETS / "signed.jsonld").read_bytes(), policy)
    torrent = (ASSETS / "unsigned.jsonld.torrent").read_bytes()
    parsed = check_torrent(verified.manifest, torrent)
    assert parsed.info_hashes.v2 == verified.manifest.info_hash_v2


def test_sidecar_of_another_manifest_is_refused(dataset: SwarmDataset, tmp_path: Path) -> None:
    other = make_dataset(tmp_path / "other", {"x.bin": 100_000})
    with pytest.raises(VerificationError, match="not the torrent the manifest records") as info:
        check_torrent(dataset.manifest, other.torrent)
    assert str(dataset.manifest.info_hash_v2) in str(info.value.expected)
    assert info_hashes(other.torrent).v2 in str(info.value.observed)
    transport = leecher(dataset, 1, torrent=other.torrent)
    with pytest.raises(IncompleteFetchError, match="not the torrent the manifest records"):
        fetch(dataset.verified, tmp_path / "dest", [transport])


def test_manifest_without_info_hash(dataset: SwarmDataset) -> None:
    import dataclasses

    bare = dataclasses.replace(dataset.manifest, info_hash_v1=None, info_hash_v2=None)
    with pytest.raises(Exception, match="records no BitTorrent info-hash"):
        check_torrent(bare, dataset.torrent)


# --- the seeder ----------------------------------------------------------------------------------


def test_seeder_refuses_different_data(dataset: SwarmDataset, tmp_path: Path) -> None:
    corrupt_copy(dataset.root, tmp_path / "bad")
    # without a torrent: hashing finds the files that differ
    with pytest.raises(VerificationError, match="does not match the manifest") as info:
        Seeder(dataset.manifest, None, tmp_path / "bad", listen=LOOPBACK, dht=False)
    assert "neurons/weights/big.bin" in str(info.value)
    # with the torrent: libtorrent's check finds them
    with (
        Seeder(
            dataset.manifest, dataset.torrent, tmp_path / "bad", listen=LOOPBACK, dht=False
        ) as s,
        pytest.raises(VerificationError, match="incomplete or different") as info,
    ):
        s.wait_ready(120)
    assert "traces/run-01.npy" in str(info.value)
    # the seeder never wrote into the data directory
    for path, blob in dataset.data.items():
        assert (tmp_path / "bad" / path).stat().st_size == len(blob)


def test_seeder_refuses_missing_files_and_symlinks(dataset: SwarmDataset, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset.root, copy)
    (copy / "README.txt").unlink()
    with pytest.raises(MissingFileError, match=r"README\.txt"):
        Seeder(dataset.manifest, None, copy, listen=LOOPBACK, dht=False)
    (copy / "README.txt").symlink_to(dataset.root / "README.txt")
    with pytest.raises(PathError, match="symbolic link"):
        Seeder(dataset.manifest, None, copy, listen=LOOPBACK, dht=False)


def test_private_manifest(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "priv", {"a.bin": 200_000, "b/c.bin": 70_000}, private=True)
    assert check_torrent(ds.manifest, ds.torrent).private
    with Seeder(ds.manifest, None, ds.root, listen=LOOPBACK, dht=True) as s:
        s.wait_ready(120)
        flags = s._handle.flags()
        assert flags & lt.torrent_flags.disable_dht and flags & lt.torrent_flags.disable_pex
        transport = BitTorrentTransport(
            torrent=ds.torrent, peers=[f"127.0.0.1:{s.port}"], listen=LOOPBACK
        )
        fetch(ds.verified, tmp_path / "dest", [transport])
    assert_complete(ds, tmp_path / "dest")


# --- small pieces of the API --------------------------------------------------------------------


def test_uri_parsing() -> None:
    v1, v2 = "ab" * 20, "cd" * 32
    b32 = __import__("base64").b32encode(bytes.fromhex(v1)).decode()
    options = _parse_uri(
        f"magnet:?xt=urn:btih:{b32}&xt=urn:btmh:1220{v2}&dn=x&tr=http%3A%2F%2Ft%2Fa"
        "&x.pe=10.0.0.1:6881&x.pe=[::1]:7000&ws=http%3A%2F%2Fw%2F"
    )
    assert (options.v1, options.v2) == (v1, v2)
    assert options.trackers == ("http://t/a",)
    assert options.peers == ("10.0.0.1:6881", "[::1]:7000")
    assert options.web_seeds == ("http://w/",)
    assert _parse_uri("bittorrent:?x.pe=127.0.0.1:1").peers == ("127.0.0.1:1",)
    for bad in (
        "http://x/",
        "magnet:?xt=urn:btih:zz",
        "magnet:?xt=urn:btmh:1114ab",
        "magnet:?x.pe=h",
    ):
        with pytest.raises(UsageError):
            _parse_uri(bad)
    assert parse_endpoint("[::1]:80") == ("::1", 80)
    for bad in ("::1:80", "host", "host:99999", ":80"):
        with pytest.raises(UsageError):
            parse_endpoint(bad)
    with pytest.raises(UsageError):
        BitTorrentTransport(peers=["nope"])


def test_manifest_magnet_uri(dataset: SwarmDataset) -> None:
    uri = manifest_magnet_uri(dataset.manifest, peers=["127.0.0.1:1"])
    options = _parse_uri(uri)
    assert (options.v1, options.v2) == (
        dataset.manifest.info_hash_v1,
        dataset.manifest.info_hash_v2,
    )
    assert "dn=bt-test" in uri and options.peers == ("127.0.0.1:1",)


def test_web_seed_for_mirror() -> None:
    assert _web_seed_for_mirror("https://m.example/data/bt-test/", "bt-test") == (
        "https://m.example/data/"
    )
    assert _web_seed_for_mirror("https://m.example/data/bt-test", "bt-test") == (
        "https://m.example/data/"
    )
    assert _web_seed_for_mirror("https://m.example/other/", "bt-test") is None


def test_importable_without_libtorrent(tmp_path: Path) -> None:
    code = """
import sys
sys.modules["libtorrent"] = None  # import libtorrent now raises ImportError
from owmanifest.errors import DependencyError
from owmanifest.transport.bittorrent import BitTorrentTransport, Seeder
t = BitTorrentTransport("magnet:?xt=urn:btih:" + "ab" * 20, peers=["127.0.0.1:1"])
try:
    from owmanifest.transport._lt import import_libtorrent
    import_libtorrent()
except DependencyError as e:
    assert "install libtorrent" in str(e), e
    print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=os.getcwd()
    )
    assert out.stdout.strip() == "ok", out.stderr


def test_registry_knows_the_schemes() -> None:
    from owmanifest.transport import known_schemes

    assert {"magnet", "bittorrent"} <= set(known_schemes())
    t = open_transport("bittorrent:?x.pe=127.0.0.1:5", dht=False)
    assert isinstance(t, BitTorrentTransport) and t.peers == ("127.0.0.1:5",)
    with pytest.raises((UsageError, DependencyError, FetchError)):
        open_transport("magnet:?xt=urn:btih:zz")


def test_a_sidecars_trackers_and_web_seeds_are_never_used() -> None:
    """They lie outside the signed info dictionary: libtorrent announced to, and downloaded
    from, whatever a tamperer put there, even with --no-dht or a private dataset (found by a
    review)."""
    from owmanifest.manifest.bencode import bdecode, bencode
    from owmanifest.transport.bittorrent import _authenticated_part, _torrent_info

    from ..unit.fixtures import ASSETS

    sidecar = (ASSETS / "unsigned.jsonld.torrent").read_bytes()
    top = bdecode(sidecar)
    assert isinstance(top, dict)
    top[b"announce"] = b"http://127.0.0.1:9/announce"
    top[b"announce-list"] = [[b"http://127.0.0.1:9/announce"]]
    top[b"url-list"] = [b"http://127.0.0.1:9/"]
    tampered = bencode(top)
    assert info_hashes(tampered) == info_hashes(sidecar)  # still "the manifest's torrent"
    given = _authenticated_part(tampered, "tampered.torrent")  # what libtorrent is given
    kept = bdecode(given)
    assert isinstance(kept, dict) and set(kept) == {b"info", b"piece layers"}
    ti = _torrent_info(lt, tampered, "tampered.torrent")
    assert ti.info_hashes().v2.to_bytes().hex() == info_hashes(sidecar).v2


def test_a_seeder_whose_data_fails_while_seeding_says_so(
    dataset: SwarmDataset, tmp_path: Path
) -> None:
    """A file cut short after the check stopped the torrent in libtorrent, and seed said
    nothing until it was stopped, then exited 0 (found by a review)."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset.root, copy)
    with Seeder(dataset.manifest, dataset.torrent, copy, listen=LOOPBACK, dht=False) as s:
        s.wait_ready(120)
        victim = copy / "neurons" / "weights" / "big.bin"
        os.truncate(victim, 1000)
        transport = leecher(dataset, s.port)
        with pytest.raises(IncompleteFetchError):
            fetch(dataset.verified, tmp_path / "dest", [transport], stall_timeout=8)
        deadline = time.monotonic() + 30
        while not s.status()["data_errors"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert any("big.bin" in e for e in s.status()["data_errors"])
