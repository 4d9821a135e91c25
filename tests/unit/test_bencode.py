"""Bencoding: round trips, canonical form, and a table of malformed inputs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from owmanifest.errors import InvalidManifestError
from owmanifest.manifest.bencode import MAX_DEPTH, BValue, Encoded, bdecode, bdecode_dict, bencode

values: st.SearchStrategy[BValue] = st.recursive(
    st.integers(min_value=-(2**70), max_value=2**70) | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.binary(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(deadline=None, max_examples=200)
@given(values)
def test_round_trip(value: BValue) -> None:
    encoded = bencode(value)
    assert bdecode(encoded) == value
    assert bencode(bdecode(encoded)) == encoded


@settings(deadline=None, max_examples=300)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_invalid_manifest(data: bytes) -> None:
    try:
        value = bdecode(data)
    except InvalidManifestError:
        return
    assert bencode(value) == data  # whatever is accepted is canonical


def test_known_encodings() -> None:
    assert bencode(0) == b"i0e"
    assert bencode(-42) == b"i-42e"
    assert bencode(b"") == b"0:"
    assert bencode("é") == b"2:\xc3\xa9"
    assert bencode([1, (b"a",)]) == b"li1el1:aee"
    assert bencode({"b": 1, b"a": 2, "": 3}) == b"d0:i3e1:ai2e1:bi1ee"
    assert bencode({b"\xff": 1, b"a": 2}) == b"d1:ai2e1:\xffi1ee"  # raw bytes order


def test_matches_libtorrent() -> None:
    lt = pytest.importorskip("libtorrent")
    value = {b"z": [1, -2, b"x" * 300], b"a": {b"k": b""}, b"m": 2**40}
    assert bencode(value) == bytes(lt.bencode(value))


@pytest.mark.parametrize("bad", [True, 1.5, None, object(), {1: 2}])
def test_unencodable_values(bad: object) -> None:
    with pytest.raises(TypeError):
        bencode(bad)


def test_duplicate_keys_after_encoding() -> None:
    with pytest.raises(ValueError):
        bencode({"a": 1, b"a": 2})


MALFORMED = {
    "empty input": b"",
    "int leading zero": b"i03e",
    "int negative zero": b"i-0e",
    "int empty": b"ie",
    "int sign only": b"i-e",
    "int double sign": b"i--1e",
    "int plus sign": b"i+1e",
    "int unterminated": b"i12",
    "int spaces": b"i 1e",
    "int too many digits": b"i" + b"9" * 65 + b"e",
    "string leading zero": b"03:abc",
    "string too short": b"4:abc",
    "string no colon": b"3abc",
    "string negative length": b"-1:a",
    "string huge length": b"99999999999999999999:a",
    "list unterminated": b"li1e",
    "dict unterminated": b"d1:ai1e",
    "dict key missing value": b"d1:ae",
    "dict int key": b"di1ei2ee",
    "dict list key": b"dlei2ee",
    "dict unsorted keys": b"d1:bi1e1:ai2ee",
    "dict duplicate keys": b"d1:ai1e1:ai2ee",
    "dict unsorted bytes keys": b"d1:\xffi1e1:ai2ee",
    "trailing data": b"i1ei2e",
    "trailing newline": b"i1e\n",
    "unknown type": b"x",
    "end marker alone": b"e",
    "too deep lists": b"l" * (MAX_DEPTH + 1) + b"e" * (MAX_DEPTH + 1),
    "too deep dicts": b"d1:a" * (MAX_DEPTH + 1) + b"i0e" + b"e" * (MAX_DEPTH + 1),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(data: bytes) -> None:
    with pytest.raises(InvalidManifestError) as info:
        bdecode(data, source="x.torrent")
    assert info.value.path == "x.torrent"
    assert "malformed bencode" in str(info.value)


def test_depth_limit_is_inclusive() -> None:
    nested = b"l" * MAX_DEPTH + b"e" * MAX_DEPTH
    assert bencode(bdecode(nested)) == nested


def test_accepts_bytearray_and_memoryview() -> None:
    assert bdecode(bytearray(b"li1ee")) == [1]
    assert bdecode(memoryview(b"d1:a0:e")) == {b"a": b""}


def test_pre_encoded_values_are_inserted_verbatim() -> None:
    assert bencode({b"a": Encoded(b"li1ee"), b"b": [Encoded(b"0:")]}) == b"d1:ali1ee1:bl0:ee"


def test_bdecode_dict_spans() -> None:
    data = b"d4:infod1:xi1ee5:otherl1:aee"
    value, spans = bdecode_dict(data)
    assert value == {b"info": {b"x": 1}, b"other": [b"a"]}
    start, end = spans[b"info"]
    assert data[start:end] == b"d1:xi1ee"
    for bad in (b"li1ee", b"d1:ai1e", b"d1:ai1eei1e", b"d1:bi1e1:ai1ee", b""):
        with pytest.raises(InvalidManifestError):
            bdecode_dict(bad)
