"""The ``owmanifest`` command line. The only module that prints.

Exit codes: 0 ok, 1 verification failed, 2 bad usage or unreadable/malformed input.
Human messages go to stderr (``OK: ...`` / ``FAIL: ...``); stdout carries requested output
(a DID, ``--json`` documents). No traceback unless ``-v``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

from . import __version__
from .errors import EXIT_BAD_INPUT, EXIT_OK, EXIT_VERIFICATION_FAILED, Error, UsageError

if TYPE_CHECKING:
    from .manifest.document import ManifestDocument
    from .manifest.model import FileEntry, Manifest
    from .verify.keys import PrivateKey
    from .verify.policy import TrustPolicy
    from .verify.result import ProofOutcome, TreeReport, VerifiedManifest

__all__ = ["main"]

DESCRIPTION = """\
Signed, content-addressed dataset manifests for OpenWorm.

A manifest lists every file of a dataset with its size and BitTorrent v2 (BEP 52) Merkle root,
names who may sign it and how many signatures are needed, and carries W3C Data Integrity
proofs (eddsa-rdfc-2022). `verify` trusts no transport: it checks signatures, signer
authorization, the threshold and every byte.

typical use:
  owmanifest keygen --out alice.key
  owmanifest create DATA --id https://openworm.org/data/connectome --version 1 \\
      --signer did:key:z6Mk...alice --signer did:key:z6Mk...bob --threshold 2 -o connectome.jsonld
  owmanifest sign connectome.jsonld --key alice.key
  owmanifest verify connectome.jsonld DATA --trust did:key:z6Mk...alice --trust did:key:z6Mk...bob
  owmanifest show connectome.jsonld
  owmanifest demo                     # all of the above on a sample dataset

exit status: 0 ok, 1 verification failed, 2 bad usage or unreadable/malformed input.
"""


class _Out:
    """Where output goes; honours --quiet and --json."""

    def __init__(self, quiet: bool = False, as_json: bool = False) -> None:
        self.quiet = quiet
        self.as_json = as_json

    def info(self, text: str) -> None:
        if not self.quiet:
            print(_printable(text), file=sys.stderr)

    def status(self, ok: bool, text: str) -> None:
        if not self.quiet or not ok:
            print(_printable(f"{'OK' if ok else 'FAIL'}: {text}"), file=sys.stderr)

    def data(self, value: Any) -> None:
        text = json.dumps(value, indent=2, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a non-UTF-8 file name: escaped, so stdout stays UTF-8
            text = json.dumps(value, indent=2)
        print(text)

    def line(self, text: str) -> None:
        print(_printable(text))


def _printable(text: str) -> str:
    """``text`` as valid Unicode: the bytes of a file name that is not UTF-8 (lone surrogates,
    as Python decodes them) written as ``\\xff``, which every stream can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate that stands for no byte (from JSON text)
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")
    return text


class _ArgumentParser(argparse.ArgumentParser):
    json_errors = False  # set by main() when --json is on the command line

    def error(self, message: str) -> NoReturn:
        if _ArgumentParser.json_errors:  # scripts get the same shape as every other failure
            error = UsageError(f"{self.prog}: {message}")
            print(json.dumps({"ok": False, "error": error.to_json()}, indent=2))
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


