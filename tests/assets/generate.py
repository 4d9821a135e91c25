#!/usr/bin/env python3
"""Regenerate the committed test data from fixed keys and dates.

    python tests/assets/generate.py            # rewrite tests/assets/generated/
    python tests/assets/generate.py --check    # exit 1 if regeneration would change anything

Everything here is deterministic: keys come from fixed seeds, timestamps are fixed, Ed25519
signatures are deterministic, and the torrent builder writes no creation date. A test runs
``--check`` so the committed files always match this script.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from owmanifest.verify.keys import PrivateKey

HERE = Path(__file__).resolve().parent
OUT = HERE / "generated"
DATASET_ID = "https://openworm.org/data/test-fixture"
CREATED = "2026-01-01T00:00:00Z"
SIGNED_AT = {"alice": "2026-01-02T00:00:00Z", "bob": "2026-01-03T00:00:00Z"}
NAMES = ("alice", "bob", "carol", "mallory")


def seed(name: str) -> bytes:
    return hashlib.sha256(f"owmanifest test key {name}".encode()).digest()


def keys() -> dict[str, PrivateKey]:
    from owmanifest.verify.keys import PrivateKey

    return {name: PrivateKey.from_seed(seed(name)) for name in NAMES}


def make_dataset(root: Path) -> None:
    """A small tree: text, nested dirs, an empty file, sizes around the 16 KiB block edge."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.txt").write_bytes(b"owmanifest test fixture\n")
    (root / "graphs").mkdir(exist_ok=True)
    (root / "graphs" / "a.nt").write_bytes(
        b"<http://openworm.org/entities/ADAL> "
        b'<http://www.w3.org/2000/01/rdf-schema#label> "ADAL" .\n'
    )
    (root / "empty").write_bytes(b"")
    stream = b""
    state = b"fixture"
    while len(stream) < 70_000:
        state = hashlib.sha256(state).digest()
        stream += state
    (root / "blocks").mkdir(exist_ok=True)
    (root / "blocks" / "16383.bin").write_bytes(stream[:16383])
    (root / "blocks" / "16384.bin").write_bytes(stream[:16384])
    (root / "blocks" / "16385.bin").write_bytes(stream[:16385])
    (root / "blocks" / "70000.bin").write_bytes(stream[:70_000])


def generate(out: Path) -> None:
    from owmanifest.manifest.builder import build_manifest
    from owmanifest.manifest.document import load_document
    from owmanifest.manifest.jsonld import dumps, manifest_to_jsonld
    from owmanifest.signing import sign_document
    from owmanifest.verify.keys import write_key_file

    out.mkdir(parents=True, exist_ok=True)
    ks = keys()
    for name, key in ks.items():
        path = out / f"{name}.key"
        write_key_file(path, key, overwrite=True)
    (out / "dids.txt").write_text(
        "".join(f"{n} {k.public_key.did}\n" for n, k in ks.items()),
        encoding="utf-8",
    )
    data = out / "dataset"
    make_dataset(data)
    result = build_manifest(
        data,
        dataset_id=DATASET_ID,
        version=1,
        signers=[ks["alice"].public_key.did, ks["bob"].public_key.did],
        threshold=2,
        title="owmanifest test fixture",
        created=CREATED,
        piece_length=16384 * 2,
    )
    unsigned = dumps(manifest_to_jsonld(result.manifest))
    (out / "unsigned.jsonld").write_bytes(unsigned)
    assert result.torrent is not None
    (out / "unsigned.jsonld.torrent").write_bytes(result.torrent)
    doc = load_document(unsigned, source="unsigned.jsonld")
    one = sign_document(doc, ks["alice"], created=SIGNED_AT["alice"])
    (out / "signed-alice.jsonld").write_bytes(one)
    two = sign_document(
        load_document(one, source="signed-alice.jsonld"),
        ks["bob"],
        created=SIGNED_AT["bob"],
    )
    (out / "signed.jsonld").write_bytes(two)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parents[1]))
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            want, have = snapshot(Path(tmp)), snapshot(OUT)
        if want != have:
            changed = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
            print("regeneration differs: " + ", ".join(changed), file=sys.stderr)
            return 1
        return 0
    generate(OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
