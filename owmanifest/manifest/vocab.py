"""IRIs of the manifest vocabulary and the inline JSON-LD context.

See ``docs/spec.md`` for the meaning of every term. We reuse DCAT, DCTERMS and the W3C security
vocabulary where they fit, and one project namespace (:data:`OWM`) for the rest.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["CONTEXT", "DCAT", "DCTERMS", "OWM", "RDF", "SEC", "XSD"]

OWM: Final = "https://openworm.org/ns/owmanifest#"
DCAT: Final = "http://www.w3.org/ns/dcat#"
DCTERMS: Final = "http://purl.org/dc/terms/"
SEC: Final = "https://w3id.org/security#"
XSD: Final = "http://www.w3.org/2001/XMLSchema#"
RDF: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"

RDF_TYPE: Final = RDF + "type"

# classes
OWM_MANIFEST: Final = OWM + "Manifest"
OWM_FILE: Final = OWM + "File"
DCAT_DATASET: Final = DCAT + "Dataset"

# dataset properties
DCTERMS_TITLE: Final = DCTERMS + "title"
DCTERMS_DESCRIPTION: Final = DCTERMS + "description"
DCTERMS_LICENSE: Final = DCTERMS + "license"
DCTERMS_CREATED: Final = DCTERMS + "created"
DCTERMS_HAS_PART: Final = DCTERMS + "hasPart"
DCAT_VERSION: Final = DCAT + "version"
DCAT_BYTE_SIZE: Final = DCAT + "byteSize"
OWM_PIECE_LENGTH: Final = OWM + "pieceLength"
OWM_INFO_HASH_V1: Final = OWM + "infoHashV1"
OWM_INFO_HASH_V2: Final = OWM + "infoHashV2"
OWM_AUTHORIZED_SIGNER: Final = OWM + "authorizedSigner"
OWM_THRESHOLD: Final = OWM + "threshold"
OWM_PREVIOUS_VERSION: Final = OWM + "previousVersion"
OWM_EXPIRES: Final = OWM + "expires"
OWM_PRIVATE: Final = OWM + "private"
OWM_MIRROR: Final = OWM + "mirror"
OWM_TRACKER: Final = OWM + "tracker"
OWM_TORRENT_NAME: Final = OWM + "torrentName"
# file properties
OWM_PATH: Final = OWM + "path"
OWM_MERKLE_ROOT: Final = OWM + "merkleRoot"

# Data Integrity (the terms of https://w3id.org/security/data-integrity/v2, defined inline)
SEC_PROOF: Final = SEC + "proof"
SEC_DATA_INTEGRITY_PROOF: Final = SEC + "DataIntegrityProof"
SEC_CRYPTOSUITE: Final = SEC + "cryptosuite"
SEC_CRYPTOSUITE_STRING: Final = SEC + "cryptosuiteString"
SEC_VERIFICATION_METHOD: Final = SEC + "verificationMethod"
SEC_PROOF_PURPOSE: Final = SEC + "proofPurpose"
SEC_ASSERTION_METHOD: Final = SEC + "assertionMethod"
SEC_PROOF_VALUE: Final = SEC + "proofValue"
SEC_MULTIBASE: Final = SEC + "multibase"
SEC_PREVIOUS_PROOF: Final = SEC + "previousProof"
SEC_EXPIRES: Final = SEC + "expiration"
SEC_NONCE: Final = SEC + "nonce"
SEC_CHALLENGE: Final = SEC + "challenge"
SEC_DOMAIN: Final = SEC + "domain"

XSD_INTEGER: Final = XSD + "integer"
XSD_STRING: Final = XSD + "string"
XSD_BOOLEAN: Final = XSD + "boolean"
XSD_DATETIME: Final = XSD + "dateTime"

#: The inline JSON-LD context written into every manifest. It never refers to a remote context:
#: a verifier must not fetch anything to learn what a document means. The proof terms are
#: defined here (with the same IRIs as the W3C Data Integrity context), so that they survive
#: canonicalization and are signed.
CONTEXT: Final[dict[str, Any]] = {
    "@version": 1.1,
    "@protected": True,
    "id": "@id",
    "type": "@type",
    "owm": OWM,
    "dcat": DCAT,
    "dcterms": DCTERMS,
    "sec": SEC,
    "xsd": XSD,
    "Manifest": OWM_MANIFEST,
    "Dataset": DCAT_DATASET,
    "File": OWM_FILE,
    "title": DCTERMS_TITLE,
    "description": DCTERMS_DESCRIPTION,
    "license": {"@id": DCTERMS_LICENSE, "@type": "@id"},
    "created": {"@id": DCTERMS_CREATED, "@type": XSD_DATETIME},
    "version": {"@id": DCAT_VERSION, "@type": XSD_INTEGER},
    "pieceLength": {"@id": OWM_PIECE_LENGTH, "@type": XSD_INTEGER},
    "infoHashV1": OWM_INFO_HASH_V1,
    "infoHashV2": OWM_INFO_HASH_V2,
    "torrentName": OWM_TORRENT_NAME,
    "authorizedSigner": {"@id": OWM_AUTHORIZED_SIGNER, "@type": "@id", "@container": "@set"},
    "threshold": {"@id": OWM_THRESHOLD, "@type": XSD_INTEGER},
    "previousVersion": OWM_PREVIOUS_VERSION,
    "expires": {"@id": OWM_EXPIRES, "@type": XSD_DATETIME},
    "private": {"@id": OWM_PRIVATE, "@type": XSD_BOOLEAN},
    "mirror": {"@id": OWM_MIRROR, "@type": "@id", "@container": "@set"},
    "tracker": {"@id": OWM_TRACKER, "@type": "@id", "@container": "@set"},
    "files": {"@id": DCTERMS_HAS_PART, "@type": "@id", "@container": "@set"},
    "path": OWM_PATH,
    "byteSize": {"@id": DCAT_BYTE_SIZE, "@type": XSD_INTEGER},
    "merkleRoot": OWM_MERKLE_ROOT,
    # Data Integrity proof terms
    "proof": {"@id": SEC_PROOF, "@type": "@id", "@container": "@graph"},
    "DataIntegrityProof": SEC_DATA_INTEGRITY_PROOF,
    "cryptosuite": {"@id": SEC_CRYPTOSUITE, "@type": SEC_CRYPTOSUITE_STRING},
    "verificationMethod": {"@id": SEC_VERIFICATION_METHOD, "@type": "@id"},
    "proofPurpose": {"@id": SEC_PROOF_PURPOSE, "@type": "@vocab"},
    "assertionMethod": {"@id": SEC_ASSERTION_METHOD, "@type": "@id", "@container": "@set"},
    "proofValue": {"@id": SEC_PROOF_VALUE, "@type": SEC_MULTIBASE},
    "previousProof": {"@id": SEC_PREVIOUS_PROOF, "@type": "@id"},
}
