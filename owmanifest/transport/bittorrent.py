"""BitTorrent: fetching a dataset from a swarm, and seeding one, with libtorrent 2.

Nothing here is trusted more than an HTTP mirror. The signed manifest records the info-hashes of
its sidecar torrent (a hybrid v1+v2 torrent, see :mod:`owmanifest.manifest.torrent`), so:

* a sidecar torrent is used only if its info-hashes are the manifest's and every file's size and
  BEP 52 root equal the manifest's (:func:`check_torrent`);
* without a sidecar, the ``info`` dictionary comes from peers (a magnet link built from the
  manifest's info-hashes); libtorrent checks it against the info-hash, and so do we, before any
  piece is downloaded, together with every file's size and root;
* libtorrent checks every piece (v1 SHA-1 and v2 Merkle hashes) and bans peers that send bad
  data; and :func:`owmanifest.transport.fetch` hashes every file again before exposing it.

:class:`BitTorrentTransport` is a :class:`~owmanifest.transport.base.DirectoryTransport`: each
torrent file is mapped to the path in the partial area where the fetcher wants it
(``PlannedFile.partial_path``); files not asked for get priority 0 and a path inside the
transport's own directory (``<partial area>/bittorrent/``), so libtorrent never writes outside
the partial area. That directory also keeps libtorrent's resume data after an interrupted fetch,
bound to the exact files it describes (device, inode, size, modification time), so a restart
does not hash or download the finished pieces again; resume data that no longer describes the
files is dropped and libtorrent checks the files instead.

:class:`Seeder` shares a dataset directory that matches a manifest.

libtorrent is imported on first use: this module imports without it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import shutil
import stat
import threading
import time
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from .._atomic import write_atomic
from ..errors import (
    Error,
    FetchError,
    InvalidManifestError,
    MissingFileError,
    PathError,
    StallError,
    TransportError,
    UsageError,
    VerificationError,
)
from ..manifest.builder import default_torrent_name
from ..manifest.model import Manifest
from ..manifest.paths import check_path
from ..manifest.torrent import ParsedTorrent, info_hashes, parse_torrent
from ._lt import (
    AlertPump,
    TorrentFileInfo,
    format_endpoint,
    import_libtorrent,
    magnet_uri,
    new_session,
    parse_endpoint,
    torrent_files,
)
from ._partial import _ensure_dir
from .base import DirectoryTransport, FetchPlan, PlannedFile, Progress

__all__ = [
    "BitTorrentTransport",
    "Seeder",
    "SwarmStats",
    "can_find_peers",
    "check_torrent",
    "manifest_magnet_uri",
]

log = logging.getLogger(__name__)

#: The transport's directory inside the partial area.
WORK_DIR = "bittorrent"
_GUARD_FORMAT = "owmanifest-bittorrent-resume/1"
#: How long to wait for libtorrent's own bookkeeping (resume data, removal, cache flush).
_HOUSEKEEPING_TIMEOUT = 30.0
#: Explicit peers are dialled again this often while no peer is connected.
_REDIAL_INTERVAL = 5.0
_TICK = 0.2


# --- checking a torrent against the manifest -----------------------------------------------------


def _manifest_hashes(manifest: Manifest) -> tuple[str | None, str]:
    """The manifest's info-hashes ``(v1 or None, v2)``, lower-case hex.

    Raises:
        InvalidManifestError: the manifest records no v2 info-hash (so no torrent can be
            authenticated), or a malformed one.
        UsageError: the dataset holds no bytes, so it has no torrent.
    """
    v1, v2 = manifest.info_hash_v1, manifest.info_hash_v2
    if v2 is None and manifest.total_size == 0:
        raise UsageError(
            "the dataset holds no bytes (only empty files, or none): there is no torrent",
            uri=manifest.id,
        )
    if v2 is None:
        raise InvalidManifestError(
            "the manifest records no BitTorrent info-hash, so no torrent can be authenticated "
            "by it; re-create it with a current owmanifest",
            uri=manifest.id,
            expected="an infoHashV2",
            observed="none",
        )
    for value, size in ((v1, 40), (v2, 64)):
        if value is not None and (len(value) != size or not _is_hex(value)):
            raise InvalidManifestError(
                "malformed info-hash in the manifest",
                uri=manifest.id,
                expected=f"{size} hex digits",
                observed=value,
            )
    return (None if v1 is None else v1.lower()), v2.lower()


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _torrent_name(manifest: Manifest) -> str:
    return manifest.torrent_name or default_torrent_name(manifest.id)


def _check_files(
    manifest: Manifest,
    name: str,
    files: Sequence[tuple[str, int, bytes | None]],
    *,
    source: str,
) -> None:
    """The torrent's name and files (path, size, root) must be exactly the manifest's.

    Raises:
        VerificationError: they differ; the message lists the differences.
    """
    expected_name = _torrent_name(manifest)
    if name != expected_name:
        raise VerificationError(
            f"{source}: the torrent's name differs from the manifest's",
            uri=source,
            expected=expected_name,
            observed=name,
        )
    want = {f.path: (f.size, None if f.root is None else f.root.value) for f in manifest.files}
    have: dict[str, tuple[int, bytes | None]] = {}
    for path, size, root in files:
        have[path] = (size, root)
    problems: list[str] = []
    for path in sorted(set(want) | set(have)):
        if path not in have:
            problems.append(f"{path}: missing from the torrent")
        elif path not in want:
            problems.append(f"{path}: not in the manifest")
        elif have[path] != want[path]:
            (ws, wr), (hs, hr) = want[path], have[path]
            problems.append(
                f"{path}: torrent has {hs} bytes, root {hr.hex() if hr else None}; "
                f"manifest has {ws} bytes, root {wr.hex() if wr else None}"
            )
    if problems:
        shown = problems[:10] + (
            [f"... and {len(problems) - 10} more"] if len(problems) > 10 else []
        )
        raise VerificationError(
            f"{source}: the torrent's files differ from the manifest's:\n  " + "\n  ".join(shown),
            uri=source,
            expected=f"{len(want)} files as in the manifest",
            observed=f"{len(problems)} difference(s)",
        )


def check_torrent(
    manifest: Manifest, torrent: bytes, *, source: str = "<torrent>"
) -> ParsedTorrent:
    """Check that ``torrent`` is the sidecar torrent the manifest records, and parse it.

    A torrent is authenticated only by the signed manifest: its info-hashes must be the ones the
    manifest records, and (belt and braces, and so files can be mapped by path) its name, files,
    sizes, roots and private flag must be the manifest's. Trackers and web seeds in the torrent
    are outside the info dictionary, hence not authenticated; the transport does not use them
    (libtorrent is given only ``info`` and ``piece layers``: :func:`_authenticated_part`).

    Returns:
        The parsed torrent (its ``piece_layers`` let :func:`~owmanifest.transport.fetch` verify
        and resume every file piece by piece).

    Raises:
        InvalidManifestError: the torrent is malformed, or the manifest records no info-hash.
        VerificationError: the torrent is not the one the manifest records (the message names
            the expected and the observed info-hash) or describes other files.
    """
    v1, v2 = _manifest_hashes(manifest)
    observed = info_hashes(torrent, source=source)
    if observed.v2 != v2 or observed.v1 != v1:
        raise VerificationError(
            f"{source} is not the torrent the manifest records",
            uri=source,
            expected=f"v1 {v1}, v2 {v2}",
            observed=f"v1 {observed.v1}, v2 {observed.v2}",
        )
    parsed = parse_torrent(torrent, source=source)
    _check_files(manifest, parsed.name, parsed.files, source=source)
    if parsed.private != manifest.private:
        raise VerificationError(
            f"{source}: the private flag differs from the manifest's",
            uri=source,
            expected=manifest.private,
            observed=parsed.private,
        )
    return parsed


def can_find_peers(
    manifest: Manifest, *, dht: bool, peers: Sequence[str] = (), trackers: Sequence[str] = ()
) -> bool:
    """Whether BitTorrent has any way to find a peer for ``manifest``: the DHT, a peer given,
    or a tracker (given, or named by the manifest). Without one it would only wait out the
    stall timeout; callers skip it and say so."""
    return bool(dht or peers or trackers or manifest.trackers)


def manifest_magnet_uri(
    manifest: Manifest,
    *,
    trackers: Sequence[str] = (),
    peers: Sequence[str] = (),
    web_seeds: Sequence[str] = (),
) -> str:
    """The magnet link of a manifest's torrent (``xt`` for v1 and v2, ``dn``, ``tr``, ``x.pe``).

    The manifest's own trackers come first.

    Raises:
        InvalidManifestError: the manifest records no info-hash.
    """
    v1, v2 = _manifest_hashes(manifest)
    return magnet_uri(
        info_hash_v1=v1,
        info_hash_v2=v2,
        name=_torrent_name(manifest),
        trackers=[*manifest.trackers, *trackers],
        peers=peers,
        web_seeds=web_seeds,
    )


@dataclass(frozen=True)
class _UriOptions:
    v1: str | None = None
    v2: str | None = None
    trackers: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    web_seeds: tuple[str, ...] = ()


def _parse_uri(uri: str) -> _UriOptions:
    """``magnet:?xt=...&tr=...&x.pe=...&ws=...`` or ``bittorrent:`` with the same parameters.

    Raises:
        UsageError: another scheme, a malformed info-hash or peer address.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in ("magnet", "bittorrent"):
        raise UsageError(
            f"not a magnet or bittorrent URI: {uri!r}", uri=uri, expected="magnet:?xt=..."
        )
    query = parts.query or (parts.path[1:] if parts.path.startswith("?") else "")
    v1: str | None = None
    v2: str | None = None
    trackers: list[str] = []
    peers: list[str] = []
    seeds: list[str] = []
    for key, value in parse_qsl(query, keep_blank_values=False):
        if key == "xt" or key.startswith("xt."):
            low = value.lower()
            if low.startswith("urn:btih:"):
                v1 = _btih(value[9:], uri)
            elif low.startswith("urn:btmh:"):
                digest = value[9:].lower()
                if not digest.startswith("1220") or len(digest) != 68 or not _is_hex(digest):
                    raise UsageError(
                        "unsupported btmh multihash in the URI",
                        uri=uri,
                        expected="1220 + 64 hex digits (SHA-256)",
                        observed=value,
                    )
                v2 = digest[4:]
        elif key == "tr":
            trackers.append(value)
        elif key == "x.pe":
            parse_endpoint(value)
            peers.append(value)
        elif key == "ws":
            seeds.append(value)
    return _UriOptions(v1, v2, tuple(trackers), tuple(peers), tuple(seeds))


