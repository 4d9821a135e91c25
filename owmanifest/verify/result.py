"""Values returned by the verifier: only ever constructed after verification succeeded."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..manifest.digest import Digest
from ..manifest.model import FileEntry, Manifest

__all__ = ["FileProblem", "ProofOutcome", "TreeReport", "TrustAnchor", "VerifiedManifest"]


@dataclass(frozen=True)
class ProofOutcome:
    """What happened to one proof: whether it counted towards the threshold, and why."""

    verification_method: str | None
    signer: str | None
    counted: bool
    reason: str


@dataclass(frozen=True)
class VerifiedManifest:
    """A manifest whose proofs satisfied a trust policy.

    Only :func:`owmanifest.verify.verify_manifest` creates these; holding one means the
    signatures, signer authorization and threshold were checked.

    Attributes:
        manifest: the data model, extracted from the signed RDF (not from the JSON text).
        canonical_hash: ``rdfc-sha256`` of the canonical document without proofs.
        signers: the ``did:key`` of each proof that counted.
        proofs: the outcome of every proof in the document.
        source: where the document came from (path or URI), for messages.
    """

    manifest: Manifest
    canonical_hash: Digest
    signers: tuple[str, ...]
    proofs: tuple[ProofOutcome, ...]
    source: str


@dataclass(frozen=True)
class FileProblem:
    """One file that did not verify."""

    path: str
    kind: str  # "missing", "size", "digest", "not-a-file", "extra", "symlink"
    expected: str | None = None
    observed: str | None = None

    def __str__(self) -> str:
        text = f"{self.path}: {self.kind}"
        if self.expected is not None or self.observed is not None:
            text += f" (expected {self.expected}, observed {self.observed})"
        return text


@dataclass(frozen=True)
class TreeReport:
    """The result of checking a directory against a verified manifest.

    Attributes:
        verified: the files that verified.
        from_cache: how many of them ``verify --fast`` trusted from the hash cache, unchanged
            since they last verified, without reading them (the others were hashed).
    """

    directory: str
    verified: tuple[FileEntry, ...]
    problems: tuple[FileProblem, ...] = ()
    extra: tuple[str, ...] = field(default_factory=tuple)
    from_cache: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class TrustAnchor:
    """The part of a trusted version that later versions are checked against.

    Recorded in the rollback state after every successful verification, and the starting
    point for following signer rotations (:func:`owmanifest.verify.verify_chain`).
    """

    dataset_id: str
    version: int
    canonical_hash: Digest
    signers: tuple[str, ...]
    threshold: int

    @classmethod
    def from_verified(cls, verified: VerifiedManifest) -> TrustAnchor:
        m = verified.manifest
        return cls(m.id, m.version, verified.canonical_hash, m.signers, m.threshold)
