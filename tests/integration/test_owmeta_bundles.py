"""Real OpenWorm data: an owmeta bundle archive unpacked and described, signed, verified."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from owmanifest.errors import FileVerificationError
from owmanifest.manifest.builder import build_manifest
from owmanifest.manifest.document import load_document
from owmanifest.manifest.jsonld import dumps, manifest_to_jsonld
from owmanifest.signing import sign_document
from owmanifest.verify import TrustPolicy, verify_manifest, verify_tree

from ..unit.fixtures import DIDS, key


@pytest.fixture(scope="module")
def bundle_dir(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = shared_dir / "data" / "owmeta-bundles" / "files" / "owmeta-data-6.tar.xz"
    if not archive.exists():
        pytest.skip(f"OpenWorm bundle archive not found at {archive}")
    target = tmp_path_factory.mktemp("owmeta-data-6")
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def test_real_bundle_signed_and_verified(bundle_dir: Path, tmp_path: Path) -> None:
    files = [p for p in bundle_dir.rglob("*") if p.is_file()]
    assert len(files) > 100
    result = build_manifest(
        bundle_dir,
        dataset_id="https://openworm.org/data/owmeta-data",
        version=6,
        signers=[DIDS["alice"], DIDS["bob"]],
        threshold=2,
        created="2026-01-01T00:00:00Z",
    )
    assert len(result.manifest.files) == len(files)
    doc = dumps(manifest_to_jsonld(result.manifest))
    for name in ("alice", "bob"):
        doc = sign_document(load_document(doc, source="bundle.jsonld"), key(name))
    vm = verify_manifest(doc, TrustPolicy.from_keys([DIDS["alice"], DIDS["bob"]]))
    assert verify_tree(vm, bundle_dir).ok

    copy = tmp_path / "copy"
    shutil.copytree(bundle_dir, copy)
    victim = sorted(copy.glob("graphs/*.nt"))[3]
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0x20
    victim.write_bytes(bytes(raw))
    with pytest.raises(FileVerificationError) as info:
        verify_tree(vm, copy)
    assert info.value.report is not None
    assert [p.path for p in info.value.report.problems] == [victim.relative_to(copy).as_posix()]


def test_bundle_archives_as_a_dataset(shared_dir: Path) -> None:
    """The published archives themselves, as a dataset (what a bundle mirror serves)."""
    files_dir = shared_dir / "data" / "owmeta-bundles" / "files"
    if not files_dir.is_dir():
        pytest.skip(f"{files_dir} not found")
    result = build_manifest(
        files_dir,
        dataset_id="https://openworm.org/data/owmeta-bundles",
        version=1,
        signers=[DIDS["alice"]],
        threshold=1,
        created="2026-01-01T00:00:00Z",
    )
    names = {f.path for f in result.manifest.files}
    assert "owmeta-data-6.tar.xz" in names
    doc = sign_document(
        load_document(dumps(manifest_to_jsonld(result.manifest)), source="b.jsonld"), key("alice")
    )
    vm = verify_manifest(doc, TrustPolicy.from_keys([DIDS["alice"]]))
    assert verify_tree(vm, files_dir).ok
