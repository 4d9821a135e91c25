"""Rollback and freeze protection: the highest version verified so far, per dataset id.

After a manifest verifies, its version and canonical hash are recorded (atomically) in a small
JSON file per dataset. Later, an older version, or the same version with a different hash, is
refused with :class:`~owmanifest.errors.RollbackError` (``allow_downgrade`` overrides, loudly).
The record is also the :class:`~owmanifest.verify.result.TrustAnchor` from which signer
rotations are followed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .._atomic import write_atomic
from .._dirs import state_dir
from ..errors import RollbackError, UsageError
from ..manifest.digest import Digest
from ..manifest.jsonld import loads_json
from ..manifest.model import utc_now
from ..schemas import validate
from .result import TrustAnchor, VerifiedManifest

__all__ = ["StateStore"]


@dataclass(frozen=True)
class StateStore:
    """The rollback state in ``directory`` (default: the per-user state directory)."""

    directory: Path

    @classmethod
    def default(cls) -> StateStore:
        return cls(state_dir() / "datasets")

    def _path(self, dataset_id: str) -> Path:
        try:
            encoded = dataset_id.encode("utf-8")
        except UnicodeEncodeError as exc:  # from a command line that is not UTF-8
            raise UsageError(
                "a dataset id is an IRI: valid UTF-8 text", observed=ascii(dataset_id)
            ) from exc
        return self.directory / (hashlib.sha256(encoded).hexdigest() + ".json")

    def anchor(self, dataset_id: str) -> TrustAnchor | None:
        """The trusted version recorded for ``dataset_id``, if any.

        Raises:
            UsageError: the state file exists but is corrupt (it is never silently ignored:
                that would re-open the door to rollback).
        """
        path = self._path(dataset_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UsageError(f"cannot read rollback state: {exc.strerror}", path=str(path)) from exc
        try:
            doc = loads_json(data, source=str(path))
        except Exception as exc:
            raise UsageError(f"corrupt rollback state: {exc}", path=str(path)) from exc
        validate(doc, "state", source=str(path), error=UsageError)
        if doc["dataset"] != dataset_id:
            raise UsageError("rollback state is for another dataset", path=str(path))
        t = doc["trusted"]
        return TrustAnchor(
            dataset_id=dataset_id,
            version=t["version"],
            canonical_hash=Digest.parse(t["canonicalHash"], algorithm="rdfc-sha256"),
            signers=tuple(t["signers"]),
            threshold=t["threshold"],
        )

    def check(self, verified: VerifiedManifest, *, allow_downgrade: bool = False) -> None:
        """Refuse ``verified`` if it is older than, or conflicts with, the recorded version.

        Raises:
            RollbackError: an older version, or the same version with different content.
        """
        anchor = self.anchor(verified.manifest.id)
        if anchor is None or allow_downgrade:
            return
        m = verified.manifest
        if m.version < anchor.version:
            raise RollbackError(
                f"version {m.version} is older than version {anchor.version} already verified "
                "(a rollback; --allow-downgrade to accept it anyway)",
                path=verified.source,
                expected=f">= {anchor.version}",
                observed=m.version,
            )
        if m.version == anchor.version and verified.canonical_hash != anchor.canonical_hash:
            raise RollbackError(
                f"version {m.version} was already verified with different content (two "
                "different manifests carry the same version)",
                path=verified.source,
                expected=str(anchor.canonical_hash),
                observed=str(verified.canonical_hash),
            )

    def record(self, verified: VerifiedManifest) -> bool:
        """Record ``verified`` as the trusted version if it is newer; returns whether it was.

        Never an older version, nor another manifest of the recorded version: a downgrade
        accepted with ``allow_downgrade`` is accepted for that run only, and the record still
        refuses a later fork of the version it holds.

        Raises:
            UsageError: the state directory cannot be written (or its record read).
        """
        anchor = self.anchor(verified.manifest.id)
        m = verified.manifest
        if anchor is not None and m.version <= anchor.version:
            return False
        path = self._path(m.id)
        doc = {
            "type": "owmanifest-state",
            "version": 1,
            "dataset": m.id,
            "trusted": {
                "version": m.version,
                "canonicalHash": str(verified.canonical_hash),
                "signers": list(m.signers),
                "threshold": m.threshold,
                "verifiedAt": utc_now(),
            },
        }
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"), mode=0o600)
        except OSError as exc:
            raise UsageError(
                f"cannot record the verified version in the rollback state: {exc.strerror or exc}"
                " (--no-state to verify without it)",
                path=str(path),
            ) from exc
        return True

    def forget(self, dataset_id: str) -> bool:
        """Remove the record for ``dataset_id``; returns whether there was one."""
        try:
            os.unlink(self._path(dataset_id))
        except FileNotFoundError:
            return False
        return True
