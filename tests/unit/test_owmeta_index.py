"""owmeta bundle archives in manifests: the naming rule and ``owmanifest owmeta import-index``.

None of this needs owmeta-core; the archives here are small synthetic bundles (a tar.xz with a
``manifest`` member, like ``owm bundle save`` writes), plus the real published index.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from owmanifest.cli import main
from owmanifest.errors import (
    DigestMismatchError,
    FileVerificationError,
    MissingFileError,
    UsageError,
)
from owmanifest.integrations.owmeta_index import (
    archive_identity,
    bundle_path,
    bundles_in_manifest,
    check_archive,
    find_bundle,
    import_index,
    locate_archive,
    parse_bundle_path,
    read_index,
)
from owmanifest.manifest.document import read_document

from .fixtures import DIDS

ALICE = DIDS["alice"]
CREATED = "2026-01-01T00:00:00Z"


def make_archive(path: Path, bundle_id: str, version: int, payload: bytes = b"") -> bytes:
    """Write a minimal owmeta bundle archive; returns its bytes."""
    manifest = json.dumps({"id": bundle_id, "version": version, "manifest_version": 1}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, data in (
            ("./manifest", manifest),
            ("./graphs/g.nt", payload or b"<a> <b> <c> .\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def make_index(root: Path, bundles: list[tuple[str, int]]) -> Path:
    """An index.json next to files/<name>.tar.xz, in the published repository's shape."""
    index: dict[str, dict[str, dict[str, object]]] = {}
    for bundle_id, version in bundles:
        name = f"{bundle_id.split('/')[-1]}-{version}.tar.xz"
        blob = make_archive(
            root / "files" / name, bundle_id, version, f"{bundle_id}{version}".encode()
        )
        index.setdefault(bundle_id, {})[str(version)] = {
            "url": f"https://example.org/owmeta-bundles/raw/main/files/{name}",
            "hashes": {"sha256": hashlib.sha256(blob).hexdigest()},
        }
    path = root / "index.json"
    path.write_text(json.dumps(index))
    return path


BUNDLES = [("openworm/owmeta-data", 6), ("openworm/owmeta-data", 5), ("openworm/owmeta-core", 1)]


# --- the naming rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bundle_id", "version", "path"),
    [
        ("openworm/owmeta-data", 6, "bundles/openworm%2Fowmeta-data/6.tar.xz"),
        ("simple", 1, "bundles/simple/1.tar.xz"),
        ("../etc/passwd", 2, "bundles/..%2Fetc%2Fpasswd/2.tar.xz"),
        ("a b%c", 3, "bundles/a%20b%25c/3.tar.xz"),
        ("wörm", 10, "bundles/w%C3%B6rm/10.tar.xz"),
        ("...", 1, "bundles/.../1.tar.xz"),
    ],
)
def test_bundle_path_round_trips(bundle_id: str, version: int, path: str) -> None:
    assert bundle_path(bundle_id, version) == path
    assert parse_bundle_path(path) == (bundle_id, version)


@pytest.mark.parametrize(
    "path",
    [
        "bundles/openworm%2fowmeta-data/6.tar.xz",  # not the canonical (upper-case) encoding
        "bundles/openworm/owmeta-data/6.tar.xz",  # an id's slash must be encoded
        "bundles/x/06.tar.xz",
        "bundles/x/0.tar.xz",
        "bundles/x/6.tar.gz",
        "bundles/x/six.tar.xz",
        "other/x/6.tar.xz",
        "bundles//6.tar.xz",
        "bundles/%FF/6.tar.xz",  # not UTF-8
        "README.md",
    ],
)
def test_paths_outside_the_rule_are_not_bundles(path: str) -> None:
    assert parse_bundle_path(path) is None


@pytest.mark.parametrize(
    ("bundle_id", "version"), [("", 1), (".", 1), ("..", 1), ("x", 0), ("x", -1), ("x", True)]
)
def test_bundle_path_refuses_bad_ids_and_versions(bundle_id: str, version: int) -> None:
    with pytest.raises(UsageError):
        bundle_path(bundle_id, version)


# --- archives and the index -----------------------------------------------------------------------


