"""verify_tree: every kind of damage to a dataset directory is found and named."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from owmanifest.errors import FileVerificationError
from owmanifest.manifest import hashing
from owmanifest.verify import TrustPolicy, tree, verify_manifest, verify_tree
from owmanifest.verify.result import VerifiedManifest

from .fixtures import ASSETS, DIDS, signed_bytes


@pytest.fixture(scope="module")
def verified() -> VerifiedManifest:
    return verify_manifest(signed_bytes(), TrustPolicy.from_keys([DIDS["alice"], DIDS["bob"]]))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    target = tmp_path / "dataset"
    shutil.copytree(ASSETS / "dataset", target)
    return target


def test_intact_tree_verifies(verified: VerifiedManifest, data: Path) -> None:
    report = verify_tree(verified, data)
    assert report.ok
    assert len(report.verified) == len(verified.manifest.files)
    assert report.extra == ()


def _flip(rel: str, offset: int) -> Callable[[Path], None]:
    def fn(root: Path) -> None:
        p = root / rel
        raw = bytearray(p.read_bytes())
        raw[offset] ^= 0x80
        p.write_bytes(bytes(raw))

    return fn


def _write(rel: str, data: bytes) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        (root / rel).write_bytes(data)

    return write


def _truncate(rel: str) -> Callable[[Path], None]:
    def fn(root: Path) -> None:
        p = root / rel
        p.write_bytes(p.read_bytes()[:-1])

    return fn


def _symlink(rel: str) -> Callable[[Path], None]:
    def fn(root: Path) -> None:
        p = root / rel
        keep = root.parent / "kept"
        shutil.copy(p, keep)
        p.unlink()
        os.symlink(keep, p)

    return fn


def _dir(rel: str) -> Callable[[Path], None]:
    def fn(root: Path) -> None:
        (root / rel).unlink()
        (root / rel).mkdir()

    return fn


DAMAGE: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "flip-first-byte": (_flip("blocks/70000.bin", 0), "blocks/70000.bin", "digest"),
    "flip-last-byte": (_flip("blocks/70000.bin", 69_999), "blocks/70000.bin", "digest"),
    "flip-block-edge": (_flip("blocks/16385.bin", 16384), "blocks/16385.bin", "digest"),
    "truncated": (_truncate("blocks/16384.bin"), "blocks/16384.bin", "size"),
    "extended": (_write("README.txt", b"owmanifest test fixture\n!"), "README.txt", "size"),
    "same-size-different": (
        _write("README.txt", b"OWMANIFEST TEST FIXTURE\n"),
        "README.txt",
        "digest",
    ),
    "empty-file-filled": (_write("empty", b"x"), "empty", "size"),
    "missing": (lambda r: (r / "graphs" / "a.nt").unlink(), "graphs/a.nt", "missing"),
    "replaced-by-symlink": (_symlink("README.txt"), "README.txt", "symlink"),
    "replaced-by-directory": (_dir("README.txt"), "README.txt", "not-a-file"),
}


@pytest.fixture(params=["compiled", "python"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The hashing engine's compiled core where it is built, or its Python code."""
    if request.param == "python":
        monkeypatch.setattr(hashing, "_core", lambda: None)
    return str(request.param)


@pytest.mark.parametrize("case", DAMAGE.values(), ids=DAMAGE.keys())
def test_damage_is_found(
    verified: VerifiedManifest,
    data: Path,
    case: tuple[Callable[[Path], None], str, str],
    engine: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    damage, path, kind = case
    damage(data)
    passes: list[object] = []
    real = tree._stat_at_once

    def spy(*args: Any, **kwargs: Any) -> Any:
        passes.append(real(*args, **kwargs))
        return passes[-1]

    monkeypatch.setattr(tree, "_stat_at_once", spy)
    with pytest.raises(FileVerificationError) as info:
        verify_tree(verified, data)
    report = info.value.report
    assert report is not None
    assert [(p.path, p.kind) for p in report.problems] == [(path, kind)]
    assert path in str(info.value)
    # Every file is taken in one pass when each is a regular file of its size (not a link);
    # else each is examined, to name the problem.
    assert (passes[0] is not None) == (kind == "digest")


@pytest.mark.parametrize("how", ["whole", "only", "fast"])
def test_a_file_below_a_symlinked_directory_fails(
    verified: VerifiedManifest, data: Path, tmp_path: Path, how: str
) -> None:
    """Symbolic links are not followed, on the way to a file either (create does not follow
    them): the bytes may be right, but they are not in the directory being verified."""
    shutil.move(data / "blocks", tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", data / "blocks")
    files = verified.manifest.files
    below = sorted(e.path for e in files if e.path.startswith("blocks/"))
    chosen = [e for e in files if e.path.startswith(("blocks/", "README"))]
    with pytest.raises(FileVerificationError) as info:
        verify_tree(verified, data, files=chosen if how == "only" else None, fast=how == "fast")
    report = info.value.report
    assert report is not None
    assert [(p.path, p.kind) for p in report.problems] == [(p, "symlink") for p in below]
    assert all(p.observed == "below the symbolic link blocks" for p in report.problems)
    assert "README.txt" in {e.path for e in report.verified}


def test_extra_files_are_reported_and_strict_refuses(
    verified: VerifiedManifest, data: Path
) -> None:
    (data / "graphs" / "extra.nt").write_bytes(b"")
    report = verify_tree(verified, data)
    assert report.extra == ("graphs/extra.nt",)
    with pytest.raises(FileVerificationError) as info:
        verify_tree(verified, data, strict=True)
    assert info.value.report is not None
    assert info.value.report.problems[0].kind == "extra"


def test_state_directory_is_not_extra(verified: VerifiedManifest, data: Path) -> None:
    (data / ".owmanifest").mkdir()
    (data / ".owmanifest" / "state.json").write_text("{}")
    assert verify_tree(verified, data, strict=True).ok


@settings(
    deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_any_single_bit_flip_is_detected(
    verified: VerifiedManifest, tmp_path: Path, data: st.DataObject
) -> None:
    root = tmp_path / f"d{data.draw(st.integers(0, 10**9))}"
    shutil.copytree(ASSETS / "dataset", root)
    entry = data.draw(st.sampled_from([f for f in verified.manifest.files if f.size]))
    offset = data.draw(st.integers(0, entry.size - 1))
    bit = data.draw(st.integers(0, 7))
    p = root / entry.path
    raw = bytearray(p.read_bytes())
    raw[offset] ^= 1 << bit
    p.write_bytes(bytes(raw))
    with pytest.raises(FileVerificationError) as info:
        verify_tree(verified, root)
    assert info.value.report is not None
    assert [p.path for p in info.value.report.problems] == [entry.path]
    shutil.rmtree(root)


def test_files_may_be_named_by_path_and_bad_arguments_are_usage_errors(
    verified: VerifiedManifest, data: Path
) -> None:
    """files=["README.txt"] and workers=0 failed with AttributeError and ValueError (a
    review)."""
    from owmanifest.errors import UsageError

    report = verify_tree(verified, data, files=["README.txt"])
    assert [e.path for e in report.verified] == ["README.txt"]
    with pytest.raises(UsageError, match="not a file of this manifest"):
        verify_tree(verified, data, files=["nope.txt"])
    with pytest.raises(UsageError, match="at least 1"):
        verify_tree(verified, data, workers=0)
