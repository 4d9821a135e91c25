"""W3C Data Integrity proofs with the ``eddsa-rdfc-2022`` cryptosuite, at the RDF level.

A signed document is an RDF dataset. Each proof is a named graph (usually named by a blank
node) holding one ``sec:DataIntegrityProof`` node, linked from the document by
``<doc> sec:proof <graph>`` in the default graph; this is what JSON-LD produces for a
``"proof"`` term with ``"@container": "@graph"``. Following the cryptosuite specification
(W3C Recommendation, 2025, sections 3.3.1-3.3.6):

* the *document* is the dataset without any proof, canonicalized with RDFC-1.0;
* the *proof configuration* is the proof's statements without ``proofValue``, moved to the
  default graph, canonicalized with RDFC-1.0. The proof options are expanded with the
  document's own ``@context``, so that context must define the proof terms (``type``,
  ``cryptosuite``, ``created``, ``verificationMethod``, ``proofPurpose``): undefined terms would
  silently drop out of the signed bytes. :func:`create_proof` refuses such a context;
* the signed message is ``sha256(proof configuration) || sha256(document)`` (64 bytes), and
  ``proofValue`` is the multibase base58btc Ed25519 signature of it.

Proof *sets* (several independent proofs over the same document) are what owmanifest uses:
each proof signs the document without any proof. Proof *chains* (``previousProof``) are parsed
(:attr:`ProofGraph.previous_proof`) but not followed by :func:`verify_proof`, which checks a
proof against the document it is given; a chained proof signs the document together with the
proofs it names, which :func:`chained_document_quads` assembles for callers that want to verify
one.

Nothing here does I/O: functions take quads or bytes and return values or raise.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pyoxigraph

from .._gc import paused_gc
from ..errors import CanonicalizationError, InvalidManifestError, SignatureError, UsageError
from ..manifest import vocab as v
from ..manifest._rdftext import shown
from ..manifest.canonical import canonical_nquads
from ..manifest.model import is_xsd_datetime
from ._multibase import multibase_decode, multibase_encode
from .keys import PrivateKey, PublicKey

__all__ = [
    "CRYPTOSUITE",
    "PROOF_TYPE",
    "ProofGraph",
    "VerifiedProof",
    "add_proof_to_jsonld",
    "chained_document_quads",
    "create_proof",
    "is_xsd_datetime",
    "proof_graph_quads",
    "split_proofs",
    "verify_proof",
]

CRYPTOSUITE: Final = "eddsa-rdfc-2022"
#: The JSON-LD type of a proof (IRI :data:`~owmanifest.manifest.vocab.SEC_DATA_INTEGRITY_PROOF`).
PROOF_TYPE: Final = "DataIntegrityProof"

_RDF_TYPE: Final = pyoxigraph.NamedNode(v.RDF_TYPE)
_SEC_PROOF: Final = pyoxigraph.NamedNode(v.SEC_PROOF)
_PROOF_VALUE: Final = pyoxigraph.NamedNode(v.SEC_PROOF_VALUE)
_CRYPTOSUITE: Final = pyoxigraph.NamedNode(v.SEC_CRYPTOSUITE)
_VERIFICATION_METHOD: Final = pyoxigraph.NamedNode(v.SEC_VERIFICATION_METHOD)
_PROOF_PURPOSE: Final = pyoxigraph.NamedNode(v.SEC_PROOF_PURPOSE)
_PREVIOUS_PROOF: Final = pyoxigraph.NamedNode(v.SEC_PREVIOUS_PROOF)
# The Data Integrity context maps "created" to dcterms:created, as our CONTEXT does.
_CREATED: Final = pyoxigraph.NamedNode(v.DCTERMS_CREATED)
_XSD_DATETIME: Final = pyoxigraph.NamedNode(v.XSD_DATETIME)
_DATA_INTEGRITY_PROOF: Final = pyoxigraph.NamedNode(v.SEC_DATA_INTEGRITY_PROOF)

_SIGNATURE_SIZE: Final = 64

_Node = pyoxigraph.BlankNode | pyoxigraph.NamedNode


@dataclass(frozen=True)
class ProofGraph:
    """One proof found in a dataset (not yet verified).

    IRIs are given as full IRIs (``type`` is ``https://w3id.org/security#DataIntegrityProof``,
    ``proof_purpose`` ``https://w3id.org/security#assertionMethod``); literals by their lexical
    value.

    Attributes:
        graph: the proof's named graph.
        node: the proof node (a blank node, or the IRI given by the proof's ``id``).
        quads: the proof options: the proof's statements in the default graph, without
            ``proofValue``; what is canonicalized as the proof configuration.
        proof_value: ``proofValue`` (multibase), if any.
        cryptosuite: ``cryptosuite``, if any.
        type: the ``rdf:type`` IRI of the proof node, if any.
        verification_method: the ``verificationMethod`` IRI, if any.
        proof_purpose: the ``proofPurpose`` IRI, if any.
        created: the lexical value of ``created``, if any.
        id: the proof node's IRI when it has one (JSON-LD ``id``), else ``None``.
        previous_proof: the IRIs named by ``previousProof`` (proof chains).
        statements: the proof as found in the dataset: the ``sec:proof`` link and the quads of
            its graph, ``proofValue`` included (see :func:`chained_document_quads`).
        problems: why the proof is malformed (several values for a single-valued property, a
            literal where an IRI belongs, ...); :func:`verify_proof` rejects a proof with any.
    """

    graph: pyoxigraph.BlankNode | pyoxigraph.NamedNode
    node: pyoxigraph.BlankNode | pyoxigraph.NamedNode
    quads: tuple[pyoxigraph.Quad, ...]
    proof_value: str | None
    cryptosuite: str | None
    type: str | None
    verification_method: str | None
    proof_purpose: str | None
    created: str | None
    id: str | None = None
    previous_proof: tuple[str, ...] = ()
    statements: tuple[pyoxigraph.Quad, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifiedProof:
    """A proof whose signature verified.

    Attributes:
        signer: the public key that signed.
        verification_method: the proof's ``verificationMethod`` (``did:key:...#...``).
        created: the proof's ``created`` timestamp, if any (not checked against a clock).
        proof: the proof.
    """

    signer: PublicKey
    verification_method: str
    created: str | None
    proof: ProofGraph


@paused_gc
def split_proofs(
    quads: Iterable[pyoxigraph.Quad], document: str | None = None
) -> tuple[list[pyoxigraph.Quad], list[ProofGraph]]:
    """Separate a signed dataset into the document and its proofs.

    Args:
        quads: the dataset.
        document: the IRI of the signed document; if ``None``, a ``sec:proof`` statement in the
            default graph of any subject links a proof.

    Returns:
        The document's quads (without the ``sec:proof`` links and without any quad of a proof
        graph), in input order without duplicates; and the proofs, sorted by verification
        method, creation time and proof value.

    Raises:
        InvalidManifestError: a quad in a named graph that is not a proof graph, a ``sec:proof``
            that does not name a graph, an empty proof graph, or a proof graph in which the
            proof node cannot be told apart.
    """
    unique = list(dict.fromkeys(quads))
    subject = None if document is None else pyoxigraph.NamedNode(document)
    links: dict[_Node, list[pyoxigraph.Quad]] = {}
    for quad in unique:
        if (
            isinstance(quad.graph_name, pyoxigraph.DefaultGraph)
            and quad.predicate == _SEC_PROOF
            and (subject is None or quad.subject == subject)
        ):
            target = quad.object
            if not isinstance(target, (pyoxigraph.BlankNode, pyoxigraph.NamedNode)):
                raise InvalidManifestError(
                    "sec:proof must name a proof graph",
                    uri=document,
                    expected="a blank node or IRI naming a graph",
                    observed=shown(quad),
                )
            links.setdefault(target, []).append(quad)
    body: list[pyoxigraph.Quad] = []
    graphs: defaultdict[_Node, list[pyoxigraph.Quad]] = defaultdict(list)
    for quad in unique:
        graph = quad.graph_name
        if isinstance(graph, pyoxigraph.DefaultGraph):
            if not (
                quad.predicate == _SEC_PROOF
                and quad.object in links
                and (subject is None or quad.subject == subject)
            ):
                body.append(quad)
        elif graph in links:
            graphs[graph].append(quad)
        else:
            raise InvalidManifestError(
                "a statement is in a named graph that is not a proof graph",
                uri=document,
                expected="named graphs only for proofs (linked by sec:proof)",
                observed=shown(graph),
            )
    proofs = [_read_proof(graph, links[graph], graphs.get(graph, []), document) for graph in links]
    proofs.sort(
        key=lambda p: (
            p.verification_method or "",
            p.created or "",
            p.proof_value or "",
            str(p.graph),
        )
    )
    return body, proofs


def verify_proof(
    canonical_document: bytes,
    proof: ProofGraph,
    *,
    expected_purpose: str = "assertionMethod",
    document_digest: bytes | None = None,
) -> VerifiedProof:
    """Verify one ``eddsa-rdfc-2022`` proof over a canonical document.

    Args:
        canonical_document: RDFC-1.0 canonical N-Quads of the document without its proofs
            (:func:`~owmanifest.manifest.canonical.canonical_nquads` of
            :func:`split_proofs`' first result).
        proof: the proof.
        expected_purpose: the proof purpose required: a term of the security vocabulary
            (``assertionMethod``) or a full IRI.
        document_digest: the SHA-256 of ``canonical_document``, when the caller has it (a
            verifier of several proofs over a large document hashes it once).

    Returns:
        The verified proof and its signer. Whether the signer is *trusted* is not decided here.

    Raises:
        SignatureError: the proof is malformed, has another type, cryptosuite or purpose, an
            invalid ``created``, a ``verificationMethod`` that is not an Ed25519 ``did:key``, a
            ``proofValue`` that is not a 64-byte base58btc signature, or a signature that does
            not verify. The message names the verification method; ``expected`` and
            ``observed`` say what was wrong.
    """
    method = proof.verification_method

    def fail(reason: str, expected: Any = None, observed: Any = None) -> SignatureError:
        return SignatureError(
            f"proof by {method or '(no verificationMethod)'}: {reason}",
            uri=method,
            expected=expected,
            observed=observed,
        )

    if proof.problems:
        raise fail("malformed proof: " + "; ".join(proof.problems))
    if proof.type != v.SEC_DATA_INTEGRITY_PROOF:
        raise fail("unsupported proof type", v.SEC_DATA_INTEGRITY_PROOF, proof.type)
    if proof.cryptosuite != CRYPTOSUITE:
        raise fail("unsupported cryptosuite", CRYPTOSUITE, proof.cryptosuite)
    purpose = expected_purpose if ":" in expected_purpose else v.SEC + expected_purpose
    if proof.proof_purpose != purpose:
        raise fail("wrong proof purpose", purpose, proof.proof_purpose)
    if proof.created is not None and not is_xsd_datetime(proof.created):
        raise fail("created is not a valid xsd:dateTime", "xsd:dateTime", proof.created)
    if method is None:
        raise fail("no verificationMethod", "did:key:z6Mk...#z6Mk...", None)
    try:
        signer = PublicKey.from_did(method)
    except SignatureError as error:
        raise fail(
            f"verificationMethod is not an Ed25519 did:key ({error.message})",
            "did:key:z6Mk...#z6Mk...",
            method,
        ) from None
    if proof.proof_value is None:
        raise fail("no proofValue", "a multibase base58btc signature", None)
    try:
        signature = multibase_decode(proof.proof_value)
    except SignatureError as error:
        raise fail(
            f"proofValue is not multibase base58btc ({error.message})",
            error.expected,
            error.observed,
        ) from None
    if len(signature) != _SIGNATURE_SIZE:
        raise fail("proofValue is not an Ed25519 signature", "64 bytes", f"{len(signature)} bytes")
    try:
        proof_config = canonical_nquads(proof.quads)
    except CanonicalizationError as error:
        raise fail(f"the proof options cannot be canonicalized ({error.message})") from None
    try:
        signer.verify(_hash_data(proof_config, canonical_document, document_digest), signature)
    except SignatureError:
        raise fail(
            "signature does not verify",
            f"a signature by {signer.did} over this document and proof configuration",
            "a signature that does not match (document or proof changed, or another key)",
        ) from None
    return VerifiedProof(
        signer=signer, verification_method=method, created=proof.created, proof=proof
    )


def create_proof(
    canonical_document: bytes,
    key: PrivateKey,
    *,
    context: Any,
    created: str,
    proof_purpose: str = "assertionMethod",
    proof_id: str | None = None,
    document_digest: bytes | None = None,
) -> dict[str, Any]:
    """Sign a canonical document: the JSON-LD proof object to add to the document's proofs.

    The proof configuration (the proof options with ``"@context": context``) is converted to
    RDF and canonicalized, exactly as the cryptosuite specifies; Ed25519 is deterministic, so
    the same inputs give the same ``proofValue``.

    Args:
        canonical_document: RDFC-1.0 canonical N-Quads of the document without proofs.
        key: the signing key; the verification method is its ``did:key:<mb>#<mb>``.
        context: the document's ``@context`` (for owmanifest, ``vocab.CONTEXT``).
        created: an ``xsd:dateTimeStamp`` (timezone required), e.g. ``2026-01-02T00:00:00Z``.
        proof_purpose: the JSON-LD term of the purpose.
        proof_id: an IRI for the proof (JSON-LD ``id``), if wanted.
        document_digest: the SHA-256 of ``canonical_document``, when the caller has it (as
            for :func:`verify_proof`).

    Returns:
        ``{"type", ["id"], "cryptosuite", "created", "verificationMethod", "proofPurpose",
        "proofValue"}``, ready for :func:`add_proof_to_jsonld` or :func:`proof_graph_quads`.

    Raises:
        UsageError: ``created`` is not an ``xsd:dateTime`` with a timezone.
        InvalidManifestError: ``context`` refers to a remote context, cannot be processed, or
            does not define the proof terms (they would not be signed).
    """
    if not is_xsd_datetime(created, require_timezone=True):
        raise UsageError(
            "created must be an xsd:dateTime with a timezone",
            expected="e.g. 2026-01-02T00:00:00Z",
            observed=created,
        )
    method = key.public_key.verification_method
    options: dict[str, Any] = {"type": PROOF_TYPE}
    if proof_id is not None:
        options["id"] = proof_id
    options.update(
        cryptosuite=CRYPTOSUITE,
        created=created,
        verificationMethod=method,
        proofPurpose=proof_purpose,
    )
    quads = _jsonld_to_quads({"@context": context, **options})
    node: _Node = pyoxigraph.NamedNode(proof_id) if proof_id is not None else _only_subject(quads)
    purpose = proof_purpose if ":" in proof_purpose else v.SEC + proof_purpose
    required = [
        pyoxigraph.Quad(node, _RDF_TYPE, _DATA_INTEGRITY_PROOF),
        pyoxigraph.Quad(
            node,
            _CRYPTOSUITE,
            pyoxigraph.Literal(
                CRYPTOSUITE, datatype=pyoxigraph.NamedNode(v.SEC_CRYPTOSUITE_STRING)
            ),
        ),
        pyoxigraph.Quad(node, _CREATED, pyoxigraph.Literal(created, datatype=_XSD_DATETIME)),
        pyoxigraph.Quad(node, _VERIFICATION_METHOD, pyoxigraph.NamedNode(method)),
        pyoxigraph.Quad(node, _PROOF_PURPOSE, pyoxigraph.NamedNode(purpose)),
    ]
    present = set(quads)
    missing = [str(q) for q in required if q not in present]
    if missing:
        raise InvalidManifestError(
            "the @context does not define the Data Integrity proof terms; they would not be signed",
            expected=" . ".join(missing),
            observed=" . ".join(sorted(str(q) for q in quads)) or "no statements",
        )
    proof_config = canonical_nquads(quads)
    signature = key.sign(_hash_data(proof_config, canonical_document, document_digest))
    return {**options, "proofValue": multibase_encode(signature)}


def add_proof_to_jsonld(document: dict[str, Any], proof: dict[str, Any]) -> dict[str, Any]:
    """A copy of a JSON-LD ``document`` with ``proof`` appended to its proof set.

    ``"proof"`` becomes a list (an existing single proof object is kept as its first element);
    every other key is kept as is, in its place.

    Raises:
        InvalidManifestError: the document's ``"proof"`` is neither an object nor a list.
    """
    existing = document.get("proof")
    if existing is None:
        proofs: list[Any] = []
    elif isinstance(existing, list):
        proofs = list(existing)
    elif isinstance(existing, dict):
        proofs = [existing]
    else:
        raise InvalidManifestError(
            "the document's proof is neither an object nor a list",
            expected="object or array",
            observed=type(existing).__name__,
        )
    out = dict(document)
    out["proof"] = [*proofs, dict(proof)]
    return out


def proof_graph_quads(
    proof: dict[str, Any], document_id: str, context: Any
) -> list[pyoxigraph.Quad]:
    """The quads to add to an RDF (TriG, N-Quads) document for ``proof``.

    ``<document_id> sec:proof _:g`` in the default graph, and the proof's statements in the
    named graph ``_:g``, with fresh blank nodes: exactly what the JSON-LD form denotes.

    Raises:
        InvalidManifestError: ``context`` does not map ``proof`` to a ``@graph`` container, or
            cannot be processed.
    """
    quads = _jsonld_to_quads({"@context": context, "id": document_id, "proof": [proof]})
    links = [q for q in quads if isinstance(q.graph_name, pyoxigraph.DefaultGraph)]
    ok = (
        len(links) == 1
        and links[0].subject == pyoxigraph.NamedNode(document_id)
        and links[0].predicate == _SEC_PROOF
        and all(q.graph_name == links[0].object for q in quads if q is not links[0])
        and len(quads) > 1
    )
    if not ok:
        raise InvalidManifestError(
            "the context does not turn the proof into a proof graph",
            uri=document_id,
            expected='"proof": {"@id": "sec:proof", "@container": "@graph"}',
            observed=" . ".join(str(q) for q in quads),
        )
    return [links[0], *(q for q in quads if q is not links[0])]


def chained_document_quads(
    document: Sequence[pyoxigraph.Quad], proofs: Sequence[ProofGraph], proof: ProofGraph
) -> list[pyoxigraph.Quad]:
    """The dataset a chained proof signs: the document plus the proofs it names.

    For a proof with ``previousProof`` (VC Data Integrity 1.0, section 4.3), the signed
    document carries the proofs whose ids are listed there, ``proofValue`` included.
    Canonicalize the result and pass it to :func:`verify_proof` to verify a chained proof.
    owmanifest itself uses proof sets only.

    Args:
        document: the document without proofs (from :func:`split_proofs`).
        proofs: all the proofs of the dataset.
        proof: the chained proof.

    Raises:
        SignatureError: a proof named by ``previousProof`` is not in ``proofs``.
    """
    by_id = {p.id: p for p in proofs if p.id is not None}
    out = list(document)
    for previous in proof.previous_proof:
        found = by_id.get(previous)
        if found is None:
            raise SignatureError(
                "previousProof names a proof that is not in the document",
                uri=proof.verification_method,
                expected=previous,
                observed=", ".join(sorted(by_id)) or "no proof with an id",
            )
        out.extend(found.statements)
    return out


# --- helpers -------------------------------------------------------------------------------------


def _hash_data(
    proof_config: bytes, canonical_document: bytes, document_digest: bytes | None = None
) -> bytes:
    if document_digest is None:
        document_digest = hashlib.sha256(canonical_document).digest()
    return hashlib.sha256(proof_config).digest() + document_digest


def _jsonld_to_quads(document: dict[str, Any]) -> list[pyoxigraph.Quad]:
    try:
        data = json.dumps(document).encode()
    except (TypeError, ValueError) as error:
        raise InvalidManifestError(f"the @context is not JSON: {error}") from None
    try:
        return list(pyoxigraph.parse(data, format=pyoxigraph.RdfFormat.JSON_LD))
    except (SyntaxError, ValueError) as error:
        raise InvalidManifestError(
            f"cannot process the JSON-LD proof with this @context: {error} "
            "(remote contexts are never fetched; use an inline context)"
        ) from None


def _only_subject(quads: Sequence[pyoxigraph.Quad]) -> _Node:
    subjects = {q.subject for q in quads}
    if len(subjects) != 1:
        raise InvalidManifestError(
            "the @context does not define the Data Integrity proof terms",
            expected="one proof node",
            observed=f"{len(subjects)} subjects",
        )
    (node,) = subjects
    if isinstance(node, pyoxigraph.Triple):
        raise InvalidManifestError("a proof cannot be a triple term", observed=str(node))
    return node


def _read_proof(
    graph: _Node,
    links: list[pyoxigraph.Quad],
    quads: list[pyoxigraph.Quad],
    document: str | None,
) -> ProofGraph:
    if not quads:
        raise InvalidManifestError(
            "a proof graph is empty", uri=document, expected="a proof", observed=shown(graph)
        )
    subjects = list(dict.fromkeys(q.subject for q in quads))
    if len(subjects) == 1:
        node = subjects[0]
    else:
        typed = {
            q.subject
            for q in quads
            if q.predicate == _RDF_TYPE and q.object == _DATA_INTEGRITY_PROOF
        }
        objects = {q.object for q in quads}
        roots = [s for s in subjects if s not in objects]
        if len(typed) == 1:
            (node,) = typed
        elif len(roots) == 1:
            node = roots[0]
        else:
            raise InvalidManifestError(
                "cannot tell which node of a proof graph is the proof",
                uri=document,
                expected="one DataIntegrityProof node",
                observed=f"{len(subjects)} subjects in {shown(graph)}",
            )
    if isinstance(node, pyoxigraph.Triple):
        raise InvalidManifestError(
            "a proof cannot be a triple term", uri=document, observed=str(node)
        )

    problems: list[str] = []
    values: defaultdict[str, list[pyoxigraph.NamedNode | pyoxigraph.BlankNode | pyoxigraph.Literal]]
    values = defaultdict(list)
    for quad in quads:
        if quad.subject == node and not isinstance(quad.object, pyoxigraph.Triple):
            values[quad.predicate.value].append(quad.object)

    def single(predicate: str, name: str, *, iri: bool) -> str | None:
        found = values.get(predicate, [])
        if not found:
            return None
        if len(found) > 1:
            problems.append(f"{len(found)} values for {name}")
        term = min(found, key=str)
        if iri and not isinstance(term, pyoxigraph.NamedNode):
            problems.append(f"{name} is not an IRI")
        if not iri and not isinstance(term, pyoxigraph.Literal):
            problems.append(f"{name} is not a literal")
        return term.value

    proof_type = single(v.RDF_TYPE, "type", iri=True)
    cryptosuite = single(v.SEC_CRYPTOSUITE, "cryptosuite", iri=False)
    method = single(v.SEC_VERIFICATION_METHOD, "verificationMethod", iri=True)
    purpose = single(v.SEC_PROOF_PURPOSE, "proofPurpose", iri=True)
    created = single(v.DCTERMS_CREATED, "created", iri=False)
    proof_value = single(v.SEC_PROOF_VALUE, "proofValue", iri=False)
    created_terms = values.get(v.DCTERMS_CREATED, [])
    if any(
        isinstance(t, pyoxigraph.Literal) and t.datatype != _XSD_DATETIME for t in created_terms
    ):
        problems.append("created is not an xsd:dateTime literal")
    # proofValue is not signed (it is the signature): its datatype must be pinned, or the
    # same signature could be restated in other forms that all verify.
    if any(
        isinstance(t, pyoxigraph.Literal) and t.datatype.value != v.SEC_MULTIBASE
        for t in values.get(v.SEC_PROOF_VALUE, [])
    ):
        problems.append("proofValue is not a sec:multibase literal")
    previous = tuple(
        sorted(
            t.value
            for t in values.get(v.SEC_PREVIOUS_PROOF, [])
            if isinstance(t, pyoxigraph.NamedNode)
        )
    )
    if len(previous) != len(values.get(v.SEC_PREVIOUS_PROOF, [])):
        problems.append("previousProof is not an IRI")

    options = tuple(
        sorted(
            (
                pyoxigraph.Quad(q.subject, q.predicate, q.object)
                for q in quads
                if not (q.subject == node and q.predicate == _PROOF_VALUE)
            ),
            key=str,
        )
    )
    return ProofGraph(
        graph=graph,
        node=node,
        quads=options,
        proof_value=proof_value,
        cryptosuite=cryptosuite,
        type=proof_type,
        verification_method=method,
        proof_purpose=purpose,
        created=created,
        id=node.value if isinstance(node, pyoxigraph.NamedNode) else None,
        previous_proof=previous,
        statements=(*links, *quads),
        problems=tuple(problems),
    )
