"""The per-user trust store: which keys you trust, for which datasets, and which are revoked.

It is a trust file (``owmanifest/schemas/trust.schema.json``, see docs/spec.md §9) kept in the
per-user config directory and changed only through atomic rewrites. ``owmanifest trust ...``
edits it; ``verify`` and ``fetch`` use it when no ``--trust``/``--trust-file`` is given.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._atomic import write_atomic
from .._dirs import config_dir
from ..errors import Error, UsageError
from ..manifest.model import DID_KEY_RE, utc_now
from .policy import TrustPolicy
from .trustfile import policy_from_trust_data, read_trust_file

__all__ = ["TrustStore", "default_policy", "policy_for_run"]


def _check_did(did: str) -> str:
    did = did.split("#", 1)[0]
    if not DID_KEY_RE.match(did):
        raise UsageError("not an Ed25519 did:key", expected="did:key:z6Mk...", observed=did)
    return did


@dataclass(frozen=True)
class TrustStore:
    path: Path

    @classmethod
    def default(cls) -> TrustStore:
        return cls(config_dir() / "trust.json")

    def load(self) -> dict[str, Any]:
        """The store's content (an empty trust file when it does not exist yet).

        Raises:
            UsageError: the file is unreadable or does not match the schema.
        """
        if not self.path.exists():
            return {"type": "owmanifest-trust", "version": 1, "keys": []}
        return read_trust_file(self.path)

    def _save(self, doc: dict[str, Any]) -> None:
        """Write ``doc``, which must be a valid trust file: a store that no longer reads would
        stop every later command, and ``trust remove`` could not mend it."""
        from ..schemas import validate

        validate(doc, "trust", source=str(self.path), error=UsageError)
        try:
            data = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        except UnicodeEncodeError as exc:  # a name or pattern from a non-UTF-8 command line
            raise UsageError(
                "text for the trust store is not valid UTF-8", path=str(self.path)
            ) from exc
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.path, data, mode=0o600)

    def entries(self) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = self.load()["keys"]
        return keys

    def add(
        self, did: str, *, name: str | None = None, datasets: list[str] | None = None
    ) -> list[str] | None:
        """Trust ``did`` (for ``datasets`` glob patterns, or every dataset).

        A key already in the store gets ``datasets`` added to those it is trusted for (a key
        trusted for every dataset is then trusted for these only); without ``datasets``, its
        trust is left as it was, never widened to every dataset (remove it first for that).

        Returns:
            The dataset patterns the key is now trusted for, or ``None`` for every dataset.

        Raises:
            UsageError: not a did:key, or the key is revoked (revocation is final; remove the
                entry first if that was a mistake).
        """
        did = _check_did(did)
        if datasets is not None and not all(datasets):
            raise UsageError(
                "a dataset pattern may not be empty (leave --dataset out to trust the key for "
                "every dataset)",
                observed=datasets,
            )
        doc = self.load()
        for entry in doc["keys"]:
            if entry["id"] == did:
                if entry.get("revoked"):
                    raise UsageError(
                        "this key is revoked; `owmanifest trust remove` it first if the "
                        "revocation was a mistake",
                        observed=did,
                    )
                if name is not None:
                    entry["name"] = name
                if datasets:
                    entry["datasets"] = sorted(set(entry.get("datasets", [])) | set(datasets))
                break
        else:
            entry = {"id": did, "added": utc_now()}
            if name is not None:
                entry["name"] = name
            if datasets:
                entry["datasets"] = sorted(set(datasets))
            doc["keys"].append(entry)
        self._save(doc)
        scope: list[str] | None = entry.get("datasets")
        return scope

    def remove(self, did: str) -> bool:
        did = _check_did(did)
        doc = self.load()
        before = len(doc["keys"])
        doc["keys"] = [e for e in doc["keys"] if e["id"] != did]
        if len(doc["keys"]) == before:
            return False
        self._save(doc)
        return True

    def revoke(self, did: str, *, reason: str | None = None) -> None:
        """Mark ``did`` revoked: its proofs never count again, whatever else trusts it."""
        did = _check_did(did)
        doc = self.load()
        for entry in doc["keys"]:
            if entry["id"] == did:
                break
        else:
            entry = {"id": did, "added": utc_now()}
            doc["keys"].append(entry)
        entry["revoked"] = True
        entry.pop("datasets", None)
        if reason:
            entry["reason"] = reason
        self._save(doc)

    def import_file(self, path: str | Path) -> int:
        """Merge a trust file (e.g. one a project publishes); returns how many keys changed.

        Revocations in the file are applied; revocations in the store are never undone.
        """
        incoming = read_trust_file(path)
        changed = 0
        for entry in incoming["keys"]:
            if entry.get("revoked"):
                self.revoke(entry["id"], reason=entry.get("reason"))
            else:
                try:
                    self.add(entry["id"], name=entry.get("name"), datasets=entry.get("datasets"))
                except UsageError:
                    continue
            changed += 1
        return changed

    def policy(self) -> TrustPolicy:
        return policy_from_trust_data([self.load()])

    def trusts_for(self, did: str, dataset_id: str) -> bool:
        for entry in self.entries():
            if entry["id"] == did and not entry.get("revoked"):
                pats = entry.get("datasets")
                return not pats or any(fnmatch.fnmatchcase(dataset_id, p) for p in pats)
        return False


def default_policy() -> TrustPolicy | None:
    """The policy of the default trust store, or ``None`` when it trusts nobody."""
    policy = TrustStore.default().policy()
    return None if policy.is_empty else policy


def policy_for_run(
    trust_files: Sequence[str | os.PathLike[str]],
    keys: Sequence[str],
    *,
    error: type[Error] = UsageError,
) -> TrustPolicy:
    """The trust of one run: the trust files and keys given for it, else the trust store.

    Trust files and keys given for the run replace the default trust store, whose revocations
    still apply. Given trust that leaves no key trusted (every key revoked, a file that lists
    none) trusts nobody: it is refused, never a reason to fall back to the trust store (found
    by a review). The policy may still be empty when nothing was given and the store trusts
    nobody: the caller says how to trust someone.

    Raises:
        UsageError: a trust file or the trust store cannot be read, or a key is not a did:key.
        Error: (``error`` class) the trust given trusts no key.
    """
    docs = [read_trust_file(p) for p in trust_files]
    stored = TrustStore.default().load()
    if not trust_files and not keys:
        return policy_from_trust_data([stored])
    revocations = {
        "type": "owmanifest-trust",
        "version": 1,
        "keys": [k for k in stored["keys"] if k.get("revoked")],
    }
    policy = policy_from_trust_data([*docs, revocations], extra_keys=keys)
    if policy.is_empty:
        raise error(
            "the trust given (--trust, --trust-file) trusts no key: every key given is revoked "
            "in your trust store, or the trust file lists none",
            expected="at least one trusted key that is not revoked",
            observed="none",
        )
    return policy
