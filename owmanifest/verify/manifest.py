"""Verifying a manifest document against a trust policy (no I/O beyond the given bytes)."""

from __future__ import annotations

import hashlib

from ..errors import PolicyError, SignatureError
from ..manifest.canonical import canonical_nquads
from ..manifest.digest import Digest
from ..manifest.document import ManifestDocument, load_document, manifest_from_quads
from ..manifest.model import Manifest
from .policy import TrustPolicy
from .proofs import split_proofs, verify_proof
from .result import ProofOutcome, VerifiedManifest

__all__ = ["check_proofs", "verify_manifest"]


def _proof_outcomes(
    document: ManifestDocument,
    manifest: Manifest,
    canonical: bytes,
    policy: TrustPolicy,
    proofs: list,  # type: ignore[type-arg]
) -> list[ProofOutcome]:
    outcomes: list[ProofOutcome] = []
    counted: set[str] = set()
    authorized = set(manifest.signers)
    for proof in proofs:
        method = proof.verification_method
        try:
            verified = verify_proof(canonical, proof)
        except SignatureError as exc:
            outcomes.append(ProofOutcome(method, None, False, f"invalid proof: {exc}"))
            continue
        did = verified.signer.did
        if did not in authorized:
            reason = "signer is not an authorized signer of this manifest"
        elif did in counted:
            reason = "a second proof by the same signer does not count twice"
        else:
            why = policy.why_not(did, manifest)
            reason = why if why is not None else "valid, authorized and trusted"
            if why is None:
                counted.add(did)
                outcomes.append(ProofOutcome(method, did, True, reason))
                continue
        outcomes.append(ProofOutcome(method, did, False, reason))
    return outcomes


def check_proofs(
    document: ManifestDocument, policy: TrustPolicy
) -> tuple[Manifest, Digest, list[ProofOutcome]]:
    """Check every proof of ``document`` without deciding: (manifest, canonical hash, outcomes).

    Raises:
        InvalidManifestError: the document is malformed.
    """
    body, proofs = split_proofs(document.quads)
    manifest = manifest_from_quads(body, source=document.source)
    canonical = canonical_nquads(body, source=document.source)
    digest = Digest("rdfc-sha256", hashlib.sha256(canonical).digest())
    return manifest, digest, _proof_outcomes(document, manifest, canonical, policy, proofs)


def verify_manifest(
    document: ManifestDocument | bytes, policy: TrustPolicy, *, source: str = "<manifest>"
) -> VerifiedManifest:
    """Verify a manifest's proofs against a trust policy.

    The manifest is accepted when valid ``eddsa-rdfc-2022`` proofs from at least ``threshold``
    distinct signers exist that are (a) authorized by the manifest itself and (b) accepted by
    ``policy``. Proofs by unknown keys, repeated keys, revoked keys and invalid proofs never count.

    Args:
        document: a parsed document, or its bytes (JSON-LD, TriG or N-Quads).
        policy: required; see :class:`~owmanifest.verify.policy.TrustPolicy`.

    Returns:
        A :class:`VerifiedManifest`; the model in it is extracted from the signed RDF.

    Raises:
        InvalidManifestError: malformed document.
        SignatureError: the threshold is not met and at least one proof is invalid.
        PolicyError: the threshold is not met by trusted, authorized signers (or the policy
            trusts nobody).
    """
    if not isinstance(policy, TrustPolicy):
        raise TypeError("verify_manifest needs a TrustPolicy")
    if isinstance(document, (bytes, bytearray)):
        document = load_document(bytes(document), source=source)
    manifest, digest, outcomes = check_proofs(document, policy)
    counted = [o for o in outcomes if o.counted]
    if len(counted) >= manifest.threshold and len(counted) >= policy.minimum_threshold:
        return VerifiedManifest(
            manifest=manifest,
            canonical_hash=digest,
            signers=tuple(o.signer for o in counted if o.signer is not None),
            proofs=tuple(outcomes),
            source=document.source,
        )
    need = max(manifest.threshold, policy.minimum_threshold)
    if not outcomes:
        message = "the manifest is not signed"
    elif policy.is_empty:
        message = "no trusted keys were given (use --trust DID or a trust store)"
    else:
        refused = [o for o in outcomes if not o.counted]
        message = f"{len(counted)} of the required {need} trusted signatures"
        if refused:
            message += (
                " (not counted: "
                + "; ".join(f"{o.signer or o.verification_method}: {o.reason}" for o in refused)
                + ")"
            )
    cls = (
        SignatureError
        if any(o.reason.startswith("invalid proof") for o in outcomes)
        else (PolicyError)
    )
    err = cls(
        message, path=document.source, expected=f">= {need} signatures", observed=len(counted)
    )
    err.outcomes = tuple(outcomes)
    raise err
