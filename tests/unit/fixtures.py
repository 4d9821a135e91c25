"""Shared access to the committed, generated test data (tests/assets/generate.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from owmanifest.manifest.document import compiled_reader
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


# The verifier's one pass has two implementations (ADR 0008): the compiled one (``_nqindex``,
# used when it is built) and the Python one. Tests of the one pass run each that is available.
ONE_PASS_READERS = ["python"] + (["compiled"] if compiled_reader() else [])


@contextlib.contextmanager
def one_pass_reader(name: str) -> Iterator[None]:
    """Make the verifier's one pass use the ``"compiled"`` or the ``"python"`` reader."""
    from owmanifest.verify import manifest as verifier

    real = verifier.compiled_reader  # type: ignore[attr-defined]
    fake = real if name == "compiled" else (lambda: False)
    setattr(verifier, "compiled_reader", fake)  # noqa: B010 (not exported: set by name)
    try:
        yield
    finally:
        setattr(verifier, "compiled_reader", real)  # noqa: B010


# --- a file going bad under a scan or a hash (test_builder, test_hashcore) ----------------------


def remove_file(path: Path) -> None:
    path.unlink()


def replace_by_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def replace_by_dangling_symlink(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.with_name("nothing-here"))
