"""verify --fast: the hash cache skips unchanged files and nothing else."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import owmanifest.manifest.hashing as hashing
from owmanifest.cli import main
from owmanifest.errors import FileVerificationError
from owmanifest.manifest.digest import Digest
from owmanifest.schemas import load_schema
from owmanifest.verify import TrustPolicy, hashcache, verify_manifest, verify_tree
from owmanifest.verify.hashcache import HashCache, _records, settled, stat_key
from owmanifest.verify.result import VerifiedManifest
from owmanifest.verify.tree import check_tree

from .fixtures import ASSETS, DIDS, signed_bytes


@pytest.fixture(scope="module")
def verified() -> VerifiedManifest:
    return verify_manifest(signed_bytes(), TrustPolicy.from_keys([DIDS["alice"], DIDS["bob"]]))


@pytest.fixture(autouse=True)
def settled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test data is written just before each test: record files as if they had settled
    (test_a_file_changed_just_before_is_not_recorded checks the rule)."""
    monkeypatch.setattr(hashcache, "SETTLE_NS", 0)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    target = tmp_path / "dataset"
    shutil.copytree(ASSETS / "dataset", target)
    return target


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The paths given to each call of the hashing engine."""
    calls: list[list[str]] = []
    real = hashing.hash_files

    def counting(paths: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(sorted(Path(p).name for p in paths))
        return real(paths, *args, **kwargs)

    monkeypatch.setattr(hashing, "hash_files", counting)
    return calls


def _cache_file(verified: VerifiedManifest, data: Path) -> Path:
    return HashCache.location(verified.manifest.id, data)[0]


def _tree_file(verified: VerifiedManifest, data: Path) -> Path:
    path = _cache_file(verified, data)
    return path.with_name(path.stem + ".tree.json")


def _records_of(doc: dict[str, Any]) -> dict[str, str]:
    """Each path's record in a cache document, as hexadecimal digits."""
    records = doc["records"]
    return {path: records[144 * i : 144 * i + 144] for i, path in enumerate(doc["paths"])}


def _with_root(doc: dict[str, Any], path: str, root: str) -> dict[str, Any]:
    """``doc`` with ``path`` recorded as verified with ``root`` (hex)."""
    records = _records_of(doc)
    records[path] = records[path][:80] + root
    return {**doc, "records": "".join(records[p] for p in doc["paths"])}


def _per_file_only(verified: VerifiedManifest, data: Path) -> None:
    """Drop the whole tree's fingerprint: the next --fast run goes by the per-file cache."""
    _tree_file(verified, data).unlink()


def _cached_per_file(verified: VerifiedManifest, data: Path) -> tuple[Path, dict[str, Any]]:
    """Verify ``data`` once with --fast, drop the fingerprint; the per-file cache's file and
    content."""
    verify_tree(verified, data, fast=True)
    _per_file_only(verified, data)
    cache = _cache_file(verified, data)
    return cache, json.loads(cache.read_bytes())


def test_unchanged_tree_is_not_hashed_again(
    verified: VerifiedManifest, data: Path, hashed: list[list[str]]
) -> None:
    first = verify_tree(verified, data, fast=True)
    assert len(hashed) == 1  # nothing cached yet: everything hashed
    second = verify_tree(verified, data, fast=True)
    assert len(hashed) == 1  # no further hashing
    assert second.verified == first.verified
    assert len(second.verified) == len(verified.manifest.files)
    assert (first.from_cache, second.from_cache) == (0, len(second.verified))


def test_without_fast_every_byte_is_hashed(
    verified: VerifiedManifest, data: Path, hashed: list[list[str]]
) -> None:
    verify_tree(verified, data, fast=True)
    verify_tree(verified, data)
    verify_tree(verified, data)
    assert len(hashed) == 3


def test_touched_file_is_hashed_again(
    verified: VerifiedManifest, data: Path, hashed: list[list[str]]
) -> None:
    verify_tree(verified, data, fast=True)
    target = data / "blocks" / "70000.bin"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    report = verify_tree(verified, data, fast=True)
    assert hashed[-1] == ["70000.bin"]
    assert report.ok and report.from_cache == len(report.verified) - 1


