"""``owmanifest fetch`` and ``owmanifest seed``: moving bytes, verified as they arrive."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import EXIT_OK, EXIT_VERIFICATION_FAILED, UsageError

if TYPE_CHECKING:
    from .manifest.model import Manifest

__all__ = ["register"]


class _BarProgress:
    """Adapts the transport Progress protocol to the CLI's progress bar."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.bar: Any = None
        self.sources: set[str] = set()

    def start(self, total_bytes: int) -> None:
        from ._progress import ProgressBar

        self.bar = ProgressBar(
            "fetching", total_bytes, enabled=None if not self.out.quiet else False
        )

    def advance(self, nbytes: int, source: str) -> None:
        if self.bar is not None:
            if source not in self.sources:
                self.sources.add(source)
            self.bar.set_extra(f"from {source}")
            self.bar.advance(nbytes)

    def file_done(self, path: str) -> None:
        pass

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _sidecar_path(args: argparse.Namespace) -> str:
    """The torrent given with --torrent, else the manifest's sidecar ``MANIFEST.torrent``."""
    return str(args.torrent or (args.manifest + ".torrent"))


def _sidecar(args: argparse.Namespace, manifest: Manifest) -> bytes | None:
    """The torrent given with --torrent, else the manifest's sidecar if there is one: not for
    a dataset without bytes, which has no torrent (a sidecar there is a stale one)."""
    if not args.torrent and manifest.info_hash_v2 is None and manifest.total_size == 0:
        return None
    path = _sidecar_path(args)
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        if args.torrent:
            raise UsageError("torrent file not found", path=args.torrent) from None
        return None
    except OSError as exc:
        raise UsageError(f"cannot read torrent: {exc.strerror}", path=path) from exc


def _bittorrent_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "peers": args.peer or [],
        "trackers": args.tracker or [],
        "dht": not args.no_dht,
        "listen": args.listen or "0.0.0.0:0",
    }


def _can_find_peers(args: argparse.Namespace, manifest: Manifest) -> bool:
    """:func:`~owmanifest.transport.bittorrent.can_find_peers` with the command's options."""
    from .transport.bittorrent import can_find_peers

    options = _bittorrent_options(args)
    return can_find_peers(
        manifest, dht=options["dht"], peers=options["peers"], trackers=options["trackers"]
    )


