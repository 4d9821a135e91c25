"""``owmanifest trust ...`` and ``owmanifest state ...``: the trust store and rollback state."""

from __future__ import annotations

import argparse
from typing import Any

from .errors import EXIT_OK, UsageError

__all__ = ["register"]


def cmd_trust(args: argparse.Namespace, out: Any) -> int:
    from .verify.truststore import TrustStore

    store = TrustStore.default()
    action = args.trust_action
    if action == "add":
        patterns = store.add(args.did, name=args.name, datasets=args.dataset)
        out.status(
            True,
            f"trusting {args.did} "
            + (f"for {', '.join(patterns)} only" if patterns else "for every dataset"),
        )
        if patterns and not args.dataset:
            out.info(
                "it was already trusted for these datasets only: `owmanifest trust remove` it "
                "first to trust it for every dataset"
            )
    elif action == "remove":
        if not store.remove(args.did):
            raise UsageError("not in the trust store", observed=args.did)
        out.status(True, f"removed {args.did}")
    elif action == "revoke":
        store.revoke(args.did, reason=args.reason)
        out.status(True, f"revoked {args.did}: its proofs will never count")
    elif action == "import":
        n = store.import_file(args.file)
        out.status(True, f"imported {n} key(s) from {args.file}")
    elif action == "export":
        out.data(store.load())
        return EXIT_OK
    if action == "list" or out.as_json:
        entries = store.entries()
        if out.as_json:
            out.data({"store": str(store.path), "keys": entries})
        elif not entries:
            out.info(
                f"the trust store ({store.path}) is empty; add keys with `owmanifest trust add`"
            )
        else:
            for e in entries:
                state = "REVOKED" if e.get("revoked") else "trusted"
                scope = ", ".join(e.get("datasets", [])) or "all datasets"
                name = f" ({e['name']})" if e.get("name") else ""
                extra = f": {e['reason']}" if e.get("reason") else ""
                out.line(f"{state:8} {e['id']}{name}  [{scope}]{extra}")
    return EXIT_OK


def cmd_state(args: argparse.Namespace, out: Any) -> int:
    from .verify.state import StateStore

    store = StateStore.default()
    anchor = store.anchor(args.dataset)
    if args.state_action == "forget":
        forgot = store.forget(args.dataset)
        if forgot:
            out.status(True, f"forgot the recorded version of {args.dataset}")
        else:
            out.info(f"nothing recorded for {args.dataset}")
        if out.as_json:
            out.data({"dataset": args.dataset, "forgot": forgot})
        return EXIT_OK
    if anchor is None:
        out.info(f"nothing recorded for {args.dataset}")
        if out.as_json:
            out.data({"dataset": args.dataset, "trusted": None})
        return EXIT_OK
    info = {
        "dataset": anchor.dataset_id,
        "version": anchor.version,
        "canonicalHash": str(anchor.canonical_hash),
        "signers": list(anchor.signers),
        "threshold": anchor.threshold,
    }
    if out.as_json:
        out.data(info)
    else:
        for k, v in info.items():
            out.line(f"{k:14} {v}")
    return EXIT_OK


def register(add: Any, common: argparse.ArgumentParser) -> None:
    p = add(
        "trust",
        "manage the keys you trust (your trust store)",
        "Your trust store lists the keys you trust to sign datasets (optionally only for some\n"
        "dataset ids) and the keys you have revoked. `verify` and `fetch` use it when no\n"
        "--trust/--trust-file is given; revocations always apply.\n\n"
        "examples:\n"
        "  owmanifest trust add did:key:z6Mk... --name 'OpenWorm data team' \\\n"
        "      --dataset 'https://openworm.org/data/*'\n"
        "  owmanifest trust import openworm-maintainers.json\n"
        "  owmanifest trust revoke did:key:z6Mk... --reason 'laptop stolen'\n"
        "  owmanifest trust list",
    )
    sub = p.add_subparsers(dest="trust_action", metavar="ACTION", required=True)

    def action(name: str, summary: str, example: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}.\n\nexample:\n  {example}",
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        return parser

    a = action(
        "add",
        "trust a key (for every dataset, or only for ids matching --dataset)",
        "owmanifest trust add did:key:z6Mk... --name 'OpenWorm data team' "
        "--dataset 'https://openworm.org/data/*'",
    )
    a.add_argument("did", metavar="DID")
    a.add_argument("--name", help="who this key belongs to")
    a.add_argument(
        "--dataset",
        action="append",
        metavar="PATTERN",
        help="only for dataset ids matching this glob",
    )
    action("list", "list trusted and revoked keys", "owmanifest trust list --json")
    r = action(
        "remove",
        "forget a key (trusted or revoked; to distrust a key for good, revoke it)",
        "owmanifest trust remove did:key:z6Mk...",
    )
    r.add_argument("did", metavar="DID")
    v = action(
        "revoke",
        "never count this key's proofs again, whatever trusts it",
        "owmanifest trust revoke did:key:z6Mk... --reason 'laptop stolen'",
    )
    v.add_argument("did", metavar="DID")
    v.add_argument("--reason")
    i = action(
        "import",
        "merge a trust file (e.g. a project's maintainers) into your trust store",
        "owmanifest trust import openworm-maintainers.json",
    )
    i.add_argument("file", metavar="FILE")
    action(
        "export",
        "print the trust store as a trust file (to share, or for --trust-file)",
        "owmanifest trust export > my-trust.json",
    )
    p.set_defaults(func=cmd_trust)

    s = add(
        "state",
        "show or forget the recorded (rollback-protection) version of a dataset",
        "owmanifest records the highest verified version of each dataset and refuses older ones\n"
        "(rollback) or a different manifest with the same version (freeze/fork). `forget`\n"
        "drops the record, so that the next verified version of any number is accepted.\n\n"
        "examples:\n"
        "  owmanifest state show https://openworm.org/data/connectome\n"
        "  owmanifest state forget https://openworm.org/data/connectome",
    )
    s.add_argument("state_action", choices=["show", "forget"])
    s.add_argument("dataset", metavar="DATASET_ID")
    s.set_defaults(func=cmd_state)
