"""Bencoding (BEP 3), with a strict decoder.

The decoder accepts only the canonical form: integers without leading zeros (and no ``-0``),
string lengths without leading zeros, dictionary keys sorted as raw bytes and unique, no data
after the value, nesting at most :data:`MAX_DEPTH` deep. Canonical input re-encodes to the same
bytes, so a torrent's info-hash can be computed from the decoded ``info`` dictionary. Anything
else raises :class:`~owmanifest.errors.InvalidManifestError`, never another exception type.

Decoded values are ``int``, ``bytes``, ``list`` and ``dict`` with ``bytes`` keys. The encoder
also accepts ``str`` (encoded as UTF-8), ``tuple`` and ``bytearray``/``memoryview``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from ..errors import InvalidManifestError

__all__ = ["MAX_DEPTH", "BValue", "Encoded", "bdecode", "bdecode_dict", "bencode"]

MAX_DEPTH = 64
"""Deepest nesting of lists and dictionaries :func:`bdecode` accepts."""

BValue: TypeAlias = int | bytes | list["BValue"] | dict[bytes, "BValue"]
"""A decoded bencoded value."""

_DIGITS = frozenset(b"0123456789")
_INTEGER = re.compile(rb"i(-?(?:0|[1-9][0-9]{0,63}))e")  # canonical only; "-0" checked apart
_STRING = re.compile(rb"(0|[1-9][0-9]{0,18}):")
_MAX_LENGTH_DIGITS = 19  # lengths beyond 10**19 bytes cannot be in memory anyway
_MAX_INT_DIGITS = 64


@dataclass(frozen=True)
class Encoded:
    """Bytes that are already bencoded, inserted verbatim by :func:`bencode`.

    For builders of large structures (a torrent's per-file entries): the caller guarantees that
    ``data`` is one canonical bencoded value.
    """

    data: bytes


def _key(key: object) -> bytes:
    if type(key) is bytes:
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise TypeError(f"bencode dictionary keys must be bytes or str, not {type(key).__name__}")


def _first(item: tuple[bytes, object]) -> bytes:
    return item[0]


def _encode_dict(value: Mapping[object, object], out: list[bytes]) -> None:
    items = sorted([(_key(k), v) for k, v in value.items()], key=_first)
    out.append(b"d")
    previous: bytes | None = None
    for key, item in items:
        if key == previous:
            raise ValueError(f"duplicate bencode dictionary key {key!r}")
        previous = key
        out += (b"%d:" % len(key), key)
        if type(item) is Encoded:  # most values of a large torrent's file tree
            out.append(item.data)
        else:
            _encode(item, out)
    out.append(b"e")


def _encode(value: object, out: list[bytes]) -> None:
    # concrete types first, in the order of frequency in a large torrent; ABCs last (slow)
    if isinstance(value, Encoded):
        out.append(value.data)
    elif isinstance(value, bytes):
        out += (b"%d:" % len(value), value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out += (b"%d:" % len(raw), raw)
    elif isinstance(value, dict):
        _encode_dict(value, out)
    elif isinstance(value, bool):  # a bool is an int; refuse it rather than guess
        raise TypeError("cannot bencode a bool")
    elif isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, (list, tuple)):
        out.append(b"l")
        for item in value:
            if type(item) is Encoded:  # a large torrent's v1 file list
                out.append(item.data)
            else:
                _encode(item, out)
        out.append(b"e")
    elif isinstance(value, (bytearray, memoryview)):
        raw = bytes(value)
        out += (b"%d:" % len(raw), raw)
    elif isinstance(value, Mapping):
        _encode_dict(value, out)
    elif isinstance(value, Sequence):
        _encode(list(value), out)
    else:
        raise TypeError(f"cannot bencode a {type(value).__name__}")


def bencode(value: object) -> bytes:
    """Encode ``value``; dictionary keys are sorted as raw bytes.

    Raises:
        TypeError: a value or key of a type bencoding cannot represent (``bool``, ``float``,
            ``None``, ...).
        ValueError: two keys of one dictionary encode to the same bytes (``"a"`` and ``b"a"``).
    """
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


class _Decoder:
    __slots__ = ("data", "source")

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.source = source

    def fail(self, pos: int, why: str) -> InvalidManifestError:
        return InvalidManifestError(f"malformed bencode at byte {pos}: {why}", path=self.source)

    def digits(self, start: int, end_char: int, limit: int) -> tuple[int, int]:
        """Parse a canonical non-negative decimal from ``start`` up to ``end_char``."""
        data = self.data
        end = data.find(end_char, start, start + limit + 1)
        if end < 0:
            raise self.fail(start, "unterminated or over-long number")
        text = data[start:end]
        if not text or not _DIGITS.issuperset(text):
            raise self.fail(start, "not a decimal number")
        if len(text) > 1 and text[0] == 0x30:
            raise self.fail(start, "leading zero")
        return int(text), end + 1

    def string(self, pos: int) -> tuple[bytes, int]:
        match = _STRING.match(self.data, pos)
        if match is None:
            self.digits(pos, 0x3A, _MAX_LENGTH_DIGITS)  # raises the precise error
            raise self.fail(pos, "not a canonical string length")
        length, start = int(match[1]), match.end()
        end = start + length
        if end > len(self.data):
            raise self.fail(pos, f"string of {length} bytes runs past the end")
        return self.data[start:end], end

    def value(self, pos: int, depth: int) -> tuple[BValue, int]:
        data = self.data
        if pos >= len(data):
            raise self.fail(pos, "unexpected end of data")
        c = data[pos]
        if c == 0x69:  # i
            match = _INTEGER.match(data, pos)
            if match is not None and match[1] != b"-0":
                return int(match[1]), match.end()
            start = pos + 1  # not canonical: find out why
            negative = start < len(data) and data[start] == 0x2D  # -
            self.digits(start + negative, 0x65, _MAX_INT_DIGITS)  # e
            raise self.fail(pos, "negative zero")
        if 0x30 <= c <= 0x39:
            return self.string(pos)
        if c == 0x6C:  # l
            if depth >= MAX_DEPTH:
                raise self.fail(pos, f"nested deeper than {MAX_DEPTH}")
            items: list[BValue] = []
            pos += 1
            while True:
                if pos >= len(data):
                    raise self.fail(pos, "unterminated list")
                if data[pos] == 0x65:
                    return items, pos + 1
                item, pos = self.value(pos, depth + 1)
                items.append(item)
        if c == 0x64:  # d
            if depth >= MAX_DEPTH:
                raise self.fail(pos, f"nested deeper than {MAX_DEPTH}")
            result: dict[bytes, BValue] = {}
            previous: bytes | None = None
            pos += 1
            while True:
                if pos >= len(data):
                    raise self.fail(pos, "unterminated dictionary")
                if data[pos] == 0x65:
                    return result, pos + 1
                if not 0x30 <= data[pos] <= 0x39:
                    raise self.fail(pos, "dictionary key is not a string")
                key_pos = pos
                key, pos = self.string(pos)
                if previous is not None and key <= previous:
                    why = "duplicate" if key == previous else "unsorted"
                    raise self.fail(key_pos, f"{why} dictionary key {key!r}")
                previous = key
                result[key], pos = self.value(pos, depth + 1)
        raise self.fail(pos, f"unexpected byte {bytes([c])!r}")


def bdecode(data: bytes | bytearray | memoryview, *, source: str = "<bencode>") -> BValue:
    """Decode one canonical bencoded value that spans all of ``data``.

    Args:
        data: the encoded bytes.
        source: what to name in error messages (a path or URI).

    Raises:
        InvalidManifestError: ``data`` is not exactly one canonical bencoded value.
    """
    raw = bytes(data)
    decoder = _Decoder(raw, source)
    try:
        value, end = decoder.value(0, 0)
    except RecursionError as exc:  # only if the interpreter's limit is below MAX_DEPTH frames
        raise decoder.fail(0, "nested too deeply") from exc
    if end != len(raw):
        raise decoder.fail(end, "trailing data after the value")
    return value


def bdecode_dict(
    data: bytes | bytearray | memoryview, *, source: str = "<bencode>"
) -> tuple[dict[bytes, BValue], dict[bytes, tuple[int, int]]]:
    """Decode a canonical bencoded dictionary; also return where each value lies in ``data``.

    The spans let a caller hash a value exactly as it was encoded (a torrent's ``info``).

    Returns:
        The dictionary, and for each key the ``(start, end)`` byte offsets of its value.

    Raises:
        InvalidManifestError: ``data`` is not exactly one canonical bencoded dictionary.
    """
    raw = bytes(data)
    decoder = _Decoder(raw, source)
    if not raw.startswith(b"d"):
        raise decoder.fail(0, "not a dictionary")
    result: dict[bytes, BValue] = {}
    spans: dict[bytes, tuple[int, int]] = {}
    previous: bytes | None = None
    pos = 1
    try:
        while pos < len(raw) and raw[pos] != 0x65:  # e
            if not 0x30 <= raw[pos] <= 0x39:
                raise decoder.fail(pos, "dictionary key is not a string")
            key_pos = pos
            key, pos = decoder.string(pos)
            if previous is not None and key <= previous:
                why = "duplicate" if key == previous else "unsorted"
                raise decoder.fail(key_pos, f"{why} dictionary key {key!r}")
            previous = key
            start = pos
            result[key], pos = decoder.value(pos, 1)
            spans[key] = (start, pos)
    except RecursionError as exc:
        raise decoder.fail(0, "nested too deeply") from exc
    if pos >= len(raw):
        raise decoder.fail(pos, "unterminated dictionary")
    if pos + 1 != len(raw):
        raise decoder.fail(pos + 1, "trailing data after the value")
    return result, spans