class _VersionAction(argparse.Action):
    """``--version``: the version and which parts run compiled (looked up only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from .manifest.document import compiled_reader
        from .manifest.hashing import engine, sha_extensions

        described = {
            "compiled": (
                "compiled core, leaves and v1 pieces two at a time with the CPU's SHA extensions, "
                "OpenSSL's digests for the rest"
                if sha_extensions()
                else "compiled core, OpenSSL's digests"
            ),
            "python": "pure Python (the compiled core is not built, or OWMANIFEST_PURE_PYTHON)",
        }
        reader = (
            "compiled one pass over N-Quads"
            if compiled_reader()
            else "pure Python (the compiled reader is not built, or OWMANIFEST_PURE_PYTHON)"
        )
        if _ArgumentParser.json_errors:  # --json --version: one JSON document, as always
            version = {"version": __version__, "hashing": described[engine()], "reading": reader}
            sys.stdout.write(json.dumps(version, indent=2) + "\n")
        else:
            sys.stdout.write(
                f"owmanifest {__version__}\nhashing: {described[engine()]}\n"
                f"manifest reading: {reader}\n"
            )
        parser.exit()


# --- helpers ------------------------------------------------------------------------------------


def _progress(label: str, total: int, out: _Out) -> Any:
    from ._progress import ProgressBar

    return ProgressBar(label, total, enabled=None if not out.quiet else False)


def _read_passphrase(args: argparse.Namespace, *, confirm: bool, path: str) -> bytes | None:
    env = getattr(args, "passphrase_env", None)
    if env:
        value = os.environb.get(os.fsencode(env))  # its bytes, whatever their encoding
        if value is None:
            raise UsageError(f"environment variable {env} is not set", observed=env)
        return value
    if not getattr(args, "encrypt", False) and confirm:
        return None
    if not sys.stdin.isatty():
        raise UsageError(
            "a passphrase is needed but there is no terminal; use --passphrase-env VAR",
            path=path,
        )
    import getpass

    first = getpass.getpass(f"Passphrase for {path}: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise UsageError("the passphrases do not match")
    return first.encode("utf-8")


def _load_key(args: argparse.Namespace) -> PrivateKey:
    from .verify.keys import is_encrypted_key_file, read_key_file

    path = args.key
    passphrase = None
    try:
        encrypted = is_encrypted_key_file(path)
    except Error:
        encrypted = False
    if encrypted:
        passphrase = _read_passphrase(args, confirm=False, path=path)
    return read_key_file(path, passphrase=passphrase)


def _signer_did(value: str) -> str:
    """A --signer value: a did:key, or a key file whose public key is used."""
    if value.startswith("did:"):
        return value.split("#", 1)[0]
    if Path(value).is_file():
        from .verify.keys import read_public_key

        return read_public_key(value).did
    raise UsageError(
        "a signer is a did:key:z6Mk... or a key file", expected="did:key:...", observed=value
    )


def _read(
    path: str, fmt: str | None = None, *, keep_json: bool = True, stream: bool | None = None
) -> ManifestDocument:
    """Read a manifest; ``keep_json=False`` where it is only verified: then neither its JSON
    nor (unless ``stream=False``) its quads are kept: the verifier reads the quads once, as
    they are parsed."""
    from .manifest.document import load_document, read_document

    if stream is None:
        stream = not keep_json
    if path == "-":
        data = sys.stdin.buffer.read()
        return load_document(
            data, source="<stdin>", format=fmt or "json-ld", keep_json=keep_json, stream=stream
        )
    return read_document(path, format=fmt, keep_json=keep_json, stream=stream)


def _policy(args: argparse.Namespace, out: _Out) -> TrustPolicy:
    from .verify.policy import UnsafeTrustManifestSigners

    if getattr(args, "unsafe_trust_manifest_signers", False):
        if args.trust or args.trust_file:
            raise UsageError("--unsafe-trust-manifest-signers cannot be combined with --trust")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            unsafe: TrustPolicy = UnsafeTrustManifestSigners()
        out.info(
            "WARNING: --unsafe-trust-manifest-signers: accepting whatever signers the manifest "
            "names; this does not tell you who published it"
        )
        return unsafe
    from .verify.truststore import policy_for_run

    policy = policy_for_run(args.trust_file or [], args.trust or [])
    if policy.is_empty:
        raise UsageError(
            "no trusted keys: give --trust did:key:... (repeatable) or --trust-file FILE, or "
            "keep them in your trust store (`owmanifest trust add did:key:...`)",
            expected="at least one trusted key",
        )
    return policy


def _outcome_lines(outcomes: Sequence[ProofOutcome]) -> list[str]:
    lines = []
    for o in outcomes:
        who = o.signer or o.verification_method or "(unknown key)"
        lines.append(f"  {'counted' if o.counted else 'not counted'}: {who}: {o.reason}")
    return lines


def _outcomes_json(outcomes: Sequence[ProofOutcome]) -> list[dict[str, Any]]:
    return [
        {
            "verificationMethod": o.verification_method,
            "signer": o.signer,
            "counted": o.counted,
            "reason": o.reason,
        }
        for o in outcomes
    ]


def _report_json(report: TreeReport) -> dict[str, Any]:
    return {
        "directory": report.directory,
        "verified": len(report.verified),
        "fromCache": report.from_cache,
        "problems": [
            {"path": p.path, "kind": p.kind, "expected": p.expected, "observed": p.observed}
            for p in report.problems
        ],
        "extra": list(report.extra),
    }


def _verified_json(vm: VerifiedManifest) -> dict[str, Any]:
    m = vm.manifest
    return {
        "manifest": vm.source,
        "id": m.id,
        "version": m.version,
        "canonicalHash": str(vm.canonical_hash),
        "threshold": m.threshold,
        "signers": list(vm.signers),
        "proofs": _outcomes_json(vm.proofs),
    }


# --- commands -----------------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace, out: _Out) -> int:
    from .verify.keys import PrivateKey, write_key_file

    if args.out == "-":  # not a file named "-", nor a private key on a terminal
        raise UsageError("keygen writes a private key file: give --out FILE")
    passphrase = _read_passphrase(args, confirm=True, path=args.out)
    key = PrivateKey.generate()
    folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.lexists(folder):  # e.g. --out ~/.owmanifest/alice.key on a new machine
        try:
            os.makedirs(folder, mode=0o700)
        except OSError as exc:
            raise UsageError(
                f"cannot create the key file's directory: {exc.strerror}", path=folder
            ) from exc
        out.info(f"created directory {folder} (mode 0700)")
    try:
        write_key_file(args.out, key, passphrase=passphrase, overwrite=args.force)
    except FileExistsError as exc:
        raise UsageError(
            "key file exists; refusing to overwrite (use --force)", path=args.out
        ) from exc
    did = key.public_key.did
    if out.as_json:
        out.data({"did": did, "keyFile": str(args.out), "encrypted": passphrase is not None})
    else:
        out.line(did)
        out.info(
            f"wrote private key to {args.out} (mode 0600"
            f"{', encrypted' if passphrase else ', NOT encrypted: keep it safe'})"
        )
    return EXIT_OK


def _at_least(minimum: float, kind: type[int] | type[float] = int, *, above: bool = False) -> Any:
    """An argparse type: a number (``kind``) of at least ``minimum`` (``above``: more than it),
    with a message that says so."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value > minimum if above else value >= minimum):  # NaN fails both
            bound = "more than" if above else "at least"
            raise argparse.ArgumentTypeError(f"must be {bound} {minimum}, got {text}")
        return value

    return parse