def cmd_fetch(args: argparse.Namespace, out: Any) -> int:
    from .cli import (
        _check_state_options,
        _only,
        _outcome_lines,
        _outcomes_json,
        _policy,
        _read,
        _verified_json,
        record_state,
        verify_with_state,
    )
    from .errors import VerificationError
    from .transport import IncompleteFetchError, fetch, known_schemes, open_sources
    from .verify.tree import verify_tree

    _check_state_options(args)
    every = {"bittorrent", "http", "file", *known_schemes()}  # third-party ones (entry points)
    if args.transport:
        wanted = set(args.transport)
        if wanted - every:  # (a plugin's scheme is one too: found by a review)
            raise UsageError(
                "unknown transport",
                expected=", ".join(sorted(every)),
                observed=", ".join(sorted(wanted - every)),
            )
    else:
        wanted = every
    if os.path.lexists(args.dest) and not os.path.isdir(args.dest):
        raise UsageError("the destination exists and is not a directory", path=args.dest)
    policy = _policy(args, out)
    document = _read(args.manifest, keep_json=False)
    result: dict[str, Any] = {"ok": False}
    try:
        vm = verify_with_state(args, out, document, policy)
    except VerificationError as exc:
        out.status(False, f"{document.source}: {exc.message}{exc.contrast()}")
        for line in _outcome_lines(exc.outcomes):
            out.info(line)
        if out.as_json:
            out.data({"ok": False, "error": exc.to_json(), "proofs": _outcomes_json(exc.outcomes)})
        return EXIT_VERIFICATION_FAILED
    m = vm.manifest
    result.update(_verified_json(vm))
    out.status(
        True,
        f"{vm.source}: {m.id} version {m.version}, {len(vm.signers)} of {m.threshold} signatures",
    )
    files = _only(m, args.only) if args.only else None
    torrent = _sidecar(args, m)
    piece_layers: dict[bytes, bytes] = {}
    if torrent is not None:
        from .transport.bittorrent import check_torrent

        # The sidecar is authenticated only by the signed manifest: check it before any use.
        piece_layers = dict(check_torrent(m, torrent, source=_sidecar_path(args)).piece_layers)
    _check_mirrors(list(args.mirror or []), wanted - {"bittorrent", "magnet"}, out)
    if args.token_env is not None and not os.environ.get(args.token_env):
        raise UsageError(
            f"--token-env {args.token_env}: ${args.token_env} is not set, or empty",
            expected="the bearer token for the private mirrors",
        )
    sources: list[Any] = []
    bt: Any = None
    if ("bittorrent" in wanted or "magnet" in wanted) and (m.info_hash_v2 or torrent):
        if not _can_find_peers(args, m):
            out.info(
                "BitTorrent skipped: --no-dht with no --peer and no tracker leaves no way to "
                "find peers"
            )
        else:
            from .transport.bittorrent import BitTorrentTransport

            bt = BitTorrentTransport(torrent=torrent, **_bittorrent_options(args))
            sources.append(bt)
    mirrors = list(args.mirror or [])
    if not args.no_manifest_mirrors:
        mirrors += [u for u in m.mirrors if u not in mirrors]
    other = wanted - {"bittorrent", "magnet"}
    if mirrors and other:
        sources += open_sources(
            mirrors, schemes=sorted(other), link=args.link, token_env=args.token_env
        )
    from .transport import local_first

    selected = m.files if files is None else files
    if not sources and any(f.size for f in selected):  # empty files need no source at all
        raise UsageError(
            "no source to fetch from: give --mirror URL or --peer HOST:PORT, or check --transport",
            expected="a BitTorrent torrent/info-hash or a mirror",
        )
    sources = local_first(sources)
    record_state(args, vm)  # the input is good (bad input changes nothing, the state included)
    out.info("sources: " + ", ".join(s.name for s in sources))
    if bt is not None and sources[-1] is not bt:
        out.info(
            f"BitTorrent looks for peers; with no verified progress for {args.stall_timeout:g} s "
            "(--stall-timeout) it is left for the next source (--transport skips it)"
        )
    progress = _BarProgress(out)
    failure: IncompleteFetchError | None = None
    try:
        report = fetch(
            vm,
            args.dest,
            sources,
            files=files,
            piece_layers=piece_layers,
            stall_timeout=args.stall_timeout,
            progress=progress,
            replace=args.force,
        )
    except IncompleteFetchError as exc:
        failure = exc
    finally:
        progress.close()
        for s in sources:
            s.close()
        _report_swarm(bt, out, result)  # also into the JSON of a failure (found by a review)
    if failure is not None:
        out.status(False, str(failure))
        if out.as_json and failure.report is not None:
            result["fetch"] = failure.report.to_json()
            out.data(result)
        return EXIT_VERIFICATION_FAILED
    result["fetch"] = report.to_json()
    for problem in report.problems:  # what went wrong on the way, though another source served
        out.info(f"note: {problem}")
    for path in report.replaced:
        out.info(f"replaced (it differed from the manifest): {path}")
    tree = verify_tree(vm, args.dest, files=files)
    out.status(
        True,
        f"{args.dest}: {len(tree.verified)} file(s) verified "
        f"({len(report.fetched)} fetched, {len(report.present)} already present)",
    )
    result["ok"] = True
    if out.as_json:
        out.data(result)
    return EXIT_OK


