"""``owmanifest demo``: the whole workflow on a generated sample dataset, narrated."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import EXIT_OK, EXIT_VERIFICATION_FAILED

__all__ = ["make_sample_dataset", "run_demo"]

DEMO_ID = "https://openworm.org/data/demo-connectome"


def make_sample_dataset(directory: Path) -> None:
    """A small dataset shaped like OpenWorm data: tables, a graph, a binary, an empty file."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "README.txt").write_text(
        "Demo dataset for owmanifest: a toy C. elegans connectome.\n", encoding="utf-8"
    )
    neurons = ["ADAL", "ADAR", "AVAL", "AVAR", "AVBL", "AVBR", "PVCL", "PVCR", "DA01", "VB01"]
    rows = ["pre,post,type,weight"]
    for i, a in enumerate(neurons):
        for j, b in enumerate(neurons):
            if a != b and (i * 7 + j * 3) % 5 == 0:
                rows.append(
                    f"{a},{b},{'chemical' if (i + j) % 2 else 'electrical'},{(i * j) % 9 + 1}"
                )
    tables = directory / "tables"
    tables.mkdir(exist_ok=True)
    (tables / "connectome.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    graphs = directory / "graphs"
    graphs.mkdir(exist_ok=True)
    triples = [
        f'<http://openworm.org/entities/{n}> <http://www.w3.org/2000/01/rdf-schema#label> "{n}" .'
        for n in neurons
    ]
    (graphs / "neurons.nt").write_text("\n".join(triples) + "\n", encoding="utf-8")
    # ~1.5 MiB of deterministic pseudo-random "movement" data: more than one piece.
    blob = bytearray()
    seed = b"owmanifest-demo"
    while len(blob) < 1_500_000:
        seed = hashlib.sha256(seed).digest()
        blob += seed * 64
    (directory / "movement").mkdir(exist_ok=True)
    (directory / "movement" / "worm-track.bin").write_bytes(bytes(blob[:1_500_000]))
    (directory / "movement" / "EMPTY").write_bytes(b"")


def run_demo(workdir: str | None, *, say: Callable[[str], None], quiet: bool = False) -> int:
    """Run the demo; returns 0 when every step behaved as it should."""
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="owmanifest-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    # The demo's keys and versions are throwaway: keep its trust and rollback state apart.
    saved = {k: os.environ.get(k) for k in ("OWMANIFEST_STATE_DIR", "OWMANIFEST_CONFIG_DIR")}
    os.environ["OWMANIFEST_STATE_DIR"] = str(base / "state")
    os.environ["OWMANIFEST_CONFIG_DIR"] = str(base / "config")
    try:
        return _run(base, say=say, quiet=quiet)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run(base: Path, *, say: Callable[[str], None], quiet: bool) -> int:
    from .cli import main as cli

    data = base / "connectome"
    manifest = base / "connectome.jsonld"
    q = ["-q"] if quiet else []

    def step(text: str) -> None:
        say(f"\n== {text}")

    def run(*argv: str) -> int:
        say("$ owmanifest " + " ".join(argv))
        return cli([*argv, *q])

    step(f"1. a sample dataset in {data}")
    make_sample_dataset(data)
    step("2. two signers make keys (alice, bob)")
    from .verify.keys import PrivateKey, write_key_file

    dids = []
    for name in ("alice", "bob"):
        key = PrivateKey.generate()
        path = base / f"{name}.key"
        write_key_file(path, key, overwrite=True)
        dids.append(key.public_key.did)
        say(f"$ owmanifest keygen --out {path}\n{key.public_key.did}")
    step("3. a 2-of-2 manifest: every file's size and BEP 52 Merkle root")
    if (
        run(
            "create",
            str(data),
            "--id",
            DEMO_ID,
            "--version",
            "1",
            "--signer",
            dids[0],
            "--signer",
            dids[1],
            "--threshold",
            "2",
            "-o",
            str(manifest),
            "--force",
        )
        != EXIT_OK
    ):
        return EXIT_VERIFICATION_FAILED
    step("4. alice signs, after checking the bytes herself")
    if run("sign", str(manifest), "--key", str(base / "alice.key"), "--check", str(data)):
        return EXIT_VERIFICATION_FAILED
    step("5. one signature is not enough for a 2-of-2 manifest (expected to FAIL)")
    trust = ["--trust", dids[0], "--trust", dids[1]]
    if run("verify", str(manifest), str(data), *trust) != EXIT_VERIFICATION_FAILED:
        say("unexpected: a manifest below its threshold was accepted")
        return EXIT_VERIFICATION_FAILED
    step("6. bob signs too")
    if run("sign", str(manifest), "--key", str(base / "bob.key"), "--check", str(data)):
        return EXIT_VERIFICATION_FAILED
    step("7. verify: signatures, trust, threshold and every byte")
    if run("verify", str(manifest), str(data), *trust) != EXIT_OK:
        return EXIT_VERIFICATION_FAILED
    step("8. the signed manifest converted to TriG still verifies")
    trig = base / "connectome.trig"
    if run("convert", str(manifest), "-o", str(trig), "--force") or run(
        "verify", str(trig), *trust
    ):
        return EXIT_VERIFICATION_FAILED
    step("9. seed over BitTorrent on loopback; a second session fetches into a fresh directory")
    from .manifest.document import read_document
    from .transport.bittorrent import Seeder
    from .verify.manifest import check_proofs
    from .verify.policy import TrustPolicy

    model, _, _ = check_proofs(read_document(manifest), TrustPolicy())
    torrent = Path(str(manifest) + ".torrent").read_bytes()
    copy = base / "fetched"
    with Seeder(model, torrent, data, listen="127.0.0.1:0", dht=False) as seeder:
        seeder.wait_ready(timeout=120)
        say(f"$ owmanifest seed {manifest} {data} --listen 127.0.0.1:0 --no-dht")
        say(seeder.magnet_uri)
        code = run(
            "fetch",
            str(manifest),
            str(copy),
            *trust,
            "--transport",
            "bittorrent",
            "--peer",
            f"127.0.0.1:{seeder.port}",
            "--no-dht",
            "--listen",
            "127.0.0.1:0",
            "--stall-timeout",
            "120",
        )
    if code != EXIT_OK:
        return EXIT_VERIFICATION_FAILED
    step("10. flip one byte in movement/worm-track.bin (expected to FAIL)")
    target = data / "movement" / "worm-track.bin"
    raw = bytearray(target.read_bytes())
    raw[1_000_000] ^= 0x01
    target.write_bytes(bytes(raw))
    code = run("verify", str(manifest), str(data), *trust)
    raw[1_000_000] ^= 0x01
    target.write_bytes(bytes(raw))
    if code != EXIT_VERIFICATION_FAILED:
        say("unexpected: a corrupted file was accepted")
        return EXIT_VERIFICATION_FAILED
    step("done")
    say(f"everything behaved as it should; the files are in {base}")
    return EXIT_OK