_positive = _at_least(1)
_count = _at_least(0)
_seconds = _at_least(0, float, above=True)


def _same_entry(a: Path, b: Path) -> bool:
    """Whether two paths, however spelled, name one directory entry: their directories are
    resolved, not their last parts. A symbolic link or hard link to a file is another entry,
    which writing replaces while the file stays as it was."""
    try:
        return a.name == b.name and os.path.samefile(a.parent, b.parent)
    except OSError:
        return False


def _below(directory: str, paths: Sequence[Path]) -> list[str]:
    """The paths that lie below ``directory``, as manifest paths relative to it."""
    top = Path(os.path.realpath(directory))
    below = []
    for path in paths:
        real = Path(os.path.realpath(path.parent), path.name)  # the name itself: not followed
        if real.is_relative_to(top):
            below.append(real.relative_to(top).as_posix())
    return below


def _check_format_named(target: str, fmt: str, message: str) -> None:
    """Refuse to write ``fmt`` into a file whose name says another format: no reader would
    take it for what it is.

    Raises:
        UsageError: naming the file, the format its name says and ``fmt``.
    """
    from .manifest.document import detect_format

    try:
        named = detect_format(target)
    except Error:
        return  # a name that says no format
    if named != fmt:
        raise UsageError(message, path=target, expected=named, observed=fmt)


def _check_output(target: Path, force: bool) -> None:
    """Refuse an output that cannot be written, before any long work: it exists (without
    ``force``), is a directory, or its directory is missing or not writable.

    Raises:
        UsageError: naming the path and why.
    """
    if target.is_dir():
        raise UsageError("the output is a directory", path=str(target))
    if not force and os.path.lexists(target):
        raise UsageError("output exists; refusing to overwrite (use --force)", path=str(target))
    parent = target.parent
    if not parent.is_dir():
        raise UsageError("the output's directory does not exist", path=str(parent))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError("the output's directory is not writable", path=str(parent))


def cmd_create(args: argparse.Namespace, out: _Out) -> int:
    from ._atomic import write_atomic
    from .manifest.builder import build_manifest
    from .manifest.digest import Digest
    from .manifest.document import detect_format, serialize_quads
    from .manifest.jsonld import manifest_json

    if args.output == "-":  # not a file named "-"
        raise UsageError("create writes a manifest and its torrent: give -o FILE")
    target = Path(args.output)
    fmt = args.format or detect_format(str(target))
    if fmt not in ("json-ld", "trig", "n-quads"):
        raise UsageError("output format must be json-ld, trig or n-quads", observed=fmt)
    if args.format:
        _check_format_named(str(target), args.format, "--format disagrees with the output's name")
    sidecar = Path(str(target) + ".torrent")
    _check_output(target, args.force)
    _check_output(sidecar, args.force)
    signers = [_signer_did(s) for s in args.signer]
    threshold = args.threshold if args.threshold is not None else len(set(signers))
    bar: Any = None

    def on_scanned(count: int, total: int) -> None:
        nonlocal bar
        out.info(f"hashing {count} file(s)...")
        bar = _progress("hashing", total, out)

    def progress(n: int) -> None:
        if bar is not None:
            bar.advance(n)

    previous = Digest.parse(args.previous, algorithm="rdfc-sha256") if args.previous else None
    result = build_manifest(
        args.directory,
        dataset_id=args.id,
        version=args.version,
        signers=signers,
        threshold=threshold,
        title=args.title,
        description=args.description,
        license=args.license,
        created=args.created,
        expires=args.expires,
        previous_version=previous,
        piece_length=args.piece_length,
        hybrid=not args.v2_only,
        private=args.private,
        mirrors=args.mirror or (),
        trackers=args.tracker or (),
        strict=args.strict,
        workers=args.workers,
        progress=progress,
        on_scanned=on_scanned,
        exclude=_below(args.directory, (target, sidecar)),
    )
    if bar is not None:
        bar.close()
    for skipped in result.skipped:
        out.info(f"skipped: {skipped}")
    listed = {f.path for f in result.manifest.files}
    for path in sorted(listed):
        if path.endswith((".jsonld", ".trig", ".nq")) and path + ".torrent" in listed:
            out.info(
                f"note: {path} and {path}.torrent look like an earlier manifest and its torrent; "
                "they are part of this dataset (write manifests outside the directory, or "
                "under the same name, which create leaves out)"
            )
    data = manifest_json(result.manifest)
    if fmt != "json-ld":
        from .manifest.document import load_document

        data = serialize_quads(
            list(load_document(data, source=str(target), format="json-ld").quads), fmt
        )
    if result.torrent is not None:
        write_atomic(sidecar, result.torrent)
    else:
        out.info("the dataset has no bytes at all: no torrent written")
        if os.path.lexists(sidecar):  # an earlier version's, replaced with --force
            os.unlink(sidecar)
            out.info(f"removed {sidecar}, which no longer matches")
    write_atomic(target, data)
    m = result.manifest
    if out.as_json:
        out.data(
            {
                "manifest": str(target),
                "torrent": str(sidecar) if result.torrent is not None else None,
                "id": m.id,
                "version": m.version,
                "files": len(m.files),
                "bytes": m.total_size,
                "pieceLength": m.piece_length,
                "infoHashV1": m.info_hash_v1,
                "infoHashV2": m.info_hash_v2,
                "skipped": [str(s) for s in result.skipped],
            }
        )
    else:
        wrote = f" and {sidecar}" if result.torrent is not None else ""
        out.status(True, f"wrote {target} ({len(m.files)} files, {m.total_size} bytes){wrote}")
        out.info(
            f"next: each signer runs `owmanifest sign {target} --key KEYFILE` "
            f"({m.threshold} of {len(m.signers)} needed)"
        )
    return EXIT_OK


