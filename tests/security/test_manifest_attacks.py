"""Manifest attacks: every statement of a signed manifest edited, removed or added; JSON-LD
tricks; hostile paths; absurd sizes.

The unit tests (``tests/unit/test_verify_manifest.py::test_attack_is_refused``) hold the named
TUF-style table; here the attacks are generated exhaustively from the signed fixture.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest

from owmanifest.errors import (
    Error,
    InvalidManifestError,
    PathError,
    PolicyError,
    SignatureError,
    VerificationError,
)
from owmanifest.manifest import vocab
from owmanifest.manifest.digest import BEP52, Digest
from owmanifest.manifest.document import load_document
from owmanifest.manifest.jsonld import manifest_to_jsonld
from owmanifest.manifest.model import FileEntry, Manifest
from owmanifest.signing import convert_document
from owmanifest.transport import HttpTransport, IncompleteFetchError, LocalTransport, fetch
from owmanifest.verify import TrustPolicy, verify_manifest, verify_tree
from owmanifest.verify.proofs import add_proof_to_jsonld, create_proof
from owmanifest.verify.result import VerifiedManifest

from ..unit.fixtures import DIDS, key, signed_bytes
from .ledger import attack, false_accept, refused
from .support import (
    ALICE,
    BOTH,
    SIGNED_AT,
    FaultServer,
    fault_server,
    fixture_verified,
    manifest_quads,
    nquads,
    sign_quads,
    tree,
)

#: What a refused manifest may raise: malformed, bad signature, or not enough trusted proofs.
REFUSALS = (InvalidManifestError, SignatureError, PolicyError)
XSD = "http://www.w3.org/2001/XMLSchema#"


def _signed_quads() -> list[ox.Quad]:
    return list(load_document(signed_bytes(), source="signed.jsonld").quads)


# --- every statement, one at a time ---------------------------------------------------------------

_fresh = itertools.count()


def _blank() -> ox.BlankNode:
    return ox.BlankNode(f"attacker{next(_fresh)}")


def _altered(term: Any) -> list[tuple[str, Any]]:
    """Other values for one term: a different IRI, blank node, value, datatype or language."""
    if isinstance(term, ox.NamedNode):
        return [("iri", ox.NamedNode(term.value + "x"))]
    if isinstance(term, ox.BlankNode):
        return [("blank", _blank())]
    if isinstance(term, ox.Literal):
        value = term.value
        if term.datatype.value == XSD + "integer":
            changed = str(int(value) + 1)
        else:
            changed = value[:-1] + ("0" if value[-1:] != "0" else "1") if value else "x"
        other = XSD + ("string" if term.datatype.value != XSD + "string" else "normalizedString")
        return [
            ("value", ox.Literal(changed, datatype=term.datatype)),
            ("datatype", ox.Literal(value, datatype=ox.NamedNode(other))),
            ("language", ox.Literal(value, language="en")),
        ]
    raise AssertionError(f"unexpected term {term!r}")


def _edits() -> Iterator[tuple[str, str, list[ox.Quad]]]:
    """(kind, description, quads) for every single-statement edit of the signed manifest."""
    quads = _signed_quads()
    for i, q in enumerate(quads):
        rest = quads[:i] + quads[i + 1 :]
        where = f"#{i} {q}"
        yield "remove", where, rest
        for how, s in _altered(q.subject):
            yield (
                "subject",
                f"{how} {where}",
                [*rest, ox.Quad(s, q.predicate, q.object, q.graph_name)],
            )
        p = ox.NamedNode(q.predicate.value + "x")
        yield "predicate", where, [*rest, ox.Quad(q.subject, p, q.object, q.graph_name)]
        for how, o in _altered(q.object):
            yield (
                "object",
                f"{how} {where}",
                [*rest, ox.Quad(q.subject, q.predicate, o, q.graph_name)],
            )
        g = q.graph_name
        graphs: list[Any] = [ox.DefaultGraph()] if not isinstance(g, ox.DefaultGraph) else []
        graphs += [_blank(), ox.NamedNode("https://attacker.example/graph")]
        for new in graphs:
            yield "graph", f"{new} {where}", [*rest, ox.Quad(q.subject, q.predicate, q.object, new)]
        # add: a second, different value for the same property, in the same graph
        for how, o in _altered(q.object)[:1]:
            yield "add", f"{how} {where}", [*quads, ox.Quad(q.subject, q.predicate, o, g)]
    # add: brand-new statements about each node, in each graph
    subjects = {(q.subject, q.graph_name) for q in quads}
    for s, g in sorted(subjects, key=str):
        extra = ox.Quad(s, ox.NamedNode("https://attacker.example/p"), ox.Literal("x"), g)
        yield "add", f"new statement about {s} in {g}", [*quads, extra]
    ds = ox.NamedNode("https://openworm.org/data/test-fixture")
    evil = ox.NamedNode("https://openworm.org/data/test-fixture#evil.bin")
    yield (
        "add",
        "a new file node",
        [
            *quads,
            ox.Quad(ds, ox.NamedNode(vocab.DCTERMS_HAS_PART), evil),
            ox.Quad(evil, ox.NamedNode(vocab.RDF_TYPE), ox.NamedNode(vocab.OWM_FILE)),
            ox.Quad(evil, ox.NamedNode(vocab.OWM_PATH), ox.Literal("evil.bin")),
            ox.Quad(
                evil,
                ox.NamedNode(vocab.DCAT_BYTE_SIZE),
                ox.Literal("0", datatype=ox.NamedNode(XSD + "integer")),
            ),
        ],
    )
    yield (
        "add",
        "a statement in a new named graph",
        [
            *quads,
            ox.Quad(ds, ox.NamedNode(vocab.DCTERMS_TITLE), ox.Literal("x"), _blank()),
        ],
    )


EDIT_KINDS = ("remove", "subject", "predicate", "object", "graph", "add")


@pytest.fixture(scope="module")
def edits() -> dict[str, list[tuple[str, bytes]]]:
    out: dict[str, list[tuple[str, bytes]]] = {k: [] for k in EDIT_KINDS}
    for kind, what, quads in _edits():
        out[kind].append((what, nquads(quads)))
    return out


@pytest.mark.parametrize("kind", EDIT_KINDS)
@pytest.mark.parametrize("fmt", ["n-quads", "trig"])
def test_every_single_statement_edit_is_refused(
    edits: dict[str, list[tuple[str, bytes]]], kind: str, fmt: str
) -> None:
    """Remove each statement, alter each term of each statement, add statements: each edit
    of the signed manifest (60 statements) must fail verification."""
    assert len(_signed_quads()) == 60
    failures: list[str] = []
    for what, data in edits[kind]:
        if fmt == "trig":
            quads = list(ox.parse(data, format=ox.RdfFormat.N_QUADS))
            out = ox.serialize(quads, format=ox.RdfFormat.TRIG)
            assert out is not None
            data = bytes(out)
        document = data

        def verify(document: bytes = document) -> object:
            return verify_manifest(
                load_document(document, source=f"edited.{fmt}", format=fmt), BOTH
            )

        try:
            refused(f"manifest/edit-{kind}", what, verify, REFUSALS)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)
    assert len(edits[kind]) >= 60


def test_edits_really_change_the_document() -> None:
    """The unedited quads, written the same way, verify: the edits are what is refused."""
    vm = verify_manifest(load_document(nquads(_signed_quads()), source="x.nq"), BOTH)
    assert vm.canonical_hash == fixture_verified().canonical_hash


# --- JSON-LD tricks -------------------------------------------------------------------------------


def _json() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(signed_bytes())
    return doc


def _mutate(fn: Callable[[dict[str, Any]], object]) -> Callable[[], bytes]:
    def make() -> bytes:
        doc = copy.deepcopy(_json())
        result = fn(doc)
        if isinstance(result, bytes):
            return result
        return json.dumps(result if isinstance(result, dict) else doc).encode()

    return make


def _text(replace: bytes, by: bytes) -> Callable[[], bytes]:
    def make() -> bytes:
        data = signed_bytes()
        assert replace in data
        return data.replace(replace, by, 1)

    return make


def _ctx(key_: str, value: Any) -> Callable[[dict[str, Any]], object]:
    def fn(d: dict[str, Any]) -> None:
        d["@context"] = {**d["@context"], key_: value}

    return fn


def _poison_proof(d: dict[str, Any]) -> None:
    """A 10-clique of blank nodes inside a proof (the RDFC-1.0 poison test's shape)."""
    nodes: list[dict[str, Any]] = [{"@id": f"_:n{i}"} for i in range(10)]
    for i, node in enumerate(nodes):
        node["https://attacker.example/knows"] = [{"@id": f"_:n{j}"} for j in range(10) if j != i]
    d["proof"][0]["https://attacker.example/clique"] = nodes


JSONLD_TRICKS: dict[str, Callable[[], bytes]] = {
    "remote-context": _mutate(lambda d: d.__setitem__("@context", "https://evil.example/ctx")),
    "remote-context-in-list": _mutate(
        lambda d: d.__setitem__("@context", [d["@context"], "https://evil.example/ctx"])
    ),
    "context-import": _mutate(_ctx("@import", "https://evil.example/ctx")),
    "context-base": _mutate(_ctx("@base", "https://evil.example/")),
    "context-vocab": _mutate(_ctx("@vocab", "https://evil.example/")),
    "context-unprotected": _mutate(_ctx("@protected", False)),
    "context-redefines-path": _mutate(_ctx("path", "https://evil.example/path")),
    "context-extra-term": _mutate(_ctx("evil", "https://evil.example/")),
    "context-twice-in-list": _mutate(
        lambda d: d.__setitem__("@context", [d["@context"], d["@context"]])
    ),
    "context-null-then-ours": _mutate(lambda d: d.__setitem__("@context", [None, d["@context"]])),
    "scoped-context-in-node": _mutate(
        lambda d: d["files"][0].__setitem__("@context", {"path": "https://evil.example/p"})
    ),
    "graph-wrapper": _mutate(lambda d: {"@context": d.pop("@context"), "@graph": [d]}),
    "relative-id": _mutate(lambda d: d.__setitem__("id", "test-fixture")),
    "included-node": _mutate(
        lambda d: d.__setitem__("@included", [{"id": "https://evil.example/", "title": "x"}])
    ),
    "reverse-property": _mutate(
        lambda d: d.__setitem__("@reverse", {"dcterms:hasPart": {"id": "https://evil.example/"}})
    ),
    "nest": _mutate(lambda d: d.__setitem__("@nest", {"title": "x"})),
    "second-manifest-node": _mutate(
        lambda d: d["files"].append({"id": "https://evil.example/", "type": "Manifest"})
    ),
    "file-described-twice": _mutate(
        lambda d: d["files"].append({"id": d["files"][1]["id"], "byteSize": 1})
    ),
    "extension-statement-added": _mutate(lambda d: d.__setitem__("owm:extra", "unsigned")),
    "absolute-iri-key-added": _mutate(
        lambda d: d.__setitem__("https://evil.example/p", "unsigned")
    ),
    "language-tagged-title": _mutate(
        lambda d: d.__setitem__("title", {"@value": d["title"], "@language": "en"})
    ),
    "value-object-version": _mutate(
        lambda d: d.__setitem__("version", {"@value": "2", "@type": XSD + "integer"})
    ),
    "duplicate-key": _text(b'"version": 1,', b'"version": 1, "version": 2,'),
    "duplicate-key-escaped": _text(b'"version": 1,', b'"version": 1, "ver\\u0073ion": 2,'),
    "duplicate-key-in-file": _text(b'"byteSize": 24,', b'"byteSize": 24, "byteSize": 25,'),
    "duplicate-key-in-proof": _text(
        b'"proofPurpose": "assertionMethod",',
        b'"proofPurpose": "assertionMethod", "proofPurpose": "authentication",',
    ),
    "huge-integer": _text(b'"version": 1,', b'"version": ' + b"9" * 400 + b","),
    "integer-over-20-digits": _text(b'"version": 1,', b'"version": 100000000000000000000000,'),
    "byte-size-over-2-64": _text(b'"byteSize": 24,', b'"byteSize": 36893488147419103232,'),
    "huge-float": _text(b'"version": 1,', b'"version": 1e400,'),
    "fraction": _text(b'"version": 1,', b'"version": 1.5,'),
    "negative-size": _text(b'"byteSize": 24,', b'"byteSize": -24,'),
    "nan": _text(b'"version": 1,', b'"version": NaN,'),
    "infinity": _text(b'"threshold": 2,', b'"threshold": Infinity,'),
    "deep-nesting-33": _mutate(lambda d: d.__setitem__("owm:x", json.loads("[" * 33 + "]" * 33))),
    "deep-nesting-100000": _text(
        b'"version": 1,', b'"owm:x": ' + b"[" * 100_000 + b"]" * 100_000 + b', "version": 1,'
    ),
    "not-utf8": _text(b"owmanifest test fixture", b"owmanifest test \xff fixture"),
    "utf16": lambda: signed_bytes().decode().encode("utf-16"),
    "nul-in-key": _text(b'"version": 1,', b'"version": 1, "ver\\u0000sion": 2,'),
    "lone-surrogate-path": _text(b'"path": "README.txt"', b'"path": "README\\ud800.txt"'),
    "top-level-array": lambda: b"[" + signed_bytes() + b"]",
    "trailing-garbage": lambda: signed_bytes() + b"{}",
    "proof-context": _mutate(lambda d: d["proof"][0].__setitem__("@context", vocab.CONTEXT)),
    "proof-poison-clique": _mutate(_poison_proof),
    "many-bad-proofs": _mutate(
        lambda d: d.__setitem__(
            "proof",
            [
                {**p, "created": f"2026-01-01T00:00:{i % 60:02d}Z"}
                for i, p in enumerate(d["proof"] * 500)
            ],
        )
    ),
}

#: Encodings that denote exactly the signed RDF: they must verify to the same canonical hash
#: (a different encoding of the same statements is not an attack on what was signed).
SAME_RDF: dict[str, Callable[[], bytes]] = {
    "utf8-bom": lambda: b"\xef\xbb\xbf" + signed_bytes(),
    "float-for-integer": _text(b'"version": 1,', b'"version": 1.0,'),
    "float-exponent": _text(b'"byteSize": 24,', b'"byteSize": 2.4e1,'),
    "reformatted": lambda: json.dumps(_json(), separators=(",", ":"), sort_keys=True).encode(),
    "proofs-reordered": _mutate(lambda d: d.__setitem__("proof", d["proof"][::-1])),
    "files-reordered": _mutate(lambda d: d.__setitem__("files", d["files"][::-1])),
    # repeated proofs by the same keys: they count once each (spec §5), the signed RDF is the same
    "proofs-repeated-500-times": _mutate(lambda d: d.__setitem__("proof", d["proof"] * 500)),
}


@pytest.mark.parametrize("name", JSONLD_TRICKS)
def test_json_ld_trick_is_refused(name: str) -> None:
    data = JSONLD_TRICKS[name]()
    refused(
        "manifest/json-ld",
        name,
        lambda: verify_manifest(load_document(data, source="trick.jsonld"), BOTH),
        REFUSALS,
    )


@pytest.mark.parametrize("make", SAME_RDF.values(), ids=SAME_RDF.keys())
def test_equivalent_encoding_verifies_to_the_same_rdf(make: Callable[[], bytes]) -> None:
    vm = verify_manifest(load_document(make(), source="same.jsonld"), BOTH)
    assert vm.canonical_hash == fixture_verified().canonical_hash
    assert vm.manifest == fixture_verified().manifest


def _poison_body_nquads(n: int) -> bytes:
    base = _signed_quads()
    p = ox.NamedNode("https://attacker.example/knows")
    nodes = [ox.BlankNode(f"p{i}") for i in range(n)]
    clique = [ox.Quad(a, p, b) for a in nodes for b in nodes if a != b]
    return nquads([*base, *clique])


def _poison_proof_graphs(n: int, proofs: int = 1, *, base: bytes | None = None) -> bytes:
    """``proofs`` extra proof graphs, each holding an ``n``-clique of blank nodes."""
    from ..unit.fixtures import ASSETS

    data = base if base is not None else (ASSETS / "signed-alice.jsonld").read_bytes()
    quads = list(load_document(data, source="s.jsonld").quads)
    ds = ox.NamedNode("https://openworm.org/data/test-fixture")
    p = ox.NamedNode("https://attacker.example/knows")
    for k in range(proofs):
        g = ox.BlankNode(f"g{k}")
        nodes = [ox.BlankNode(f"g{k}n{i}") for i in range(n)]
        quads.append(ox.Quad(ds, ox.NamedNode(vocab.SEC_PROOF), g))
        quads.append(
            ox.Quad(
                nodes[0],
                ox.NamedNode(vocab.RDF_TYPE),
                ox.NamedNode(vocab.SEC_DATA_INTEGRITY_PROOF),
                g,
            )
        )
        quads += [ox.Quad(a, p, b, g) for a in nodes for b in nodes if a != b]
    return nquads(quads)


#: Poison where the threshold needs it: alice signed, the second "proof" is the poison.
POISON: dict[str, Callable[[], bytes]] = {
    "clique-10-in-body": lambda: _poison_body_nquads(10),
    "clique-10-in-a-proof-graph": lambda: _poison_proof_graphs(10),
    "clique-7-in-50-proof-graphs": lambda: _poison_proof_graphs(7, proofs=50),
    "200-blank-nodes-in-proofs": lambda: _poison_proof_graphs(2, proofs=100),
    "clique-40-in-a-proof-graph": lambda: _poison_proof_graphs(40),
}


@pytest.mark.parametrize("name", POISON)
def test_blank_node_poison_graph_is_refused(name: str) -> None:
    """Blank-node structures that make RDFC-1.0 exponential are refused before (or instead of)
    canonicalization; the watchdog in conftest.py turns a hang into a failure."""
    data = POISON[name]()
    refused(
        "manifest/poison",
        name,
        lambda: verify_manifest(load_document(data, source="poison.nq"), BOTH),
        REFUSALS,
    )


def test_poison_next_to_valid_proofs_never_counts() -> None:
    """Junk proof graphs beside a complete proof set are not canonicalized and never count; the
    manifest is the signed one (extra invalid signatures are ignored, as in TUF)."""
    data = _poison_proof_graphs(10, proofs=3, base=signed_bytes())
    attack("manifest/poison")
    vm = verify_manifest(load_document(data, source="poison.nq"), BOTH)
    assert vm.canonical_hash == fixture_verified().canonical_hash
    junk = [o for o in vm.proofs if not o.counted]
    assert len(junk) == 3
    assert all(o.verification_method is None for o in junk)


# --- hostile paths, signed for real ---------------------------------------------------------------

DATASET_ID = "https://openworm.org/data/paths"


def _root(path: str, size: int) -> Digest | None:
    return None if size == 0 else Digest(BEP52, hashlib.sha256(path.encode("utf-8")).digest())


def _manifest(paths: dict[str, int]) -> Manifest:
    files = tuple(FileEntry(p, s, _root(p, s)) for p, s in sorted(paths.items()))
    return Manifest(
        id=DATASET_ID,
        version=1,
        files=files,
        signers=(DIDS["alice"],),
        threshold=1,
        piece_length=16384,
    )


def signed_nquads(paths: dict[str, int]) -> bytes:
    m = _manifest(paths)
    return nquads(sign_quads(manifest_quads(m), m.id))


def signed_jsonld(paths: dict[str, int]) -> bytes:
    from owmanifest.manifest.canonical import canonical_nquads

    m = _manifest(paths)
    doc = manifest_to_jsonld(m)
    proof = create_proof(
        canonical_nquads(manifest_quads(m)), key("alice"), context=vocab.CONTEXT, created=SIGNED_AT
    )
    return json.dumps(add_proof_to_jsonld(doc, proof)).encode()


BAD_PATHS: dict[str, dict[str, int]] = {
    "dot-dot": {"../escape.txt": 3},
    "dot-dot-inside": {"a/../../escape.txt": 3},
    "dot-dot-only": {"..": 3},
    "dot-segment": {"./a.txt": 3},
    "absolute": {"/etc/passwd": 3},
    "absolute-double-slash": {"//server/share": 3},
    "windows-drive": {"C:/Windows/evil.dll": 3},
    "backslash-traversal": {"..\\..\\escape.txt": 3},
    "backslash": {"a\\b.txt": 3},
    "nul": {"a\x00b.txt": 3},
    "newline": {"a\nb.txt": 3},
    "escape-char": {"a\x1b[31mred.txt": 3},
    "delete-char": {"a\x7f.txt": 3},
    "empty-segment": {"a//b.txt": 3},
    "trailing-slash": {"a/": 3},
    "empty": {"": 3},
    "non-nfc": {"e\u0301.txt": 3},
    "non-nfc-hangul": {"\u1100\u1161.txt": 3},
    "segment-over-255-bytes": {"a" * 256: 3},
    "path-over-4096-bytes": {"/".join(["d" * 200] * 21): 3},
    "working-area": {".owmanifest/partial/x.part": 3},
    "working-area-case": {".OWManifest/lock": 3},
    "case-collision": {"README.txt": 3, "readme.TXT": 3},
    "case-collision-sharp-s": {"stra\u00dfe.txt": 3, "STRASSE.txt": 3},
    "case-collision-kelvin": {"\u212a.txt": 3, "k.txt": 3},
    "case-collision-across-directories": {"Data/a.txt": 3, "data/A.txt": 3},
    "file-and-directory": {"a": 3, "a/b": 3},
    "file-and-directory-by-case": {"A": 3, "a/b": 3},
}


@pytest.mark.parametrize("fmt", ["n-quads", "json-ld"])
@pytest.mark.parametrize("paths", BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_hostile_path_is_refused_even_when_signed(
    paths: dict[str, int], fmt: str, tmp_path: Path
) -> None:
    """A trusted signer's manifest with a hostile path is refused when it is read (or, for
    owmanifest's working area, before any byte moves); nothing is written anywhere."""
    try:
        data = signed_nquads(paths) if fmt == "n-quads" else signed_jsonld(paths)
    except (ValueError, UnicodeEncodeError, SyntaxError):
        pytest.skip(f"{fmt} cannot even express this path")

    def attempt() -> None:
        vm = verify_manifest(load_document(data, source=f"paths.{fmt}", format=fmt), ALICE)
        dest = tmp_path / "dest"
        fetch(vm, dest, [LocalTransport(tmp_path / "nowhere")])

    err = refused("manifest/path", repr(paths), attempt, (InvalidManifestError, PathError))
    assert isinstance(err, (InvalidManifestError, PathError))
    outside = {p.name for p in tmp_path.iterdir()} - {"dest"}
    assert outside == set(), outside
    assert tree(tmp_path / "dest") == {}


#: Names that look like traversal or like other names but are ordinary file names on POSIX.
LOOKALIKES = {
    "division-slash": "..\u2215..\u2215etc\u2215passwd",
    "fullwidth-solidus-and-dots": "\uff0e\uff0e\uff0fescape.txt",
    "one-dot-leaders": "\u2024\u2024/x.txt",
    "fraction-slash": "a\u2044b.txt",
    "cyrillic-a": "README.txt".replace("A", "\u0410"),
    "zero-width-space": "README.txt\u200b",
    "right-to-left-override": "evil\u202etxt.exe",
    "ideographic-full-stop-dots": "\u3002\u3002/x",
}


@pytest.mark.parametrize("name", LOOKALIKES.values(), ids=LOOKALIKES.keys())
def test_unicode_lookalike_stays_an_ordinary_name_inside_dest(name: str, tmp_path: Path) -> None:
    """Accepted (they are distinct, NFC, separator-free names), and written exactly there:
    never outside the destination, never under another name."""
    from owmanifest.manifest.builder import build_manifest

    src = tmp_path / "src"
    (src / name).parent.mkdir(parents=True, exist_ok=True)
    (src / name).write_bytes(b"lookalike\n")
    built = build_manifest(
        src, dataset_id=DATASET_ID, version=1, signers=[DIDS["alice"]], threshold=1
    )
    body = manifest_quads(built.manifest)
    vm = verify_manifest(nquads(sign_quads(body, DATASET_ID)), ALICE, source="l.nq")
    assert [f.path for f in vm.manifest.files] == [name]
    dest = tmp_path / "dest"
    attack("manifest/lookalike")
    fetch(vm, dest, [LocalTransport(src)])
    assert tree(dest) == {name: b"lookalike\n"}
    assert {p.name for p in tmp_path.iterdir()} == {"src", "dest"}


# --- absurd sizes ---------------------------------------------------------------------------------


def _signed_single(path: str, size: int, root: Digest | None) -> VerifiedManifest:
    m = Manifest(
        id=DATASET_ID,
        version=1,
        files=(FileEntry(path, size, root),),
        signers=(DIDS["alice"],),
        threshold=1,
        piece_length=16384,
    )
    return verify_manifest(nquads(sign_quads(manifest_quads(m), m.id)), ALICE, source="s.nq")


def test_declared_size_zero_with_a_root_is_refused() -> None:
    m = Manifest(
        id=DATASET_ID,
        version=1,
        files=(FileEntry("zero.bin", 0, Digest(BEP52, bytes(32))),),
        signers=(DIDS["alice"],),
        threshold=1,
        piece_length=16384,
    )
    data = nquads(sign_quads(manifest_quads(m), m.id))
    refused(
        "manifest/size",
        "size 0 with a root",
        lambda: verify_manifest(data, ALICE, source="z.nq"),
        InvalidManifestError,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FaultServer]:
    (tmp_path / "served").mkdir()
    with fault_server(tmp_path / "served") as srv:
        yield srv


def test_declared_size_zero_with_data_on_the_mirror(server: FaultServer, tmp_path: Path) -> None:
    """Size 0 means no byte is ever asked for: the fetch creates the empty file itself, and a
    non-empty file in a dataset is refused by verify_tree."""
    (server.directory / "zero.bin").write_bytes(b"data the manifest does not declare")
    vm = _signed_single("zero.bin", 0, None)
    dest = tmp_path / "dest"
    attack("manifest/size")
    fetch(vm, dest, [HttpTransport(server.url())])
    assert (dest / "zero.bin").read_bytes() == b""
    assert server.requests() == []
    err = refused(
        "manifest/size",
        "size 0, data present",
        lambda: verify_tree(vm, server.directory),
        VerificationError,
    )
    assert err.report is not None
    assert err.report.problems[0].kind == "size"


TB = 1 << 40


@pytest.mark.parametrize("mode", ["honest", "short", "endless", "endless-chunked"])
def test_declared_size_of_one_terabyte(server: FaultServer, tmp_path: Path, mode: str) -> None:
    """'Endless data': a 1 TB file. A mirror with less (another size, a short body, a stream
    that stops) fails cleanly; nothing reaches the final path; the partial area stays sparse."""
    (server.directory / "huge.bin").write_bytes(b"\x01" * 100_000)
    if mode != "honest":
        server.declared_sizes["huge.bin"] = TB  # announce 1 TB, then send less
    server.endless_cap = 8 << 20
    vm = _signed_single("huge.bin", TB, Digest(BEP52, b"\x42" * 32))
    dest = tmp_path / "dest"
    err = refused(
        "manifest/size",
        f"1 TB from {mode}",
        lambda: fetch(vm, dest, [HttpTransport(server.url(mode))], stall_timeout=60),
        IncompleteFetchError,
    )
    assert err.report.failed == ("huge.bin",)
    assert not (dest / "huge.bin").exists()
    assert sum(err.report.bytes_by_source.values()) == 0
    used = sum(p.stat().st_blocks * 512 for p in dest.rglob("*") if p.is_file())
    assert used < 64 << 20, f"{used} bytes on disk for a failed 1 TB fetch"


@pytest.mark.parametrize("mode", ["endless", "endless-chunked"])
@pytest.mark.parametrize("layers", [True, False], ids=["pieces", "whole-file"])
def test_endless_body_is_never_read_past_the_declared_size(
    server: FaultServer, tmp_path: Path, mode: str, layers: bool
) -> None:
    """A mirror that keeps sending: at most the declared bytes are passed on, the source is
    dropped, and the bytes it sent are refused (they do not match the root)."""
    from owmanifest.manifest.hashing import hash_file

    blob = os.urandom(3 * 16384 + 5)
    (server.directory / "f.bin").write_bytes(blob)
    h = hash_file(server.directory / "f.bin", 16384, v1=False)
    assert h.root is not None
    vm = _signed_single("f.bin", len(blob), Digest(BEP52, h.root))
    piece_layers = {h.root: h.piece_layer} if layers and h.piece_layer else {}
    server.endless_cap = 64 << 20
    dest = tmp_path / "dest"
    t = HttpTransport(server.url(mode))
    err = refused(
        "manifest/size",
        f"endless {mode}",
        lambda: fetch(vm, dest, [t], piece_layers=piece_layers, stall_timeout=60),
        IncompleteFetchError,
    )
    t.close()
    assert not (dest / "f.bin").exists()
    part = list((dest / ".owmanifest" / "partial").glob("*.part"))
    assert all(p.stat().st_size == len(blob) for p in part)
    sent = sum(r.sent for r in server.requests(mode=mode))
    if sent >= server.endless_cap:
        raise false_accept(f"read an endless body to the server's cap ({sent} bytes)")
    assert err.report.problems
    # the honest copy is then fetched in full, exactly
    fetch(vm, dest, [HttpTransport(server.url())], piece_layers=piece_layers)
    assert (dest / "f.bin").read_bytes() == blob


def test_the_refusals_are_owmanifest_errors() -> None:
    """The refusal types used above are all ``owmanifest.errors.Error``."""
    assert all(issubclass(e, Error) for e in REFUSALS)
    assert isinstance(TrustPolicy.from_keys([DIDS["alice"]]), TrustPolicy)
    converted = convert_document(load_document(signed_bytes(), source="s.jsonld"), "n-quads")
    assert verify_manifest(load_document(converted, source="s.nq"), BOTH).manifest.version == 1


# --- regressions ----------------------------------------------------------------------------------


def test_proof_linked_from_another_node_is_refused() -> None:
    """Regression: ``<another node> sec:proof _:g`` counted as a proof of the manifest; that
    link is not signed, so the document carried an unsigned statement and still verified."""
    quads = _signed_quads()
    link = next(q for q in quads if q.predicate.value == vocab.SEC_PROOF)
    other = ox.Quad(ox.NamedNode("https://attacker.example/"), link.predicate, link.object)
    edited = [other if q == link else q for q in quads]
    err = refused(
        "manifest/edit-subject",
        "proof linked from another node",
        lambda: verify_manifest(nquads(edited), BOTH, source="x.nq"),
        InvalidManifestError,
    )
    assert "attached to another node" in str(err)


def test_proof_value_must_be_a_multibase_literal() -> None:
    """Regression: the datatype of ``proofValue`` (which no signature covers) was not checked,
    so the same signature restated as a plain or language-tagged string still verified."""
    quads = _signed_quads()
    for value in (q for q in quads if q.predicate.value == vocab.SEC_PROOF_VALUE):
        assert isinstance(value.object, ox.Literal)
        text = value.object.value
        for restated in (ox.Literal(text), ox.Literal(text, language="en")):
            changed = ox.Quad(value.subject, value.predicate, restated, value.graph_name)
            edited = [changed if q == value else q for q in quads]

            def verify(edited: list[ox.Quad] = edited) -> object:
                return verify_manifest(nquads(edited), BOTH, source="x.nq")

            err = refused("manifest/edit-object", "proofValue restated", verify, SignatureError)
            assert any("sec:multibase" in o.reason for o in err.outcomes)
