"""Trust policies: which signers a caller accepts for which dataset.

A policy is a required argument of :func:`owmanifest.verify.verify_manifest`. The permissive
policy, which accepts whatever signers a manifest names, is :class:`UnsafeTrustManifestSigners`
and warns when it is created.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..errors import UsageError
from ..manifest.model import Manifest

__all__ = ["TrustPolicy", "UnsafePolicyWarning", "UnsafeTrustManifestSigners"]


class UnsafePolicyWarning(UserWarning):
    """Emitted when a policy that does not restrict signers is used."""


def _normalize_did(did: str) -> str:
    if not isinstance(did, str):
        raise UsageError(
            "a trusted key must be an Ed25519 did:key, as text", observed=repr(did)[:100]
        )
    did = did.strip()
    if not did.startswith("did:key:z6Mk"):
        raise UsageError("a trusted key must be an Ed25519 did:key (did:key:z6Mk...)", observed=did)
    return did.split("#", 1)[0]


@dataclass(frozen=True)
class TrustPolicy:
    """Trust a fixed set of keys, optionally per dataset id pattern.

    Args:
        trusted: ``did:key`` identifiers the caller trusts for any dataset.
        scoped: ``did:key`` -> dataset id glob patterns (``fnmatch``) it is trusted for.
        revoked: ``did:key`` identifiers whose proofs never count.
        minimum_threshold: the fewest signatures accepted, whatever the manifest's own
            threshold (a manifest with a lower threshold needs this many; also when it is
            trusted by succession).
    """

    trusted: frozenset[str] = frozenset()
    scoped: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    revoked: frozenset[str] = frozenset()
    minimum_threshold: int = 1

    def __post_init__(self) -> None:
        # A pattern given as one string would be read a character at a time, and its "*"
        # would trust the key for every dataset.
        for did, patterns in self.scoped.items():
            if isinstance(patterns, (str, bytes)) or not all(isinstance(p, str) for p in patterns):
                raise TypeError(
                    f"scoped[{did!r}] must be a sequence of dataset id patterns (strings), "
                    f"not {patterns!r}"
                )
        object.__setattr__(self, "scoped", {d: tuple(p) for d, p in self.scoped.items()})

    @classmethod
    def from_keys(
        cls, keys: Iterable[str], *, revoked: Iterable[str] = (), minimum_threshold: int = 1
    ) -> TrustPolicy:
        """A policy trusting ``keys`` for every dataset.

        Raises:
            UsageError: a key is not an Ed25519 ``did:key``.
        """
        return cls(
            trusted=frozenset(_normalize_did(k) for k in keys),
            revoked=frozenset(_normalize_did(k) for k in revoked),
            minimum_threshold=minimum_threshold,
        )

    def why_not(self, signer: str, manifest: Manifest) -> str | None:
        """``None`` if a valid proof by ``signer`` counts for ``manifest``, else the reason."""
        if signer in self.revoked:
            return "key is revoked in the trust policy"
        if signer in self.trusted:
            return None
        patterns = self.scoped.get(signer)
        if patterns is not None:
            if any(fnmatch.fnmatchcase(manifest.id, p) for p in patterns):
                return None
            return f"key is trusted only for datasets {', '.join(patterns)}"
        return "key is not trusted by the caller"

    @property
    def is_empty(self) -> bool:
        return not self.trusted and not self.scoped


class UnsafeTrustManifestSigners(TrustPolicy):
    """Accept any signer the manifest itself authorizes.

    This checks that the manifest is internally consistent (valid proofs from a threshold of its
    own signers) but **not** that those signers are who you think: anyone can make such a
    manifest. Use it for inspection only.
    """

    def __init__(self) -> None:
        super().__init__()
        warnings.warn(
            "UnsafeTrustManifestSigners trusts whatever signers a manifest names; "
            "it does not establish who published the data",
            UnsafePolicyWarning,
            stacklevel=2,
        )

    def why_not(self, signer: str, manifest: Manifest) -> str | None:
        if signer in self.revoked:
            return "key is revoked in the trust policy"
        return None

    @property
    def is_empty(self) -> bool:
        return False