def test_archive_identity(tmp_path: Path) -> None:
    make_archive(tmp_path / "a.tar.xz", "openworm/x", 4)
    assert archive_identity(tmp_path / "a.tar.xz") == ("openworm/x", 4)
    (tmp_path / "b.tar.xz").write_bytes(b"not an archive")
    with pytest.raises(FileVerificationError, match="xz-compressed tar"):
        archive_identity(tmp_path / "b.tar.xz")
    # a corrupt xz stream before the manifest member: lzma's own error, which escaped bare
    # (found by a review, with a real bundle archive corrupted at byte 1000; here at 20,000:
    # earlier, tarfile says "not an lzma file")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, data in (("./graphs/g.nt", random.Random(1).randbytes(50_000)),
                           ("./manifest", b'{"id": "openworm/x", "version": 4}')):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = bytearray(buf.getvalue())
    raw[20_000] ^= 0xFF
    (tmp_path / "d.tar.xz").write_bytes(bytes(raw))
    with pytest.raises(FileVerificationError, match="xz-compressed tar"):
        archive_identity(tmp_path / "d.tar.xz")
    with pytest.raises(MissingFileError):
        archive_identity(tmp_path / "c.tar.xz")


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ([], "not an owmeta bundle index"),
        ({}, "not an owmeta bundle index"),
        ({"x": []}, "not a mapping of versions"),
        ({"x": {"v1": {"url": "u", "hashes": {"sha256": "00"}}}}, "not a positive integer"),
        ({"x": {"1": {"hashes": {"sha256": "00"}}}}, "no url"),
        ({"x": {"1": {"url": "u"}}}, "no hashes"),
        ({"x": {"1": {"url": "u", "hashes": {"sha256": "zz"}}}}, "no hashes"),
    ],
)
def test_read_index_refuses_malformed_indexes(tmp_path: Path, doc: object, match: str) -> None:
    path = tmp_path / "index.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=match):
        read_index(path)


def test_locate_archive_relative_to_the_index_or_in_files_dir(tmp_path: Path) -> None:
    index = make_index(tmp_path / "repo", BUNDLES)
    entries = read_index(index)
    assert [(e.bundle_id, e.version) for e in entries] == sorted(BUNDLES)
    for e in entries:
        assert locate_archive(e, index.parent, None).parent == index.parent / "files"
        assert locate_archive(e, tmp_path, index.parent / "files").is_file()
    with pytest.raises(UsageError, match="archive not found"):
        locate_archive(entries[0], tmp_path / "elsewhere", None)


def test_index_sha256_mismatch_names_the_path_and_both_digests(tmp_path: Path) -> None:
    index = make_index(tmp_path, BUNDLES[:1])
    entry = read_index(index)[0]
    path = locate_archive(entry, tmp_path, None)
    check_archive(entry, path)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    bad = type(entry)(entry.bundle_id, entry.version, entry.url, {"sha256": "ab" * 32})
    with pytest.raises(DigestMismatchError) as info:
        check_archive(bad, path)
    text = str(info.value)
    assert str(path) in text
    assert f"sha256:{'ab' * 32}" in text
    assert f"sha256:{actual}" in text
    assert info.value.exit_code == 1


def test_an_archive_of_another_bundle_is_refused(tmp_path: Path) -> None:
    index = make_index(tmp_path, BUNDLES[:1])
    entry = read_index(index)[0]
    path = locate_archive(entry, tmp_path, None)
    blob = make_archive(path, "openworm/impostor", 6)
    entry = type(entry)(
        entry.bundle_id, entry.version, entry.url, {"sha256": hashlib.sha256(blob).hexdigest()}
    )
    with pytest.raises(FileVerificationError, match="another bundle") as info:
        check_archive(entry, path)
    assert info.value.observed == "openworm/impostor version 6"


@pytest.mark.parametrize(
    "hashes",
    [
        {"md42": "00"},  # unknown to hashlib
        {"shake_128": "abcd"},  # no fixed length: hexdigest() needs one (a traceback, once)
        {"md5": "00", "sha1": "00"},  # known, but weak: no proof of the archive
    ],
    ids=["unknown", "variable-length", "weak-only"],
)
def test_an_index_without_a_strong_known_hash_is_refused(
    tmp_path: Path, hashes: dict[str, str]
) -> None:
    index = make_index(tmp_path, BUNDLES[:1])
    entry = read_index(index)[0]
    entry = type(entry)(entry.bundle_id, entry.version, entry.url, hashes)
    with pytest.raises(UsageError, match="no strong hash"):
        check_archive(entry, locate_archive(entry, tmp_path, None))


# --- the import -----------------------------------------------------------------------------------


