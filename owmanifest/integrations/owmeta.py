"""owmanifest inside owmeta-core (PyOpenWorm): signed, verified bundles and data sources.

owmeta-core fetches bundles with loaders chosen by the URL of a *remote*, and finds the files of
a data source with *data-source directory loaders*. This module provides one of each, so that
``owm bundle fetch`` and owmeta-core's data-source machinery get data that owmanifest verified,
without any change to how people use owmeta:

* :class:`OwmanifestBundleLoader` (entry point group ``owmeta_core.loaders``) serves remotes whose
  URL is ``owmanifest+https://host/bundles.jsonld``, ``owmanifest+http://...`` or
  ``owmanifest+file:///path/bundles.jsonld``: a signed owmanifest manifest describing bundle
  archives by the naming rule of :mod:`owmanifest.integrations.owmeta_index`
  (``bundles/<percent-encoded id>/<version>.tar.xz``). To load a bundle it reads the manifest,
  verifies it against the user's trust store (or the trust file / keys configured on the
  remote) with rollback protection, fetches the one archive through owmanifest's transports
  (local directories first, then BitTorrent, then HTTP mirrors), which verify every piece against
  the signed Merkle root, checks that the archive's own manifest names the requested id and
  version, and **only then** unpacks it where owmeta-core asked. The remote's options live in
  :class:`OwmanifestURLConfig`, set with ``owm bundle remote add NAME URL owmanifest ...``.
* :class:`OwmanifestDataSourceDirLoader` (entry point group ``owmeta_core.datasource_dir_loader``)
  loads data sources that carry the statement ``<data source> owm:manifest <manifest URL>``
  (:data:`MANIFEST_PROPERTY`, ``https://openworm.org/ns/owmanifest#manifest``): it fetches
  and verifies every file of that manifest and returns the verified directory.

Every failure reaches owmeta-core as its own ``LoadFailed`` whose message is owmanifest's
(what failed, where, expected and observed). owmeta-core is imported when this module is; without
it the module still imports, and using any class raises
:class:`~owmanifest.errors.DependencyError` naming the extra to install.

See ``docs/owmeta.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

from ..errors import (
    DependencyError,
    Error,
    FetchError,
    FileVerificationError,
    PolicyError,
    UsageError,
)
from ..manifest.document import ManifestDocument, load_document
from ..manifest.model import FileEntry
from ..manifest.vocab import OWM
from ..verify.policy import TrustPolicy
from ..verify.result import VerifiedManifest
from .owmeta_index import archive_identity, bundles_in_manifest, find_bundle

__all__ = [
    "CACHE_DIR_ENV",
    "MANIFEST_PROPERTY",
    "MAX_MANIFEST_BYTES",
    "SCHEMES",
    "FetchOptions",
    "ManifestSource",
    "OwmanifestBundleLoader",
    "OwmanifestDataSourceDirLoader",
    "OwmanifestURLConfig",
    "manifest_url",
    "owmanifest_remote",
    "trust_policy",
]

log = logging.getLogger(__name__)

#: URL schemes of owmanifest remotes: the manifest's own URL, prefixed with ``owmanifest+``.
SCHEMES = ("owmanifest+https", "owmanifest+http", "owmanifest+file")
#: The RDF property linking an owmeta data source to the signed manifest of its files.
MANIFEST_PROPERTY = OWM + "manifest"
#: Environment variable naming the directory where bundle archives are downloaded.
CACHE_DIR_ENV = "OWMANIFEST_CACHE_DIR"
#: Largest manifest (or sidecar torrent) read from a remote.
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_TRANSPORTS = ("bittorrent", "http", "file")

try:
    import owmeta_core.bundle as _ob
    import owmeta_core.bundle.archive as _oba
    import owmeta_core.bundle.loaders as _obl
    import owmeta_core.datasource_loader as _odl
except Exception as _exc:  # the `owmeta` extra is not installed, or owmeta-core is broken
    _OWMETA_MISSING: Exception | None = _exc

    class _Unavailable:
        """Stands in for owmeta-core's base classes when it is not installed."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            _require_owmeta()

        @classmethod
        def register(cls, *args: Any) -> None:
            _require_owmeta()

    _URLConfigBase: Any = _Unavailable
    _LoaderBase: Any = _Unavailable
    _DirLoaderBase: Any = _Unavailable