def cmd_sign(args: argparse.Namespace, out: _Out) -> int:
    from ._atomic import write_atomic
    from .signing import sign_document

    target = args.output or args.manifest
    if target == "-" and out.as_json:
        raise UsageError("--json and the signed manifest would share stdout: give -o FILE")
    document = _read(args.manifest, stream=True)  # sign needs the JSON, not each quad
    if args.output is not None and args.output != "-":
        # sign writes the format it read (found by a review: TriG went into a .jsonld file,
        # and a .trig output of a TriG manifest was refused as not JSON-LD)
        _check_format_named(
            args.output,
            document.format,
            f"sign writes the manifest's own format, {document.format}, which the output's "
            "name disagrees with (name it for that format, or convert after signing)",
        )
    in_place = args.output is None or (
        args.manifest != "-" and _same_entry(Path(args.output), Path(args.manifest))
    )
    if not in_place and args.output != "-":
        _check_output(Path(args.output), args.force)
    key = _load_key(args)
    data = sign_document(
        document,
        key,
        created=args.created,
        check_directory=args.check,
        allow_unlisted=args.allow_unlisted,
    )
    if target == "-":
        sys.stdout.buffer.write(data)
    else:
        write_atomic(target, data)
    if out.as_json:
        out.data({"manifest": target, "signer": key.public_key.did})
    else:
        out.status(True, f"signed {target} as {key.public_key.did}")
    return EXIT_OK


def verify_with_state(
    args: argparse.Namespace, out: _Out, document: ManifestDocument, policy: TrustPolicy
) -> VerifiedManifest:
    """Verify directly or, failing that, by following rotations from the recorded version;
    then apply rollback protection (unless --no-state). The caller records the new version
    with :func:`record_state` once the rest of its input is known to be good: bad input
    changes nothing.

    Raises:
        VerificationError: the manifest cannot be trusted (or is a rollback).
    """
    from .errors import PolicyError
    from .verify.manifest import verify_chain, verify_manifest
    from .verify.state import StateStore

    store = None if getattr(args, "no_state", False) else StateStore.default()
    allow_downgrade = getattr(args, "allow_downgrade", False)
    chain = [_read(p, keep_json=False) for p in (getattr(args, "chain", None) or [])]
    try:
        vm = verify_manifest(document, policy)
    except PolicyError as direct_failure:
        anchor = None
        if store is not None:
            from .verify.manifest import check_proofs

            manifest, _, _ = check_proofs(document, policy)
            anchor = store.anchor(manifest.id)
        if anchor is None or (manifest.version <= anchor.version):
            raise
        try:
            vm = verify_chain(anchor, [*chain, document], policy)
        except PolicyError as chain_failure:
            if not chain and manifest.previous_version != anchor.canonical_hash:
                raise direct_failure from None
            raise chain_failure from None
        out.info(
            f"trusted by succession: version {anchor.version} (recorded) -> {manifest.version}"
        )
    if store is not None:
        if allow_downgrade:
            out.info(
                "WARNING: --allow-downgrade: rollback protection is off for this run "
                "(the recorded version is kept: the next run refuses an older one again)"
            )
        store.check(vm, allow_downgrade=allow_downgrade)
    return vm


def record_state(args: argparse.Namespace, vm: VerifiedManifest) -> None:
    """Record ``vm`` as the trusted version (unless --no-state); see :func:`verify_with_state`."""
    if not getattr(args, "no_state", False):
        from .verify.state import StateStore

        StateStore.default().record(vm)


def _check_state_options(args: argparse.Namespace) -> None:
    """Refuse options that --no-state makes meaningless (silently ignored before).

    Raises:
        UsageError: naming them.
    """
    if not getattr(args, "no_state", False):
        return
    chain, downgrade = getattr(args, "chain", None), getattr(args, "allow_downgrade", False)
    for flag, given in (("--chain", chain), ("--allow-downgrade", downgrade)):
        if given:
            raise UsageError(
                f"{flag} works from the recorded version, which --no-state leaves out",
                expected=f"--no-state or {flag}, not both",
            )


