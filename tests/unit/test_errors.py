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