else:
    _OWMETA_MISSING = None
    _URLConfigBase = _ob.URLConfig
    _LoaderBase = _obl.Loader
    _DirLoaderBase = _odl.DataSourceDirLoader


def _require_owmeta() -> None:
    """Raises DependencyError when owmeta-core cannot be imported."""
    if _OWMETA_MISSING is not None:
        hint = ""
        if "pkg_resources" in str(_OWMETA_MISSING):
            hint = " (owmeta-core needs pkg_resources: setuptools >= 76, < 82)"
        raise DependencyError(
            f"owmeta-core is not installed or not usable: pip install 'owmanifest[owmeta]'{hint} "
            f"({type(_OWMETA_MISSING).__name__}: {_OWMETA_MISSING})",
            expected="owmeta-core >= 0.14.0.dev0",
            observed="not importable",
        )


# --- where a manifest is -------------------------------------------------------------------------


def manifest_url(url: str) -> str:
    """The manifest's own URL: ``owmanifest+https://h/b.jsonld`` -> ``https://h/b.jsonld``.

    ``http(s)://`` and ``file:`` URLs are returned as they are.

    Raises:
        UsageError: another scheme, or a ``file:`` URL naming a remote host.
    """
    inner = url[len("owmanifest+") :] if url.lower().startswith("owmanifest+") else url
    parts = urlsplit(inner)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.hostname:
        return inner
    if scheme == "file" and parts.netloc in ("", "localhost") and parts.path:
        return inner
    raise UsageError(
        "not the URL of a manifest",
        uri=url,
        expected="owmanifest+https://host/x.jsonld, owmanifest+http://... or "
        "owmanifest+file:///path/x.jsonld",
        observed=url,
    )


def _read_url(url: str, *, timeout: float, what: str) -> bytes:
    """The bytes at an ``http(s)://`` or ``file:`` URL (no proxies, at most MAX_MANIFEST_BYTES).

    Raises:
        FetchError: they cannot be read (``observed`` says why, e.g. ``HTTP 404``).
    """
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        path = unquote(parts.path)
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise FetchError(
                f"cannot read the {what}: {exc.strerror or exc}", path=path, uri=url
            ) from exc
    else:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(url, headers={"User-Agent": "owmanifest-owmeta"})
        try:
            with opener.open(request, timeout=timeout) as response:
                data = response.read(MAX_MANIFEST_BYTES + 1)
                declared = response.headers.get("Content-Length", "")
        except urllib.error.HTTPError as exc:
            raise FetchError(
                f"cannot get the {what}", uri=url, expected="HTTP 200", observed=f"HTTP {exc.code}"
            ) from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
            raise FetchError(f"cannot get the {what}: {reason}", uri=url) from exc
        if declared.isdigit() and len(data) < int(declared) <= MAX_MANIFEST_BYTES:
            raise FetchError(
                f"the {what} was cut short (the connection ended before the whole body)",
                uri=url,
                expected=f"{int(declared)} bytes",
                observed=f"{len(data)} bytes",
            )
    if len(data) > MAX_MANIFEST_BYTES:
        raise FetchError(
            f"the {what} is too large",
            uri=url,
            expected=f"<= {MAX_MANIFEST_BYTES} bytes",
            observed="more",
        )
    return data


def _unexpected(exc: BaseException) -> BaseException | None:
    """``exc`` when it is not one of owmanifest's errors (a defect: its traceback is logged),
    else ``None``."""
    return None if isinstance(exc, Error) else exc


def _load_failed(cls: Any, subject: Any, loader: Any, error: BaseException) -> Any:
    """owmeta-core's ``LoadFailed`` (``cls``) for ``subject`` with owmanifest's message: the
    only failure owm answers by trying its next remote. ``error`` is kept as ``.error``, for
    programs; one that is not owmanifest's is a defect, logged with its traceback."""
    message = str(error) if isinstance(error, Error) else f"{type(error).__name__}: {error}"
    log.debug("loading %s failed: %s", subject, message, exc_info=_unexpected(error))
    failed = cls(subject, loader, message)
    failed.error = error
    return failed


# --- how to fetch: options, trust, sources -------------------------------------------------------