def _only(manifest: Manifest, globs: Sequence[str]) -> list[FileEntry]:
    """The files that ``--only`` selects: those matching any of the globs.

    Raises:
        UsageError: a glob matches no file of the manifest (a typo would otherwise look like
            success with fewer files).
    """
    import fnmatch

    matched = [g for g in globs if any(fnmatch.fnmatchcase(f.path, g) for f in manifest.files)]
    unmatched = [g for g in globs if g not in matched]
    if unmatched:
        raise UsageError(
            "no file of the manifest matches --only",
            expected=f"a glob matching paths such as {manifest.files[0].path!r}"
            if manifest.files
            else "a manifest with files",
            observed=", ".join(unmatched),
        )
    return [f for f in manifest.files if any(fnmatch.fnmatchcase(f.path, g) for g in globs)]


def cmd_verify(args: argparse.Namespace, out: _Out) -> int:
    from .errors import FileVerificationError, VerificationError
    from .verify.tree import verify_tree

    _check_state_options(args)
    if args.directory is None:
        for flag, given in (("--only", args.only), ("--strict", args.strict),
                            ("--fast", args.fast)):  # fmt: skip
            if given:
                raise UsageError(
                    f"{flag} is about the files: give the DIRECTORY to check",
                    expected="owmanifest verify MANIFEST DIRECTORY",
                )
    elif not os.path.isdir(args.directory):
        raise UsageError("not a directory", path=args.directory)
    policy = _policy(args, out)
    document = _read(args.manifest, keep_json=False)
    result: dict[str, Any] = {"ok": False}
    try:
        vm = verify_with_state(args, out, document, policy)
    except VerificationError as exc:
        if out.as_json:
            result["error"] = exc.to_json()
            result["proofs"] = _outcomes_json(exc.outcomes)
            out.data(result)
        out.status(False, f"{document.source}: {exc.message}{exc.contrast()}")
        for line in _outcome_lines(exc.outcomes):
            out.info(line)
        return EXIT_VERIFICATION_FAILED
    result.update(_verified_json(vm))
    m = vm.manifest
    out.status(
        True,
        f"{vm.source}: {m.id} version {m.version}, {len(vm.signers)} of {m.threshold} required "
        f"signatures",
    )
    if args.verbose:
        for line in _outcome_lines(vm.proofs):
            out.info(line)
    files = _only(m, args.only) if args.only else None
    record_state(args, vm)  # the input is good: the manifest verified, the globs match
    if args.directory is None:
        result["ok"] = True
        if out.as_json:
            out.data(result)
        return EXIT_OK
    bar = _progress("verifying", sum(f.size for f in (files or m.files)), out)
    try:
        report = verify_tree(
            vm,
            args.directory,
            files=files,
            strict=args.strict,
            progress=bar.advance,
            fast=args.fast,
        )
    except FileVerificationError as exc:
        bar.close()
        failed = exc.report
        if failed is None:
            raise
        for problem in failed.problems:
            out.status(False, str(problem))
        _extra_lines(failed, out)
        if out.as_json:
            result["tree"] = _report_json(failed)
            out.data(result)
        out.info(f"{len(failed.problems)} problem(s), {len(failed.verified)} file(s) verified")
        return EXIT_VERIFICATION_FAILED
    bar.close()
    _extra_lines(report, out)
    cached = (
        f", {report.from_cache} of them from the hash cache (unchanged since they last verified)"
        if report.from_cache
        else ""
    )
    out.status(True, f"{args.directory}: {len(report.verified)} file(s) verified{cached}")
    result["ok"] = True
    result["tree"] = _report_json(report)
    if out.as_json:
        out.data(result)
    return EXIT_OK


def _extra_lines(report: Any, out: _Out) -> None:
    """The files found that the manifest does not list (unless ``--strict`` made them problems,
    already printed), whether or not the tree verified."""
    failed = {p.path for p in report.problems if p.kind == "extra"}
    for extra in report.extra:
        if extra not in failed:
            out.info(f"extra (not in manifest): {extra}")


