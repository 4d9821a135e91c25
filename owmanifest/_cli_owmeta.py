"""``owmanifest owmeta ...``: moving owmeta (PyOpenWorm) bundle archives to signed manifests.

* ``owmeta import-index``: owmeta's bundle index (``index.json``) to a manifest, its sidecar
  torrent and a directory laid out like it (see :mod:`owmanifest.integrations.owmeta_index`).
* ``owmeta list``: the bundles a manifest describes.

Neither needs owmeta-core; fetching bundles is owmeta's own ``owm bundle fetch`` with an
owmanifest remote (docs/owmeta.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import EXIT_OK, UsageError

__all__ = ["register"]


def _default_layout(output: Path) -> Path:
    stem = output.name.split(".", 1)[0] or "owmeta-bundles"
    return output.with_name(stem)


def cmd_import_index(args: argparse.Namespace, out: Any) -> int:
    from ._atomic import write_atomic
    from .cli import _check_output, _signer_did
    from .integrations.owmeta_index import import_index
    from .manifest.digest import Digest
    from .manifest.document import detect_format, load_document, serialize_quads
    from .manifest.jsonld import manifest_json

    target = Path(args.output)
    fmt = detect_format(str(target))
    if fmt not in ("json-ld", "trig", "n-quads"):
        raise UsageError("output format must be json-ld, trig or n-quads", observed=fmt)
    sidecar = Path(str(target) + ".torrent")
    _check_output(target, args.force)
    _check_output(sidecar, args.force)
    layout = Path(args.layout) if args.layout else _default_layout(target)
    if layout.resolve() == target.resolve():
        raise UsageError("the layout directory cannot be the output file", path=str(layout))
    signers = [_signer_did(s) for s in args.signer]
    previous = Digest.parse(args.previous, algorithm="rdfc-sha256") if args.previous else None
    result = import_index(
        args.index,
        base_url=args.base_url,
        layout=layout,
        signers=signers,
        threshold=args.threshold,
        dataset_id=args.id,
        version=args.version,
        files_dir=args.files,
        title=args.title,
        created=args.created,
        previous_version=previous,
        mirrors=args.mirror or (),
        trackers=args.tracker or (),
        hybrid=not args.v2_only,
        force=args.force,
    )
    for entry, path in result.entries:
        if args.verbose:
            out.status(True, f"{path}: {entry.bundle_id} version {entry.version} matches the index")
    m = result.build.manifest
    data = manifest_json(m)
    if fmt != "json-ld":
        data = serialize_quads(
            list(load_document(data, source=str(target), format="json-ld").quads), fmt
        )
    if result.build.torrent is not None:
        write_atomic(sidecar, result.build.torrent)
    write_atomic(target, data)
    if out.as_json:
        out.data(
            {
                "manifest": str(target),
                "torrent": str(sidecar),
                "layout": str(result.layout),
                "id": m.id,
                "version": m.version,
                "mirror": list(m.mirrors),
                "bundles": [
                    {"id": e.bundle_id, "version": e.version, "path": e.path, "source": str(p)}
                    for e, p in result.entries
                ],
            }
        )
    else:
        out.status(
            True,
            f"{len(result.entries)} archive(s) match the index; wrote {target} and {sidecar}; "
            f"layout in {result.layout}",
        )
        out.info(
            f"next: each signer runs `owmanifest sign {target} --key KEYFILE --check "
            f"{result.layout}` ({m.threshold} of {len(m.signers)} needed); then copy what is "
            f"in {result.layout}/ to {m.mirrors[0]}, publish {target.name} and "
            f"{sidecar.name} (e.g. at {m.mirrors[0]}{target.name}) and "
            f"`owmanifest seed {target} {result.layout}`"
        )
    return EXIT_OK


def cmd_list(args: argparse.Namespace, out: Any) -> int:
    from ._progress import human_bytes
    from .cli import _read
    from .integrations.owmeta_index import bundles_in_manifest
    from .verify.manifest import check_proofs
    from .verify.policy import TrustPolicy

    document = _read(args.manifest, keep_json=False)
    manifest, _, _ = check_proofs(document, TrustPolicy())
    bundles = bundles_in_manifest(manifest)
    if out.as_json:
        out.data(
            {
                "manifest": document.source,
                "id": manifest.id,
                "version": manifest.version,
                "bundles": [
                    {
                        "id": b.bundle_id,
                        "version": b.version,
                        "path": b.entry.path,
                        "size": b.entry.size,
                        "root": str(b.entry.root) if b.entry.root else None,
                    }
                    for b in bundles
                ],
            }
        )
        return EXIT_OK
    for b in bundles:
        out.line(f"{b.bundle_id}\t{b.version}\t{human_bytes(b.entry.size)}")
    out.info(
        f"{len(bundles)} bundle archive(s) in {manifest.id} version {manifest.version}; "
        "`list` does not decide trust (owmeta's loader verifies before unpacking)"
    )
    if not bundles and manifest.files:
        out.info(
            "not an owmeta bundle manifest: bundles are files named "
            "bundles/<bundle id>/<version>.tar.xz (see `owmanifest owmeta import-index`)"
        )
    return EXIT_OK


def register(add: Any, common: argparse.ArgumentParser) -> None:
    from .cli import _ArgumentParser

    group = add(
        "owmeta",
        "owmeta (PyOpenWorm) bundles: import a bundle index, list bundles",
        "owmeta-core fetches bundles through owmanifest when a remote points at a signed\n"
        "manifest (`owm bundle remote add NAME owmanifest+https://HOST/bundles.jsonld`); see\n"
        "docs/owmeta.md. These commands prepare and inspect such manifests.\n\n"
        "examples:\n"
        "  owmanifest owmeta import-index index.json --base-url https://host/owmeta-bundles/ \\\n"
        "      --signer did:key:z6Mk...alice -o owmeta-bundles.jsonld\n"
        "  owmanifest owmeta list owmeta-bundles.jsonld",
    )
    sub = group.add_subparsers(
        dest="owmeta_command", metavar="COMMAND", parser_class=_ArgumentParser, required=True
    )

    def subcommand(name: str, help: str, description: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name,
            help=help,
            description=description,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return parser

    p = subcommand(
        "import-index",
        "turn owmeta's bundle index (index.json) into an (unsigned) manifest",
        "Check every archive the index lists against the index's hashes (sha256) and against\n"
        "its own id and version, lay the archives out as bundles/<quoted id>/<version>.tar.xz\n"
        "under LAYOUT (hard links when possible), and write the manifest and its sidecar\n"
        "torrent (OUTPUT.torrent). Nothing is written if an archive does not match.\n"
        "Then each signer runs `owmanifest sign`; serve LAYOUT at --base-url and seed it.\n\n"
        "Archives are found relative to INDEX (the longest tail of each URL's path that exists\n"
        "there, so a checkout of a bundle repository works) or in --files DIR.\n\n"
        "example:\n"
        "  owmanifest owmeta import-index owmeta-bundles/index.json \\\n"
        "      --base-url https://data.openworm.org/owmeta-bundles/ \\\n"
        "      --signer did:key:z6Mk...alice --signer bob.key --threshold 2 \\\n"
        "      -o owmeta-bundles.jsonld",
    )
    p.add_argument("index", metavar="INDEX", help="owmeta's bundle index (index.json)")
    p.add_argument(
        "--base-url",
        required=True,
        metavar="URL",
        help="where LAYOUT will be served (recorded as the mirror)",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT", help=".jsonld/.trig/.nq")
    p.add_argument(
        "--signer",
        action="append",
        required=True,
        metavar="DID|KEYFILE",
        help="an authorized signer (repeatable)",
    )
    p.add_argument("--threshold", type=int, help="signatures needed (default: all signers)")
    p.add_argument("--id", metavar="IRI", help="dataset IRI (default: the base URL)")
    p.add_argument(
        "--version", type=int, default=1, help="manifest version; increase it on every change"
    )
    p.add_argument("--files", metavar="DIR", help="directory holding the archives")
    p.add_argument(
        "--layout", metavar="DIR", help="where to lay the archives out (default: OUTPUT's stem)"
    )
    p.add_argument("--title")
    p.add_argument("--created", metavar="DATETIME", help="default: now (UTC)")
    p.add_argument(
        "--previous", metavar="rdfc-sha256:HEX", help="canonical hash of the previous version"
    )
    p.add_argument(
        "--mirror", action="append", metavar="URL", help="another URL serving LAYOUT (repeatable)"
    )
    p.add_argument("--tracker", action="append", metavar="URL", help="BitTorrent tracker")
    p.add_argument("--v2-only", action="store_true", help="v2-only torrent (no v1 SHA-1 pieces)")
    p.add_argument(
        "--force", action="store_true", help="overwrite outputs and differing layout files"
    )
    p.set_defaults(func=cmd_import_index)

    p = subcommand(
        "list",
        "list the bundle archives a manifest describes (does not decide trust)",
        "Print bundle id, version and size of every bundle archive in MANIFEST.\n\n"
        "example:\n  owmanifest owmeta list owmeta-bundles.jsonld --json",
    )
    p.add_argument("manifest", metavar="MANIFEST")
    p.set_defaults(func=cmd_list)
