"""The W3C vc-di-eddsa test vectors (eddsa-rdfc-2022), reproduced byte for byte.

The vectors use the remote contexts https://www.w3.org/ns/credentials/v2 and .../examples/v2,
which we never fetch. tests/assets/contexts/credentials-v2-subset.jsonld maps just the terms the
vectors use to the IRIs visible in canonDocDataInt.txt and proofCanonDataInt.txt; it is
substituted for the remote URLs here, and only here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyoxigraph
import pytest

from owmanifest.errors import SignatureError
from owmanifest.manifest.canonical import canonical_nquads
from owmanifest.verify._multibase import multibase_decode, multibase_encode
from owmanifest.verify.keys import PrivateKey, PublicKey
from owmanifest.verify.proofs import (
    ProofGraph,
    chained_document_quads,
    create_proof,
    split_proofs,
    verify_proof,
)

REMOTE = ["https://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/credentials/examples/v2"]
SUBSET = Path(__file__).resolve().parents[1] / "assets/contexts/credentials-v2-subset.jsonld"
CONTEXT: Any = json.loads(SUBSET.read_text("utf-8"))["@context"]
DOC_ID = "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33"


@pytest.fixture(scope="module")
def vectors(shared_dir: Path) -> Path:
    path = shared_dir / "vectors/vc-di-eddsa/TestVectors"
    if not path.is_dir():
        pytest.skip("vc-di-eddsa test vectors not found")
    return path


def load(path: Path) -> dict[str, Any]:
    """A vector document with our inline subset context instead of the remote ones."""
    document: dict[str, Any] = json.loads(path.read_text("utf-8"))
    if "@context" in document:
        assert document["@context"] == REMOTE, "only the two known remote contexts are replaced"
        document["@context"] = CONTEXT
    return document


def to_quads(document: dict[str, Any]) -> list[pyoxigraph.Quad]:
    data = json.dumps(document).encode()
    return list(pyoxigraph.parse(data, format=pyoxigraph.RdfFormat.JSON_LD))


def text(vectors: Path, name: str) -> str:
    return (vectors / "eddsa-rdfc-2022" / name).read_text("utf-8").strip()


def unsigned(vectors: Path) -> dict[str, Any]:
    signed = load(vectors / "eddsa-rdfc-2022/signedDataInt.json")
    return {k: v for k, v in signed.items() if k != "proof"}


def key_pair(vectors: Path, name: str | None = None) -> PrivateKey:
    if name is None:
        pair = json.loads((vectors / "keyPair.json").read_text("utf-8"))
    else:
        pair = json.loads((vectors / "proof-set-chain/multiKeyPairs.json").read_text("utf-8"))[name]
    key = PrivateKey.from_multibase(pair["privateKeyMultibase"])
    assert key.public_key.multibase == pair["publicKeyMultibase"]
    assert key.to_multibase() == pair["privateKeyMultibase"]
    return key


# --- eddsa-rdfc-2022, step by step ---------------------------------------------------------------


def test_canonical_document(vectors: Path) -> None:
    canonical = canonical_nquads(to_quads(unsigned(vectors)))
    assert canonical == (vectors / "eddsa-rdfc-2022/canonDocDataInt.txt").read_bytes()
    assert hashlib.sha256(canonical).hexdigest() == text(vectors, "docHashDataInt.txt")


def test_canonical_proof_config(vectors: Path) -> None:
    config = load(vectors / "eddsa-rdfc-2022/proofConfigDataInt.json")
    canonical = canonical_nquads(to_quads(config))
    assert canonical == (vectors / "eddsa-rdfc-2022/proofCanonDataInt.txt").read_bytes()
    assert hashlib.sha256(canonical).hexdigest() == text(vectors, "proofHashDataInt.txt")


def test_proof_options_read_from_the_signed_document_are_the_proof_config(vectors: Path) -> None:
    _, (proof,) = split_proofs(to_quads(load(vectors / "eddsa-rdfc-2022/signedDataInt.json")))
    expected = (vectors / "eddsa-rdfc-2022/proofCanonDataInt.txt").read_bytes()
    assert canonical_nquads(proof.quads) == expected
    assert all(isinstance(q.graph_name, pyoxigraph.DefaultGraph) for q in proof.quads)


def test_combined_hash_and_signature(vectors: Path) -> None:
    proof_hash = bytes.fromhex(text(vectors, "proofHashDataInt.txt"))
    doc_hash = bytes.fromhex(text(vectors, "docHashDataInt.txt"))
    combined = proof_hash + doc_hash
    assert combined.hex() == text(vectors, "combinedHashDataInt.txt")
    signature = key_pair(vectors).sign(combined)
    assert signature.hex() == text(vectors, "sigHexDataInt.txt")
    assert multibase_encode(signature) == text(vectors, "sigBTC58DataInt.txt")


def test_create_proof_reproduces_the_signed_vector(vectors: Path) -> None:
    signed = load(vectors / "eddsa-rdfc-2022/signedDataInt.json")
    canonical = canonical_nquads(to_quads(unsigned(vectors)))
    proof = create_proof(
        canonical, key_pair(vectors), context=CONTEXT, created="2023-02-24T23:36:38Z"
    )
    assert proof == signed["proof"]


def test_verify_the_signed_vector(vectors: Path) -> None:
    body, proofs = split_proofs(to_quads(load(vectors / "eddsa-rdfc-2022/signedDataInt.json")))
    canonical = canonical_nquads(body)
    assert canonical == (vectors / "eddsa-rdfc-2022/canonDocDataInt.txt").read_bytes()
    (proof,) = proofs
    verified = verify_proof(canonical, proof)
    assert verified.signer == key_pair(vectors).public_key
    assert verified.created == "2023-02-24T23:36:38Z"
    assert verified.verification_method == proof.verification_method


def _signed_vector(vectors: Path) -> tuple[bytes, ProofGraph]:
    body, (proof,) = split_proofs(to_quads(load(vectors / "eddsa-rdfc-2022/signedDataInt.json")))
    return canonical_nquads(body), proof


def test_flipping_any_signature_byte_fails(vectors: Path) -> None:
    canonical, proof = _signed_vector(vectors)
    assert proof.proof_value is not None
    signature = multibase_decode(proof.proof_value)
    for i in range(len(signature)):
        bad = bytearray(signature)
        bad[i] ^= 0x01
        tampered = _replace(proof, proof_value=multibase_encode(bytes(bad)))
        with pytest.raises(SignatureError, match="does not verify"):
            verify_proof(canonical, tampered)


def test_flipping_any_document_byte_fails(vectors: Path) -> None:
    canonical, proof = _signed_vector(vectors)
    for i in range(len(canonical)):
        bad = bytearray(canonical)
        bad[i] ^= 0x01
        with pytest.raises(SignatureError) as info:
            verify_proof(bytes(bad), proof)
        assert proof.verification_method is not None
        assert info.value.uri == proof.verification_method


def test_changing_the_proof_options_fails(vectors: Path) -> None:
    canonical, proof = _signed_vector(vectors)
    created = pyoxigraph.NamedNode("http://purl.org/dc/terms/created")
    later = pyoxigraph.Literal(
        "2023-02-24T23:36:39Z",
        datatype=pyoxigraph.NamedNode("http://www.w3.org/2001/XMLSchema#dateTime"),
    )
    quads = tuple(
        pyoxigraph.Quad(q.subject, q.predicate, later) if q.predicate == created else q
        for q in proof.quads
    )
    with pytest.raises(SignatureError, match="does not verify"):
        verify_proof(canonical, _replace(proof, quads=quads))


def _replace(proof: ProofGraph, **changes: Any) -> ProofGraph:
    from dataclasses import replace

    return replace(proof, **changes)


# --- proof sets and chains -----------------------------------------------------------------------

SIGNERS = {
    "urn:uuid:26329423-bec9-4b2e-88cb-a7c7d9dc4544": "keyPair1",
    "urn:uuid:8cc9022b-6b14-4cf3-8571-74972c5feb54": "keyPair2",
    "urn:uuid:d94f792a-c546-4d06-b38a-da070ab56c23": "keyPair3",
}


@pytest.mark.parametrize("name", ["signedProofSet1.json", "signedProofSet2.json"])
def test_proof_sets_verify(vectors: Path, name: str) -> None:
    body, proofs = split_proofs(to_quads(load(vectors / "proof-set-chain" / name)), DOC_ID)
    canonical = canonical_nquads(body)
    assert canonical == (vectors / "eddsa-rdfc-2022/canonDocDataInt.txt").read_bytes()
    assert len(proofs) == (1 if name.endswith("1.json") else 2)
    for proof in proofs:
        assert proof.id is not None
        verified = verify_proof(canonical, proof)
        assert verified.signer == key_pair(vectors, SIGNERS[proof.id]).public_key


@pytest.mark.parametrize("number", [1, 2])
def test_create_proof_with_an_id_reproduces_the_proof_set_vectors(
    vectors: Path, number: int
) -> None:
    signed = load(vectors / f"proof-set-chain/proofSetConfigSigned{number}.json")
    canonical = canonical_nquads(to_quads(unsigned(vectors)))
    proof = create_proof(
        canonical,
        key_pair(vectors, f"keyPair{number}"),
        context=CONTEXT,
        created=signed["created"],
        proof_id=signed["id"],
    )
    assert proof == signed


@pytest.mark.parametrize("name", ["signedProofChain1.json", "signedProofChain2.json"])
def test_proof_chains(vectors: Path, name: str) -> None:
    """Chained proofs verify over the document plus the proofs they name; not over the bare
    document (owmanifest's own verification uses proof sets only)."""
    body, proofs = split_proofs(to_quads(load(vectors / "proof-set-chain" / name)), DOC_ID)
    canonical = canonical_nquads(body)
    chained = [p for p in proofs if p.previous_proof]
    assert len(chained) == (1 if name.endswith("1.json") else 2)
    for proof in proofs:
        if not proof.previous_proof:
            verify_proof(canonical, proof)
            continue
        with pytest.raises(SignatureError, match="does not verify"):
            verify_proof(canonical, proof)
        document = canonical_nquads(chained_document_quads(body, proofs, proof))
        verified = verify_proof(document, proof)
        if proof.id is not None:
            assert verified.signer == key_pair(vectors, SIGNERS[proof.id]).public_key
        else:
            assert verified.signer == key_pair(vectors, "keyPair4").public_key


def test_chain_with_a_missing_previous_proof(vectors: Path) -> None:
    body, proofs = split_proofs(
        to_quads(load(vectors / "proof-set-chain/signedProofChain1.json")), DOC_ID
    )
    (chained,) = [p for p in proofs if p.previous_proof]
    with pytest.raises(SignatureError, match="previousProof"):
        chained_document_quads(body, [chained], chained)


def test_vector_keys_as_did_key(vectors: Path) -> None:
    key = key_pair(vectors)
    method = (
        "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
        "#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
    )
    assert key.public_key.verification_method == method
    assert PublicKey.from_did(method) == key.public_key
