"""The manifest layer: data model, vocabulary, (de)serialization, RDFC-1.0, Merkle trees, builder.

Imports nothing from :mod:`owmanifest.verify` or :mod:`owmanifest.transport` at module level.
"""

from __future__ import annotations

from .digest import Digest
from .model import FileEntry, Manifest

__all__ = ["Digest", "FileEntry", "Manifest"]