@dataclass(frozen=True)
class FetchOptions:
    """How a manifest is trusted and its files fetched (one remote's or data source's settings).

    Attributes:
        trust: ``did:key`` identifiers trusted to sign (added to ``trust_files``).
        trust_files: trust files (JSON, docs/spec.md §9). With neither, the user's trust store
            is used; its revocations always apply.
        mirrors: HTTP(S) base URLs or local directories laid out like the dataset, tried (in
            order) before the mirrors the manifest lists.
        manifest_mirrors: also use the mirrors the manifest lists.
        peers: BitTorrent peers (``host:port``) to connect to.
        trackers: BitTorrent trackers, in addition to the manifest's.
        dht: use the DHT, local peer discovery and peer exchange.
        listen: BitTorrent listen address (``host:port``; port 0: any).
        transports: which of ``bittorrent``, ``http``, ``file`` to use; BitTorrent first.
        stall_timeout: seconds without verified progress before the next source is tried.
        timeout: seconds allowed for getting the manifest and its sidecar torrent.
        torrent: URL of the sidecar torrent (default: the manifest's URL + ``.torrent``).
        state: record verified versions and refuse older ones (rollback protection).

    Raises:
        UsageError: an unknown transport, no transport, or a timeout that is not positive.
    """

    trust: tuple[str, ...] = ()
    trust_files: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()
    manifest_mirrors: bool = True
    peers: tuple[str, ...] = ()
    trackers: tuple[str, ...] = ()
    dht: bool = True
    listen: str = "0.0.0.0:0"
    transports: tuple[str, ...] = _TRANSPORTS
    stall_timeout: float = 60.0
    timeout: float = 60.0
    torrent: str | None = None
    state: bool = True

    def __post_init__(self) -> None:
        unknown = [t for t in self.transports if t not in _TRANSPORTS]
        if unknown or not self.transports:
            raise UsageError(
                "unknown transport", expected=", ".join(_TRANSPORTS), observed=", ".join(unknown)
            )
        if not self.stall_timeout > 0 or not self.timeout > 0:
            raise UsageError(
                "timeouts must be positive", observed=f"{self.stall_timeout}, {self.timeout}"
            )


def trust_policy(options: FetchOptions) -> TrustPolicy:
    """The trust policy for ``options``: its trust files and keys, else the user's trust store.

    Revocations in the trust store always apply.

    Raises:
        UsageError: a trust file cannot be read, or a key is not a ``did:key``.
        PolicyError: nobody is trusted at all (the message says how to trust someone).
    """
    from ..verify.truststore import policy_for_run

    policy = policy_for_run(options.trust_files, options.trust, error=PolicyError)
    if policy.is_empty:
        raise PolicyError(
            "no trusted keys: `owmanifest trust add did:key:...`, or configure the remote "
            "with --trust-file FILE or --trust DID",
            expected="at least one trusted key",
            observed="none",
        )
    return policy


def _verify(document: ManifestDocument, policy: TrustPolicy, *, state: bool) -> VerifiedManifest:
    """Verify directly or by succession from the recorded version; then rollback protection.

    Raises:
        VerificationError: the manifest is not trusted, or is older than the recorded version.
    """
    from ..verify.manifest import check_proofs, verify_chain, verify_manifest
    from ..verify.state import StateStore

    store = StateStore.default() if state else None
    try:
        vm = verify_manifest(document, policy)
    except PolicyError as direct_failure:
        if store is None:
            raise
        manifest, _, _ = check_proofs(document, policy)
        anchor = store.anchor(manifest.id)
        if anchor is None or manifest.version <= anchor.version:
            raise
        try:
            vm = verify_chain(anchor, [document], policy)
        except PolicyError:
            if manifest.previous_version != anchor.canonical_hash:
                raise direct_failure from None
            raise
        log.info("%s: trusted by succession from version %d", document.source, anchor.version)
    if store is not None:
        store.check(vm)
        store.record(vm)
    return vm