def _btih(text: str, uri: str) -> str:
    if len(text) == 40 and _is_hex(text):
        return text.lower()
    if len(text) == 32:
        with contextlib.suppress(binascii.Error, ValueError):
            return base64.b32decode(text.upper()).hex()
    raise UsageError(
        "malformed btih info-hash in the URI",
        uri=uri,
        expected="40 hex digits or 32 base32 characters",
        observed=text,
    )


# --- statistics ----------------------------------------------------------------------------------


@dataclass
class SwarmStats:
    """What one :meth:`BitTorrentTransport.fetch_into` call did (``transport.last_stats``).

    Attributes:
        resumed: libtorrent's resume data from an earlier run was used (no file check).
        resume_rejected: why earlier resume data was not used, if there was some.
        checked: libtorrent checked the files already in the partial area.
        metadata_from_peers: the ``info`` dictionary came from peers (no sidecar torrent).
        num_pieces: pieces in the torrent.
        pieces_at_start: pieces libtorrent had once the files were checked (or resumed).
        pieces_at_end: pieces libtorrent had at the end.
        payload_downloaded: payload bytes received from peers (pad bytes and failed pieces
            included).
        hash_failures: pieces that failed libtorrent's hash check.
        failed_pieces: their indices.
        banned_peers: peers libtorrent banned for sending bad data (``host:port``).
        problems: everything else worth telling (tracker and web seed errors, ...).
    """

    resumed: bool = False
    resume_rejected: str | None = None
    checked: bool = False
    metadata_from_peers: bool = False
    num_pieces: int = 0
    pieces_at_start: int = 0
    pieces_at_end: int = 0
    payload_downloaded: int = 0
    hash_failures: int = 0
    failed_pieces: list[int] = field(default_factory=list)
    banned_peers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)
            log.warning("bittorrent: %s", message)


def _endpoint_text(value: Any) -> str:
    if isinstance(value, tuple) and len(value) == 2:
        return format_endpoint(str(value[0]), int(value[1]))
    return str(value)


def _error_text(ec: Any) -> str:
    try:
        return str(ec.message())
    except Exception:  # pragma: no cover - defensive: libtorrent objects vary between versions
        return str(ec)


# --- the work area: resume data bound to the files it describes ---------------------------------


