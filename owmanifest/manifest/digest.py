"""Content addresses: a small frozen value that prints as ``algorithm:hex``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidManifestError

__all__ = ["BEP52", "SHA256", "Digest"]

BEP52 = "bep52"
SHA256 = "sha256"
_LENGTHS = {BEP52: 32, SHA256: 32, "sha1": 20, "btih": 20, "btmh": 32, "rdfc-sha256": 32}
_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """A content address: an algorithm name and the raw digest bytes.

    ``str(d)`` is ``"bep52:<64 hex digits>"``; :meth:`parse` reads that form back.
    """

    algorithm: str
    value: bytes

    def __post_init__(self) -> None:
        want = _LENGTHS.get(self.algorithm)
        if want is not None and len(self.value) != want:
            raise InvalidManifestError(
                f"{self.algorithm} digest has the wrong length",
                expected=f"{want} bytes",
                observed=f"{len(self.value)} bytes",
            )

    @property
    def hex(self) -> str:
        return self.value.hex()

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.value.hex()}"

    @classmethod
    def parse(cls, text: str, *, algorithm: str | None = None) -> Digest:
        """Parse ``algorithm:hex``.

        Raises:
            InvalidManifestError: not of that form, unknown length, or not the expected algorithm.
        """
        algo, sep, hexpart = text.partition(":")
        if not sep or not algo or not _HEX.match(hexpart) or len(hexpart) % 2:
            raise InvalidManifestError(
                "not a content address", expected="algorithm:lowercase-hex", observed=text
            )
        if algorithm is not None and algo != algorithm:
            raise InvalidManifestError(
                "unexpected digest algorithm", expected=algorithm, observed=algo
            )
        return cls(algo, bytes.fromhex(hexpart))
