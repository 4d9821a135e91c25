"""base58btc, multibase (``z`` prefix only) and the two multicodec headers we use.

Written here rather than imported: ~40 lines, and a dependency that parses attacker-supplied
strings must be small enough to read. Only what ``did:key`` Ed25519 keys and ``eddsa-rdfc-2022``
proof values need is supported.
"""

from __future__ import annotations

from typing import Final

from ..errors import SignatureError

__all__ = [
    "ED25519_PRIV",
    "ED25519_PUB",
    "MAX_ENCODED_LENGTH",
    "b58decode",
    "b58encode",
    "multibase_decode",
    "multibase_encode",
    "multicodec_unwrap",
    "multicodec_wrap",
]

#: The Bitcoin base58 alphabet (multibase ``base58btc``).
ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX: Final = {c: i for i, c in enumerate(ALPHABET)}

#: Multicodec ``ed25519-pub`` (0xed) as an unsigned varint.
ED25519_PUB: Final = b"\xed\x01"
#: Multicodec ``ed25519-priv`` (0x1300) as an unsigned varint.
ED25519_PRIV: Final = b"\x80\x26"

#: Longest base58 string we decode. Keys and signatures are under 100 characters; the cap keeps
#: the quadratic big-integer conversion harmless on hostile input.
MAX_ENCODED_LENGTH: Final = 1024


def b58encode(data: bytes) -> str:
    """Encode bytes as base58btc (leading zero bytes become ``"1"``)."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, rest = divmod(number, 58)
        digits.append(ALPHABET[rest])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Decode base58btc.

    Raises:
        SignatureError: not a string, too long, or a character outside the alphabet.
    """
    if not isinstance(text, str):
        raise SignatureError("base58 input is not a string", observed=type(text).__name__)
    if len(text) > MAX_ENCODED_LENGTH:
        raise SignatureError(
            "base58 string too long",
            expected=f"at most {MAX_ENCODED_LENGTH} characters",
            observed=len(text),
        )
    number = 0
    for position, char in enumerate(text):
        value = _INDEX.get(char)
        if value is None:
            raise SignatureError(
                "invalid base58btc character",
                expected="one of the base58btc alphabet",
                observed=f"{char!r} at position {position}",
            )
        number = number * 58 + value
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * zeros + body


def multibase_encode(data: bytes) -> str:
    """Multibase base58btc: ``"z"`` followed by :func:`b58encode`."""
    return "z" + b58encode(data)


def multibase_decode(text: str) -> bytes:
    """Decode a multibase base58btc string (``"z..."``); no other base is accepted.

    Raises:
        SignatureError: not ``z``-prefixed, empty, or invalid base58btc.
    """
    if not isinstance(text, str) or not text.startswith("z") or len(text) < 2:
        raise SignatureError(
            "not a multibase base58btc value",
            expected="'z' followed by base58btc",
            observed=_preview(text),
        )
    return b58decode(text[1:])


def multicodec_wrap(code: bytes, raw: bytes) -> bytes:
    """Prefix ``raw`` with a multicodec header (:data:`ED25519_PUB` or :data:`ED25519_PRIV`)."""
    return code + raw


def multicodec_unwrap(code: bytes, data: bytes, *, length: int, what: str) -> bytes:
    """Strip the multicodec header ``code`` from ``data`` and check the payload length.

    Raises:
        SignatureError: another header, or a payload that is not ``length`` bytes long.
    """
    if not data.startswith(code):
        raise SignatureError(
            f"{what}: wrong multicodec header",
            expected=code.hex(),
            observed=data[: len(code)].hex() or "nothing",
        )
    raw = data[len(code) :]
    if len(raw) != length:
        raise SignatureError(
            f"{what}: wrong key length", expected=f"{length} bytes", observed=f"{len(raw)} bytes"
        )
    return raw


def _preview(value: object) -> str:
    """Describe a bad value without quoting it: it may be a private key."""
    if not isinstance(value, str):
        return type(value).__name__
    if not value:
        return "an empty string"
    return f"{len(value)} characters starting with {value[:1]!r}"
