"""Manifest documents: JSON-LD writing/reading, RDF formats, and a table of malformed inputs."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from owmanifest.errors import InvalidManifestError
from owmanifest.manifest import vocab
from owmanifest.manifest.digest import Digest
from owmanifest.manifest.document import load_document, manifest_from_quads, serialize_quads
from owmanifest.manifest.jsonld import dumps, manifest_to_jsonld
from owmanifest.manifest.model import FileEntry, Manifest

ALICE = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
BOB = "did:key:z6MkhWqdDBPojHA7cprTGTt5yHv5yUi1B8cnXn8ReLumkw6E"


def sample_manifest() -> Manifest:
    return Manifest(
        id="https://openworm.org/data/sample",
        version=3,
        files=(
            FileEntry("a b/\u00e9.txt", 3, Digest("bep52", bytes(range(32)))),
            FileEntry("empty", 0, None),
            FileEntry("z/big.bin", 1 << 20, Digest("bep52", bytes(32))),
        ),
        signers=tuple(sorted((ALICE, BOB))),
        threshold=2,
        piece_length=65536,
        info_hash_v1="a" * 40,
        info_hash_v2="b" * 64,
        torrent_name="sample",
        title="Sample",
        description="A sample",
        license="https://creativecommons.org/licenses/by/4.0/",
        created="2026-01-02T03:04:05Z",
        previous_version=Digest("rdfc-sha256", bytes(32)),
        expires="2027-01-01T00:00:00Z",
        private=True,
        mirrors=("https://mirror.example/sample/",),
        trackers=("http://tracker.example/announce",),
    )


def doc_bytes(m: Manifest | None = None) -> bytes:
    return dumps(manifest_to_jsonld(m or sample_manifest()))


def test_jsonld_round_trip() -> None:
    m = sample_manifest()
    doc = load_document(doc_bytes(m), source="m.jsonld")
    assert doc.format == "json-ld"
    assert manifest_from_quads(doc.quads, source="m") == m


def test_json_need_not_be_kept() -> None:
    kept = load_document(doc_bytes(), source="m.jsonld")
    lean = load_document(doc_bytes(), source="m.jsonld", keep_json=False)
    assert kept.json is not None and lean.json is None
    assert lean.quads == kept.quads  # the same statements, only the JSON value is dropped
    with pytest.raises(InvalidManifestError):  # and read as strictly
        load_document(doc_bytes()[:-3], source="m.jsonld", keep_json=False)


@pytest.mark.parametrize("fmt", ["trig", "n-quads"])
def test_rdf_formats_round_trip(fmt: str) -> None:
    m = sample_manifest()
    doc = load_document(doc_bytes(m), source="m.jsonld")
    text = serialize_quads(list(doc.quads), fmt)
    again = load_document(text, source=f"m.{fmt}", format=fmt)
    assert manifest_from_quads(again.quads, source="m") == m


def test_format_detection_by_content() -> None:
    doc = load_document(doc_bytes(), source="no-suffix")
    assert doc.format == "json-ld"


def _edit(fn: Callable[[dict[str, Any]], None]) -> bytes:
    d = manifest_to_jsonld(sample_manifest())
    d = copy.deepcopy(d)
    fn(d)
    return json.dumps(d).encode()


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.__setitem__(key, value)


def _del(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda d: d.pop(key)


def _file(i: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def fn(d: dict[str, Any]) -> None:
        if value is None:
            d["files"][i].pop(key)
        else:
            d["files"][i][key] = value

    return fn


def _ctx(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def fn(d: dict[str, Any]) -> None:
        d["@context"] = dict(vocab.CONTEXT)
        d["@context"][key] = value

    return fn


BAD_JSON: dict[str, bytes] = {
    "not-json": b"{not json",
    "not-utf8": b'{"a": "\xff"}',
    "array-top": b"[]",
    "duplicate-key": doc_bytes().replace(b'"version": 3,', b'"version": 3, "version": 4,'),
    "huge-number": doc_bytes().replace(b'"version": 3', b'"version": ' + b"9" * 400),
    "nan": doc_bytes().replace(b'"version": 3', b'"version": NaN'),
    "deep-nesting": b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "remote-context": _edit(_set("@context", "https://www.w3.org/ns/credentials/v2")),
    "remote-context-in-list": _edit(_set("@context", [vocab.CONTEXT, "https://evil.example/"])),
    "context-redefines-path": _edit(_ctx("path", "http://evil.example/path")),
    "context-adds-base": _edit(_ctx("@base", "http://evil.example/")),
    "missing-context": _edit(_del("@context")),
    "missing-version": _edit(_del("version")),
    "missing-files": _edit(_del("files")),
    "files-not-a-list": _edit(_set("files", {"id": "https://openworm.org/data/sample#a"})),
    "version-zero": _edit(_set("version", 0)),
    "version-string": _edit(_set("version", "3")),
    "threshold-zero": _edit(_set("threshold", 0)),
    "threshold-above-signers": _edit(_set("threshold", 3)),
    "signer-not-did-key": _edit(_set("authorizedSigner", ["https://alice.example/"])),
    "no-signers": _edit(_set("authorizedSigner", [])),
    "piece-length-small": _edit(_set("pieceLength", 1024)),
    "piece-length-not-pow2": _edit(_set("pieceLength", 50000)),
    "unknown-key": _edit(_set("fancy", 1)),
    "bad-info-hash": _edit(_set("infoHashV2", "XYZ")),
    "bad-created": _edit(_set("created", "yesterday")),
    "created-not-a-day": _edit(_set("created", "2026-02-30T00:00:00Z")),
    "expires-not-a-day": _edit(_set("expires", "2099-02-30T12:00:00Z")),
    "expires-offset-out-of-range": _edit(_set("expires", "2099-01-01T12:00:00+99:99")),
    "file-missing-size": _edit(_file(0, "byteSize", None)),
    "file-negative-size": _edit(_file(0, "byteSize", -1)),
    "file-bad-root": _edit(_file(0, "merkleRoot", "sha256:00")),
    "file-root-missing": _edit(_file(0, "merkleRoot", None)),
    "empty-file-with-root": _edit(_file(1, "merkleRoot", "bep52:" + "00" * 32)),
    "file-iri-mismatch": _edit(_file(0, "id", "https://openworm.org/data/sample#other")),
    "path-traversal": _edit(_file(0, "path", "../etc/passwd")),
    "path-absolute": _edit(_file(0, "path", "/etc/passwd")),
    "path-not-nfc": _edit(_file(0, "path", "cafe\u0301")),
    "dataset-id-fragment": _edit(_set("id", "https://openworm.org/data/sample#x")),
    "type-missing-manifest": _edit(_set("type", ["Dataset"])),
    "proof-not-object": _edit(_set("proof", ["x"])),
}


@pytest.mark.parametrize("data", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_malformed_json_ld_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidManifestError) as info:
        doc = load_document(data, source="bad.jsonld")
        manifest_from_quads(doc.quads, source="bad.jsonld")
    assert "bad.jsonld" in str(info.value)


GOOD_NQ = serialize_quads(list(load_document(doc_bytes(), source="x.jsonld").quads), "n-quads")
M = "<https://openworm.org/data/sample>"
BAD_NQUADS: dict[str, bytes] = {
    "syntax": b"<a> <b> .\n",
    "blank-node-body": GOOD_NQ + f"{M} <http://ex.org/p> _:b0 .\n".encode(),
    "named-graph-not-proof": GOOD_NQ + f"{M} <http://ex.org/p> {M} {M} .\n".encode(),
    "two-versions": GOOD_NQ + f'{M} <{vocab.DCAT_VERSION}> "4"^^<{vocab.XSD_INTEGER}> .\n'.encode(),
    "version-as-string": GOOD_NQ.replace(f'"3"^^<{vocab.XSD_INTEGER}>'.encode(), b'"3"'),
    "no-manifest-node": b"<http://ex.org/a> <http://ex.org/b> <http://ex.org/c> .\n",
    "two-manifests": GOOD_NQ
    + f"<http://ex.org/m2> <{vocab.RDF_TYPE}> <{vocab.OWM_MANIFEST}> .\n".encode(),
    "undescribed-file": GOOD_NQ
    + f"{M} <{vocab.DCTERMS_HAS_PART}> <https://openworm.org/data/sample#ghost> .\n".encode(),
}


@pytest.mark.parametrize("data", BAD_NQUADS.values(), ids=BAD_NQUADS.keys())
def test_malformed_nquads_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidManifestError):
        doc = load_document(data, source="bad.nq")
        manifest_from_quads(doc.quads, source="bad.nq")


@pytest.mark.parametrize("name", ["missing-files", "files-not-a-list"])
def test_the_schema_refuses_a_manifest_without_its_files_list(name: str) -> None:
    with pytest.raises(InvalidManifestError, match=r"/files|'files'"):
        load_document(BAD_JSON[name], source="m.jsonld")


def test_error_names_source_and_values() -> None:
    with pytest.raises(InvalidManifestError) as info:
        load_document(_edit(_set("threshold", 0)), source="m.jsonld")
    err = info.value
    assert err.path == "m.jsonld"
    assert "/threshold" in str(err)


def test_extension_statements_are_kept() -> None:
    data = _edit(_set("dcterms:creator", "OpenWorm"))
    doc = load_document(data, source="x.jsonld")
    assert any(q.predicate.value == vocab.DCTERMS + "creator" for q in doc.quads)


def test_a_streamed_document_parses_its_quads_when_first_used() -> None:
    from owmanifest.manifest.document import ManifestDocument

    doc = load_document(doc_bytes(), source="m.jsonld", stream=True)
    stream = doc.stream()
    assert stream is not None
    streamed = tuple(stream)
    assert doc.quads == load_document(doc_bytes(), source="m.jsonld").quads == streamed
    assert doc.stream() is None  # the quads are kept now: read those
    with pytest.raises(TypeError):
        ManifestDocument("m", "json-ld")


def test_a_streamed_document_reports_bad_rdf_when_used() -> None:
    doc = load_document(b"<a> <b> .\n", source="bad.nq", stream=True)
    with pytest.raises(InvalidManifestError, match="not valid n-quads") as info:
        doc.quads  # noqa: B018
    assert info.value.path == "bad.nq"
