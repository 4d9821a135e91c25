"""The verifier: keys, proofs, trust policy, file and block verification.

Nothing here imports a transport or does network I/O (a test enforces it). Verification
functions take bytes or paths plus a required trust policy and return a verified object or raise
an :class:`owmanifest.errors.VerificationError`; they never return a bool.
"""

from __future__ import annotations

from .manifest import check_proofs, verify_manifest
from .policy import TrustPolicy, UnsafePolicyWarning, UnsafeTrustManifestSigners
from .result import FileProblem, ProofOutcome, TreeReport, VerifiedManifest
from .tree import verify_tree

__all__ = [
    "FileProblem",
    "ProofOutcome",
    "TreeReport",
    "TrustPolicy",
    "UnsafePolicyWarning",
    "UnsafeTrustManifestSigners",
    "VerifiedManifest",
    "check_proofs",
    "verify_manifest",
    "verify_tree",
]
