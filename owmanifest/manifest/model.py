"""The manifest data model: plain frozen values, no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .digest import Digest

__all__ = [
    "DATETIME_RE",
    "DID_KEY_RE",
    "MAX_VERSION",
    "FileEntry",
    "Manifest",
    "ProofInfo",
    "utc_now",
]

#: An Ed25519 ``did:key`` (multicodec 0xed01, base58btc): the only signer identifiers we accept.
DID_KEY_RE = re.compile(r"^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$")

#: An ``xsd:dateTime`` with a time zone, as a manifest's ``created`` and ``expires`` must be
#: (the manifest schema's ``dateTime``).
DATETIME_RE = re.compile(
    r"^-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)

#: The largest version a manifest can carry (integers of at most 20 digits are read).
MAX_VERSION = 10**20 - 1


def utc_now() -> str:
    """The current time as an ``xsd:dateTime`` in UTC with second precision."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a dataset.

    Attributes:
        path: relative POSIX path, UTF-8 NFC (see :mod:`owmanifest.manifest.paths`).
        size: size in bytes.
        root: BEP 52 Merkle root (``bep52:<hex>``); ``None`` exactly when ``size == 0``.
    """

    path: str
    size: int
    root: Digest | None


@dataclass(frozen=True)
class ProofInfo:
    """A Data Integrity proof as found in a document (not yet verified)."""

    type: str
    cryptosuite: str | None
    verification_method: str | None
    proof_purpose: str | None
    created: str | None
    proof_value: str | None
    id: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A dataset manifest.

    Attributes:
        id: absolute IRI of the dataset (no fragment).
        version: positive integer, increasing with each release of the dataset.
        files: the files, sorted by path.
        signers: the authorized signers (``did:key:`` IRIs), sorted.
        threshold: how many distinct authorized signers must sign.
        piece_length: BitTorrent piece length (power of two, >= 16 KiB).
        info_hash_v1 / info_hash_v2: hex info-hashes of the sidecar torrent, if recorded.
        torrent_name: the top directory name used in the torrent.
    """

    id: str
    version: int
    files: tuple[FileEntry, ...]
    signers: tuple[str, ...]
    threshold: int
    piece_length: int
    info_hash_v1: str | None = None
    info_hash_v2: str | None = None
    torrent_name: str | None = None
    title: str | None = None
    description: str | None = None
    license: str | None = None
    created: str | None = None
    previous_version: Digest | None = None
    expires: str | None = None
    private: bool = False
    mirrors: tuple[str, ...] = ()
    trackers: tuple[str, ...] = ()
    _by_path: Mapping[str, FileEntry] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_path", {f.path: f for f in self.files})

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> FileEntry:
        """The entry for ``path``. Raises ``KeyError`` if there is none."""
        return self._by_path[path]

    def select(self, paths: Iterable[str]) -> tuple[FileEntry, ...]:
        wanted = set(paths)
        return tuple(f for f in self.files if f.path in wanted)
