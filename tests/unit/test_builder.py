"""scan_directory: what a dataset directory holds, from its listing and one stat pass."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from owmanifest.errors import PathError
from owmanifest.manifest import hashing
from owmanifest.manifest.builder import STATE_DIR_NAME, scan_directory

from .fixtures import remove_file, replace_by_dangling_symlink, replace_by_directory


def _tree(top: Path) -> None:
    (top / "sub" / "deeper").mkdir(parents=True)
    (top / "a.txt").write_bytes(b"a" * 10)
    (top / "sub" / "b.bin").write_bytes(b"")
    (top / "sub" / "deeper" / "c").write_bytes(b"c" * 70000)
    (top / "link").symlink_to("a.txt")
    (top / "dirlink").symlink_to("sub")
    os.mkfifo(top / "fifo")
    (top / STATE_DIR_NAME).mkdir()
    (top / STATE_DIR_NAME / "ignored").write_bytes(b"x")


def test_scan_lists_regular_files_with_their_stat(tmp_path: Path) -> None:
    _tree(tmp_path)
    files, skipped = scan_directory(tmp_path)
    assert [f.path for f in files] == ["a.txt", "sub/b.bin", "sub/deeper/c"]
    for f in files:
        st = os.lstat(f.local)
        assert (f.size, f.mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert [str(s) for s in skipped] == [
        "dirlink: symbolic link (not followed)",
        "fifo: not a regular file",
        "link: symbolic link (not followed)",
    ]


def test_scan_strict_refuses_what_it_would_skip(tmp_path: Path) -> None:
    _tree(tmp_path)
    with pytest.raises(PathError, match="symbolic link"):
        scan_directory(tmp_path, strict=True)


# What may happen to a file between the listing and the stat pass, and what the scan says.
RACES: dict[str, tuple[Callable[[Path], None], str | None]] = {
    "removed": (remove_file, "cannot stat: No such file or directory"),
    "replaced-by-a-directory": (replace_by_directory, "not a regular file"),
    "replaced-by-a-dangling-symlink": (replace_by_dangling_symlink, "not a regular file"),
}


@pytest.mark.parametrize("race", RACES.values(), ids=RACES.keys())
def test_scan_reports_a_file_changed_after_the_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, race: tuple[Callable[[Path], None], str]
) -> None:
    _tree(tmp_path)
    change, reason = race
    real = hashing.stat_files_and_keys

    def racing(names: list[str]) -> tuple[hashing.FileStats, bytes]:
        change(tmp_path / "sub" / "b.bin")
        return real(names)

    monkeypatch.setattr(hashing, "stat_files_and_keys", racing)
    files, skipped = scan_directory(tmp_path)
    assert [f.path for f in files] == ["a.txt", "sub/deeper/c"]
    assert f"sub/b.bin: {reason}" in [str(s) for s in skipped]


@pytest.mark.parametrize("engine", ["compiled", "python"])
def test_a_file_rewritten_with_its_mtime_set_back_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """create checked size and mtime only: bytes changed between the scan and the read, the
    mtime then restored, went into the manifest (found by a review). Its stat key (ctime,
    inode, device too) is checked now, as verify does."""
    from owmanifest.errors import FileVerificationError
    from owmanifest.manifest.builder import build_manifest

    if engine == "python":
        monkeypatch.setenv("OWMANIFEST_PURE_PYTHON", "1")
    (tmp_path / "d").mkdir()
    victim = tmp_path / "d" / "a.bin"
    victim.write_bytes(b"x" * 50_000)
    real = hashing._hash_stated

    def meddling(*args: object, **kwargs: object) -> object:
        before = os.stat(victim)
        time.sleep(0.01)  # (a ctime that differs even on a coarse clock)
        with open(victim, "r+b") as f:
            f.write(b"y" * 10)  # same size
        os.utime(victim, ns=(before.st_atime_ns, before.st_mtime_ns))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hashing, "_hash_stated", meddling)
    with pytest.raises(FileVerificationError):
        build_manifest(tmp_path / "d", dataset_id="https://x.org/d", version=1,
                       signers=["did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"],
                       threshold=1)  # fmt: skip