class ManifestSource:
    """A signed manifest at a URL, verified once, and the files it lists, fetched verified.

    Args:
        url: ``owmanifest+https://...`` (or the manifest's plain ``http(s)``/``file:`` URL).
        options: trust and transports.

    Raises:
        UsageError: ``url`` is not the URL of a manifest.
    """

    def __init__(self, url: str, options: FetchOptions | None = None) -> None:
        self.url = manifest_url(url)
        self.options = options or FetchOptions()
        self._verified: VerifiedManifest | None = None
        self._failure: Error | None = None
        self._torrent: bytes | None = None
        self._layers: dict[bytes, bytes] = {}

    def __repr__(self) -> str:
        return f"ManifestSource({self.url!r})"

    def verified(self) -> VerifiedManifest:
        """The manifest, verified against the trust policy (read and checked once).

        Raises:
            FetchError: the manifest cannot be read.
            InvalidManifestError: it is malformed.
            VerificationError: it is not trusted (signatures, threshold, policy, expiry,
                rollback).
            PolicyError: nobody is trusted (see :func:`trust_policy`).
        """
        if self._failure is not None:
            raise self._failure
        if self._verified is None:
            try:
                policy = trust_policy(self.options)
                data = _read_url(self.url, timeout=self.options.timeout, what="manifest")
                document = load_document(data, source=self.url)
                self._verified = _verify(document, policy, state=self.options.state)
            except Error as exc:
                self._failure = exc
                raise
            self._load_torrent(self._verified)
        return self._verified

    def _load_torrent(self, vm: VerifiedManifest) -> None:
        """The sidecar torrent, if it can be had and matches the signed manifest (else none)."""
        if vm.manifest.info_hash_v2 is None:
            return
        url = self.options.torrent or self.url + ".torrent"
        try:
            data = _read_url(url, timeout=self.options.timeout, what="sidecar torrent")
        except FetchError as exc:
            log.info("no sidecar torrent (%s); peers will send the metadata", exc)
            return
        try:
            from ..manifest.torrent import parse_torrent
            from ..transport.bittorrent import check_torrent

            check_torrent(vm.manifest, data, source=url)
            layers = dict(parse_torrent(data, source=url).piece_layers)
        except ImportError:  # pragma: no cover - the BitTorrent transport is part of the package
            return
        except Error as exc:
            log.warning("ignoring the sidecar torrent %s: %s", url, exc)
            return
        self._torrent, self._layers = data, layers

    def sources(self) -> list[Any]:
        """Transports for the verified manifest: local directories, BitTorrent, then the
        other mirrors (in order; :func:`~owmanifest.transport.local_first`).

        Raises:
            UsageError: no source at all (no info-hash, no mirror), or a mirror URL no
                transport accepts.
            DependencyError: a transport's plugin cannot be loaded.
        """
        from ..transport import local_first, open_sources

        m = self.verified().manifest
        wanted = set(self.options.transports)
        out: list[Any] = []
        if "bittorrent" in wanted and (m.info_hash_v2 or self._torrent):
            try:
                from ..transport.bittorrent import BitTorrentTransport, can_find_peers
            except ImportError as exc:  # pragma: no cover - part of the package
                log.warning("BitTorrent transport unavailable: %s", exc)
            else:
                if can_find_peers(
                    m,
                    dht=self.options.dht,
                    peers=self.options.peers,
                    trackers=self.options.trackers,
                ):
                    out.append(
                        BitTorrentTransport(
                            torrent=self._torrent,
                            peers=self.options.peers,
                            trackers=self.options.trackers,
                            dht=self.options.dht,
                            listen=self.options.listen,
                        )
                    )
                else:  # it would only wait out the stall timeout, for every bundle
                    log.info("BitTorrent skipped: no DHT, peer or tracker to find peers with")
        mirrors = list(self.options.mirrors)
        if self.options.manifest_mirrors:
            mirrors += [u for u in m.mirrors if u not in mirrors]
        other = sorted(wanted - {"bittorrent"})
        if mirrors and other:
            out += open_sources(mirrors, schemes=other)
        out = local_first(out)
        if not out:
            raise UsageError(
                "no source to fetch from: the manifest names no torrent or mirror that the "
                "configured transports can use",
                uri=self.url,
                expected="a BitTorrent info-hash or a mirror",
                observed=f"transports {', '.join(self.options.transports)}",
            )
        return out

    def fetch(
        self,
        dest: str | os.PathLike[str],
        files: Sequence[FileEntry] | None = None,
        *,
        replace: bool = False,
    ) -> Path:
        """Fetch ``files`` (default: all) into ``dest``, each verified; returns ``dest``.

        With ``replace``, files in ``dest`` that differ from the manifest are replaced even if
        owmanifest did not put them there (see :func:`owmanifest.transport.fetch`).

        Raises:
            IncompleteFetchError: some file could not be had verified from any source; the
                message lists each source tried and why.
            VerificationError / FetchError / UsageError: see :meth:`verified`, :meth:`sources`.
        """
        from ..transport import fetch

        vm = self.verified()
        sources = self.sources()
        log.info("fetching from %s", ", ".join(s.name for s in sources))
        try:
            fetch(
                vm,
                dest,
                sources,
                files=files,
                piece_layers=self._layers,
                stall_timeout=self.options.stall_timeout,
                replace=replace,
            )
        finally:
            for source in sources:
                with contextlib.suppress(Exception):
                    source.close()
        return Path(dest)


