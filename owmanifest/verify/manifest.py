"""Verifying a manifest document against a trust policy (no I/O beyond the given bytes).

Two ways to come to trust a manifest:

* **directly** (:func:`verify_manifest`): valid proofs from ``threshold`` distinct signers that
  the manifest authorizes and the caller's policy trusts;
* **by succession** (:func:`verify_successor`, :func:`verify_chain`), after TUF's root rotation:
  starting from a version already trusted (a :class:`TrustAnchor`), the next version must link
  it by canonical hash, have a larger version number, carry valid proofs from ``threshold`` of
  its own signers and, if it changes the signer set or the threshold, also from ``threshold`` of
  the *previous* version's signers. The new signers are then trusted without any change to the
  caller's trust store. Revoked keys never count either way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Union

from .._gc import paused_gc
from ..errors import (
    Error,
    ExpiredError,
    InvalidManifestError,
    PolicyError,
    RollbackError,
    SignatureError,
    VerificationError,
)
from ..manifest._rdftext import shown
from ..manifest.canonical import canonical_from_lines, canonical_nquads
from ..manifest.digest import Digest
from ..manifest.document import (
    ManifestDocument,
    compiled_reader,
    index_stream,
    load_document,
    manifest_from_quads,
    manifest_from_stream,
)
from ..manifest.model import Manifest
from .policy import TrustPolicy
from .proofs import ProofGraph, split_proofs, verify_proof
from .result import ProofOutcome, TrustAnchor, VerifiedManifest

if TYPE_CHECKING:
    import pyoxigraph

__all__ = [
    "CLOCK_SKEW",
    "check_proofs",
    "verify_chain",
    "verify_manifest",
    "verify_successor",
]

#: Tolerance for clocks that disagree: a manifest is refused only once ``expires`` is this far
#: in the past by the verifier's clock.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class _Proof:
    graph: ProofGraph
    signer: str | None  # did:key when the signature verified
    error: str | None  # why it is invalid


@dataclass(frozen=True)
class _Checked:
    document: ManifestDocument
    manifest: Manifest
    digest: Digest
    proofs: tuple[_Proof, ...]


#: What the verifiers take as a manifest: parsed, its bytes, or the path of its file.
DocumentLike = Union[ManifestDocument, bytes, bytearray, memoryview, str, "os.PathLike[str]"]


def _as_document(document: DocumentLike, source: str) -> ManifestDocument:
    """``document`` parsed: bytes as a document's content, a ``str`` or path as its file.

    Raises:
        InvalidManifestError: the file cannot be read, or the document is malformed.
        TypeError: ``document`` is none of these (a programming error).
    """
    if isinstance(document, ManifestDocument):
        return document
    if isinstance(document, (bytes, bytearray, memoryview)):
        return load_document(bytes(document), source=source, keep_json=False, stream=True)
    if isinstance(document, (str, os.PathLike)):
        from ..manifest.document import read_document

        return read_document(document, keep_json=False, stream=True)
    raise TypeError(
        "a manifest is a ManifestDocument, its bytes, or the path of its file, not "
        f"{type(document).__name__}"
    )


def _require_policy(policy: object, function: str) -> None:
    """The trust policy is a required argument (never None, never a list of keys).

    Raises:
        TypeError: it is not a TrustPolicy (a programming error).
    """
    if not isinstance(policy, TrustPolicy):
        raise TypeError(
            f"{function} needs a TrustPolicy (e.g. TrustPolicy.from_keys([...])), not "
            f"{type(policy).__name__}"
        )


def _check_links(graphs: Sequence[ProofGraph], dataset_id: str, source: str) -> None:
    """Every proof must hang off the manifest node: ``<dataset> sec:proof _:g``.

    ``split_proofs`` takes a ``sec:proof`` of any subject as a proof link and leaves it out of
    the signed body, so a link from another node would be an unsigned statement.

    Raises:
        InvalidManifestError: a proof linked from another subject.
    """
    import pyoxigraph

    dataset = pyoxigraph.NamedNode(dataset_id)
    for graph in graphs:
        for quad in graph.statements:
            if isinstance(quad.graph_name, pyoxigraph.DefaultGraph) and quad.subject != dataset:
                raise InvalidManifestError(
                    "a proof is attached to another node than the manifest",
                    path=source,
                    expected=f"<{dataset_id}> sec:proof ...",
                    observed=shown(quad),
                )


def _read_body(document: ManifestDocument) -> tuple[Manifest, list[ProofGraph], bytes]:
    """A document's model, its proofs (not verified) and the canonical N-Quads of its body.

    Raises:
        InvalidManifestError: the document is malformed, or a proof hangs off another node.
        CanonicalizationError: the body cannot be canonicalized.
    """
    read = _read_once(document)
    if read is not None:
        return read
    body, graphs = split_proofs(document.quads)
    manifest = manifest_from_quads(body, source=document.source)
    _check_links(graphs, manifest.id, document.source)
    return manifest, graphs, canonical_nquads(body, source=document.source)


@paused_gc
def _check(document: ManifestDocument) -> _Checked:
    manifest, graphs, canonical = _read_body(document)
    digest = Digest("rdfc-sha256", hashlib.sha256(canonical).digest())
    proofs = []
    for graph in graphs:
        try:
            verified = verify_proof(canonical, graph, document_digest=digest.value)
        except SignatureError as exc:
            proofs.append(_Proof(graph, None, f"invalid proof: {exc}"))
        else:
            proofs.append(_Proof(graph, verified.signer.did, None))
    return _Checked(document, manifest, digest, tuple(proofs))


def _read_once(document: ManifestDocument) -> tuple[Manifest, list[ProofGraph], bytes] | None:
    """The model, the proofs and the canonical N-Quads of the body, read in one pass over a
    document's quads without holding them (:meth:`ManifestDocument.stream`).

    Returns ``None`` when the document has no stream, or when this pass gives no answer: a
    syntax error, a malformed body or proof, a blank node or triple term anywhere. The caller
    then reads ``document.quads`` as usual, which gives the same answer or the precise error.
    When it does answer, it is the answer of the usual way: the same checks on the same
    statements (``manifest_from_stream`` puts aside what ``split_proofs`` would take out of
    the body, and ``canonical_from_lines`` is ``canonical_nquads`` for a body without blank
    nodes; tests compare both on generated documents). Where the compiled one pass is built,
    ``index_stream`` does the same from pyoxigraph's N-Quads of the statements (ADR 0008).
    """
    parts = document.stream_parts()
    if parts is None:
        return None
    aside: list[pyoxigraph.Quad] = []
    try:
        if compiled_reader():
            read = index_stream(parts[0], source=document.source, lines=parts[1])
            if read is None:
                return None
            manifest, aside, canonical = read
        else:
            quads = document.stream()
            assert quads is not None
            lines: dict[bytes, None] = {}
            manifest = manifest_from_stream(quads, source=document.source, aside=aside, lines=lines)
            body = canonical_from_lines(lines)
            del lines
            if body is None:
                return None
            canonical = body
        _, graphs = split_proofs(aside)
        _check_links(graphs, manifest.id, document.source)
    except (Error, SyntaxError, ValueError):
        return None
    return manifest, graphs, canonical


def _check_expiry(checked: _Checked, now: datetime | None) -> None:
    from ..manifest.model import xsd_datetime_seconds

    expires = checked.manifest.expires
    if expires is None:
        return
    when = now or datetime.now(timezone.utc)
    # In whole seconds of any year: the manifest's date may lie outside what datetime holds.
    deadline = xsd_datetime_seconds(expires) + int(CLOCK_SKEW.total_seconds())
    if int(when.timestamp()) > deadline:
        raise ExpiredError(
            "the manifest has expired",
            path=checked.document.source,
            expected=f"before {expires} (+{int(CLOCK_SKEW.total_seconds())} s clock skew)",
            observed=when.replace(microsecond=0).isoformat(),
        )


def _count(
    checked: _Checked,
    policy: TrustPolicy,
    eligible: Iterable[str],
    outside: str = "signer is not an authorized signer of this manifest",
) -> tuple[set[str], list[ProofOutcome]]:
    """Which distinct, valid, non-revoked signers among ``eligible`` signed; with reasons
    (``outside``: the reason given for a signer not in ``eligible``)."""
    allowed = set(eligible)
    counted: set[str] = set()
    outcomes: list[ProofOutcome] = []
    for p in checked.proofs:
        method = p.graph.verification_method
        if p.signer is None:
            outcomes.append(ProofOutcome(method, None, False, p.error or "invalid proof"))
            continue
        if p.signer in policy.revoked:
            reason = "key is revoked in the trust policy"
        elif p.signer not in allowed:
            reason = outside
        elif p.signer in counted:
            reason = "a second proof by the same signer does not count twice"
        else:
            why = policy.why_not(p.signer, checked.manifest)
            if why is None:
                counted.add(p.signer)
                outcomes.append(
                    ProofOutcome(method, p.signer, True, "valid, authorized and trusted")
                )
                continue
            reason = why
        outcomes.append(ProofOutcome(method, p.signer, False, reason))
    return counted, outcomes


def _fail(
    checked: _Checked, message: str, need: int, got: int, outcomes: Sequence[ProofOutcome]
) -> VerificationError:
    """SignatureError when some proof was invalid, else PolicyError; carries every outcome."""
    cls: type[VerificationError] = (
        SignatureError
        if any(o.reason.startswith("invalid proof") for o in outcomes)
        else PolicyError
    )
    refused = [o for o in outcomes if not o.counted]
    if refused:
        message += (
            " (not counted: "
            + "; ".join(f"{o.signer or o.verification_method}: {o.reason}" for o in refused)
            + ")"
        )
    err = cls(message, path=checked.document.source, expected=f">= {need} signatures", observed=got)
    err.outcomes = tuple(outcomes)
    return err


def _verified(
    checked: _Checked, counted: set[str], outcomes: list[ProofOutcome]
) -> VerifiedManifest:
    return VerifiedManifest(
        manifest=checked.manifest,
        canonical_hash=checked.digest,
        signers=tuple(o.signer for o in outcomes if o.signer in counted),
        proofs=tuple(outcomes),
        source=checked.document.source,
    )


def check_proofs(
    document: DocumentLike, policy: TrustPolicy, *, source: str = "<manifest>"
) -> tuple[Manifest, Digest, list[ProofOutcome]]:
    """Check every proof of ``document`` without deciding whether to trust it: (the manifest
    as it reads, its canonical hash, each proof's outcome under ``policy``).

    **Not a verifier**: nothing here is trusted, whatever the outcomes say; it is what
    ``owmanifest show`` prints. To trust a manifest use :func:`verify_manifest`, which raises
    unless the policy's threshold is met.

    Raises:
        InvalidManifestError: the document is malformed.
    """
    _require_policy(policy, "check_proofs")
    checked = _check(_as_document(document, source))
    _, outcomes = _count(checked, policy, checked.manifest.signers)
    return checked.manifest, checked.digest, outcomes


def verify_manifest(
    document: DocumentLike,
    policy: TrustPolicy,
    *,
    source: str = "<manifest>",
    now: datetime | None = None,
) -> VerifiedManifest:
    """Verify a manifest's proofs against a trust policy.

    The manifest is accepted when valid ``eddsa-rdfc-2022`` proofs from at least ``threshold``
    distinct signers exist that are (a) authorized by the manifest itself and (b) accepted by
    ``policy``. Proofs by unknown keys, repeated keys, revoked keys and invalid proofs never
    count. An expired manifest (``expires`` more than :data:`CLOCK_SKEW` before ``now``) is
    refused.

    Args:
        document: a parsed document, its bytes (JSON-LD, TriG or N-Quads), or the path of
            its file (a ``str`` is a path).
        policy: required; see :class:`~owmanifest.verify.policy.TrustPolicy`.
        now: the time to check expiry against (default: the system clock).

    Returns:
        A :class:`VerifiedManifest`; the model in it is extracted from the signed RDF.

    Raises:
        InvalidManifestError: malformed document.
        SignatureError: the threshold is not met and at least one proof is invalid.
        PolicyError: the threshold is not met by trusted, authorized signers.
        ExpiredError: the manifest has expired.
    """
    _require_policy(policy, "verify_manifest")
    checked = _check(_as_document(document, source))
    counted, outcomes = _count(checked, policy, checked.manifest.signers)
    need = max(checked.manifest.threshold, policy.minimum_threshold)
    if len(counted) < need:
        if not checked.proofs:
            message = "the manifest is not signed"
        elif policy.is_empty:
            message = "no trusted keys were given (use --trust DID or a trust store)"
        else:
            message = f"{len(counted)} of the required {need} trusted signatures"
        raise _fail(checked, message, need, len(counted), outcomes)
    _check_expiry(checked, now)
    return _verified(checked, counted, outcomes)


def verify_successor(
    anchor: TrustAnchor,
    document: DocumentLike,
    policy: TrustPolicy,
    *,
    source: str = "<manifest>",
    now: datetime | None = None,
    check_expiry: bool = True,
) -> VerifiedManifest:
    """Accept ``document`` as a later version of the trusted ``anchor`` (signer rotation).

    Raises:
        PolicyError: a different dataset, no link to the anchor, or too few signatures from
            the new (and, if the signer set or threshold changed, the previous) signers.
        RollbackError: the version is not larger than the anchor's.
        SignatureError: as :class:`PolicyError`, when some proof was invalid.
        ExpiredError: the manifest has expired.
        InvalidManifestError: malformed document.
    """
    _require_policy(policy, "verify_successor")
    checked = _check(_as_document(document, source))
    m = checked.manifest
    src = checked.document.source
    if m.id != anchor.dataset_id:
        raise PolicyError(
            "the manifest is for another dataset",
            path=src,
            expected=anchor.dataset_id,
            observed=m.id,
        )
    if m.version <= anchor.version:
        raise RollbackError(
            "not a later version than the one already trusted",
            path=src,
            expected=f"> {anchor.version}",
            observed=m.version,
        )
    if m.previous_version != anchor.canonical_hash:
        raise PolicyError(
            f"version {m.version} does not link the trusted version {anchor.version}",
            path=src,
            expected=str(anchor.canonical_hash),
            observed=str(m.previous_version) if m.previous_version else "no previousVersion",
        )
    trust_all = TrustPolicy(trusted=frozenset(m.signers), revoked=policy.revoked)
    new_counted, outcomes = _count(checked, trust_all, m.signers)
    # The caller's minimum holds here too, as in verify_manifest (found by a review: the
    # succession path, tried exactly when the direct one refused, asked only m.threshold).
    need = max(m.threshold, policy.minimum_threshold)
    if len(new_counted) < need:
        raise _fail(
            checked,
            f"{len(new_counted)} of the required {need} signatures of version {m.version}'s "
            "own signers",
            need,
            len(new_counted),
            outcomes,
        )
    changed = set(m.signers) != set(anchor.signers) or m.threshold != anchor.threshold
    if changed:
        old_trust = TrustPolicy(trusted=frozenset(anchor.signers), revoked=policy.revoked)
        old_counted, old_outcomes = _count(
            checked, old_trust, anchor.signers, f"not one of version {anchor.version}'s signers"
        )
        if len(old_counted) < anchor.threshold:
            raise _fail(
                checked,
                f"version {m.version} changes the signers or threshold but carries only "
                f"{len(old_counted)} of the {anchor.threshold} signatures required from version "
                f"{anchor.version}'s signers ({', '.join(sorted(anchor.signers))}; each signs "
                "it with `owmanifest sign FILE --key KEY --allow-unlisted`)",
                anchor.threshold,
                len(old_counted),
                old_outcomes,
            )
        endorsed = {x.verification_method: x for x in old_outcomes if x.counted}
        outcomes = [
            o
            if o.counted or o.verification_method not in endorsed
            else ProofOutcome(
                o.verification_method,
                o.signer,
                True,
                f"valid; counted for version {anchor.version}'s signers, who endorse the change",
            )
            for o in outcomes
        ]
    if check_expiry:
        _check_expiry(checked, now)
    return _verified(checked, new_counted, outcomes)


def verify_chain(
    anchor: TrustAnchor,
    documents: Sequence[DocumentLike],
    policy: TrustPolicy,
    *,
    now: datetime | None = None,
) -> VerifiedManifest:
    """Follow versions from ``anchor`` through ``documents`` (oldest first); return the last.

    Only the last version's expiry is checked (intermediate versions may have expired since).

    Raises:
        UsageError: no documents.
        PolicyError / RollbackError / SignatureError: see :func:`verify_successor`.
    """
    from ..errors import UsageError

    _require_policy(policy, "verify_chain")
    if not documents:
        raise UsageError("an empty chain of manifests")
    current = anchor
    vm: VerifiedManifest | None = None
    for i, doc in enumerate(documents):
        last = i == len(documents) - 1
        vm = verify_successor(current, doc, policy, now=now, check_expiry=last)
        current = TrustAnchor.from_verified(vm)
    assert vm is not None
    return vm