def cmd_show(args: argparse.Namespace, out: _Out) -> int:
    from ._progress import human_bytes
    from .verify.manifest import check_proofs
    from .verify.policy import TrustPolicy

    document = _read(args.manifest, keep_json=False)
    manifest, digest, outcomes = check_proofs(document, TrustPolicy())
    valid = [o for o in outcomes if not o.reason.startswith("invalid proof")]
    m = manifest
    if out.as_json:
        out.data(
            {
                "manifest": document.source,
                "format": document.format,
                "id": m.id,
                "version": m.version,
                "title": m.title,
                "description": m.description,
                "license": m.license,
                "created": m.created,
                "expires": m.expires,
                "previousVersion": str(m.previous_version) if m.previous_version else None,
                "canonicalHash": str(digest),
                "threshold": m.threshold,
                "authorizedSigners": list(m.signers),
                "pieceLength": m.piece_length,
                "infoHashV1": m.info_hash_v1,
                "infoHashV2": m.info_hash_v2,
                "private": m.private,
                "mirrors": list(m.mirrors),
                "trackers": list(m.trackers),
                "files": [
                    {"path": f.path, "size": f.size, "root": str(f.root) if f.root else None}
                    for f in m.files
                ],
                "totalSize": m.total_size,
                "proofs": [
                    {
                        "verificationMethod": o.verification_method,
                        "signer": o.signer,
                        "signatureValid": not o.reason.startswith("invalid proof"),
                        "authorized": o.signer in m.signers if o.signer else False,
                        "detail": o.reason,
                    }
                    for o in outcomes
                ],
            }
        )
        return EXIT_OK
    w = out.line
    w(f"dataset     {m.id}")
    if m.title:
        w(f"title       {m.title}")
    w(f"version     {m.version}" + (f"  (created {m.created})" if m.created else ""))
    if m.expires:
        w(f"expires     {m.expires}")
    if m.license:
        w(f"license     {m.license}")
    w(f"files       {len(m.files)}, {human_bytes(m.total_size)} ({m.total_size} bytes)")
    w(f"hash        {digest}")
    w(f"torrent     v1 {m.info_hash_v1 or '-'}  v2 {m.info_hash_v2 or '-'}  piece {m.piece_length}")
    w(f"signers     {m.threshold} of {len(m.signers)} required:")
    signed = {o.signer for o in valid if o.signer}
    for s in m.signers:
        w(f"  [{'x' if s in signed else ' '}] {s}")
    w(f"proofs      {len(outcomes)} ({len(valid)} with a valid signature)")
    for o in outcomes:
        if o.reason.startswith("invalid proof"):
            w(f"  invalid: {o.verification_method}: {o.reason}")
        elif o.signer not in m.signers:
            w(f"  not authorized: {o.signer}")
    if not args.no_files:
        w("")
        limit = args.limit
        for i, f in enumerate(m.files):
            if limit is not None and i >= limit:
                w(f"... and {len(m.files) - limit} more (use --limit or --json)")
                break
            w(f"{f.size:>14}  {str(f.root) if f.root else '(empty)':<71}  {f.path}")
    out.info("note: `show` does not decide trust; use `verify --trust ...` for that")
    return EXIT_OK


def cmd_convert(args: argparse.Namespace, out: _Out) -> int:
    from ._atomic import write_atomic
    from .manifest.document import detect_format
    from .signing import convert_document

    if args.output == "-" and out.as_json:
        raise UsageError("--json and -o - would share stdout: give -o FILE")
    if args.output == "-" and args.to is None:
        raise UsageError("-o - needs --to: json-ld, trig or n-quads")
    if args.output != "-":
        if args.to:
            _check_format_named(args.output, args.to, "--to disagrees with the output's name")
        _check_output(Path(args.output), args.force)
    document = _read(args.manifest)
    fmt = args.to or detect_format(args.output)
    data = convert_document(document, fmt)
    if args.output == "-":
        sys.stdout.buffer.write(data)
    else:
        write_atomic(args.output, data)
        out.status(True, f"wrote {args.output} ({fmt}); signatures carry over unchanged")
        if out.as_json:
            out.data({"ok": True, "manifest": args.output, "format": fmt})
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, out: _Out) -> int:
    from .demo import run_demo

    if args.dir is not None and os.path.isdir(args.dir) and os.listdir(args.dir):
        raise UsageError(
            "the demo writes keys and data: give a new or empty directory", path=args.dir
        )
    code = run_demo(args.dir, say=out.info, quiet=out.quiet)
    if out.as_json:
        out.data({"ok": code == EXIT_OK})
    return code


# --- parser -------------------------------------------------------------------------------------


def _add_trust_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("trust (required: whom do you trust to sign this dataset?)")
    g.add_argument(
        "--trust",
        action="append",
        metavar="DID",
        help="trust this did:key (repeatable)",
    )
    g.add_argument(
        "--trust-file",
        action="append",
        metavar="FILE",
        help="trust the keys in this trust file (JSON, see docs/spec.md; repeatable)",
    )
    g.add_argument(
        "--unsafe-trust-manifest-signers",
        action="store_true",
        help="accept whatever signers the manifest names (checks consistency, NOT who published)",
    )
    g.add_argument(
        "--chain",
        action="append",
        metavar="MANIFEST",
        help="an intermediate version to follow a signer rotation from the recorded version "
        "(oldest first; repeatable)",
    )
    g.add_argument(
        "--allow-downgrade",
        action="store_true",
        help="accept an older version than the one recorded (turns rollback protection off)",
    )
    g.add_argument(
        "--no-state",
        action="store_true",
        help="neither read nor record the verified version (no rollback protection)",
    )