def test_import_index_builds_the_layout_and_manifest(tmp_path: Path) -> None:
    index = make_index(tmp_path / "repo", BUNDLES)
    result = import_index(
        index,
        base_url="https://mirror.example/owmeta-bundles",
        layout=tmp_path / "layout",
        signers=[ALICE],
        created=CREATED,
    )
    m = result.build.manifest
    assert m.id == "https://mirror.example/owmeta-bundles"
    assert m.mirrors == ("https://mirror.example/owmeta-bundles/",)
    assert m.signers == (ALICE,) and m.threshold == 1
    assert [(b.bundle_id, b.version) for b in bundles_in_manifest(m)] == sorted(BUNDLES)
    assert find_bundle(m, "openworm/owmeta-data").version == 6
    assert find_bundle(m, "openworm/owmeta-data", 5).entry.path == (
        "bundles/openworm%2Fowmeta-data/5.tar.xz"
    )
    with pytest.raises(MissingFileError, match=r"versions listed: 5, 6"):
        find_bundle(m, "openworm/owmeta-data", 4)
    for e, src in result.entries:
        assert (result.layout / e.path).read_bytes() == src.read_bytes()
    assert result.build.torrent is not None
    # running it again over the same layout changes nothing
    again = import_index(
        index,
        base_url="https://mirror.example/owmeta-bundles/",
        layout=tmp_path / "layout",
        signers=[ALICE],
        created=CREATED,
    )
    assert again.build.manifest == m and again.build.torrent == result.build.torrent


def test_import_index_writes_nothing_when_an_archive_does_not_match(tmp_path: Path) -> None:
    index = make_index(tmp_path / "repo", BUNDLES)
    victim = tmp_path / "repo" / "files" / "owmeta-core-1.tar.xz"
    blob = bytearray(victim.read_bytes())
    blob[-20] ^= 0x01
    victim.write_bytes(bytes(blob))
    with pytest.raises(DigestMismatchError, match=r"owmeta-core-1\.tar\.xz"):
        import_index(
            index,
            base_url="https://mirror.example/b/",
            layout=tmp_path / "layout",
            signers=[ALICE],
        )
    assert not (tmp_path / "layout").exists()


def test_import_index_refuses_stray_files_in_the_layout(tmp_path: Path) -> None:
    index = make_index(tmp_path / "repo", BUNDLES)
    (tmp_path / "layout" / "bundles" / "old").mkdir(parents=True)
    (tmp_path / "layout" / "bundles" / "old" / "1.tar.xz").write_bytes(b"x")
    with pytest.raises(UsageError, match="not in the index"):
        import_index(
            index, base_url="https://mirror.example/b/", layout=tmp_path / "layout", signers=[ALICE]
        )


def test_import_index_refuses_to_lay_out_into_the_checkout(tmp_path: Path) -> None:
    # docs/owmeta.md's command in a checkout named like the output (found by a review: it
    # failed with "files that are not in the index", which did not say why)
    index = make_index(tmp_path / "owmeta-bundles", BUNDLES)
    with pytest.raises(UsageError, match="holds the index itself") as info:
        import_index(
            index,
            base_url="https://mirror.example/b/",
            layout=tmp_path / "owmeta-bundles",
            signers=[ALICE],
        )
    assert info.value.observed == str(index)
    left = sorted(p.name for p in (tmp_path / "owmeta-bundles").iterdir())
    assert left == ["files", "index.json"]  # nothing laid out into the checkout


BAD_ARGUMENTS: dict[str, dict[str, Any]] = {
    "version-zero": {"version": 0},
    "threshold-over-signers": {"threshold": 5},
    "created-not-a-datetime": {"created": "yesterday"},
    "bad-signer": {"signers": ["did:key:zBOGUS"]},
}