def _cache_root(configured: str | None) -> Path:
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("owmanifest", appauthor=False))


def _dataset_dir(root: Path, dataset_id: str) -> Path:
    return root / hashlib.sha256(dataset_id.encode("utf-8")).hexdigest()[:32]


# --- owmeta-core: the remote ---------------------------------------------------------------------


def _for_owm(exc: UsageError) -> UsageError:
    """``exc`` as an error that is also owmeta-core's ``GenericUserError``, which owm prints as
    a message rather than a traceback."""
    from owmeta_core.command_util import GenericUserError

    both: type[UsageError] = type("OwmanifestUsageError", (UsageError, GenericUserError), {})
    return both(
        exc.message, path=exc.path, uri=exc.uri, expected=exc.expected, observed=exc.observed
    )


def _absolute(place: str) -> str:
    """A local path made absolute (a remote's settings are used from other directories
    later); a URL as it is."""
    return place if len(urlsplit(place).scheme) > 1 else os.path.abspath(place)


def _strings(value: Iterable[str] | str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


class OwmanifestURLConfig(_URLConfigBase):  # type: ignore[misc]
    """An owmeta remote accessor for a signed owmanifest manifest of bundle archives.

    owmeta-core writes it (as YAML) into the remote's file; every attribute is plain data.

    Args:
        url: ``owmanifest+https://host/bundles.jsonld`` (or ``+http``, ``+file``).
        trust, trust_files, mirrors, manifest_mirrors, peers, trackers, dht, listen,
            transports, stall_timeout, timeout, torrent: see :class:`FetchOptions`.
        cache_dir: where archives are downloaded (default: ``$OWMANIFEST_CACHE_DIR`` or the
            user cache directory); they are kept there, verified, for the next time.

    Raises:
        DependencyError: owmeta-core is not installed.
        UsageError: ``url`` is not an owmanifest URL.
    """

    # Defaults at class level, so that remote files written by an older version still load.
    trust: list[str] = []
    trust_files: list[str] = []
    mirrors: list[str] = []
    manifest_mirrors: bool = True
    peers: list[str] = []
    trackers: list[str] = []
    dht: bool = True
    listen: str | None = None
    transports: list[str] = []
    stall_timeout: float | None = None
    timeout: float | None = None
    torrent: str | None = None
    cache_dir: str | None = None

    def __init__(
        self,
        url: str,
        *,
        trust: Iterable[str] = (),
        trust_files: Iterable[str] = (),
        mirrors: Iterable[str] = (),
        manifest_mirrors: bool = True,
        peers: Iterable[str] = (),
        trackers: Iterable[str] = (),
        dht: bool = True,
        listen: str | None = None,
        transports: Iterable[str] = (),
        stall_timeout: float | None = None,
        timeout: float | None = None,
        torrent: str | None = None,
        cache_dir: str | None = None,
    ) -> None:
        _require_owmeta()
        try:
            if urlsplit(url).scheme.lower() not in SCHEMES:
                raise UsageError(
                    "not an owmanifest remote URL", expected=" or ".join(SCHEMES), uri=url
                )
            manifest_url(url)
        except UsageError as exc:  # `owm bundle remote add` shows its user errors cleanly
            raise _for_owm(exc) from None
        super().__init__(url)
        self.trust = _strings(trust)
        self.trust_files = [os.path.abspath(p) for p in _strings(trust_files)]
        self.mirrors = [_absolute(m) for m in _strings(mirrors)]
        self.manifest_mirrors = bool(manifest_mirrors)
        self.peers = _strings(peers)
        self.trackers = _strings(trackers)
        self.dht = bool(dht)
        self.listen = listen
        self.transports = _strings(transports)
        self.stall_timeout = stall_timeout
        self.timeout = timeout
        self.torrent = None if torrent is None else _absolute(torrent)
        self.cache_dir = cache_dir
        self.options()  # refuse bad settings now, not at the first fetch

    def options(self) -> FetchOptions:
        """These settings as :class:`FetchOptions`.

        Raises:
            UsageError: a setting is invalid.
        """
        opts = FetchOptions(
            trust=tuple(self.trust),
            trust_files=tuple(self.trust_files),
            mirrors=tuple(self.mirrors),
            manifest_mirrors=self.manifest_mirrors,
            peers=tuple(self.peers),
            trackers=tuple(self.trackers),
            dht=self.dht,
            torrent=self.torrent,
        )
        changes: dict[str, Any] = {}
        if self.listen:
            changes["listen"] = self.listen
        if self.transports:
            changes["transports"] = tuple(self.transports)
        if self.stall_timeout is not None:
            changes["stall_timeout"] = float(self.stall_timeout)
        if self.timeout is not None:
            changes["timeout"] = float(self.timeout)
        return replace(opts, **changes) if changes else opts

    def __str__(self) -> str:
        lines = [self.url]
        settings = [
            ("trust", ", ".join(self.trust)),
            ("trust files", ", ".join(self.trust_files)),
            ("mirrors", ", ".join(self.mirrors)),
            ("manifest mirrors", "" if self.manifest_mirrors else "not used"),
            ("peers", ", ".join(self.peers)),
            ("trackers", ", ".join(self.trackers)),
            ("DHT", "" if self.dht else "off"),
            ("listen", self.listen or ""),
            ("transports", ", ".join(self.transports)),
            ("stall timeout", "" if self.stall_timeout is None else f"{self.stall_timeout:g} s"),
            ("cache", self.cache_dir or ""),
        ]
        lines += [f"    {name}: {value}" for name, value in settings if value]
        if not self.trust and not self.trust_files:
            lines.append("    trust: your owmanifest trust store")
        return "\n".join(lines)

    __repr__ = __str__


def _as_config(accessor_config: Any) -> OwmanifestURLConfig:
    if isinstance(accessor_config, OwmanifestURLConfig):
        return accessor_config
    url = getattr(accessor_config, "url", accessor_config)
    return OwmanifestURLConfig(str(url))


# --- owmeta-core: the bundle loader --------------------------------------------------------------


class OwmanifestBundleLoader(_LoaderBase):  # type: ignore[misc]
    """owmeta-core's ``Loader`` for owmanifest remotes: verified archives, then unpacked.

    owmeta-core makes one per fetch (``Remote.generate_loaders``), sets ``base_directory`` and
    calls :meth:`load`. The manifest is read and verified once per loader.

    Args:
        accessor_config: an :class:`OwmanifestURLConfig` (or any ``URLConfig`` whose URL has
            an owmanifest scheme; it then gets the default settings).

    Raises:
        DependencyError: owmeta-core is not installed.
        UsageError: not an owmanifest URL.
    """

    def __init__(self, accessor_config: Any) -> None:
        _require_owmeta()
        super().__init__()
        self.config = _as_config(accessor_config)
        self.source = ManifestSource(self.config.url, self.config.options())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.url!r})"

    __str__ = __repr__

    @classmethod
    def can_load_from(cls, accessor_config: Any) -> bool:
        """Whether ``accessor_config`` is a URL config with an owmanifest scheme."""
        url = getattr(accessor_config, "url", None)
        return (
            _OWMETA_MISSING is None
            and isinstance(accessor_config, _URLConfigBase)
            and isinstance(url, str)
            and urlsplit(url).scheme.lower() in SCHEMES
        )

    def _fail(self, bundle_id: str, error: BaseException) -> NoReturn:
        """Raise owmeta-core's LoadFailed with owmanifest's message.

        owmeta-core 0.14's ``Fetcher`` removes ``base_directory`` after any failure and does
        not expect it to be missing; it is created (empty) so that this cleanup works.
        """
        if self.base_directory:
            with contextlib.suppress(OSError):
                os.makedirs(self.base_directory, exist_ok=True)
        raise _load_failed(_obl.LoadFailed, bundle_id, self, error) from None

    def can_load(self, bundle_id: str, bundle_version: int | None = None) -> bool:
        """Whether the verified manifest lists the bundle (at that version).

        A remote whose manifest cannot be had or verified answers ``True``: :meth:`load` then
        reports why, rather than the remote looking as if it only lacked the bundle.
        """
        try:
            manifest = self.source.verified().manifest
        except Exception as exc:  # not only Error: a bare one would end owm's whole fetch
            log.info("owmanifest remote %s: %s", self.config.url, exc, exc_info=_unexpected(exc))
            return True
        return any(
            b.bundle_id == bundle_id and (bundle_version is None or b.version == bundle_version)
            for b in bundles_in_manifest(manifest)
        )

    def bundle_versions(self, bundle_id: str) -> list[int]:
        """The versions of ``bundle_id`` the verified manifest lists.

        Raises:
            LoadFailed: the manifest cannot be had or is not trusted.
        """
        try:
            manifest = self.source.verified().manifest
        except Exception as exc:  # LoadFailed, whatever it was: owm then tries other remotes
            self._fail(bundle_id, exc)
        return [b.version for b in bundles_in_manifest(manifest) if b.bundle_id == bundle_id]

    def load(self, bundle_id: str, bundle_version: int | None = None) -> None:
        """Fetch the bundle's archive verified, check it is that bundle, and unpack it into
        ``base_directory``.

        Raises:
            LoadFailed: anything went wrong (owmanifest's message inside); nothing was unpacked
                unless the archive verified.
        """
        if not self.base_directory:
            self._fail(bundle_id, UsageError("owmeta-core gave no directory to unpack into"))
        try:
            vm = self.source.verified()
            archive = find_bundle(vm.manifest, bundle_id, bundle_version)
            dest = _dataset_dir(_cache_root(self.config.cache_dir) / "owmeta", vm.manifest.id)
            self.source.fetch(dest, [archive.entry], replace=True)  # our cache: repaired
            path = dest.joinpath(*archive.entry.path.split("/"))
            identity = archive_identity(path)
            if identity != (archive.bundle_id, archive.version):
                raise FileVerificationError(
                    "the archive is another bundle than its place in the manifest says",
                    path=str(path),
                    expected=f"{archive.bundle_id} version {archive.version}",
                    observed=f"{identity[0]} version {identity[1]}",
                )
        except Exception as exc:  # LoadFailed, whatever it was: owm then tries other remotes
            self._fail(bundle_id, exc)
        log.info("verified %s version %d (%s); unpacking", bundle_id, archive.version, path)
        try:
            _oba.Unarchiver().unpack(str(path), self.base_directory)
        except Exception as exc:
            self._fail(bundle_id, exc)


