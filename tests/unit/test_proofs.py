"""eddsa-rdfc-2022 proofs with owmanifest's own inline context: sign, split, verify, reject."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace
from typing import Any

import pyoxigraph
import pytest

from owmanifest.errors import InvalidManifestError, SignatureError, UsageError
from owmanifest.manifest import vocab as v
from owmanifest.manifest.canonical import canonical_nquads
from owmanifest.verify._multibase import multibase_encode
from owmanifest.verify.keys import PrivateKey
from owmanifest.verify.proofs import (
    CRYPTOSUITE,
    ProofGraph,
    add_proof_to_jsonld,
    create_proof,
    is_xsd_datetime,
    proof_graph_quads,
    split_proofs,
    verify_proof,
)

DOC_ID = "https://openworm.org/data/example"
ALICE = PrivateKey.from_seed(b"a" * 32)
BOB = PrivateKey.from_seed(b"b" * 32)
CREATED = "2026-01-02T03:04:05Z"
DOCUMENT: dict[str, Any] = {
    "@context": v.CONTEXT,
    "id": DOC_ID,
    "type": ["Manifest", "Dataset"],
    "title": "example",
    "version": 3,
    "authorizedSigner": [ALICE.public_key.did, BOB.public_key.did],
    "threshold": 2,
}


def quads_of(document: dict[str, Any]) -> list[pyoxigraph.Quad]:
    return list(
        pyoxigraph.parse(json.dumps(document).encode(), format=pyoxigraph.RdfFormat.JSON_LD)
    )


CANONICAL = canonical_nquads(quads_of(DOCUMENT))


def signed(*keys: PrivateKey, document: dict[str, Any] = DOCUMENT) -> dict[str, Any]:
    out = document
    for key in keys:
        out = add_proof_to_jsonld(
            out, create_proof(CANONICAL, key, context=v.CONTEXT, created=CREATED)
        )
    return out


def one_proof(key: PrivateKey = ALICE) -> ProofGraph:
    _, (proof,) = split_proofs(quads_of(signed(key)))
    return proof


# --- the happy path ------------------------------------------------------------------------------


def test_proof_set_in_json_ld() -> None:
    document = signed(ALICE, BOB)
    body, proofs = split_proofs(quads_of(document), DOC_ID)
    assert canonical_nquads(body) == CANONICAL
    assert len(proofs) == 2
    signers = {verify_proof(CANONICAL, p).signer for p in proofs}
    assert signers == {ALICE.public_key, BOB.public_key}
    for proof in proofs:
        assert proof.type == v.SEC_DATA_INTEGRITY_PROOF
        assert proof.proof_purpose == v.SEC_ASSERTION_METHOD
        assert proof.cryptosuite == CRYPTOSUITE
        assert proof.created == CREATED
        assert proof.id is None and isinstance(proof.node, pyoxigraph.BlankNode)
        assert isinstance(proof.graph, pyoxigraph.BlankNode)
        assert all(isinstance(q.graph_name, pyoxigraph.DefaultGraph) for q in proof.quads)
        assert all(q.predicate.value != v.SEC_PROOF_VALUE for q in proof.quads)
        assert len(proof.quads) == 5


def test_proof_set_in_rdf() -> None:
    quads = quads_of(DOCUMENT)
    for key in (ALICE, BOB):
        proof = create_proof(CANONICAL, key, context=v.CONTEXT, created=CREATED)
        quads += proof_graph_quads(proof, DOC_ID, v.CONTEXT)
    data = pyoxigraph.serialize(quads, format=pyoxigraph.RdfFormat.TRIG)
    assert data is not None
    again = list(pyoxigraph.parse(data, format=pyoxigraph.RdfFormat.TRIG))
    body, proofs = split_proofs(again, DOC_ID)
    assert canonical_nquads(body) == CANONICAL
    assert {verify_proof(CANONICAL, p).signer for p in proofs} == {ALICE.public_key, BOB.public_key}


def test_json_ld_and_rdf_proofs_are_the_same_signature() -> None:
    proof = create_proof(CANONICAL, ALICE, context=v.CONTEXT, created=CREATED)
    from_rdf = split_proofs(quads_of(DOCUMENT) + proof_graph_quads(proof, DOC_ID, v.CONTEXT))[1]
    assert from_rdf[0].proof_value == one_proof().proof_value == proof["proofValue"]


def test_proof_graph_quads_shape() -> None:
    proof = create_proof(CANONICAL, ALICE, context=v.CONTEXT, created=CREATED)
    link, *rest = proof_graph_quads(proof, DOC_ID, v.CONTEXT)
    assert link.subject == pyoxigraph.NamedNode(DOC_ID)
    assert link.predicate.value == v.SEC_PROOF
    assert isinstance(link.graph_name, pyoxigraph.DefaultGraph)
    assert isinstance(link.object, pyoxigraph.BlankNode)
    assert len(rest) == 6 and all(q.graph_name == link.object for q in rest)
    # fresh blank nodes every time: two proofs never share a graph name
    assert proof_graph_quads(proof, DOC_ID, v.CONTEXT)[0].object != link.object


def test_create_proof_is_deterministic_and_has_the_expected_keys() -> None:
    first = create_proof(CANONICAL, ALICE, context=v.CONTEXT, created=CREATED)
    assert first == create_proof(CANONICAL, ALICE, context=v.CONTEXT, created=CREATED)
    assert list(first) == [
        "type",
        "cryptosuite",
        "created",
        "verificationMethod",
        "proofPurpose",
        "proofValue",
    ]
    assert first["verificationMethod"] == ALICE.public_key.verification_method
    with_id = create_proof(CANONICAL, ALICE, context=v.CONTEXT, created=CREATED, proof_id="urn:x:1")
    assert list(with_id)[:2] == ["type", "id"]
    assert with_id["proofValue"] != first["proofValue"]  # the id is signed
    _, (proof,) = split_proofs(quads_of(add_proof_to_jsonld(DOCUMENT, with_id)))
    assert proof.id == "urn:x:1" and proof.node == pyoxigraph.NamedNode("urn:x:1")
    verify_proof(CANONICAL, proof)


def test_add_proof_to_jsonld_keeps_everything_else() -> None:
    document = {**DOCUMENT, "x-unknown": {"kept": [1, 2]}}
    before = copy.deepcopy(document)
    one = add_proof_to_jsonld(document, {"p": 1})
    assert document == before  # not mutated
    assert list(one) == [*document, "proof"]
    assert one["proof"] == [{"p": 1}]
    two = add_proof_to_jsonld(one, {"p": 2})
    assert two["proof"] == [{"p": 1}, {"p": 2}] and one["proof"] == [{"p": 1}]
    single = add_proof_to_jsonld({**document, "proof": {"p": 0}}, {"p": 1})
    assert single["proof"] == [{"p": 0}, {"p": 1}]
    with pytest.raises(InvalidManifestError):
        add_proof_to_jsonld({**document, "proof": "nope"}, {"p": 1})


# --- tampering -----------------------------------------------------------------------------------


def test_changed_document_fails() -> None:
    document = signed(ALICE)
    document["title"] = "another"
    body, (proof,) = split_proofs(quads_of(document))
    with pytest.raises(SignatureError, match="does not verify") as info:
        verify_proof(canonical_nquads(body), proof)
    assert info.value.uri == ALICE.public_key.verification_method
    assert ALICE.public_key.verification_method in str(info.value)


def test_the_document_digest_is_what_is_checked() -> None:
    """A verifier that hashed the document already passes its digest; that is what is signed."""
    _, (proof,) = split_proofs(quads_of(signed(ALICE)))
    digest = hashlib.sha256(CANONICAL).digest()
    assert verify_proof(CANONICAL, proof, document_digest=digest).signer == ALICE.public_key
    with pytest.raises(SignatureError, match="does not verify"):
        verify_proof(CANONICAL, proof, document_digest=hashlib.sha256(b"other").digest())
    # a signer that hashed it already: the same proof
    again = create_proof(
        CANONICAL, ALICE, context=v.CONTEXT, created=CREATED, document_digest=digest
    )
    assert again == create_proof(CANONICAL, ALICE, context=v.CONTEXT, created=CREATED)


def test_changed_proof_options_fail() -> None:
    document = signed(ALICE)
    document["proof"][0]["created"] = "2026-01-02T03:04:06Z"
    body, (proof,) = split_proofs(quads_of(document))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_proof(canonical_nquads(body), proof)


def test_claiming_another_key_fails() -> None:
    document = signed(ALICE)
    document["proof"][0]["verificationMethod"] = BOB.public_key.verification_method
    body, (proof,) = split_proofs(quads_of(document))
    with pytest.raises(SignatureError, match="does not verify") as info:
        verify_proof(canonical_nquads(body), proof)
    assert info.value.uri == BOB.public_key.verification_method


# --- malformed proofs: a table of cases ----------------------------------------------------------

XSD_STRING = pyoxigraph.NamedNode(v.XSD_STRING)


def _set(name: str, term: Any) -> Any:
    predicate = {
        "type": v.RDF_TYPE,
        "cryptosuite": v.SEC_CRYPTOSUITE,
        "created": v.DCTERMS_CREATED,
        "verificationMethod": v.SEC_VERIFICATION_METHOD,
        "proofPurpose": v.SEC_PROOF_PURPOSE,
        "proofValue": v.SEC_PROOF_VALUE,
    }[name]

    def change(quads: list[pyoxigraph.Quad], node: Any, graph: Any) -> list[pyoxigraph.Quad]:
        kept = [q for q in quads if not (q.subject == node and q.predicate.value == predicate)]
        if term is None:
            return kept
        terms = term if isinstance(term, list) else [term]
        return kept + [
            pyoxigraph.Quad(node, pyoxigraph.NamedNode(predicate), t, graph) for t in terms
        ]

    return change


def _iri(value: str) -> pyoxigraph.NamedNode:
    return pyoxigraph.NamedNode(value)


def _lit(value: str, datatype: str | None = None) -> pyoxigraph.Literal:
    return pyoxigraph.Literal(value, datatype=None if datatype is None else _iri(datatype))


GOOD_VALUE = one_proof().proof_value
assert GOOD_VALUE is not None
SEC = v.SEC
MALFORMED: dict[str, tuple[Any, str]] = {
    "no type": (_set("type", None), "unsupported proof type"),
    "other type": (_set("type", _iri(SEC + "Ed25519Signature2020")), "unsupported proof type"),
    "two types": (_set("type", [_iri(v.SEC_DATA_INTEGRITY_PROOF), _iri(SEC + "X")]), "2 values"),
    "other suite": (_set("cryptosuite", _lit("ecdsa-rdfc-2019")), "unsupported cryptosuite"),
    "suite as IRI": (_set("cryptosuite", _iri("urn:eddsa-rdfc-2022")), "not a literal"),
    "no purpose": (_set("proofPurpose", None), "wrong proof purpose"),
    "authentication": (_set("proofPurpose", _iri(SEC + "authentication")), "wrong proof purpose"),
    "purpose literal": (_set("proofPurpose", _lit("assertionMethod")), "not an IRI"),
    "bad date": (_set("created", _lit("2026-02-30T00:00:00Z", v.XSD_DATETIME)), "xsd:dateTime"),
    "not a date": (_set("created", _lit("yesterday", v.XSD_DATETIME)), "xsd:dateTime"),
    "created string": (_set("created", _lit(CREATED)), "created is not an xsd:dateTime literal"),
    "no method": (_set("verificationMethod", None), "no verificationMethod"),
    "https method": (_set("verificationMethod", _iri("https://example.org/k")), "did:key"),
    "fragment": (
        _set("verificationMethod", _iri(ALICE.public_key.did + "#key-1")),
        "not an Ed25519 did:key",
    ),
    "method literal": (
        _set("verificationMethod", _lit(ALICE.public_key.verification_method)),
        "not an IRI",
    ),
    "no value": (_set("proofValue", None), "no proofValue"),
    "base64 value": (_set("proofValue", _lit("uAAAA", SEC + "multibase")), "multibase"),
    "short value": (
        _set("proofValue", _lit(multibase_encode(b"\1" * 63), SEC + "multibase")),
        "64 bytes",
    ),
    "two values": (
        _set(
            "proofValue",
            [_lit(GOOD_VALUE, SEC + "multibase"), _lit(GOOD_VALUE[:-1] + "2", SEC + "multibase")],
        ),
        "2 values for proofValue",
    ),
}


@pytest.mark.parametrize(("change", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_proofs_are_rejected(change: Any, message: str) -> None:
    quads = quads_of(signed(ALICE))
    _, (proof,) = split_proofs(quads)
    quads = change(quads, proof.node, proof.graph)
    body, (bad,) = split_proofs(quads)
    with pytest.raises(SignatureError) as info:
        verify_proof(canonical_nquads(body), bad)
    assert message in str(info.value)
    assert info.value.message.startswith("proof by ")


def test_expected_purpose() -> None:
    proof = one_proof()
    verify_proof(CANONICAL, proof, expected_purpose=v.SEC_ASSERTION_METHOD)
    with pytest.raises(SignatureError, match="wrong proof purpose") as info:
        verify_proof(CANONICAL, proof, expected_purpose="authentication")
    assert info.value.expected == SEC + "authentication"
    assert info.value.observed == v.SEC_ASSERTION_METHOD


# --- split_proofs structure ----------------------------------------------------------------------

G = pyoxigraph.NamedNode("urn:graph")
P = pyoxigraph.NamedNode("urn:p")


def test_statement_in_a_non_proof_graph() -> None:
    quads = [*quads_of(signed(ALICE)), pyoxigraph.Quad(G, P, G, G)]
    with pytest.raises(InvalidManifestError, match="not a proof graph") as info:
        split_proofs(quads)
    assert info.value.observed == str(G)


def test_proof_link_to_a_literal_or_to_nothing() -> None:
    link = pyoxigraph.NamedNode(v.SEC_PROOF)
    with pytest.raises(InvalidManifestError, match="must name a proof graph"):
        split_proofs([pyoxigraph.Quad(pyoxigraph.NamedNode(DOC_ID), link, _lit("x"))])
    with pytest.raises(InvalidManifestError, match="empty"):
        split_proofs(quads_of({**DOCUMENT, "proof": {}}))


def test_document_argument_selects_the_links() -> None:
    quads = quads_of(signed(ALICE))
    assert len(split_proofs(quads, DOC_ID)[1]) == 1
    with pytest.raises(InvalidManifestError, match="not a proof graph"):
        split_proofs(quads, "https://openworm.org/data/other")


def test_unsigned_document() -> None:
    body, proofs = split_proofs(quads_of(DOCUMENT))
    assert proofs == [] and canonical_nquads(body) == CANONICAL


# --- create_proof refuses what would not be signed -----------------------------------------------


def test_context_without_proof_terms() -> None:
    context = {k: val for k, val in v.CONTEXT.items() if k not in ("created", "cryptosuite")}
    context.pop("@protected")
    with pytest.raises(InvalidManifestError, match="would not be signed"):
        create_proof(CANONICAL, ALICE, context=context, created=CREATED)


def test_remote_context_is_never_fetched() -> None:
    with pytest.raises(InvalidManifestError, match="remote contexts are never fetched"):
        create_proof(
            CANONICAL, ALICE, context="https://www.w3.org/ns/credentials/v2", created=CREATED
        )


@pytest.mark.parametrize("created", ["2026-01-02T03:04:05", "2026-01-02", "now", ""])
def test_created_needs_a_timezone(created: str) -> None:
    with pytest.raises(UsageError, match="created"):
        create_proof(CANONICAL, ALICE, context=v.CONTEXT, created=created)


DATETIMES = {
    "2026-01-02T03:04:05Z": (True, True),
    "2026-01-02T03:04:05.123+02:00": (True, True),
    "2026-01-02T03:04:05": (True, False),
    "2024-02-29T00:00:00Z": (True, True),
    "2023-02-29T00:00:00Z": (False, False),
    "2026-01-02T24:00:00Z": (True, True),
    "2026-01-02T24:00:01Z": (False, False),
    "12026-01-02T00:00:00Z": (True, True),
    "2026-1-02T00:00:00Z": (False, False),
    "2026-01-02 00:00:00Z": (False, False),
    "2026-01-02T00:00:00+15:00": (False, False),
    "2026-01-02T00:00:00Z\n": (False, False),
    "2099-02-30T12:00:00Z": (False, False),
    "2026-04-31T00:00:00Z": (False, False),
    "10000-02-29T00:00:00Z": (True, True),  # divisible by 400: a leap year
    "10100-02-29T00:00:00Z": (False, False),
    "12026-02-30T00:00:00Z": (False, False),  # a real date in any year, not only 1-9999
    "-0001-01-01T00:00:00Z": (True, True),
    "0000-02-29T00:00:00Z": (True, True),  # 1 BCE, a leap year
    "2026-01-02T00:00:00+99:99": (False, False),
    "2026-01-02T00:00:00+14:00": (True, True),
}


@pytest.mark.parametrize(("text", "valid"), DATETIMES.items(), ids=list(DATETIMES))
def test_is_xsd_datetime(text: str, valid: tuple[bool, bool]) -> None:
    assert (is_xsd_datetime(text), is_xsd_datetime(text, require_timezone=True)) == valid


def test_replace_keeps_proofgraph_frozen() -> None:
    proof = one_proof()
    with pytest.raises(AttributeError):
        proof.created = "x"  # type: ignore[misc]
    assert replace(proof, created=None).created is None