def _check_mirrors(mirrors: list[str], selected: set[str], out: Any) -> None:
    """Refuse a mirror no transport can read, and say which ones --transport leaves out
    (rather than dropping the user's mirrors without a word).

    Raises:
        UsageError: a mirror's scheme has no transport.
    """
    from .transport import known_schemes
    from .transport.registry import scheme_of

    known = set(known_schemes())
    for uri in mirrors:
        scheme = scheme_of(uri)
        if scheme not in known:
            raise UsageError(
                "no transport reads this mirror's scheme",
                uri=uri,
                expected="one of " + ", ".join(sorted(known)),
                observed=scheme,
            )
        family = "http" if scheme == "https" else scheme
        if family not in selected:
            out.info(f"mirror not used (--transport leaves out {family}): {uri}")


def _report_swarm(bt: Any, out: Any, result: dict[str, Any]) -> None:
    """Tell what the swarm did wrong: pieces that failed their hash check, peers banned."""
    stats = getattr(bt, "last_stats", None)
    if stats is None:
        return
    if stats.hash_failures:
        out.info(
            f"BitTorrent: {stats.hash_failures} piece(s) failed their hash check and were "
            f"fetched again; banned peers: {', '.join(stats.banned_peers) or 'none'}"
        )
    for problem in stats.problems:
        out.info(f"BitTorrent: {problem}")
    result["bittorrent"] = {
        "hashFailures": stats.hash_failures,
        "bannedPeers": list(stats.banned_peers),
        "resumed": stats.resumed,
        "problems": list(stats.problems),
    }


def cmd_seed(args: argparse.Namespace, out: Any) -> int:
    from .cli import _read
    from .transport.bittorrent import Seeder
    from .verify.manifest import check_proofs
    from .verify.policy import TrustPolicy

    document = _read(args.manifest, keep_json=False)
    manifest, _, outcomes = check_proofs(document, TrustPolicy())
    if not any(not o.reason.startswith("invalid proof") for o in outcomes):
        out.info("WARNING: the manifest carries no valid signature; leechers will refuse it")
    torrent = _sidecar(args, manifest)
    seeder = Seeder(
        manifest,
        torrent,
        Path(args.directory),
        listen=args.listen or "0.0.0.0:0",
        dht=not args.no_dht,
        trackers=args.tracker or [],
        peers=args.peer or [],
        torrent_source=_sidecar_path(args),  # named by its path, as fetch names it
    )
    import signal
    import threading

    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    with seeder:
        out.info("checking the data...")
        seeder.wait_ready(timeout=args.check_timeout)  # Ctrl-C here interrupts, as anywhere
        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        asked = (args.listen or "").rpartition(":")[2]
        if asked.isdigit() and int(asked) not in (0, seeder.port):
            out.info(
                f"WARNING: port {asked} was taken: seeding on port {seeder.port}, which is the "
                "one to give leechers (--peer HOST:PORT)"
            )
        info = {
            "magnet": seeder.magnet_uri,
            "port": seeder.port,
            "id": manifest.id,
            "version": manifest.version,
        }
        if out.as_json:
            out.data(info)
        else:
            out.line(seeder.magnet_uri)
        out.info(
            f"seeding {manifest.id} version {manifest.version} on port {seeder.port}; "
            "Ctrl-C to stop"
        )
        if not _can_find_peers(args, manifest):
            out.info(
                f"no DHT and no tracker: leechers find this seeder only if told its address "
                f"(fetch --peer HOST:{seeder.port})"
            )
        sys.stdout.flush()
        failed: list[str] = []
        try:
            while not stop.wait(1.0 if args.duration is None else min(1.0, args.duration)):
                # The data may fail while it is served (a file removed or cut short): libtorrent
                # then stops the torrent; say so now, not at the end (found by a review).
                failed = seeder.status()["data_errors"]
                if failed:
                    break
                if args.duration is not None:
                    args.duration -= 1.0
                    if args.duration <= 0:
                        break
        finally:  # the caller's handlers again (main() may be called from a program)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        status = seeder.status()
    if failed:
        out.status(
            False,
            f"{args.directory}: the data can no longer be read as the manifest describes it: "
            f"{failed[0]}; seeding stopped (check the directory, then seed again)",
        )
        return EXIT_VERIFICATION_FAILED
    out.info(f"stopped; uploaded {status.get('uploaded', 0)} bytes")
    return EXIT_OK


