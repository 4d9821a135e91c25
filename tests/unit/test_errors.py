"""The one exception hierarchy: what an error says."""

from __future__ import annotations

import pytest

from owmanifest.errors import Error, UsageError

CASES = {
    "message-only": ({}, "bad thing"),
    "path": ({"path": "/d/m.jsonld"}, "/d/m.jsonld: bad thing"),
    "expected-and-observed": ({"expected": 1, "observed": 2}, "bad thing (expected 1, observed 2)"),
    "observed-only": ({"observed": "x"}, "bad thing (observed x)"),  # never "expected None"
    "expected-only": ({"expected": "y"}, "bad thing (expected y)"),
}


@pytest.mark.parametrize(("fields", "text"), CASES.values(), ids=CASES.keys())
def test_an_error_says_what_is_known(fields: dict[str, object], text: str) -> None:
    error = UsageError("bad thing", **fields)  # type: ignore[arg-type]
    assert isinstance(error, Error) and str(error) == text


NAMING = {
    # (found by a review: a path that merely occurs inside a word was taken as named)
    "short-path-inside-a-word": ("cannot read manifest", "e", "e: cannot read manifest"),
    "path-inside-a-word": ("not a directory", "data", "data: not a directory"),
    "named-as-a-whole": ("cannot open /d/a.bin: gone", "/d/a.bin", "cannot open /d/a.bin: gone"),
    "longer-name-is-another-file": ("a.bin.part is bad", "a.bin", "a.bin: a.bin.part is bad"),
}


@pytest.mark.parametrize(("message", "path", "text"), NAMING.values(), ids=NAMING.keys())
def test_the_path_is_always_named(message: str, path: str, text: str) -> None:
    assert str(UsageError(message, path=path)) == text
