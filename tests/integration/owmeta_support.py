"""Helpers for the owmeta-core integration tests: a published bundle set, ``owm``, queries.

The published set is the real OpenWorm bundle archives from ``shared/data/owmeta-bundles``,
imported with :func:`owmanifest.integrations.owmeta_index.import_index` (the same code as
``owmanifest owmeta import-index``) and signed with the fixed test keys. ``owm`` runs in a
subprocess with its own profile directory, home and bundle cache under the test's temporary
directory; nothing reaches the network (loopback servers and peers only).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owmanifest.integrations.owmeta_index import bundle_path, import_index
from owmanifest.manifest.document import load_document
from owmanifest.manifest.jsonld import dumps, manifest_to_jsonld
from owmanifest.manifest.model import Manifest
from owmanifest.signing import sign_document
from tests.unit.fixtures import DIDS, key

CREATED = "2026-01-01T00:00:00Z"
#: Generous: building owmeta-core's indexed database of a bundle takes a few seconds.
OWM_TIMEOUT = 300.0


@dataclass(frozen=True)
class Published:
    """A signed manifest of bundle archives, its torrent and the directory laid out like it."""

    manifest_path: Path
    torrent_path: Path
    layout: Path
    manifest: Manifest

    @property
    def torrent(self) -> bytes:
        return self.torrent_path.read_bytes()


def publish(
    index: Path, site: Path, name: str, *, base_url: str, signer: str = "alice"
) -> Published:
    """Import ``index`` into ``site/name/`` and write ``site/name.jsonld`` (+ ``.torrent``),
    signed by ``signer`` (who is also the manifest's only authorized signer)."""
    result = import_index(
        index,
        base_url=base_url,
        layout=site / name,
        signers=[DIDS[signer]],
        created=CREATED,
    )
    unsigned = dumps(manifest_to_jsonld(result.build.manifest))
    signed = sign_document(
        load_document(unsigned, source=f"{name}.jsonld"), key(signer), created=CREATED
    )
    manifest_path = site / f"{name}.jsonld"
    manifest_path.write_bytes(signed)
    torrent_path = site / f"{name}.jsonld.torrent"
    assert result.build.torrent is not None
    torrent_path.write_bytes(result.build.torrent)
    return Published(manifest_path, torrent_path, result.layout, result.build.manifest)


def tampered_copy(layout: Path, dest: Path, bundle_id: str, version: int) -> Path:
    """A copy of ``layout`` (new files, never the originals' inodes) with one byte of that
    bundle's archive flipped; returns the tampered file."""
    shutil.copytree(layout, dest, copy_function=shutil.copyfile)
    victim = dest.joinpath(*bundle_path(bundle_id, version).split("/"))
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    victim.unlink()
    victim.write_bytes(bytes(blob))
    return victim


def closed_port() -> int:
    """A loopback port with nothing listening on it (a seeder that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def files_under(root: Path) -> list[str]:
    """Every non-directory below ``root`` (relative), for "nothing was unpacked" checks."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir())


class Owm:
    """``owm`` (owmeta-core's command line) with an isolated profile, home and bundle cache."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.home = base / "home"
        self.profile = base / "owmeta-profile"
        self.bundles = base / "bundles"
        self.cache = base / "owmanifest-cache"
        self.work = base / "work"
        for d in (self.home, self.work):
            d.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HOME=str(self.home),
            OWMETA_PROFILE_DIR=str(self.profile),
            OWMANIFEST_CACHE_DIR=str(self.cache),
            PYTHONWARNINGS="ignore",
        )
        return env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from owmeta_core.cli import main; sys.exit(main())"
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            env=self.env(),
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=OWM_TIMEOUT,
        )

    def add_remote(self, name: str, url: str, *options: str) -> subprocess.CompletedProcess[str]:
        args = ["bundle", "remote", "--user", "add", name, url]
        if options:
            args += ["owmanifest", *options]
        return self.run(*args)

    def fetch(self, bundle_id: str, version: int | None) -> subprocess.CompletedProcess[str]:
        """``owm bundle fetch`` (of the latest version the remotes list if ``version`` is None)."""
        pinned = [] if version is None else ["--bundle-version", str(version)]
        return self.run(
            "bundle", "fetch", bundle_id, *pinned, "--bundles-directory", str(self.bundles)
        )


def query_bundle(bundles: Path, bundle_id: str, version: int) -> dict[str, Any]:
    """Open an installed bundle through owmeta-core and describe its graphs."""
    from owmeta_core.bundle import Bundle

    bundle = Bundle(bundle_id, version=version, bundles_directory=str(bundles))
    with bundle:
        contexts = [str(c) for c in bundle.contexts]
        graph = bundle.rdf
        return {
            "manifest": bundle.manifest_data,
            "contexts": contexts,
            "graphs": len(list(graph.contexts())),
            "triples": len(graph),
        }