@pytest.mark.parametrize("bad", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_import_index_refuses_bad_arguments_before_laying_out(
    tmp_path: Path, bad: dict[str, Any]
) -> None:
    index = make_index(tmp_path / "repo", BUNDLES[:1])
    arguments: dict[str, Any] = {"signers": [ALICE], **bad}
    with pytest.raises(UsageError):
        import_index(
            index, base_url="https://mirror.example/b/", layout=tmp_path / "layout", **arguments
        )
    assert not (tmp_path / "layout").exists()


@pytest.mark.parametrize("url", ["ftp://host/x/", "/local/dir", "https://host/x/?q=1"])
def test_import_index_needs_an_http_base_url(tmp_path: Path, url: str) -> None:
    index = make_index(tmp_path / "repo", BUNDLES[:1])
    with pytest.raises(UsageError, match="base URL"):
        import_index(index, base_url=url, layout=tmp_path / "layout", signers=[ALICE])
    with pytest.raises(UsageError, match="mirror"):
        import_index(
            index,
            base_url="https://host/x/",
            mirrors=[url],
            layout=tmp_path / "layout",
            signers=[ALICE],
        )
    assert not (tmp_path / "layout").exists()


# --- the command line -----------------------------------------------------------------------------


def _import(tmp_path: Path, index: Path, *extra: str) -> int:
    return main(
        [
            "owmeta",
            "import-index",
            str(index),
            "--base-url",
            "https://mirror.example/owmeta-bundles/",
            "--signer",
            ALICE,
            "--created",
            CREATED,
            "-o",
            str(tmp_path / "out" / "owmeta-bundles.jsonld"),
            *extra,
        ]
    )


def test_cli_import_index_then_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = make_index(tmp_path / "repo", BUNDLES)
    (tmp_path / "out").mkdir()
    assert _import(tmp_path, index) == 0
    out = tmp_path / "out"
    assert (out / "owmeta-bundles.jsonld.torrent").is_file()
    assert (out / "owmeta-bundles" / "bundles" / "openworm%2Fowmeta-data" / "6.tar.xz").is_file()
    doc = read_document(out / "owmeta-bundles.jsonld")
    assert doc.format == "json-ld"
    capsys.readouterr()
    assert main(["owmeta", "list", str(out / "owmeta-bundles.jsonld"), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(b["id"], b["version"]) for b in listed["bundles"]] == sorted(BUNDLES)
    # the outputs exist now: refused without --force (exit 2), accepted with it
    assert _import(tmp_path, index) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert _import(tmp_path, index, "--force") == 0


def test_cli_import_index_mismatch_exits_1_with_both_digests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = make_index(tmp_path / "repo", BUNDLES)
    doc = json.loads(index.read_text())
    doc["openworm/owmeta-data"]["6"]["hashes"]["sha256"] = "cd" * 32
    index.write_text(json.dumps(doc))
    (tmp_path / "out").mkdir()
    assert _import(tmp_path, index) == 1
    err = capsys.readouterr().err
    archive = tmp_path / "repo" / "files" / "owmeta-data-6.tar.xz"
    actual = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert err.startswith("FAIL: ")
    assert str(archive) in err and f"sha256:{'cd' * 32}" in err and f"sha256:{actual}" in err
    assert "Traceback" not in err
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_import_index_of_the_published_bundles(
    shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = shared_dir / "data" / "owmeta-bundles" / "index.json"
    if not index.is_file():
        pytest.skip(f"{index} not found")
    (tmp_path / "out").mkdir()
    assert _import(tmp_path, index, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["bundles"]) == 11
    assert {"id": "openworm/owmeta-data", "version": 6} in [
        {"id": b["id"], "version": b["version"]} for b in report["bundles"]
    ]


def test_the_integration_module_imports_without_owmeta_core() -> None:
    code = (
        "import sys; sys.modules['owmeta_core'] = None\n"
        "import owmanifest.integrations.owmeta as o\n"
        "from owmanifest.errors import DependencyError\n"
        "for make in (lambda: o.OwmanifestURLConfig('owmanifest+https://h/b.jsonld'),\n"
        "             lambda: o.OwmanifestBundleLoader('owmanifest+https://h/b.jsonld'),\n"
        "             lambda: o.OwmanifestDataSourceDirLoader()):\n"
        "    try:\n"
        "        make()\n"
        "    except DependencyError as e:\n"
        "        assert \"pip install 'owmanifest[owmeta]'\" in str(e), e\n"
        "    else:\n"
        "        raise SystemExit('no DependencyError')\n"
        "assert not o.OwmanifestBundleLoader.can_load_from(object())\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"


def test_cli_import_index_links_the_previous_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = make_index(tmp_path / "repo", BUNDLES)
    (tmp_path / "out").mkdir()
    previous = "rdfc-sha256:" + "ab" * 32
    assert _import(tmp_path, index, "--version", "2", "--previous", previous) == 0
    capsys.readouterr()
    assert main(["show", str(tmp_path / "out" / "owmeta-bundles.jsonld"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == 2 and shown["previousVersion"] == previous
