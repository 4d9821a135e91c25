"""Reading trust files (``--trust-file``): the keys a user or project trusts, as JSON."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..manifest.jsonld import loads_json
from ..schemas import validate
from .policy import TrustPolicy

__all__ = ["policy_from_trust_data", "read_trust_file"]


def read_trust_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a trust file.

    Raises:
        UsageError: unreadable, not JSON, or not of the trust file schema.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read trust file: {exc.strerror}", path=str(p)) from exc
    try:
        doc = loads_json(data, source=str(p))
    except Exception as exc:
        raise UsageError(str(exc), path=str(p)) from exc
    validate(doc, "trust", source=str(p), error=UsageError)
    result: dict[str, Any] = doc
    return result


def policy_from_trust_data(
    documents: Iterable[dict[str, Any]], *, extra_keys: Iterable[str] = ()
) -> TrustPolicy:
    """Combine trust files and ad-hoc ``--trust`` keys into one policy (revocations win)."""
    trusted: set[str] = set()
    scoped: dict[str, tuple[str, ...]] = {}
    revoked: set[str] = set()
    for doc in documents:
        for key in doc["keys"]:
            did = key["id"]
            if key.get("revoked"):
                revoked.add(did)
            elif "datasets" in key:  # (never empty in a valid trust file)
                scoped[did] = tuple(scoped.get(did, ())) + tuple(key["datasets"])
            else:
                trusted.add(did)
    base = TrustPolicy.from_keys(extra_keys)
    return TrustPolicy(
        trusted=frozenset(trusted | base.trusted) - frozenset(revoked),
        scoped={k: p for k, p in scoped.items() if k not in revoked and k not in trusted},
        revoked=frozenset(revoked),
    )
