"""owmanifest: signed, content-addressed dataset manifests for OpenWorm.

The package is layered: :mod:`owmanifest.manifest` (data model, RDF, Merkle trees),
:mod:`owmanifest.verify` (keys, proofs, trust policy, file verification; no network I/O) and
:mod:`owmanifest.transport` (BitTorrent, HTTP, local). Heavy dependencies are imported lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
