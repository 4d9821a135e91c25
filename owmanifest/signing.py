"""Adding proofs to manifest documents, and converting documents between formats.

The bytes that are signed (RDFC-1.0 canonical N-Quads, see :mod:`owmanifest.manifest.canonical`)
are produced apart from the stored format: signing adds one proof object to the document and
leaves every other statement as it was, so unknown statements survive and stay signed.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ._gc import paused_gc
from .errors import InvalidManifestError, UsageError
from .manifest import vocab as v
from .manifest.canonical import canonical_nquads
from .manifest.document import ManifestDocument, load_document, manifest_from_quads, serialize_quads
from .manifest.jsonld import dumps, loads_json, manifest_to_jsonld
from .manifest.model import utc_now
from .verify.keys import PrivateKey
from .verify.manifest import _read_body
from .verify.proofs import (
    add_proof_to_jsonld,
    create_proof,
    proof_graph_quads,
    split_proofs,
    verify_proof,
)

__all__ = ["convert_document", "sign_document"]


@paused_gc
def sign_document(
    document: ManifestDocument,
    key: PrivateKey,
    *,
    created: str | None = None,
    check_directory: str | os.PathLike[str] | None = None,
    allow_unlisted: bool = False,
) -> bytes:
    """Add an ``eddsa-rdfc-2022`` proof by ``key`` and return the new document bytes.

    The output has the same format as the input. With ``check_directory``, the files there
    are verified against the manifest first, so a signer attests only to bytes it has seen.

    Raises:
        InvalidManifestError: the document is malformed.
        UsageError: the key is not an authorized signer (unless ``allow_unlisted``) or has
            already signed this document.
        FileVerificationError: ``check_directory`` does not match the manifest.
    """
    manifest, proofs, canonical = _read_body(document)
    did = key.public_key.did
    if did not in manifest.signers and not allow_unlisted:
        raise UsageError(
            "this key is not among the manifest's authorized signers; its proof would not count "
            "(a previous version's signer endorsing a change of signers: --allow-unlisted)",
            path=document.source,
            expected=", ".join(manifest.signers),
            observed=did,
        )
    for proof in proofs:
        if (proof.verification_method or "").split("#", 1)[0] == did:
            raise UsageError(
                "the manifest already carries a proof by this key",
                path=document.source,
                observed=proof.verification_method,
            )
    if check_directory is not None:
        from .verify.tree import check_tree

        check_tree(manifest, check_directory)
    digest = hashlib.sha256(canonical).digest()  # once, for signing and the self-check
    new_proof = create_proof(
        canonical, key, context=v.CONTEXT, created=created or utc_now(), document_digest=digest
    )
    if document.format == "json-ld":
        assert document.json is not None
        signed = add_proof_to_jsonld(document.json, new_proof)
        out = dumps(signed)
        _check_jsonld(
            out, document.json, signed, canonical, digest, did, manifest.id, document.source
        )
        return out
    if document.format in ("trig", "n-quads"):
        quads = list(document.quads) + list(proof_graph_quads(new_proof, manifest.id, v.CONTEXT))
        out = serialize_quads(quads, document.format)
    else:
        raise UsageError(
            f"cannot add a proof to a {document.format} document (it has no named graphs)",
            path=document.source,
            expected="json-ld, trig or n-quads",
        )
    # Check our own work before anyone else has to.
    body, _ = split_proofs(document.quads)
    new_doc = load_document(out, source=document.source, format=document.format)
    new_body, new_proofs = split_proofs(new_doc.quads)
    # The body has no blank node (manifest_from_quads refuses them), so its canonical form is
    # its sorted statements: the same set of quads is the same canonical form, and cheaper
    # (the same list, in the same order, is what a re-read normally gives: cheaper still).
    if new_body != body and set(new_body) != set(body):
        raise InvalidManifestError(
            "internal error: signing changed the document", path=document.source
        )
    mine = [p for p in new_proofs if (p.verification_method or "").split("#", 1)[0] == did]
    if len(mine) != 1:
        raise InvalidManifestError(
            "internal error: the new proof was not found", path=document.source
        )
    verify_proof(canonical, mine[0], document_digest=digest)
    return out


def _check_jsonld(
    out: bytes,
    before: dict[str, Any],
    signed: dict[str, Any],
    canonical: bytes,
    digest: bytes,
    did: str,
    manifest_id: str,
    source: str,
) -> None:
    """Check a signed JSON-LD document before anyone else has to, without parsing it as RDF
    again (that is most of the cost of signing a large manifest).

    The written bytes must read back (strictly) as the document that was meant, which differs
    from the one that was read, and whose RDF statements were signed, only by one more entry
    in ``proof``. That entry, read as RDF the way a verifier reads it (under the same context
    and manifest node), must be one proof by ``did`` that verifies. A proof entry only adds
    statements to its own proof graph, so the signed statements are unchanged.

    Raises:
        InvalidManifestError: any of this does not hold (an internal error).
    """
    from .schemas import validate

    again = loads_json(out, source=source)
    old_proofs = before.get("proof")
    if not isinstance(old_proofs, list):
        old_proofs = [] if old_proofs is None else [old_proofs]
    rest = {k: val for k, val in before.items() if k != "proof"}
    if (
        again != signed
        or {k: val for k, val in again.items() if k != "proof"} != rest
        or again.get("proof", [])[:-1] != old_proofs
    ):
        raise InvalidManifestError("internal error: signing changed the document", path=source)
    # What a verifier checks before it reads any RDF: the proof entry must fit the schema too.
    # The files were checked when the document was read and are unchanged (above): they are
    # most of the document, and the schema constrains each file on its own.
    validate({**again, "files": []}, "manifest", source=source)
    _, mine = split_proofs(proof_graph_quads(again["proof"][-1], manifest_id, again["@context"]))
    if len(mine) != 1 or (mine[0].verification_method or "").split("#", 1)[0] != did:
        raise InvalidManifestError("internal error: the new proof was not found", path=source)
    verify_proof(canonical, mine[0], document_digest=digest)


def _proof_json(proof: Any) -> dict[str, Any]:
    def compact(value: str | None, known: dict[str, str]) -> str | None:
        if value is None:
            return None
        return known.get(value, value)

    out: dict[str, Any] = {}
    if proof.id is not None:
        out["id"] = proof.id
    out["type"] = compact(proof.type, {v.SEC_DATA_INTEGRITY_PROOF: "DataIntegrityProof"})
    out["cryptosuite"] = proof.cryptosuite
    if proof.created is not None:
        out["created"] = proof.created
    out["verificationMethod"] = proof.verification_method
    out["proofPurpose"] = compact(proof.proof_purpose, {v.SEC_ASSERTION_METHOD: "assertionMethod"})
    out["proofValue"] = proof.proof_value
    return {k: val for k, val in out.items() if val is not None}


def _proof_forms(proofs: Any) -> list[tuple[bytes, str]]:
    """What each proof signs and its signature, in a comparable order."""
    return sorted((canonical_nquads(list(p.quads)), p.proof_value or "") for p in proofs)


def convert_document(document: ManifestDocument, format: str) -> bytes:
    """Re-serialize a (signed) manifest in another format without changing what was signed.

    Raises:
        InvalidManifestError: the document holds statements that the JSON-LD form cannot carry
            (the conversion would change what was signed), or is malformed.
    """
    if format in ("trig", "n-quads"):
        return serialize_quads(list(document.quads), format)
    if format != "json-ld":
        raise UsageError(f"cannot convert to {format!r}", expected="json-ld, trig or n-quads")
    if document.format == "json-ld":
        assert document.json is not None
        return dumps(document.json)
    body, proofs = split_proofs(document.quads)
    manifest = manifest_from_quads(body, source=document.source)
    doc = manifest_to_jsonld(manifest)
    if proofs:
        doc["proof"] = [_proof_json(p) for p in proofs]
    out = dumps(doc)
    again = load_document(out, source=document.source, format="json-ld")
    new_body, new_proofs = split_proofs(again.quads)
    # Each proof's signed options must come through unchanged, not only their number (found
    # by a review: an option the JSON-LD form does not write, such as sec:domain or
    # previousProof, was dropped, and the proof no longer verified).
    if canonical_nquads(new_body) != canonical_nquads(body) or _proof_forms(
        new_proofs
    ) != _proof_forms(proofs):
        raise InvalidManifestError(
            "the document has statements the JSON-LD form does not carry; keep it as TriG or "
            "N-Quads (converting would invalidate its signatures)",
            path=document.source,
        )
    return out
