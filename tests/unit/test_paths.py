"""Path rules: a named table of bad paths, each refused with PathError."""

from __future__ import annotations

import pytest

from owmanifest.errors import PathError
from owmanifest.manifest.paths import check_path, check_paths

BAD_PATHS = {
    "empty": "",
    "absolute": "/etc/passwd",
    "parent": "../secret",
    "parent-inside": "a/../../b",
    "dot-segment": "a/./b",
    "empty-segment": "a//b",
    "trailing-slash": "a/",
    "backslash": "a\\b",
    "nul": "a\x00b",
    "newline": "a\nb",
    "del": "a\x7fb",
    "windows-drive": "C:/x",
    "not-nfc": "cafe\u0301.txt",
    "lone-surrogate": "a\udc80",
    "too-long-segment": "x" * 256,
    "too-long-path": "/".join(["abcdefgh"] * 600),
}


@pytest.mark.parametrize("path", BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_bad_path_is_refused(path: str) -> None:
    with pytest.raises(PathError) as info:
        check_path(path)
    assert "unacceptable file path" in str(info.value)


GOOD_PATHS = [
    "a",
    "a/b/c.txt",
    "caf\u00e9.txt",
    "spaces ok/x y",
    ".hidden",
    "a..b",
    "...",
    "日本/語",
]


@pytest.mark.parametrize("path", GOOD_PATHS)
def test_good_path_is_accepted(path: str) -> None:
    assert check_path(path) == path


BAD_SETS = {
    "duplicate": ["a", "a"],
    "case-collision": ["README", "readme"],
    "case-collision-nested": ["d/File", "d/file"],
    "file-and-dir": ["a", "a/b"],
    "file-and-dir-by-case": ["A", "a/b"],
}


@pytest.mark.parametrize("paths", BAD_SETS.values(), ids=BAD_SETS.keys())
def test_bad_path_sets_are_refused(paths: list[str]) -> None:
    with pytest.raises(PathError):
        check_paths(paths)


def test_distinct_paths_are_accepted() -> None:
    check_paths(["a/b", "a/c", "b", "A2"])