# --- owmeta-core: data sources -------------------------------------------------------------------


def _manifest_urls(data_source: Any) -> list[str]:
    """The objects of ``<data_source> owm:manifest ?url`` (from its graph, else its stored
    context)."""
    from rdflib.term import URIRef

    prop = URIRef(MANIFEST_PROPERTY)
    ident = getattr(data_source, "identifier", None)
    if ident is None:
        return []
    graphs: list[Any] = []
    with contextlib.suppress(Exception):
        graphs.append(data_source.rdf)
    with contextlib.suppress(Exception):
        graphs.append(data_source.context.stored.rdf_graph())
    for graph in graphs:
        try:
            found = sorted({str(o) for o in graph.objects(ident, prop)})
        except Exception:  # an owmeta-core store that cannot answer
            continue
        if found:
            return found
    return []


class OwmanifestDataSourceDirLoader(_DirLoaderBase):  # type: ignore[misc]
    """owmeta-core's ``DataSourceDirLoader`` for data sources with an ``owm:manifest``.

    For a data source carrying ``<ds> <https://openworm.org/ns/owmanifest#manifest> <URL>``
    (URL: ``https://``, ``http://``, ``file:`` or ``owmanifest+...``), :meth:`load` verifies
    the manifest, fetches every file it lists (verified) into
    ``base_directory/<hash of the dataset id>/<version>`` and returns that directory.

    Args:
        base_directory: set by owmeta-core (its data-source directory for this loader).
        options: trust and transports (default: the user's trust store; BitTorrent with DHT,
            then the manifest's mirrors).

    Raises:
        DependencyError: owmeta-core is not installed.
    """

    def __init__(
        self, base_directory: str | None = None, *, options: FetchOptions | None = None
    ) -> None:
        _require_owmeta()
        super().__init__(base_directory=base_directory, directory_key="owmanifest")
        self.options = options or FetchOptions()

    def __str__(self) -> str:
        return f"{type(self).__name__}()"

    def can_load(self, data_source: Any) -> bool:
        """Whether ``data_source`` names a manifest (``owm:manifest``)."""
        return bool(_manifest_urls(data_source))

    def load(self, data_source: Any) -> str:
        """Fetch and verify every file of the data source's manifest; return the directory.

        Raises:
            LoadFailed: (owmeta-core's ``datasource_loader.LoadFailed``) no or several
                manifests, no base directory, or any owmanifest error (its message inside).
        """
        urls = _manifest_urls(data_source)
        try:
            if len(urls) != 1:
                raise UsageError(
                    f"the data source needs exactly one <{MANIFEST_PROPERTY}>",
                    uri=str(getattr(data_source, "identifier", data_source)),
                    expected="1",
                    observed=len(urls),
                )
            if not self.base_directory:
                raise UsageError("owmeta-core gave no base directory to this loader")
            source = ManifestSource(urls[0], self.options)
            m = source.verified().manifest
            dest = _dataset_dir(Path(self.base_directory), m.id) / str(m.version)
            source.fetch(dest, replace=True)  # a directory of this loader's own: repaired
        except Exception as exc:  # LoadFailed, whatever it was (as the bundle loader)
            raise _load_failed(_odl.LoadFailed, data_source, self, exc) from None
        return str(dest)