class _Unused:
    """The parser of a command that is not run: whatever is defined on it is ignored."""

    def __getattr__(self, name: str) -> Any:
        return self._ignore

    def _ignore(self, *args: Any, **kwargs: Any) -> _Unused:
        return self


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (no option before it takes a value), if any."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser. With ``command``, only that command's options are defined
    (every command is still listed): enough to run it, in a third of the time."""

    def common_options(default: Any) -> _ArgumentParser:
        # Subcommands get SUPPRESS defaults so `owmanifest -v verify` and `verify -v` both work.
        c = _ArgumentParser(add_help=False)
        c.add_argument(
            "-v", "--verbose", action="store_true", default=default, help="more detail; tracebacks"
        )
        c.add_argument(
            "-q", "--quiet", action="store_true", default=default, help="only errors on stderr"
        )
        c.add_argument(
            "--json", action="store_true", default=default, help="machine-readable output on stdout"
        )
        return c

    common = common_options(argparse.SUPPRESS)

    parser = _ArgumentParser(
        prog="owmanifest",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common_options(False)],
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="show the version and the hashing engine, and exit"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)

    def add(name: str, help: str, description: str) -> argparse.ArgumentParser:
        if command is not None and name != command:
            sub.add_parser(name, help=help)
            return cast(argparse.ArgumentParser, _Unused())
        return sub.add_parser(
            name,
            help=help,
            description=description,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = add(
        "keygen",
        "make an Ed25519 signing key; prints its did:key",
        "Make an Ed25519 key pair. The private key file is written with mode 0600 (optionally\n"
        "encrypted with a passphrase: argon2id + XSalsa20-Poly1305). The public key is printed\n"
        "as a did:key; give it to dataset creators (--signer) and verifiers (--trust).\n\n"
        "example:\n  owmanifest keygen --out alice.key\n"
        "  OWM_PASS=... owmanifest keygen --out bot.key --passphrase-env OWM_PASS",
    )
    p.add_argument("--out", "-o", required=True, metavar="KEYFILE", help="private key file")
    p.add_argument("--encrypt", action="store_true", help="ask for a passphrase to encrypt it")
    p.add_argument("--passphrase-env", metavar="VAR", help="read the passphrase from $VAR")
    p.add_argument("--force", action="store_true", help="overwrite an existing key file")
    p.set_defaults(func=cmd_keygen)

    p = add(
        "create",
        "scan a directory and write an (unsigned) manifest",
        "Scan DIRECTORY (symlinks are not followed), hash every file once (BEP 52 Merkle roots,\n"
        "plus the v1 piece hashes of a hybrid torrent) and write the manifest and its sidecar\n"
        "torrent (OUTPUT.torrent). Then each signer runs `owmanifest sign`.\n\n"
        "example:\n  owmanifest create ./connectome --id https://openworm.org/data/connectome \\\n"
        "      --version 1 --signer did:key:z6Mk...alice --signer bob.key --threshold 2 \\\n"
        "      -o connectome.jsonld",
    )
    p.add_argument("directory", metavar="DIRECTORY")
    p.add_argument("--id", required=True, help="dataset IRI, e.g. https://openworm.org/data/x")
    p.add_argument("--version", type=int, required=True, help="release number (1, 2, ...)")
    p.add_argument(
        "--signer",
        action="append",
        required=True,
        metavar="DID|KEYFILE",
        help="an authorized signer (repeatable)",
    )
    p.add_argument("--threshold", type=int, help="signatures needed (default: all signers)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help=".jsonld/.trig/.nq")
    p.add_argument("--format", choices=["json-ld", "trig", "n-quads"], help="default: by suffix")
    p.add_argument("--title")
    p.add_argument("--description")
    p.add_argument("--license", metavar="IRI")
    p.add_argument("--created", metavar="DATETIME", help="default: now (UTC)")
    p.add_argument("--expires", metavar="DATETIME", help="refuse the manifest after this time")
    p.add_argument(
        "--previous", metavar="rdfc-sha256:HEX", help="canonical hash of the previous version"
    )
    p.add_argument("--piece-length", type=int, metavar="BYTES", help="default: by total size")
    p.add_argument("--v2-only", action="store_true", help="v2-only torrent (no v1 SHA-1 pieces)")
    p.add_argument("--private", action="store_true", help="private torrent (no DHT/PEX/LSD)")
    p.add_argument("--mirror", action="append", metavar="URL", help="HTTP mirror base URL")
    p.add_argument("--tracker", action="append", metavar="URL", help="BitTorrent tracker")
    p.add_argument("--strict", action="store_true", help="symlinks/special files are errors")
    p.add_argument(
        "--workers", type=_positive, metavar="N", help="hashing threads (default: all cores)"
    )
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=cmd_create)

    p = add(
        "sign",
        "add your proof (signature) to a manifest",
        "Add an eddsa-rdfc-2022 Data Integrity proof to MANIFEST (in place unless -o). The\n"
        "signature covers the RDFC-1.0 canonical form, so it survives format conversion.\n"
        "With --check DIR the files are verified first: sign only what you have seen.\n\n"
        "example:\n  owmanifest sign connectome.jsonld --key alice.key --check ./connectome",
    )
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("--key", "-k", required=True, metavar="KEYFILE")
    p.add_argument("--passphrase-env", metavar="VAR", help="read the key passphrase from $VAR")
    p.add_argument("--check", metavar="DIR", help="verify DIR against the manifest before signing")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of in place ('-')")
    p.add_argument("--force", action="store_true", help="overwrite an existing -o FILE")
    p.add_argument("--created", metavar="DATETIME", help="proof timestamp (default: now)")
    p.add_argument(
        "--allow-unlisted",
        action="store_true",
        help="sign even if not an authorized signer: how the previous version's signers "
        "endorse a release that changes the signers or threshold",
    )
    p.set_defaults(func=cmd_sign)

    p = add(
        "verify",
        "check signatures, trust, threshold and (with DIR) every file",
        "Verify MANIFEST: valid proofs from at least `threshold` distinct authorized signers\n"
        "that you trust. With DIRECTORY, also check every file's size and BEP 52 root.\n"
        "Exit 0 when all is well, 1 when anything fails verification, 2 on bad input.\n\n"
        "example:\n  owmanifest verify connectome.jsonld ./connectome \\\n"
        "      --trust did:key:z6Mk...alice --trust did:key:z6Mk...bob",
    )
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("directory", metavar="DIRECTORY", nargs="?")
    _add_trust_options(p)
    p.add_argument("--strict", action="store_true", help="files not in the manifest are errors")
    p.add_argument("--only", action="append", metavar="GLOB", help="check only matching paths")
    p.add_argument(
        "--fast",
        action="store_true",
        help="skip files unchanged (size, mtime, ctime, inode, device) since they last verified "
        "here, per the cache in the state directory (default: hash every byte)",
    )
    p.set_defaults(func=cmd_verify)

    p = add(
        "show",
        "summarize a manifest (does not decide trust)",
        "Print a summary: dataset, version, files, signers and which proofs carry a valid\n"
        "signature. Use `verify` to decide whether to trust it.\n\n"
        "examples:\n"
        "  owmanifest show connectome.jsonld --limit 10\n"
        "  owmanifest show connectome.jsonld --no-files --json",
    )
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("--no-files", action="store_true", help="omit the file list")
    p.add_argument(
        "--limit", type=_count, default=50, metavar="N", help="files to list (default 50)"
    )
    p.set_defaults(func=cmd_show)

    p = add(
        "convert",
        "rewrite a manifest as JSON-LD, TriG or N-Quads (signatures stay valid)",
        "Convert between JSON-LD, TriG and N-Quads. Proofs cover the canonical RDF, so a\n"
        "signed manifest still verifies after conversion.\n\n"
        "example:\n  owmanifest convert connectome.jsonld -o connectome.trig",
    )
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="'-' for stdout")
    p.add_argument("--to", choices=["json-ld", "trig", "n-quads"], help="default: by suffix")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_convert)

    p = add(
        "demo",
        "show the whole workflow on a sample dataset",
        "Create a sample dataset and two keys, write a 2-of-2 manifest, sign it twice, verify,\n"
        "seed it over BitTorrent on loopback and fetch it into a fresh directory, then flip\n"
        "one byte and show the failure.\n\n"
        "example:\n  owmanifest demo --dir ./owmanifest-demo",
    )
    p.add_argument(
        "--dir",
        metavar="DIR",
        help="work here, a new or empty directory (default: a temporary one)",
    )
    p.set_defaults(func=cmd_demo)

    _add_plugin_commands(add, common)
    return parser


def _add_plugin_commands(add: Any, common: argparse.ArgumentParser) -> None:
    """Commands defined next to the layers they drive (transport, trust), when present."""
    for module in ("owmanifest._cli_transport", "owmanifest._cli_trust", "owmanifest._cli_owmeta"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ImportError:
            continue
        mod.register(add, common)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(_command_in(argv))
    # --json, or an abbreviation argparse takes for it (--js, --jso): no other option starts so
    _ArgumentParser.json_errors = any(
        a.startswith("--j") and "--json".startswith(a) for a in argv if a != "--"
    )
    args = parser.parse_args(argv)
    out = _Out(quiet=args.quiet, as_json=args.json)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        if out.as_json:  # scripts read stdout: say why there is nothing else on it
            out.data({"ok": False, "error": UsageError("no command given").to_json()})
        return EXIT_BAD_INPUT
    try:
        code: int = args.func(args, out)
        return code
    except Error as exc:
        return _failed(exc, args, out)
    except KeyboardInterrupt:
        resume = " (run it again to resume)" if args.command == "fetch" else ""
        print(f"interrupted{resume}", file=sys.stderr)
        if out.as_json:  # stdout stays one JSON document
            out.data({"ok": False, "error": {"error": "Interrupted", "message": "interrupted"}})
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:  # an output that cannot be written, a state directory on a full disk
        from .errors import LocalFileError

        where = None if exc.filename is None else str(exc.filename)
        return _failed(LocalFileError(exc.strerror or str(exc), path=where), args, out)


def _failed(error: Error, args: argparse.Namespace, out: _Out) -> int:
    """Report the error that ended a command (the traceback only with -v); its exit status.
    Call it while the exception is being handled."""
    if args.verbose:
        import traceback

        traceback.print_exc()
    if out.as_json:
        out.data({"ok": False, "error": error.to_json()})
    print(_printable(f"FAIL: {error.diagnostics() if args.verbose else error}"), file=sys.stderr)
    return error.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