def _add_bt(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("BitTorrent")
    g.add_argument("--torrent", metavar="FILE", help="sidecar torrent (default: MANIFEST.torrent)")
    g.add_argument("--peer", action="append", metavar="HOST:PORT", help="connect to this peer")
    g.add_argument("--tracker", action="append", metavar="URL", help="announce to this tracker")
    g.add_argument("--listen", metavar="HOST:PORT", help="listen here (default: a free port)")
    g.add_argument("--no-dht", action="store_true", help="no DHT, LSD or PEX (closed networks)")


def register(add: Any, common: argparse.ArgumentParser) -> None:
    from .cli import _add_trust_options, _seconds

    p = add(
        "fetch",
        "download a dataset (local dirs, BitTorrent, HTTP mirrors), verified as it arrives",
        "Verify MANIFEST (signatures, threshold, trust, rollback), then fetch its files into DEST\n"
        "over BitTorrent and/or HTTP mirrors or local directories. Every piece is checked against\n"
        "the signed Merkle roots before it is written; a file appears at its final path only\n"
        "once it verified whole. Re-running resumes; verified pieces are not fetched again.\n"
        "Local directories are tried first, then BitTorrent, then HTTP mirrors.\n\n"
        "examples (without --trust: the keys of your trust store, `owmanifest trust add`):\n"
        "  owmanifest fetch connectome.jsonld ./connectome --trust did:key:z6Mk...\n"
        "  owmanifest fetch connectome.jsonld ./c --transport http --mirror https://host/connectome/\n"
        "  owmanifest fetch connectome.jsonld ./c --only 'graphs/*.nt' --mirror /media/usb/c\n"
        "  owmanifest fetch connectome.jsonld ./c --peer 127.0.0.1:6881 --no-dht",
    )
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("dest", metavar="DEST")
    _add_trust_options(p)
    p.add_argument(
        "--mirror",
        action="append",
        metavar="URL|DIR",
        help="HTTP mirror or local dir (repeatable, in order)",
    )
    p.add_argument(
        "--no-manifest-mirrors", action="store_true", help="ignore the mirrors the manifest lists"
    )
    p.add_argument(
        "--transport",
        action="append",
        metavar="NAME",
        help="use only these transports: bittorrent, http, file, or an installed plugin's "
        "scheme (repeatable; default: all: local directories, then BitTorrent, then the rest)",
    )
    p.add_argument("--only", action="append", metavar="GLOB", help="fetch only matching paths")
    p.add_argument(
        "--stall-timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="move to the next source after this long without verified progress (60)",
    )
    p.add_argument(
        "--link", action="store_true", help="hard-link verified files from local mirrors"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="also replace files in DEST that differ from the manifest and are not as a fetch "
        "of this dataset left them (their content is lost); files an earlier fetch left "
        "unchanged are replaced without it",
    )
    p.add_argument(
        "--token-env", metavar="VAR", help="bearer token for private HTTP mirrors from $VAR"
    )
    _add_bt(p)
    p.set_defaults(func=cmd_fetch)

    s = add(
        "seed",
        "seed a dataset over BitTorrent; prints the magnet link",
        "Seed DIRECTORY as described by MANIFEST. The sidecar torrent MANIFEST.torrent is used\n"
        "(or re-created from the data); its info-hashes must equal the ones in the manifest.\n\n"
        "examples:\n"
        "  owmanifest seed connectome.jsonld ./connectome\n"
        "  owmanifest seed connectome.jsonld ./connectome --listen 127.0.0.1:6881 --no-dht",
    )
    s.add_argument("manifest", metavar="MANIFEST")
    s.add_argument("directory", metavar="DIRECTORY")
    _add_bt(s)
    s.add_argument("--duration", type=_seconds, metavar="SECONDS", help="stop after this long")
    s.add_argument(
        "--check-timeout",
        type=_seconds,
        default=3600.0,
        metavar="SECONDS",
        help="how long checking the data may take (3600)",
    )
    s.set_defaults(func=cmd_seed)