def test_modified_file_with_restored_mtime_is_detected(
    verified: VerifiedManifest, data: Path, hashed: list[list[str]]
) -> None:
    verify_tree(verified, data, fast=True)
    target = data / "blocks" / "16385.bin"
    st = target.stat()
    raw = bytearray(target.read_bytes())
    raw[100] ^= 1
    target.write_bytes(bytes(raw))  # same size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back; ctime moves on
    with pytest.raises(FileVerificationError) as info:
        verify_tree(verified, data, fast=True)
    assert hashed[-1] == ["16385.bin"]
    assert info.value.report is not None
    assert [p.kind for p in info.value.report.problems] == ["digest"]
    # the failure is not remembered as good: the next run hashes it again and fails again
    with pytest.raises(FileVerificationError):
        verify_tree(verified, data, fast=True)
    assert hashed[-1] == ["16385.bin"]


def test_replaced_file_is_hashed_again(
    verified: VerifiedManifest, data: Path, hashed: list[list[str]]
) -> None:
    verify_tree(verified, data, fast=True)
    target = data / "README.txt"
    copy = data / "copy.tmp"
    shutil.copy2(target, copy)
    os.replace(copy, target)  # same bytes, same mtime, another inode
    verify_tree(verified, data, fast=True)
    assert hashed[-1] == ["README.txt"]


@pytest.mark.parametrize("engine", ["hash_files", "hash_files+hash_file"])
def test_a_file_swapped_in_after_the_stat_pass_is_not_recorded(
    verified: VerifiedManifest,
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
) -> None:
    """Someone who may write the dataset, not the state directory: a good copy of a directory
    is renamed in for the read and the bad one back afterwards. A file in it keeps its stat key
    (renaming a directory changes only the directory's ctime), so the run must make sure that
    what it read is the file of that key, or it would record the bad file with the good root.
    The engine sees another file and fails; the reading one at a time that follows (by path,
    swapped too in the second case) is not recorded."""
    good, bad = tmp_path / "good-blocks", tmp_path / "bad-blocks"
    shutil.copytree(data / "blocks", good, copy_function=shutil.copy2)
    target = data / "blocks" / "16385.bin"
    st = target.stat()
    raw = bytearray(target.read_bytes())
    raw[100] ^= 1
    target.write_bytes(bytes(raw))  # the same size and (below) mtime as the good copy
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))

    def swapping(real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            os.rename(data / "blocks", bad)
            os.rename(good, data / "blocks")
            try:
                return real(*args, **kwargs)
            finally:
                os.rename(data / "blocks", good)
                os.rename(bad, data / "blocks")

        return call

    with monkeypatch.context() as patch:
        for name in engine.split("+"):
            patch.setattr(hashing, name, swapping(getattr(hashing, name)))
        with contextlib.suppress(FileVerificationError):  # what it reports is not the point
            verify_tree(verified, data, fast=True)
    assert target.read_bytes() == bytes(raw)
    with pytest.raises(FileVerificationError) as info:
        verify_tree(verified, data, fast=True)
    assert info.value.report is not None
    assert [(p.path, p.kind) for p in info.value.report.problems] == [
        ("blocks/16385.bin", "digest")
    ]


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"type": "owmanifest-hashcache", "version": 1}',
        b"[" * 100_000,
    ],
    ids=["not-json", "array", "incomplete", "deep"],
)
def test_unusable_cache_means_a_full_hash(
    verified: VerifiedManifest, data: Path, hashed: list[list[str]], content: bytes
) -> None:
    verify_tree(verified, data, fast=True)
    _per_file_only(verified, data)
    cache = _cache_file(verified, data)
    cache.write_bytes(content)
    assert verify_tree(verified, data, fast=True).ok
    assert len(hashed) == 2 and len(hashed[-1]) == len(hashed[0])
    jsonschema.validate(json.loads(cache.read_bytes()), load_schema("hashcache"))


