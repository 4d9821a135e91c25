"""The manifest data model: plain frozen values, no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .digest import Digest

__all__ = [
    "DID_KEY_RE",
    "MAX_VERSION",
    "FileEntry",
    "Manifest",
    "ProofInfo",
    "is_xsd_datetime",
    "utc_now",
    "xsd_datetime_seconds",
]

#: An Ed25519 ``did:key`` (multicodec 0xed01, base58btc): the only signer identifiers we accept.
DID_KEY_RE = re.compile(r"^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$")

# XML Schema 1.1 Part 2, section 3.3.7 (dateTime) lexical space.
_XSD_DATETIME = re.compile(
    r"(?P<sign>-?)(?P<year>[1-9][0-9]{3,}|0[0-9]{3})-(?P<month>0[1-9]|1[0-2])"
    r"-(?P<day>0[1-9]|[12][0-9]|3[01])"
    r"T(?:(?P<hour>[01][0-9]|2[0-3]):(?P<minute>[0-5][0-9]):(?P<second>[0-5][0-9])(?:\.[0-9]+)?"
    r"|(?P<midnight>24:00:00)(?:\.0+)?)"
    r"(?P<tz>Z|(?P<offset_sign>[+-])(?P<offset>(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))?"
)


def _days_in_month(year: int, month: int) -> int:
    """Proleptic Gregorian, astronomical years (xsd 1.1: year 0 is 1 BCE, a leap year)."""
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date, any year (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _real_datetime(text: str) -> tuple[re.Match[str], int] | None:
    """``text``'s match and (signed) year, when it is in the lexical space of ``xsd:dateTime``
    and its day is one its month has."""
    match = _XSD_DATETIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    year = -int(match["year"]) if match["sign"] else int(match["year"])
    if int(match["day"]) > _days_in_month(year, int(match["month"])):
        return None
    return match, year


def is_xsd_datetime(text: str, *, require_timezone: bool = False) -> bool:
    """Whether ``text`` is in the lexical space of ``xsd:dateTime``: a real calendar date (no
    30 February, in any year), an hour of 00-23 or the end of the day ``24:00:00``, an offset
    within ±14:00.

    With ``require_timezone``, only ``xsd:dateTimeStamp`` values (with ``Z`` or an offset), as
    a manifest's ``created`` and ``expires`` and a proof's ``created`` must be.
    """
    found = _real_datetime(text)
    return found is not None and not (require_timezone and found[0]["tz"] is None)


def xsd_datetime_seconds(text: str) -> int:
    """An ``xsd:dateTime`` with a time zone (:func:`is_xsd_datetime` with ``require_timezone``)
    as whole seconds since 1970-01-01T00:00:00Z (fractions dropped). Any year: what Python's
    ``datetime`` cannot hold (years before 1 or after 9999) compares as it should.

    Raises:
        ValueError: ``text`` is not such a value.
    """
    found = _real_datetime(text)
    if found is None or found[0]["tz"] is None:
        raise ValueError(f"not an xsd:dateTime with a time zone: {text!r}")
    match, year = found
    days = _days_from_civil(year, int(match["month"]), int(match["day"]))
    if match["midnight"]:
        seconds = 86400
    else:
        seconds = int(match["hour"]) * 3600 + int(match["minute"]) * 60 + int(match["second"])
    if match["offset"]:
        hours, minutes = match["offset"].split(":")
        offset = (int(hours) * 60 + int(minutes)) * 60
        seconds -= offset if match["offset_sign"] == "+" else -offset
    return days * 86400 + seconds


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
