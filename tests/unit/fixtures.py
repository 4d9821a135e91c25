"""Shared access to the committed, generated test data (tests/assets/generate.py)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from owmanifest.verify.keys import PrivateKey, read_key_file

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "generated"


def _dids() -> dict[str, str]:
    out = {}
    for line in (ASSETS / "dids.txt").read_text("utf-8").splitlines():
        name, did = line.split()
        out[name] = did
    return out


DIDS = _dids()


@cache
def key(name: str) -> PrivateKey:
    return read_key_file(ASSETS / f"{name}.key")


def signed_bytes() -> bytes:
    return (ASSETS / "signed.jsonld").read_bytes()