def test_cache_with_wrong_root_is_not_trusted(
    verified: VerifiedManifest, data: Path, hashed: list[list[str]]
) -> None:
    cache, doc = _cached_per_file(verified, data)
    cache.write_text(json.dumps(_with_root(doc, "README.txt", "00" * 32)))
    verify_tree(verified, data, fast=True)
    assert hashed[-1] == ["README.txt"]


def test_cache_of_the_first_version_means_a_full_hash(
    verified: VerifiedManifest, data: Path, hashed: list[list[str]]
) -> None:
    cache, doc = _cached_per_file(verified, data)
    files = {}
    for path, record in _records_of(doc).items():  # as the first version wrote the same records
        key = struct.unpack(hashing.STAT_KEY_FORMAT, bytes.fromhex(record[:80]))
        files[path] = [*key, "" if record[80:] == "00" * 32 else record[80:]]
    first = {k: v for k, v in doc.items() if k not in ("paths", "records")}
    cache.write_text(json.dumps({**first, "version": 1, "files": files}))
    assert verify_tree(verified, data, fast=True).ok
    assert len(hashed) == 2 and len(hashed[-1]) == len(hashed[0])
    assert json.loads(cache.read_bytes())["version"] == 2


def test_a_file_changed_just_before_is_not_recorded(
    verified: VerifiedManifest, data: Path, hashed: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a change in the same clock tick as the one before leaves ctime as it was: a file that
    # changed just before a run is hashed, and hashed again the next time
    monkeypatch.setattr(hashcache, "SETTLE_NS", 10**18)  # every file changed "just before"
    verify_tree(verified, data, fast=True)
    verify_tree(verified, data, fast=True)
    assert len(hashed) == 2 and hashed[1] == hashed[0]
    assert not _tree_file(verified, data).exists()
    monkeypatch.setattr(hashcache, "SETTLE_NS", 0)
    verify_tree(verified, data, fast=True)  # hashed once more, and now recorded
    verify_tree(verified, data, fast=True)
    assert len(hashed) == 3 and _tree_file(verified, data).exists()


def test_settled_compares_ctime_with_the_start() -> None:
    key = struct.pack(hashing.STAT_KEY_FORMAT, 10, 5_000, 7_000, 1, 2)
    assert settled(key, 7_001 + hashcache.SETTLE_NS)
    assert not settled(key, 7_000 + hashcache.SETTLE_NS)
    key = struct.pack(hashing.STAT_KEY_FORMAT, 10, 99_000, -3, 1, 2)  # mtime set ahead; old ctime
    assert settled(key, hashcache.SETTLE_NS)


def test_directory_whose_name_is_not_utf8(
    verified: VerifiedManifest, tmp_path: Path, hashed: list[list[str]], per_file_reads: list[str]
) -> None:
    name = os.fsdecode(b"data\xff")  # held with a surrogate escape, as os.listdir gives it
    try:
        target = tmp_path / name
        shutil.copytree(ASSETS / "dataset", target)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    assert verify_tree(verified, target, fast=True).ok
    assert verify_tree(verified, target, fast=True).ok  # the whole tree, from its fingerprint
    _per_file_only(verified, target)
    assert verify_tree(verified, target, fast=True).ok  # file by file, from the cache
    assert len(hashed) == 1 and len(per_file_reads) == 2


def test_cache_is_per_directory(
    verified: VerifiedManifest, data: Path, tmp_path: Path, hashed: list[list[str]]
) -> None:
    verify_tree(verified, data, fast=True)
    other = tmp_path / "other"
    shutil.copytree(data, other)
    verify_tree(verified, other, fast=True)
    assert len(hashed) == 2


def test_cache_file_matches_its_schema(verified: VerifiedManifest, data: Path) -> None:
    verify_tree(verified, data, fast=True)
    doc = json.loads(_cache_file(verified, data).read_bytes())
    jsonschema.validate(doc, load_schema("hashcache"))
    assert doc["dataset"] == verified.manifest.id
    assert doc["paths"] == sorted(f.path for f in verified.manifest.files)
    records = _records_of(doc)
    for entry in verified.manifest.files:
        key = struct.unpack(hashing.STAT_KEY_FORMAT, bytes.fromhex(records[entry.path][:80]))
        assert key == stat_key(os.lstat(data / entry.path))
        assert records[entry.path][80:] == (entry.root.value.hex() if entry.root else "00" * 32)
    assert _cache_file(verified, data).stat().st_mode & 0o777 == 0o600


# --- the whole tree's fingerprint --------------------------------------------------------------


@pytest.fixture
def per_file_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The datasets whose per-file cache was read."""
    calls: list[str] = []
    real = HashCache.load.__func__  # type: ignore[attr-defined]

    def counting(cls: type[HashCache], dataset_id: str, directory: Any) -> HashCache:
        calls.append(dataset_id)
        return real(cls, dataset_id, directory)  # type: ignore[no-any-return]

    monkeypatch.setattr(HashCache, "load", classmethod(counting))
    return calls


def test_unchanged_tree_is_trusted_whole(
    verified: VerifiedManifest, data: Path, hashed: list[list[str]], per_file_reads: list[str]
) -> None:
    verify_tree(verified, data, fast=True)
    assert len(hashed) == 1 and len(per_file_reads) == 1
    for _ in range(2):  # neither hashed nor compared file by file
        report = verify_tree(verified, data, fast=True)
        assert report.verified == verified.manifest.files
        assert report.from_cache == len(report.verified)
    assert len(hashed) == 1 and len(per_file_reads) == 1
    doc = json.loads(_tree_file(verified, data).read_bytes())
    jsonschema.validate(doc, load_schema("hashcache-tree"))
    assert _tree_file(verified, data).stat().st_mode & 0o777 == 0o600


def test_tree_fingerprint_still_reports_extra_files(
    verified: VerifiedManifest, data: Path, hashed: list[list[str]]
) -> None:
    verify_tree(verified, data, fast=True)
    (data / "extra.txt").write_bytes(b"x")  # not in the manifest: no file of it changed
    assert verify_tree(verified, data, fast=True).extra == ("extra.txt",)
    with pytest.raises(FileVerificationError):
        verify_tree(verified, data, fast=True, strict=True)
    assert len(hashed) == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda f: os.utime(f, ns=(0, f.stat().st_mtime_ns + 1)),  # touched
        lambda f: os.chmod(f, 0o600),  # ctime only
        lambda f: f.unlink(),  # gone
        lambda f: (f.unlink(), f.mkdir()),  # a directory now
        lambda f: (f.rename(f.with_name("x")), f.symlink_to("x")),  # a link to it now
    ],
    ids=["touched", "ctime", "missing", "directory", "symlink"],
)
def test_any_change_of_a_file_misses_the_fingerprint(
    verified: VerifiedManifest,
    data: Path,
    per_file_reads: list[str],
    hashed: list[list[str]],
    change: Any,
) -> None:
    verify_tree(verified, data, fast=True)
    change(data / "README.txt")
    with contextlib.suppress(FileVerificationError):
        verify_tree(verified, data, fast=True)
    assert len(per_file_reads) == 2  # the fingerprint did not match: file by file
    assert hashed[1:] in ([["README.txt"]], [])  # and every other file came from the cache


def test_a_touch_of_any_file_misses_the_fingerprint(
    verified: VerifiedManifest, data: Path, per_file_reads: list[str]
) -> None:
    verify_tree(verified, data, fast=True)
    for n, entry in enumerate(verified.manifest.files, start=2):
        target = data / entry.path
        os.utime(target, ns=(0, target.stat().st_mtime_ns + 1))
        verify_tree(verified, data, fast=True)  # misses, and records the new fingerprint
        assert len(per_file_reads) == n, entry.path


BAD_TREE_FILES: dict[str, Any] = {
    "not-json": b"{",
    "other-type": {"type": "owmanifest-hashcache"},
    "other-dataset": {"dataset": "https://example.org/other"},
    "other-directory": {"directory": "/elsewhere"},
    "other-fingerprint": {"fingerprint": "sha256:" + "0" * 64},
    "bad-fingerprint": {"fingerprint": "sha256:xyz"},
    "extra-key": {"also": 1},
}


@pytest.mark.parametrize("bad", BAD_TREE_FILES.values(), ids=BAD_TREE_FILES.keys())
def test_unusable_tree_file_falls_back_to_the_per_file_cache(
    verified: VerifiedManifest,
    data: Path,
    hashed: list[list[str]],
    per_file_reads: list[str],
    bad: Any,
) -> None:
    verify_tree(verified, data, fast=True)
    tree = _tree_file(verified, data)
    if isinstance(bad, bytes):
        tree.write_bytes(bad)
    else:
        tree.write_text(json.dumps({**json.loads(tree.read_bytes()), **bad}))
    assert verify_tree(verified, data, fast=True).ok
    assert len(per_file_reads) == 2 and len(hashed) == 1  # per file, all still cached
    assert verify_tree(verified, data, fast=True).ok  # and the fingerprint written again
    assert len(per_file_reads) == 2


def test_fingerprint_covers_the_manifest_roots(
    verified: VerifiedManifest, data: Path, per_file_reads: list[str]
) -> None:
    verify_tree(verified, data, fast=True)
    first = verified.manifest.files[0]
    other = dataclasses.replace(first, root=Digest("bep52", bytes(32)))
    changed = dataclasses.replace(verified.manifest, files=(other, *verified.manifest.files[1:]))
    with pytest.raises(FileVerificationError):  # another root expected: hashed, and wrong
        check_tree(changed, data, fast=True)
    assert len(per_file_reads) == 2


def test_part_of_the_tree_neither_uses_nor_writes_the_fingerprint(
    verified: VerifiedManifest, data: Path, per_file_reads: list[str]
) -> None:
    some = verified.manifest.files[:2]
    verify_tree(verified, data, fast=True, files=some)
    assert not _tree_file(verified, data).exists()
    verify_tree(verified, data, fast=True)
    verify_tree(verified, data, fast=True, files=some)
    assert len(per_file_reads) == 3


def test_no_fingerprint_when_a_file_changes_while_hashed(
    verified: VerifiedManifest, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, doc = _cached_per_file(verified, data)
    # recorded once with another root: README is hashed
    cache.write_text(json.dumps(_with_root(doc, "README.txt", "00" * 32)))
    real = hashing.hash_files

    def touching_while_hashed(paths: Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        results = real(paths, *args, **kwargs)
        target = data / "README.txt"
        os.utime(target, ns=(0, target.stat().st_mtime_ns + 1))
        return results

    monkeypatch.setattr(hashing, "hash_files", touching_while_hashed)
    assert verify_tree(verified, data, fast=True).ok  # README hashed, good, not recorded
    assert not _tree_file(verified, data).exists()
    assert _records_of(json.loads(cache.read_bytes()))["README.txt"][80:] == "00" * 32


def test_a_failure_removes_the_fingerprint(
    verified: VerifiedManifest, data: Path, per_file_reads: list[str]
) -> None:
    verify_tree(verified, data, fast=True)
    (data / "README.txt").write_bytes(b"changed\n")
    with pytest.raises(FileVerificationError):
        verify_tree(verified, data, fast=True)
    assert not _tree_file(verified, data).exists()


def test_stat_keys_pack_the_stat_fields(data: Path) -> None:
    paths = sorted(str(p) for p in data.rglob("*") if p.is_file())
    keys = hashing.stat_keys(paths, follow_symlinks=False)
    fields = [struct.unpack_from(hashing.STAT_KEY_FORMAT, keys, 40 * i) for i in range(len(paths))]
    assert fields == [stat_key(os.lstat(p)) for p in paths]
    (data / "link").symlink_to(paths[0])
    with pytest.raises(FileVerificationError):
        hashing.stat_keys([*paths, str(data / "link")], follow_symlinks=False)
    assert hashing.stat_keys([str(data / "link")]) == keys[:40]


def test_stat_files_and_keys_in_one_pass(data: Path) -> None:
    paths = sorted(str(p) for p in data.rglob("*") if p.is_file())
    assert hashing.stat_files_and_keys(paths) == (
        hashing.stat_files(paths),
        hashing.stat_keys(paths),
    )


GOOD_RECORD = "0123456789abcdef" * 9
BAD_RECORDS: dict[str, tuple[Any, Any]] = {
    "first-version": ({"a": [10, 1, 2, 3, 4, "ab" * 32]}, ""),
    "paths-not-list": ("a", GOOD_RECORD),
    "path-not-string": ([1], GOOD_RECORD),
    "path-twice": (["a", "a"], GOOD_RECORD * 2),
    "records-not-string": (["a"], [GOOD_RECORD]),
    "records-null": (["a"], None),
    "short": (["a"], GOOD_RECORD[:-2]),
    "long": (["a"], GOOD_RECORD + "00"),
    "one-record-too-many": (["a"], GOOD_RECORD * 2),
    "one-record-too-few": (["a", "b"], GOOD_RECORD),
    "upper-hex": (["a"], GOOD_RECORD.upper()),
    "not-hex": (["a"], "xy" + GOOD_RECORD[2:]),
    "space": (["a"], " " + GOOD_RECORD[1:]),
    "non-ascii": (["a"], "\u00e9" + GOOD_RECORD[1:]),
    "lone-surrogate": (["a"], "\ud800" + GOOD_RECORD[1:]),
    "bad-in-the-second": (["a", "b"], GOOD_RECORD + GOOD_RECORD[:-1] + "g"),
}
"""(paths, records) that the cache refuses; the schema refuses all but the counts, which it
cannot express."""


@pytest.mark.parametrize("name", BAD_RECORDS)
def test_fast_record_check_agrees_with_the_schema(name: str) -> None:
    paths, records = BAD_RECORDS[name]
    doc = {"type": "owmanifest-hashcache", "version": 2, "dataset": "d", "directory": "/"}
    validator = jsonschema.Draft202012Validator(load_schema("hashcache"))
    counts_only = name.startswith("one-record-too-")
    assert validator.is_valid({**doc, "paths": paths, "records": records}) == counts_only
    assert _records(paths, records) is None


def test_fast_record_check_takes_what_the_schema_takes() -> None:
    doc = {"type": "owmanifest-hashcache", "version": 2, "dataset": "d", "directory": "/"}
    validator = jsonschema.Draft202012Validator(load_schema("hashcache"))
    records = [GOOD_RECORD, "0" * 144, "f" * 144]
    good = {"paths": ["a", "b", "c"], "records": "".join(records)}
    assert validator.is_valid({**doc, **good})
    assert _records(**good) == dict(zip("abc", map(bytes.fromhex, records), strict=True))
    assert _records([], "") == {}


def test_cli_verify_fast(
    verified: VerifiedManifest,
    data: Path,
    hashed: list[list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = str(ASSETS / "signed.jsonld")
    trust = ["--trust", DIDS["alice"], "--trust", DIDS["bob"], "--no-state", "-q"]
    assert main(["verify", manifest, str(data), *trust, "--fast"]) == 0
    assert main(["verify", manifest, str(data), *trust[:-1], "--fast"]) == 0
    count = len(verified.manifest.files)
    assert f"{count} file(s) verified, {count} of them from the hash cache" in (
        capsys.readouterr().err  # (status lines go to stderr; stdout is for --json)
    )
    assert main(["verify", manifest, str(data), *trust[:-1], "--fast", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tree"]["fromCache"] == count
    assert len(hashed) == 1
    assert main(["verify", manifest, str(data), *trust]) == 0
    assert len(hashed) == 2
    (data / "README.txt").write_bytes(b"changed\n")
    assert main(["verify", manifest, str(data), *trust, "--fast"]) == 1