def _fingerprint(path: Path) -> dict[str, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


class _WorkArea:
    """``<partial area>/bittorrent/<v2 info-hash>/``: libtorrent's save path, resume data,
    metadata obtained from peers, and a place for the files nobody asked for."""

    def __init__(self, partial_dir: Path, v2: str) -> None:
        self.partial_dir = partial_dir
        self.base = partial_dir / WORK_DIR
        self.dir = self.base / v2
        self.resume_path = self.dir / "resume.bencode"
        self.guard_path = self.dir / "resume.json"
        self.metadata_path = self.dir / "metadata.torrent"
        self.unused_dir = self.dir / "unused"

    def open(self) -> None:
        _ensure_dir(self.partial_dir)
        _ensure_dir(self.base)
        _ensure_dir(self.dir)

    def unused(self, index: int) -> Path:
        return self.unused_dir / str(index)

    def read(self, path: Path) -> bytes | None:
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                return None
            return path.read_bytes()
        except OSError:
            return None

    def take_resume(self) -> tuple[bytes | None, Any]:
        """Read and remove the resume data and its guard (a crash then means a full check)."""
        data = self.read(self.resume_path)
        guard_raw = self.read(self.guard_path)
        for path in (self.resume_path, self.guard_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        guard: Any = None
        if guard_raw is not None:
            with contextlib.suppress(ValueError):
                guard = json.loads(guard_raw)
        return data, guard

    def write_resume(self, data: bytes, guard: Mapping[str, Any]) -> None:
        write_atomic(self.resume_path, data, fsync=False)
        write_atomic(self.guard_path, json.dumps(guard, sort_keys=True).encode(), fsync=False)

    def tidy(self) -> None:
        """Remove the directories that hold nothing (so the partial area can go when empty)."""
        for path in (self.unused_dir, self.dir, self.base):
            with contextlib.suppress(OSError):
                path.rmdir()

    def remove(self) -> None:
        """Remove this torrent's directory, and ``bittorrent/`` if nothing else is left."""
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.dir)
        with contextlib.suppress(OSError):
            self.base.rmdir()


# --- the transport -------------------------------------------------------------------------------


class BitTorrentTransport(DirectoryTransport):
    """Fetch files from a BitTorrent swarm with libtorrent.

    Args:
        uri: optional ``magnet:?...`` (or ``bittorrent:?...``) link: its ``tr``, ``x.pe`` and
            ``ws`` parameters add trackers, peers and web seeds; its ``xt`` info-hashes, if any,
            must be the manifest's. The registry calls ``BitTorrentTransport(uri, **options)``.
        torrent: the sidecar torrent (``<manifest>.torrent``); without it the ``info``
            dictionary is obtained from peers.
        peers: ``host:port`` of peers to connect to.
        trackers: tracker URLs, used in addition to the manifest's.
        dht: use the DHT, local service discovery, peer exchange, UPnP and NAT-PMP. Never
            for a private manifest.
        listen: ``host:port`` to listen on (port 0: any free port).
        web_seeds: BEP 19 web seed URLs (``url + <torrent name>/<path>`` must serve a file).
        settings: further libtorrent settings (for example ``download_rate_limit``).

    Attributes:
        last_stats: what the last fetch did (:class:`SwarmStats`), including the hash failures
            and banned peers.

    Raises:
        UsageError: a malformed URI, peer or listen address.
        InvalidManifestError: ``torrent`` is not a v2 torrent.
    """

    scheme = "magnet"

    def __init__(
        self,
        uri: str | None = None,
        *,
        torrent: bytes | None = None,
        peers: Sequence[str] = (),
        trackers: Sequence[str] = (),
        dht: bool = True,
        listen: str = "0.0.0.0:0",
        web_seeds: Sequence[str] = (),
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        options = _parse_uri(uri) if uri is not None else _UriOptions()
        if isinstance(peers, str) or isinstance(trackers, str) or isinstance(web_seeds, str):
            raise UsageError("peers, trackers and web_seeds must be sequences of strings")
        for peer in peers:
            parse_endpoint(peer)
        parse_endpoint(listen, what="listen")
        if torrent is not None:
            if not isinstance(torrent, (bytes, bytearray)):
                raise UsageError("torrent must be the bytes of a .torrent file")
            torrent = bytes(torrent)
            info_hashes(torrent)  # fail early on something that is not a v2 torrent
        self.uri = uri
        self.torrent = torrent
        self.uri_hashes = (options.v1, options.v2)
        self.peers = tuple(dict.fromkeys([*options.peers, *peers]))
        self.trackers = tuple(dict.fromkeys([*options.trackers, *trackers]))
        self.web_seeds = tuple(dict.fromkeys([*options.web_seeds, *web_seeds]))
        self.dht = dht
        self.listen = listen
        self.settings = dict(settings or {})
        self.name = uri if uri is not None else "bittorrent"
        self.last_stats: SwarmStats | None = None
        self._abort = threading.Event()

    def abort(self) -> None:
        """Make a running :meth:`fetch_into` stop (it saves its resume data first)."""
        self._abort.set()

    def fetch_into(self, plan: FetchPlan, partial_dir: Path, progress: Progress) -> None:
        """Download the planned files from the swarm into their ``partial_path``.

        Raises:
            InvalidManifestError: the manifest records no info-hash, or the torrent is
                malformed.
            VerificationError: the sidecar torrent, the URI's info-hashes or the metadata
                obtained from peers do not match the manifest.
            StallError: no verified progress for ``plan.stall_timeout`` seconds.
            PathError: a planned path is outside the partial area or not a regular file.
            FetchError: libtorrent failed (a file could not be written, ...), or
                :meth:`abort` was called.
            DependencyError: libtorrent is not installed.
        """
        self._abort.clear()
        stats = SwarmStats()
        self.last_stats = stats
        if not plan.files:
            return
        manifest = plan.manifest
        v1, v2 = _manifest_hashes(manifest)
        uv1, uv2 = self.uri_hashes
        if (uv1 is not None and uv1 != v1) or (uv2 is not None and uv2 != v2):
            raise VerificationError(
                f"{self.name} names another torrent than the manifest",
                uri=self.name,
                expected=f"v1 {v1}, v2 {v2}",
                observed=f"v1 {uv1}, v2 {uv2}",
            )
        if self.torrent is not None:
            check_torrent(manifest, self.torrent, source=f"{self.name} torrent")
        partial_dir = Path(partial_dir)
        planned = _check_planned(plan, partial_dir)
        lt = import_libtorrent()
        work = _WorkArea(partial_dir, v2)
        work.open()
        private = manifest.private
        use_dht = self.dht and not private
        cat = lt.alert_category
        extra = {"alert_mask": cat.status | cat.error | cat.peer | cat.storage | cat.tracker}
        extra.update(self.settings)
        session = _SessionBox(new_session(self.listen, dht=use_dht, extra=extra))
        run: _Download | None = None
        try:
            run = _Download(
                lt,
                session.session,
                transport=self,
                plan=plan,
                planned=planned,
                work=work,
                progress=progress,
                stats=stats,
                hashes=(v1, v2),
                use_dht=use_dht,
            )
            ti = None if self.torrent is None else _torrent_info(lt, self.torrent, self.name)
            run.run(ti)
        finally:
            if run is not None:
                run.detach()
            session.close()
            work.tidy()


class _SessionBox:
    """Owns the only reference to a session, so closing it really shuts libtorrent down."""

    def __init__(self, session: Any) -> None:
        self.session: Any = session

    def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(Exception):
                session.pause()
            del session  # the destructor waits for libtorrent's threads


def _authenticated_part(data: bytes, source: str) -> bytes:
    """The torrent without what the signed manifest does not authenticate: only ``info`` (its
    info-hashes are signed) and ``piece layers`` (checked against the signed roots), byte for
    byte. A sidecar's ``announce``, ``announce-list`` and ``url-list`` would otherwise make
    libtorrent announce to, and download from, whatever a tamperer put there, telling it who
    fetches what, even with --no-dht or a private dataset (found by a review).

    Raises:
        InvalidManifestError: not a canonical bencoded dictionary with ``info``.
    """
    from ..manifest.bencode import bdecode_dict

    top, spans = bdecode_dict(data, source=source)
    if b"info" not in top:
        raise InvalidManifestError("the torrent has no info dictionary", uri=source)
    parts = [b"d4:info", data[slice(*spans[b"info"])]]
    if b"piece layers" in top:
        parts += [b"12:piece layers", data[slice(*spans[b"piece layers"])]]
    return b"".join(parts) + b"e"


def _info_name(ti: Any) -> str:
    """The ``name`` of the info dictionary as encoded. libtorrent's ``name()`` is the file's
    name when the file tree holds one file at its top (a v2-only torrent of a single-file
    dataset), so such a fetch from a magnet link failed with 'the torrent's name differs'
    (found by a review)."""
    from ..manifest.bencode import bdecode

    info = bdecode(bytes(ti.info_section()), source="the torrent's info")
    name = info.get(b"name") if isinstance(info, dict) else None
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(ti.name())


def _torrent_info(lt: Any, data: bytes, source: str) -> Any:
    try:
        return lt.torrent_info(_authenticated_part(data, source))
    except RuntimeError as exc:
        raise InvalidManifestError(
            f"libtorrent cannot load the torrent: {exc}", uri=source
        ) from exc


def _check_planned(plan: FetchPlan, partial_dir: Path) -> dict[str, PlannedFile]:
    """The planned files by manifest path; their partial paths must be regular files (or
    absent) directly inside the partial area, never symbolic links.

    Raises:
        PathError: a planned path is elsewhere, or is a symbolic link or not a regular file.
        UsageError: a file of the plan is not in the manifest, or is planned twice.
    """
    base = partial_dir.resolve()
    out: dict[str, PlannedFile] = {}
    for f in plan.files:
        try:
            entry = plan.manifest.file(f.entry.path)
        except KeyError:
            raise UsageError(f"{f.entry.path!r} is not a file of the manifest") from None
        if entry != f.entry or f.entry.path in out:
            raise UsageError(f"{f.entry.path!r} is planned twice or differs from the manifest")
        target = Path(f.partial_path)
        if not target.is_absolute() or target.parent.resolve() != base:
            raise PathError(
                f"refusing to write {f.entry.path!r} outside the partial area",
                path=str(target),
                expected=f"a file directly in {base}",
                observed=str(target),
            )
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISREG(st.st_mode):
                raise PathError(
                    "refusing to write through a symbolic link or into a non-regular file",
                    path=str(target),
                    expected="a regular file",
                    observed="a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a file",
                )
        out[f.entry.path] = f
    return out


class _Download:
    """One :meth:`BitTorrentTransport.fetch_into` call: a session, one torrent, its alerts."""

    def __init__(
        self,
        lt: Any,
        session: Any,
        *,
        transport: BitTorrentTransport,
        plan: FetchPlan,
        planned: dict[str, PlannedFile],
        work: _WorkArea,
        progress: Progress,
        stats: SwarmStats,
        hashes: tuple[str | None, str],
        use_dht: bool,
    ) -> None:
        self.lt = lt
        self.session = session
        self.t = transport
        self.plan = plan
        self.manifest = plan.manifest
        self.planned = planned
        self.work = work
        self.progress = progress
        self.stats = stats
        self.v1, self.v2 = hashes
        self.use_dht = use_dht
        self.pump = AlertPump(session, self._on_alert)
        self.fatal: Error | None = None
        self.handle: Any = None  # the torrent being downloaded
        self.checked = False  # libtorrent has checked (or resumed) its files
        self.last_progress = time.monotonic()
        self.last_dial = 0.0

    # --- alerts ---------------------------------------------------------------------------------

    def _on_alert(self, alert: Any) -> None:
        lt = self.lt
        stats = self.stats
        if isinstance(alert, lt.torrent_checked_alert):
            if self.handle is not None and alert.handle == self.handle:
                self.checked = True
        elif isinstance(alert, lt.state_changed_alert):
            if alert.state == lt.torrent_status.checking_files:
                stats.checked = True
        elif isinstance(alert, lt.hash_failed_alert):
            stats.hash_failures += 1
            stats.failed_pieces.append(int(alert.piece_index))
            log.warning("bittorrent: piece %d failed its hash check", alert.piece_index)
        elif isinstance(alert, lt.peer_ban_alert):
            peer = _endpoint_text(alert.endpoint)
            if peer not in stats.banned_peers:
                stats.banned_peers.append(peer)
                log.warning("bittorrent: banned peer %s (it sent data that failed hashing)", peer)
        elif isinstance(alert, lt.url_seed_alert):
            stats.note(f"web seed {alert.server_url()}: {alert.error_message() or alert.message()}")
        elif isinstance(alert, lt.tracker_error_alert):
            stats.note(f"tracker {alert.tracker_url()}: {alert.message()}")
        elif isinstance(alert, lt.metadata_failed_alert):
            stats.note(f"metadata from a peer did not match the info-hash: {alert.message()}")
        elif isinstance(alert, lt.fastresume_rejected_alert):
            stats.resumed = False
            stats.resume_rejected = f"libtorrent: {alert.message()}"
        elif isinstance(alert, lt.listen_failed_alert):
            stats.note(f"cannot listen: {alert.message()}")
        elif isinstance(alert, lt.file_error_alert):
            self.fatal = FetchError(
                f"libtorrent cannot use {alert.filename()}: {_error_text(alert.error)}",
                uri=self.t.name,
                path=str(alert.filename()),
            )
        elif isinstance(alert, lt.torrent_error_alert):
            self.fatal = FetchError(f"libtorrent: {_error_text(alert.error)}", uri=self.t.name)

    def _tick(self) -> None:
        if self.fatal is not None:
            raise self.fatal
        if self.t._abort.is_set():
            raise FetchError(f"{self.t.name}: aborted", uri=self.t.name)
        if time.monotonic() - self.last_progress > self.plan.stall_timeout:
            raise StallError(
                f"{self.t.name}: no verified progress for {self.plan.stall_timeout:g} s",
                uri=self.t.name,
                expected=f"progress within {self.plan.stall_timeout:g} s",
                observed=self._swarm_summary(),
            )

    def _swarm_summary(self) -> str:
        given = list(self.t.peers)
        parts = [f"peers given: {', '.join(given[:5]) + (' ...' if len(given) > 5 else '')}"
                 if given else "peers given: none"]  # fmt: skip
        if self.stats.banned_peers:
            parts.append(f"banned: {', '.join(self.stats.banned_peers)}")
        parts.extend(self.stats.problems[-3:])
        return "; ".join(parts)

    def _dial(self, handle: Any, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_dial < _REDIAL_INTERVAL:
            return
        self.last_dial = now
        for peer in self.t.peers:
            host, port = parse_endpoint(peer)
            with contextlib.suppress(RuntimeError):  # an address libtorrent refuses
                handle.connect_peer((host, port))

    # --- torrent parameters ---------------------------------------------------------------------

    def _flags(self, base: Any) -> Any:
        f = self.lt.torrent_flags
        flags = base & ~(
            f.auto_managed
            | f.paused
            | f.upload_mode
            | f.seed_mode
            | f.share_mode
            | f.stop_when_ready
            | f.super_seeding
            | f.no_verify_files
            | f.default_dont_download
        )
        if not self.use_dht:
            flags |= f.disable_dht | f.disable_lsd | f.disable_pex
        return flags

    def _common(self, atp: Any) -> None:
        atp.trackers = list(dict.fromkeys([*self.manifest.trackers, *self.t.trackers]))
        atp.url_seeds = list(self.t.web_seeds)
        atp.save_path = str(self.work.dir)

    # --- metadata from peers --------------------------------------------------------------------

    def metadata(self) -> Any:
        """The torrent's ``info`` dictionary from peers (or from an earlier run), checked.

        Raises:
            VerificationError: the metadata is not the manifest's torrent.
            StallError: no peer sent it within the stall timeout.
        """
        lt = self.lt
        cached = self.work.read(self.work.metadata_path)
        if cached is not None:
            try:
                ti = self._checked_metadata(lt.torrent_info(cached), "metadata cached earlier")
            except (RuntimeError, Error) as exc:
                log.info("bittorrent: ignoring cached metadata: %s", exc)
            else:
                return ti
        self.stats.metadata_from_peers = True
        atp = lt.add_torrent_params()
        atp.info_hashes = lt.info_hash_t(
            lt.sha1_hash(bytes.fromhex(self.v1)) if self.v1 else lt.sha1_hash(),
            lt.sha256_hash(bytes.fromhex(self.v2)),
        )
        atp.name = _torrent_name(self.manifest)
        self._common(atp)
        atp.url_seeds = []
        atp.save_path = str(self.work.unused_dir)
        # every file at priority 0 once the metadata arrives: nothing is downloaded yet
        atp.flags = self._flags(atp.flags) | lt.torrent_flags.default_dont_download
        handle = self.session.add_torrent(atp)
        self._dial(handle, force=True)
        self.last_progress = time.monotonic()

        def tick() -> None:
            self._tick()
            self._dial(handle)

        while True:
            alert = self.pump.wait_for(
                lt.metadata_received_alert, _TICK * 5, handle=handle, on_tick=tick
            )
            if alert is not None or handle.status().has_metadata:
                break
        ti = lt.torrent_info(handle.torrent_file())
        self._remove(handle)
        ti = self._checked_metadata(ti, "metadata from peers")
        with contextlib.suppress(OSError):
            write_atomic(
                self.work.metadata_path, b"d4:info" + bytes(ti.info_section()) + b"e", fsync=False
            )
        return ti

    def _checked_metadata(self, ti: Any, what: str) -> Any:
        """``ti`` if its ``info`` dictionary hashes to the manifest's info-hashes and its files
        are the manifest's; with the piece layers we know, if we know them all.

        Raises:
            VerificationError: it does not.
        """
        raw = bytes(ti.info_section())
        v1 = hashlib.sha1(raw).hexdigest() if self.v1 is not None else None
        v2 = hashlib.sha256(raw).hexdigest()
        if v1 != self.v1 or v2 != self.v2:
            raise VerificationError(
                f"{self.t.name}: the {what} is not the manifest's torrent",
                uri=self.t.name,
                expected=f"v1 {self.v1}, v2 {self.v2}",
                observed=f"v1 {v1}, v2 {v2}",
            )
        files = torrent_files(ti)
        _check_files(
            self.manifest,
            _info_name(ti),
            [(f.path, f.size, f.root) for f in files],
            source=f"{self.t.name} ({what})",
        )
        # With every piece layer at hand (the fetcher's), libtorrent needs not ask peers for
        # them; parse_torrent checks each against its root.
        pl = self.manifest.piece_length
        needed = [f.root for f in files if f.root is not None and f.size > pl]
        layers = self.plan.piece_layers
        if needed and all(r in layers for r in needed):
            from ..manifest.bencode import bencode

            data = (
                b"d4:info"
                + raw
                + b"12:piece layers"
                + bencode({r: layers[r] for r in needed})
                + b"e"
            )
            with contextlib.suppress(Error, RuntimeError):
                parse_torrent(data, source=what)
                return self.lt.torrent_info(data)
        return ti

    def detach(self) -> None:
        """Drop every reference to the session (so that closing it really shuts it down)."""
        self.session = None
        self.pump.session = None

    def _remove(self, handle: Any) -> None:
        self.session.remove_torrent(handle)
        self.pump.wait_for(self.lt.torrent_removed_alert, _HOUSEKEEPING_TIMEOUT)

    # --- resume data ----------------------------------------------------------------------------

    def _resume_params(self, files: Sequence[TorrentFileInfo]) -> Any:
        """libtorrent's resume data from an earlier run, if it still describes the files."""
        data, guard = self.work.take_resume()
        if data is None:
            return None
        reason = self._guard_problem(guard, files)
        if reason is None:
            try:
                atp = self.lt.read_resume_data(data)
            except RuntimeError as exc:
                reason = f"unreadable: {exc}"
            else:
                ih = atp.info_hashes
                if str(ih.v2) != self.v2 or (self.v1 is not None and str(ih.v1) != self.v1):
                    reason = "it is for another torrent"
        if reason is not None:
            self.stats.resume_rejected = reason
            log.info("bittorrent: not using the resume data: %s", reason)
            return None
        # pieces of files that are no longer planned (the fetcher moved them into place, or
        # they were not asked for this time) are forgotten: those files are not there
        keep = {f.index for f in files if f.path in self.planned}
        drop = {p for f in files if f.index not in keep for p in range(f.first_piece, f.end_piece)}
        have = list(atp.have_pieces)
        for p in drop:
            if p < len(have):
                have[p] = False
        atp.have_pieces = have
        verified = list(atp.verified_pieces)
        for p in drop:
            if p < len(verified):
                verified[p] = False
        atp.verified_pieces = verified
        unfinished = dict(atp.unfinished_pieces)
        atp.unfinished_pieces = {p: b for p, b in unfinished.items() if p not in drop}
        return atp

    def _guard_problem(self, guard: Any, files: Sequence[TorrentFileInfo]) -> str | None:
        """Why the saved resume data cannot be trusted for the planned files, or ``None``."""
        if not isinstance(guard, dict) or guard.get("format") != _GUARD_FORMAT:
            return "no valid record of the files it describes"
        if guard.get("info_hash_v2") != self.v2:
            return "it is for another torrent"
        recorded = guard.get("files")
        if not isinstance(recorded, dict):
            return "no valid record of the files it describes"
        index = {f.path: f.index for f in files}
        for path, pf in self.planned.items():
            rec = recorded.get(path)
            if not isinstance(rec, dict):
                return f"{path!r} was not part of the interrupted download"
            if rec.get("partial") != str(pf.partial_path) or rec.get("index") != index.get(path):
                return f"{path!r} is mapped differently"
            if rec.get("fingerprint") != _fingerprint(Path(pf.partial_path)):
                return f"{path!r} changed since (size, time or inode)"
            if rec.get("complete") and not self._root_ok(pf):
                # libtorrent had it complete, and the fetcher did not take it: if it does not
                # verify, the resume data claims pieces that are not there
                return f"{path!r} was complete for libtorrent but does not verify"
        return None

    def _root_ok(self, pf: PlannedFile) -> bool:
        from ..manifest.hashing import hash_file

        try:
            h = hash_file(pf.partial_path, self.manifest.piece_length, v1=False)
        except Error:
            return False
        want = None if pf.entry.root is None else pf.entry.root.value
        return h.size == pf.entry.size and h.root == want

    def _save_resume(self, handle: Any, files: Sequence[TorrentFileInfo]) -> None:
        """Save libtorrent's resume data with a record of the exact files it describes."""
        lt = self.lt
        if not handle.status().paused:
            handle.pause()
            self.pump.wait_for(lt.torrent_paused_alert, 10.0, handle=handle)
        # Pieces whose blocks were in flight may still pass their hash check after the pause:
        # save again until the resume data has every piece libtorrent has (a piece left out
        # would only be downloaded again, but that is what resume data is for).
        data = None
        for _ in range(10):
            handle.save_resume_data(
                lt.torrent_handle.flush_disk_cache | lt.torrent_handle.save_info_dict
            )
            alert = self.pump.wait_for(
                (lt.save_resume_data_alert, lt.save_resume_data_failed_alert),
                _HOUSEKEEPING_TIMEOUT,
                handle=handle,
            )
            if not isinstance(alert, lt.save_resume_data_alert):
                data = None
                break
            # an alert is only valid until the next pop_alerts: take what we need now
            params = alert.params
            saved = sum(1 for have in params.have_pieces if have)
            data = bytes(lt.write_resume_data_buf(params))
            del alert, params
            st = handle.status()
            with contextlib.suppress(Error):
                self._check_status(st)
            if int(st.num_pieces) <= saved:
                self.stats.pieces_at_end = saved  # what the resume data describes
                break
            time.sleep(0.05)
        progress: dict[int, int] = {}
        with contextlib.suppress(RuntimeError):
            sizes = handle.file_progress(lt.torrent_handle.piece_granularity)
            progress = {f.index: sizes[f.index] for f in files}
        self._remove(handle)  # libtorrent closes the files: no write after this
        if data is None:
            return
        record: dict[str, Any] = {}
        for f in files:
            pf = self.planned.get(f.path)
            if pf is None:
                continue
            record[f.path] = {
                "partial": str(pf.partial_path),
                "index": f.index,
                "complete": progress.get(f.index, -1) == f.size,
                "fingerprint": _fingerprint(Path(pf.partial_path)),
            }
        guard = {"format": _GUARD_FORMAT, "info_hash_v2": self.v2, "files": record}
        try:
            self.work.write_resume(data, guard)
        except OSError as exc:
            log.warning("bittorrent: cannot save resume data: %s", exc)

    # --- the download ---------------------------------------------------------------------------

    def run(self, ti: Any) -> None:
        lt = self.lt
        self.last_progress = time.monotonic()
        if ti is None:
            ti = self.metadata()
        files = torrent_files(ti)
        by_path = {f.path: f for f in files}
        missing = sorted(p for p in self.planned if p not in by_path)
        if missing:  # pragma: no cover - _check_files makes this impossible
            raise VerificationError(f"{self.t.name}: files missing from the torrent: {missing}")
        atp = self._resume_params(files)
        resumed = atp is not None
        if atp is None:
            atp = lt.add_torrent_params()
        atp.ti = ti
        self._common(atp)
        renamed: dict[int, str] = {}
        priorities = [0] * ti.num_files()
        for f in files:
            pf = self.planned.get(f.path)
            if pf is not None:
                renamed[f.index] = str(pf.partial_path)
                priorities[f.index] = 4
            else:
                renamed[f.index] = str(self.work.unused(f.index))
        atp.renamed_files = renamed
        atp.file_priorities = priorities
        # paused by libtorrent once the files are checked, before any peer is dialled
        atp.flags = self._flags(atp.flags) | lt.torrent_flags.stop_when_ready
        if not resumed and all(self._empty(pf.partial_path) for pf in self.planned.values()):
            # nothing on disk yet (sparse files the fetcher just made): nothing to check
            atp.flags |= lt.torrent_flags.no_verify_files
        self.stats.resumed = resumed
        self.stats.num_pieces = ti.num_pieces()
        handle = self.session.add_torrent(atp)
        self.handle, self.checked = handle, False
        try:
            finished = self._download(handle)
        except BaseException:
            try:
                self._save_resume(handle, files)
            except Exception as exc:  # keep the original error; a full check will do next time
                log.warning("bittorrent: could not save resume data: %s", exc, exc_info=True)
            raise
        if finished:
            self._remove(handle)
            self.work.remove()
        else:  # pragma: no cover - _download returns only when finished
            self._save_resume(handle, files)

    @staticmethod
    def _empty(path: Path) -> bool:
        """Whether ``path`` is absent or holds no data at all (every block a hole)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return True
        return stat.S_ISREG(st.st_mode) and (st.st_size == 0 or st.st_blocks == 0)

    def _download(self, handle: Any) -> bool:
        """Pump alerts until every planned file is complete; report progress on the way.

        The torrent was added with ``stop_when_ready``: libtorrent checks (or resumes) the
        files, then pauses it before any peer is dialled. What it has then is the baseline:
        only what arrives after it counts as progress.
        """
        last_ppm = -1
        self.last_progress = time.monotonic()
        while True:  # checking: progress is the check's
            self.pump.pump(_TICK)
            st = handle.status()
            self._check_status(st)
            if self.checked and st.paused:
                break
            if st.progress_ppm != last_ppm:
                last_ppm = st.progress_ppm
                self.last_progress = time.monotonic()
            self._tick()
        done = int(st.total_wanted_done)
        self.stats.pieces_at_start = self.stats.pieces_at_end = int(st.num_pieces)
        if st.is_finished and done >= int(st.total_wanted):
            return True
        handle.resume()
        self._dial(handle, force=True)
        self.last_progress = time.monotonic()
        while True:
            self.pump.pump(_TICK)
            st = handle.status()
            self._check_status(st)
            now_done = int(st.total_wanted_done)
            if now_done > done:
                gained, done = now_done - done, now_done
                self.last_progress = time.monotonic()
                self.progress.advance(gained, self.t.name)
            if st.is_finished and now_done >= int(st.total_wanted):
                return True
            if st.num_peers == 0:
                self._dial(handle)
            self._tick()

    def _check_status(self, st: Any) -> None:
        self.stats.payload_downloaded = int(st.total_payload_download)
        self.stats.pieces_at_end = int(st.num_pieces)
        if st.errc.value() != 0:
            raise FetchError(f"libtorrent: {_error_text(st.errc)}", uri=self.t.name)


# --- seeding -------------------------------------------------------------------------------------


def _data_path(root: Path, rel: str) -> Path:
    """``root/rel``, refusing symbolic links on the way and at the end.

    Raises:
        PathError: ``rel`` is not a valid manifest path, or a component is a symbolic link.
        MissingFileError: the file is missing or not a regular file.
    """
    check_path(rel)
    current = root
    parts = rel.split("/")
    for i, part in enumerate(parts):
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            raise MissingFileError("missing", path=str(current)) from None
        if stat.S_ISLNK(st.st_mode):
            raise PathError(
                "refusing to seed through a symbolic link",
                path=str(current),
                expected="a regular file or directory",
                observed="a symbolic link",
            )
        last = i == len(parts) - 1
        if last and not stat.S_ISREG(st.st_mode):
            raise MissingFileError("not a regular file", path=str(current))
        if not last and not stat.S_ISDIR(st.st_mode):
            raise MissingFileError("a parent is not a directory", path=str(current))
    return current


def _web_seed_for_mirror(mirror: str, name: str) -> str | None:
    """The BEP 19 web seed URL for a mirror laid out as ``<mirror><path>``.

    libtorrent requests ``<url><torrent name>/<path>``, so a mirror can serve as a web seed only
    if its base URL ends with ``/<torrent name>/``.
    """
    base = mirror if mirror.endswith("/") else mirror + "/"
    suffix = "/" + quote(name) + "/"
    if base.endswith(suffix):
        return base[: -len(suffix) + 1]
    return None


class Seeder:
    """Seed a dataset directory that matches a manifest.

    Args:
        manifest: the (verified) manifest.
        torrent: its sidecar torrent; if ``None`` it is re-created from the data (hashing every
            file once) and must have the manifest's info-hashes.
        data_dir: the dataset directory (``data_dir/<path>`` for every manifest path; no
            symbolic links).
        listen: ``host:port`` to listen on (port 0: any free port).
        dht: use the DHT, local service discovery, peer exchange, UPnP and NAT-PMP. Never for a
            private manifest.
        trackers: tracker URLs, in addition to the manifest's.
        web_seeds: BEP 19 web seed URLs to offer to peers.
        peers: ``host:port`` of peers to connect to (and to list in :attr:`magnet_uri`).
        mirrors_as_web_seeds: also offer the manifest's mirrors as web seeds (those whose URL
            ends with ``/<torrent name>/``, as BEP 19 requires).
        settings: further libtorrent settings (for example ``upload_rate_limit``).
        torrent_source: how ``torrent`` is named in errors (its file's path).

    The seeder never writes into ``data_dir``: every file has priority 0 and the torrent is in
    upload mode. Use it as a context manager, or call :meth:`close`.

    Raises:
        UsageError: ``data_dir`` is not a directory, a bad address, or cannot listen.
        InvalidManifestError: the manifest records no info-hash; a malformed torrent.
        VerificationError: the torrent, or the data it was re-created from, does not match the
            manifest (the message names the expected and the observed info-hashes or files).
        MissingFileError: a file is missing (when re-creating the torrent).
        PathError: a path goes through a symbolic link.
        DependencyError: libtorrent is not installed.
    """

    def __init__(
        self,
        manifest: Manifest,
        torrent: bytes | None,
        data_dir: str | os.PathLike[str],
        *,
        listen: str = "0.0.0.0:0",
        dht: bool = True,
        trackers: Sequence[str] = (),
        web_seeds: Sequence[str] = (),
        peers: Sequence[str] = (),
        mirrors_as_web_seeds: bool = False,
        settings: Mapping[str, Any] | None = None,
        torrent_source: str = "the sidecar torrent",
    ) -> None:
        lt = import_libtorrent()
        self.manifest = manifest
        self.v1, self.v2 = _manifest_hashes(manifest)
        root = Path(data_dir)
        if not root.is_dir():
            raise UsageError("the data directory is not a directory", path=str(root))
        self.data_dir = root.resolve()
        listen_host, _ = parse_endpoint(listen, what="listen")
        for peer in peers:
            parse_endpoint(peer)
        self.name = _torrent_name(manifest)
        local: dict[str, Path] = {}
        missing: list[str] = []
        for entry in manifest.files:
            try:
                local[entry.path] = _data_path(self.data_dir, entry.path)
            except MissingFileError as exc:
                missing.append(f"{entry.path} ({exc.message})")
                local[entry.path] = self.data_dir.joinpath(*entry.path.split("/"))
        verified_here = False
        if torrent is None:
            if missing:
                raise MissingFileError(
                    f"cannot seed {self.data_dir}: {len(missing)} file(s) missing: "
                    + ", ".join(missing[:10])
                    + (" ..." if len(missing) > 10 else ""),
                    path=str(self.data_dir),
                )
            torrent = _rebuild_torrent(manifest, local, self.data_dir)
            verified_here = True
        else:
            check_torrent(manifest, torrent, source=torrent_source)
        self.torrent = torrent
        ti = _torrent_info(lt, torrent, torrent_source)
        self._files = torrent_files(ti)
        private = manifest.private
        use_dht = dht and not private
        self.trackers = tuple(dict.fromkeys([*manifest.trackers, *trackers]))
        seeds = list(web_seeds)
        if mirrors_as_web_seeds:
            for mirror in manifest.mirrors:
                url = _web_seed_for_mirror(mirror, self.name)
                if url is None:
                    log.warning(
                        "mirror %s cannot be a BEP 19 web seed: its URL does not end with /%s/",
                        mirror,
                        self.name,
                    )
                else:
                    seeds.append(url)
        self.web_seeds = tuple(dict.fromkeys(seeds))
        self.peers = tuple(dict.fromkeys(peers))
        self._listen_host = listen_host
        self.errors: list[str] = []
        #: Errors reading the data while seeding (a file removed or cut short): libtorrent
        #: stops the torrent, so the seeder serves nothing more.
        self.data_errors: list[str] = []
        self.announced: list[str] = []
        extra = {"optimistic_disk_retry": 0, **(settings or {})}
        self._box = _SessionBox(new_session(listen, dht=use_dht, extra=extra))
        session = self._box.session
        self._pump = AlertPump(session, self._on_alert)
        try:
            atp = lt.add_torrent_params()
            atp.ti = ti
            atp.save_path = str(self.data_dir)
            atp.renamed_files = {f.index: str(local[f.path]) for f in self._files}
            atp.file_priorities = [0] * ti.num_files()  # never download, never create files
            atp.trackers = list(self.trackers)
            atp.url_seeds = list(self.web_seeds)
            f = lt.torrent_flags
            flags = atp.flags & ~(f.auto_managed | f.paused | f.seed_mode)
            flags |= f.upload_mode
            if not use_dht:
                flags |= f.disable_dht | f.disable_lsd | f.disable_pex
            if verified_here:
                # every piece was hashed just now and matched the signed info-hashes: tell
                # libtorrent it has them all (as resume data would; no second check). Not
                # with no_verify_files: with priority-0 files and upload mode that combination
                # crashes libtorrent 2.1.1.
                atp.have_pieces = [True] * ti.num_pieces()
            atp.flags = flags
            self._handle = session.add_torrent(atp)
            self.port: int = int(session.listen_port())
            if self.port == 0 or not session.is_listening():
                raise UsageError(
                    f"cannot listen on {listen}: " + "; ".join(self.errors or ["no socket"]),
                    expected="a free local address and port",
                    observed=listen,
                )
            for peer in self.peers:
                host, port = parse_endpoint(peer)
                with contextlib.suppress(RuntimeError):
                    self._handle.connect_peer((host, port))
        except BaseException:
            self.close()
            raise

    # --- public ---------------------------------------------------------------------------------

    @property
    def magnet_uri(self) -> str:
        """The magnet link: both info-hashes, name, trackers, and explicit peers (``x.pe``) with
        this seeder's own address when it listens on a specific one."""
        peers = list(self.peers)
        if self._listen_host not in ("0.0.0.0", "::"):
            peers.insert(0, format_endpoint(self._listen_host, self.port))
        return magnet_uri(
            info_hash_v1=self.v1,
            info_hash_v2=self.v2,
            name=self.name,
            trackers=self.trackers,
            peers=peers,
            web_seeds=self.web_seeds,
        )

    def wait_ready(self, timeout: float = 600.0) -> None:
        """Wait until libtorrent has checked the data and is seeding.

        Raises:
            VerificationError: libtorrent found the data incomplete or different; the message
                lists the files concerned.
            TransportError: not ready within ``timeout`` seconds, or libtorrent failed.
            UsageError: the seeder is closed.
        """
        self._check_open()
        lt = self.lt
        deadline = time.monotonic() + timeout
        checking = (
            lt.torrent_status.checking_files,
            lt.torrent_status.checking_resume_data,
            lt.torrent_status.queued_for_checking,
        )
        while True:
            self._pump.pump(_TICK)
            st = self._handle.status()
            if st.errc.value() != 0:
                raise TransportError(
                    f"libtorrent cannot seed {self.data_dir}: {_error_text(st.errc)}",
                    path=str(self.data_dir),
                )
            if st.is_seeding:
                return
            if st.state not in checking:  # checked, and not every piece is there
                raise self._incomplete()
            if time.monotonic() > deadline:
                raise TransportError(
                    f"the seeder was not ready within {timeout:g} s",
                    path=str(self.data_dir),
                    expected="seeding",
                    observed=str(st.state),
                )

    def status(self) -> dict[str, Any]:
        """``state``, ``peers``, ``seeds``, ``uploaded`` (payload bytes), ``upload_rate``
        (bytes/s), ``port``, ``announced`` (trackers that answered), ``errors``,
        ``data_errors`` (the data could not be read: the torrent has stopped).

        Raises:
            UsageError: the seeder is closed.
        """
        self._check_open()
        self._pump.pump()
        st = self._handle.status()
        return {
            "state": str(st.state),
            "peers": int(st.num_peers),
            "seeds": int(st.num_seeds),
            "uploaded": int(st.total_payload_upload),
            "upload_rate": int(st.upload_payload_rate),
            "port": self.port,
            "announced": list(self.announced),
            "errors": list(self.errors),
            "data_errors": list(self.data_errors),
        }

    def close(self) -> None:
        """Stop seeding and shut the session down."""
        box = getattr(self, "_box", None)
        if box is None or box.session is None:
            return
        handle = getattr(self, "_handle", None)
        if handle is not None:
            with contextlib.suppress(Exception):
                box.session.remove_torrent(handle)
                AlertPump(box.session).wait_for(self.lt.torrent_removed_alert, 10.0)
        self._handle = None
        self._pump = AlertPump(None)
        box.close()

    def __enter__(self) -> Seeder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------------

    @property
    def lt(self) -> Any:
        return import_libtorrent()

    def _check_open(self) -> None:
        if getattr(self, "_handle", None) is None:
            raise UsageError("the seeder is closed", path=str(self.data_dir))

    def _on_alert(self, alert: Any) -> None:
        lt = self.lt
        if isinstance(alert, lt.tracker_reply_alert):
            url = str(alert.tracker_url())
            if url not in self.announced:
                self.announced.append(url)
            return
        if isinstance(alert, lt.tracker_error_alert):
            text = f"tracker {alert.tracker_url()}: {alert.message()}"
            if text not in self.errors:
                self.errors.append(text)
            return
        if isinstance(alert, (lt.file_error_alert, lt.torrent_error_alert, lt.listen_failed_alert)):
            text = str(alert.message())
            if text not in self.errors:
                self.errors.append(text)
                log.warning("seeder: %s", text)
            if not isinstance(alert, lt.listen_failed_alert) and text not in self.data_errors:
                self.data_errors.append(text)  # libtorrent has stopped the torrent

    def _incomplete(self) -> VerificationError:
        lt = self.lt
        done = self._handle.file_progress(lt.torrent_handle.piece_granularity)
        bad = [
            f"{f.path} ({done[f.index]} of {f.size} bytes verified)"
            for f in self._files
            if done[f.index] != f.size
        ]
        shown = bad[:20] + ([f"... and {len(bad) - 20} more"] if len(bad) > 20 else [])
        lines = "\n  ".join(shown)
        return VerificationError(
            f"the data in {self.data_dir} does not match the manifest; "
            f"{len(bad)} file(s) incomplete or different:\n  {lines}",
            path=str(self.data_dir),
            expected=f"{len(self._files)} complete files",
            observed=f"{len(bad)} incomplete",
        )


def _rebuild_torrent(manifest: Manifest, local: Mapping[str, Path], data_dir: Path) -> bytes:
    """Hash the data and build the manifest's torrent from it.

    Raises:
        VerificationError: a file's size or root differs from the manifest, or the info-hashes
            of the rebuilt torrent differ (names both).
        FileVerificationError: a file changed or vanished while it was hashed.
    """
    from ..manifest.hashing import hash_files
    from ..manifest.torrent import TorrentFile, build_torrent

    v1, v2 = _manifest_hashes(manifest)
    entries = list(manifest.files)
    hashes = hash_files(
        [local[e.path] for e in entries],
        manifest.piece_length,
        v1=manifest.info_hash_v1 is not None,
    )
    bad: list[str] = []
    for entry, h in zip(entries, hashes, strict=True):
        want = None if entry.root is None else entry.root.value
        if h.size != entry.size or h.root != want:
            bad.append(
                f"{entry.path}: {h.size} bytes, root {h.root.hex() if h.root else None} "
                f"(manifest: {entry.size} bytes, root {want.hex() if want else None})"
            )
    if bad:
        raise VerificationError(
            f"the data in {data_dir} does not match the manifest:\n  " + "\n  ".join(bad[:20]),
            path=str(data_dir),
            expected="every file as in the manifest",
            observed=f"{len(bad)} file(s) differ",
        )
    torrent = build_torrent(
        _torrent_name(manifest),
        [TorrentFile(e.path, h.size, h) for e, h in zip(entries, hashes, strict=True)],
        manifest.piece_length,
        hybrid=v1 is not None,
        private=manifest.private,
        trackers=manifest.trackers,
    )
    got = info_hashes(torrent)
    if got.v1 != v1 or got.v2 != v2:
        raise VerificationError(
            f"the torrent re-created from {data_dir} is not the one the manifest records "
            "(another piece length, name or layout?)",
            path=str(data_dir),
            expected=f"v1 {v1}, v2 {v2}",
            observed=f"v1 {got.v1}, v2 {got.v2}",
        )
    return torrent