# --- owmeta-core: `owm bundle remote add NAME URL owmanifest ...` -------------------------------


def owmanifest_remote(
    self: Any,
    *,
    trust_file: str | None = None,
    trust: str | None = None,
    mirrors: str | None = None,
    no_manifest_mirrors: bool = False,
    peers: str | None = None,
    trackers: str | None = None,
    no_dht: bool = False,
    listen: str | None = None,
    transports: str | None = None,
    stall_timeout: str | None = None,
    cache_dir: str | None = None,
) -> Any:
    """
    Settings of an owmanifest remote (a signed manifest of bundle archives)

    Parameters
    ----------
    trust_file : str
        Comma-separated trust files (JSON) listing the keys trusted to sign the manifest.
        optional: the default is your owmanifest trust store
    trust : str
        Comma-separated did:key identifiers trusted to sign the manifest. optional
    mirrors : str
        Comma-separated HTTP(S) URLs or directories laid out like the manifest's dataset, tried
        before the mirrors the manifest lists. optional
    no_manifest_mirrors : bool
        Do not use the mirrors the manifest lists
    peers : str
        Comma-separated BitTorrent peers (host:port) to connect to. optional
    trackers : str
        Comma-separated BitTorrent tracker URLs. optional
    no_dht : bool
        No DHT, local peer discovery or peer exchange (closed networks)
    listen : str
        BitTorrent listen address (host:port). optional
    transports : str
        Comma-separated transports to use, among bittorrent, http, file. optional: all,
        BitTorrent first
    stall_timeout : str
        Seconds without verified progress before the next source is tried. optional: 60
    cache_dir : str
        Where bundle archives are downloaded. optional: the owmanifest user cache

    Raises
    ------
    GenericUserError
        The remote is not an owmanifest remote, or a setting is invalid (an unreadable trust
        file, a key that is not a did:key, an unknown transport, a bad number)
    """
    _require_owmeta()
    from owmeta_core.command_util import GenericUserError

    config = getattr(self, "_url_config", None)
    if not isinstance(config, OwmanifestURLConfig):
        raise GenericUserError(
            f"{config} is not an owmanifest URL (expected {', '.join(s + '://' for s in SCHEMES)})"
        )
    try:
        if trust_file is not None:
            config.trust_files = [os.path.abspath(p) for p in _strings(trust_file)]
            from ..verify.trustfile import read_trust_file

            for p in config.trust_files:
                read_trust_file(p)
        if trust is not None:
            config.trust = _strings(trust)
            TrustPolicy.from_keys(config.trust)
        if mirrors is not None:
            config.mirrors = [_absolute(m) for m in _strings(mirrors)]
        if no_manifest_mirrors:
            config.manifest_mirrors = False
        if peers is not None:
            config.peers = _strings(peers)
        if trackers is not None:
            config.trackers = _strings(trackers)
        if no_dht:
            config.dht = False
        if listen is not None:
            config.listen = listen
        if transports is not None:
            config.transports = _strings(transports)
        if stall_timeout is not None:
            try:
                config.stall_timeout = float(stall_timeout)
            except ValueError:
                raise UsageError("not a number of seconds", observed=stall_timeout) from None
        if cache_dir is not None:
            config.cache_dir = os.path.abspath(cache_dir)
        config.options()
    except Error as exc:
        raise GenericUserError(str(exc)) from exc
    return self._write_remote()


if _OWMETA_MISSING is None:
    for _scheme in SCHEMES:
        OwmanifestURLConfig.register(_scheme)
