"""The performance fast paths give exactly the results of the straightforward code they skip.

Each fast path (schema check of the ``files`` array, JSON nesting pre-check, JSON-LD writer,
canonical N-Quads without blank nodes, hashing a small file from one buffer, info-hashes
without re-decoding, pad entries, file IRIs) is compared with the slow path on tables of
cases and on generated inputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote

import pyoxigraph
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import owmanifest.schemas as schemas
from owmanifest._gc import paused_gc
from owmanifest.errors import InvalidManifestError
from owmanifest.manifest import canonical, document
from owmanifest.manifest.bencode import bencode
from owmanifest.manifest.hashing import FileHasher, hash_file, hash_files
from owmanifest.manifest.jsonld import (
    _nesting_exceeds,
    dumps,
    file_iri,
    loads_json,
    manifest_json,
    manifest_to_jsonld,
)
from owmanifest.manifest.model import FileEntry
from owmanifest.manifest.torrent import (
    MIN_PIECE_LENGTH,
    TorrentFile,
    _pad_entry,
    build_torrent,
    build_torrent_with_hashes,
    choose_piece_length,
    info_hashes,
)

from .test_document import BAD_JSON, doc_bytes

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- schema: the files array --------------------------------------------------------------------


def _message(instance: Any, monkeypatch: pytest.MonkeyPatch, fast: bool) -> str | None:
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(schemas, "_files_valid", lambda instance: False)
        try:
            schemas.validate(instance, "manifest", source="m.jsonld")
        except InvalidManifestError as exc:
            return f"{exc} | {exc.expected} | {exc.observed}"
    return None


def _file_edit(key: str, value: Any) -> dict[str, Any]:
    doc = json.loads(doc_bytes())
    if value is _DELETE:
        del doc["files"][0][key]
    else:
        doc["files"][0][key] = value
    return dict(doc)


_DELETE = object()
BAD_FILES: dict[str, Any] = {
    "size-float": _file_edit("byteSize", 3.0),  # valid for jsonschema: an integer
    "size-bool": _file_edit("byteSize", True),
    "size-negative": _file_edit("byteSize", -1),
    "size-string": _file_edit("byteSize", "3"),
    "size-missing": _file_edit("byteSize", _DELETE),
    "id-missing": _file_edit("id", _DELETE),
    "id-not-iri": _file_edit("id", "no scheme"),
    "id-number": _file_edit("id", 5),
    "path-empty": _file_edit("path", ""),
    "path-number": _file_edit("path", 1),
    "type-other": _file_edit("type", "Folder"),
    "type-list": _file_edit("type", ["File"]),
    "root-upper": _file_edit("merkleRoot", "bep52:" + "AB" * 32),
    "root-newline": _file_edit("merkleRoot", "bep52:" + "ab" * 32 + "\n"),  # re.search's $
    "root-null": _file_edit("merkleRoot", None),
    "extension-key": _file_edit("owm:note", "kept"),  # valid, through jsonschema
    "unknown-key": _file_edit("colour", "red"),
    "files-not-list": {**json.loads(doc_bytes()), "files": {"a": 1}},
    "file-not-object": {**json.loads(doc_bytes()), "files": ["a"]},
    "not-object": ["files"],
}


@pytest.mark.parametrize("instance", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_files_fast_path_gives_jsonschema_messages(
    instance: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _message(instance, monkeypatch, fast=True) == _message(instance, monkeypatch, False)


@pytest.mark.parametrize("data", BAD_JSON.values(), ids=BAD_JSON.keys())
def test_bad_documents_get_the_same_messages(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        instance = loads_json(data, source="m.jsonld")
    except InvalidManifestError:
        return
    assert _message(instance, monkeypatch, fast=True) == _message(instance, monkeypatch, False)


def test_fast_path_accepts_only_valid_files(monkeypatch: pytest.MonkeyPatch) -> None:
    good = json.loads(doc_bytes())
    assert schemas._files_valid(good)
    for name, instance in BAD_FILES.items():
        if schemas._files_valid(instance):  # then jsonschema must accept it too
            assert _message(instance, monkeypatch, fast=False) is None, name


# --- JSON nesting pre-check ---------------------------------------------------------------------


def _reference_nesting(text: str, limit: int) -> bool:
    """The character-by-character scan the fast check replaced."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest > limit


@SETTINGS
@given(st.text(alphabet='[]{}"\\a,:é\n', max_size=60), st.integers(0, 6))
def test_nesting_check_matches_a_character_scan(text: str, limit: int) -> None:
    assert _nesting_exceeds(text.encode("utf-8"), limit) == _reference_nesting(text, limit)


@SETTINGS
@given(st.text(alphabet='[]{}""a', max_size=60), st.integers(0, 6))
def test_nesting_check_without_escapes(text: str, limit: int) -> None:
    # the path for text without a backslash, where runs of quotes are dropped first
    assert _nesting_exceeds(text.encode("utf-8"), limit) == _reference_nesting(text, limit)


def test_nesting_check_across_chunks() -> None:
    deep = b"[" * 33 + b"]" * 33
    assert _nesting_exceeds(b" " * (3 << 20) + deep, 32)
    assert not _nesting_exceeds(b"[]" * (2 << 20), 32)
    with pytest.raises(InvalidManifestError, match="nested too deeply"):
        loads_json(b'{"a": "\\"' + b"[" * 40 + b'"}' + b"[" * 40, source="x")
    assert loads_json(b'{"a": "' + b"[" * 40 + b'"}', source="x") == {"a": "[" * 40}


# --- JSON-LD writer -----------------------------------------------------------------------------

_scalars = st.one_of(
    st.text(max_size=8), st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
_files = st.lists(
    st.one_of(st.dictionaries(st.sampled_from(["id", "path", "byteSize", "x"]), _values), _values),
    max_size=5,
)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["@context", "id", "files", "type"]), _values), _files)
def test_dumps_is_json_dumps_indent_2(document: dict[str, Any], files: list[Any]) -> None:
    document = {**document, "files": files}
    assert dumps(document) == (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


def test_dumps_of_a_manifest() -> None:
    doc = json.loads(doc_bytes())
    assert dumps(doc) == (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=6),
            st.integers(0, 2**63),
            st.binary(min_size=32, max_size=32),
        ),
        max_size=6,
    ),
    st.sampled_from(["https://openworm.org/data/x", 'urn:x:\u00e9"q', "https://h/p?q=1"]),
)
def test_manifest_json_is_dumps_of_manifest_to_jsonld(
    files: list[tuple[str, int, bytes]], dataset_id: str
) -> None:
    # any path text (quotes, backslashes, controls, non-ASCII), empty files without a root
    from owmanifest.manifest.digest import Digest

    from .test_document import sample_manifest

    entries = tuple(
        FileEntry(path, size, None if size == 0 else Digest("bep52", root))
        for path, size, root in files
    )
    m = dataclasses.replace(sample_manifest(), id=dataset_id, files=entries)
    assert manifest_json(m) == dumps(manifest_to_jsonld(m))


# --- canonical N-Quads without blank nodes ------------------------------------------------------

_S = pyoxigraph.NamedNode("https://ex.org/s")
_P = pyoxigraph.NamedNode("https://ex.org/p")


@pytest.mark.parametrize(
    "objects",
    [
        [pyoxigraph.Literal("plain"), pyoxigraph.NamedNode("https://ex.org/o")],
        [pyoxigraph.Literal("looks like _:b0 but is text")],
        [pyoxigraph.Literal("<< not a triple term >>")],
        [pyoxigraph.Literal("line\nbreak"), pyoxigraph.Literal("é", language="fr")],
        [pyoxigraph.Literal("dup"), pyoxigraph.Literal("dup")],
        [],
    ],
)
def test_canonical_fast_path_equals_rdfc(objects: list[Any]) -> None:
    quads = [pyoxigraph.Quad(_S, _P, o) for o in objects]
    quads += [pyoxigraph.Quad(_S, _P, o, _S) for o in objects[:1]]
    fast = canonical.canonical_nquads(quads)
    dataset = pyoxigraph.Dataset(quads)
    dataset.canonicalize(pyoxigraph.CanonicalizationAlgorithm.RDFC_1_0)
    expected = canonical._sorted_lines([canonical._nquads(dataset)])
    assert fast == expected
    assert canonical.canonical_nquads(iter(quads)) == fast


def test_canonical_still_relabels_blank_nodes() -> None:
    quads = [pyoxigraph.Quad(_S, _P, pyoxigraph.BlankNode("zz"))]
    assert canonical.canonical_nquads(quads) == b"<https://ex.org/s> <https://ex.org/p> _:c14n0 .\n"


# --- hashing a small file from one buffer --------------------------------------------------------

SIZES = [0, 1, 16383, 16384, 16385, 32767, 32768, 32769, 65536, 100_000, 262_144, 300_001]


@pytest.mark.parametrize("piece_length", [16384, 32768, 262144])
def test_small_file_path_equals_the_streaming_hasher(tmp_path: Path, piece_length: int) -> None:
    paths = []
    for size in SIZES:
        path = tmp_path / f"{size}.bin"
        path.write_bytes(hashlib.shake_256(b"%d" % size).digest(size) if size else b"")
        paths.append(path)
    for v1 in (False, True):
        for sha in (False, True):
            fast = hash_files(paths, piece_length, v1=v1, sha256=sha, workers=1)
            for path, got in zip(paths, fast, strict=True):
                hasher = FileHasher(piece_length, v1=v1, sha256=sha)
                hasher.update(path.read_bytes())
                assert got == hasher.finish(), (path.name, v1, sha)
                assert got == hash_file(path, piece_length, v1=v1, sha256=sha)


def test_small_file_path_reports_progress(tmp_path: Path) -> None:
    paths = [tmp_path / f"{i}" for i in range(5)]
    for i, p in enumerate(paths):
        p.write_bytes(b"x" * (i * 1000))
    seen: list[int] = []
    hash_files(paths, 16384, workers=1, progress=seen.append)
    assert sum(seen) == sum(i * 1000 for i in range(5))


# --- torrents ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "files", "piece"),
    [
        (0, 0, 16384),
        (100_000, 7, 16384),
        (1 << 30, 1, 512 * 1024),
        (334_000_000, 10_000, 16384),
        (700_000_000, 10_000, 32768),
        (334_000_000, 1, 256 * 1024),
        (100_000 * 512, 100_000, 16384),
        (64 << 30, 1000, 16 << 20),
        (64 << 30, 100_000, 256 * 1024),
    ],
)
def test_piece_length_accounts_for_files(total: int, files: int, piece: int) -> None:
    assert choose_piece_length(total, files) == piece


@given(st.integers(0, 1 << 40), st.integers(0, 10**6))
def test_piece_length_rule(total: int, files: int) -> None:
    piece = choose_piece_length(total, files)
    by_total = choose_piece_length(total)
    assert MIN_PIECE_LENGTH <= piece <= by_total
    # padding never above half the data, and the piece length not smaller than that needs
    assert piece == MIN_PIECE_LENGTH or files * piece * 2 <= total
    assert piece == by_total or files * piece * 4 > total
    assert choose_piece_length(total, 1) == by_total


def test_negative_file_count() -> None:
    with pytest.raises(ValueError):
        choose_piece_length(1, -1)


@pytest.mark.parametrize("hybrid", [True, False])
def test_info_hashes_come_with_the_torrent(tmp_path: Path, hybrid: bool) -> None:
    files = []
    for i, size in enumerate([5, 40_000, 0, 70_000]):
        path = tmp_path / f"f{i}"
        path.write_bytes(b"%d" % i * size)
        files.append(TorrentFile(f"d/f{i}", size, hash_file(path, 32768, v1=hybrid)))
    torrent, hashes = build_torrent_with_hashes("t", files, 32768, hybrid=hybrid, private=True)
    assert torrent == build_torrent("t", files, 32768, hybrid=hybrid, private=True)
    assert hashes == info_hashes(torrent)


@given(st.integers(1, 1 << 50))
def test_pad_entry_is_its_bencoding(size: int) -> None:
    expected = bencode({b"attr": b"p", b"length": size, b"path": [b".pad", b"%d" % size]})
    assert _pad_entry(size).data == expected


# --- small things ---------------------------------------------------------------------------------


@given(st.text(max_size=12))
def test_file_iri_is_quote(path: str) -> None:
    try:
        expected = f"https://ex.org/d#{quote(path, safe='/')}"
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            file_iri("https://ex.org/d", path)
        return
    assert file_iri("https://ex.org/d", path) == expected


def test_paused_gc_is_reentrant_and_restores() -> None:
    states: list[bool] = []

    @paused_gc
    def inner() -> None:
        states.append(gc.isenabled())

    @paused_gc
    def outer() -> None:
        inner()
        states.append(gc.isenabled())

    assert gc.isenabled()
    outer()
    assert states == [False, False]
    assert gc.isenabled()
    gc.disable()
    try:
        outer()
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def test_paused_gc_restores_after_an_error() -> None:
    @paused_gc
    def boom() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        boom()
    assert gc.isenabled()


def test_cli_parser_imports_no_heavy_module() -> None:
    code = (
        "import sys, owmanifest.cli as c; c.build_parser(); "
        "heavy = ('pyoxigraph', 'libtorrent', 'rdflib', 'nacl', 'jsonschema'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_verify_imports_only_what_it_uses() -> None:
    # verify's start-up is a fixed cost per run; these are not needed to check a manifest
    from .fixtures import ASSETS, DIDS

    code = (
        "import sys, owmanifest.cli as c; "
        f"rc = c.main(['verify', {str(ASSETS / 'signed.jsonld')!r}, {str(ASSETS / 'dataset')!r}, "
        f"'--trust', {DIDS['alice']!r}, '--trust', {DIDS['bob']!r}, '--no-state', '-q']); "
        "unused = ('nacl.pwhash', 'nacl.secret', 'multiprocessing', 'jsonschema', 'libtorrent', "
        "'rdflib', 'secrets', 'signal', 'owmanifest.verify.hashcache', "
        "'owmanifest.manifest.builder', 'owmanifest.manifest.torrent'); "
        "print(rc, sorted(m for m in sys.modules if m in unused))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0 []"


def test_a_large_manifest_round_trips() -> None:
    import dataclasses

    from owmanifest.manifest.digest import Digest
    from owmanifest.manifest.document import load_document, manifest_from_quads
    from owmanifest.manifest.jsonld import manifest_to_jsonld
    from owmanifest.manifest.model import FileEntry

    from .test_document import sample_manifest

    files = sorted(
        (
            FileEntry(f"d{i % 7}/f{i:05d}", i, Digest("bep52", hashlib.sha256(b"%d" % i).digest()))
            for i in range(1, 3000)
        ),
        key=lambda f: f.path,
    )
    m = dataclasses.replace(sample_manifest(), files=tuple(files))
    doc = load_document(dumps(manifest_to_jsonld(m)), source="big.jsonld")
    assert manifest_from_quads(doc.quads, source="big.jsonld") == m


# --- JSON-LD: the streaming parse ---------------------------------------------------------------
# ``load_document`` reorders every JSON object's keys into JSON-LD's streaming document form and
# reads it with pyoxigraph's streaming parser, falling back to the general parser when that
# refuses. The statements must be those the general parser reads from the document as written.


def _general_parse(data: bytes) -> tuple[pyoxigraph.Quad, ...]:
    payload = json.dumps(json.loads(data)).encode()
    return tuple(pyoxigraph.parse(payload, format=pyoxigraph.RdfFormat.JSON_LD))


def _same_statements(a: tuple[pyoxigraph.Quad, ...], b: tuple[pyoxigraph.Quad, ...]) -> None:
    assert len(set(a)) == len(set(b))
    # Blank-node labels are the parsers' own: compare canonical forms, which relabel them.
    assert canonical.canonical_nquads(a) == canonical.canonical_nquads(b)


_IRI = st.sampled_from(["https://ex.org/a", "https://ex.org/b#c", "urn:x:1", "did:key:z6Mkx"])
_PLAIN = st.one_of(st.text(max_size=6), st.integers(-5, 5), st.booleans())
_JSONLD_VALUES = st.recursive(
    _PLAIN
    | st.builds(lambda s: {"@value": s, "@language": "en"}, st.text(max_size=4))
    | st.builds(lambda s: {"@type": "xsd:date", "@value": s}, st.text(max_size=4))
    | st.builds(lambda i: {"id": i}, _IRI),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.builds(lambda items: {"@list": items}, st.lists(inner, max_size=2))
        | st.dictionaries(
            st.sampled_from(["id", "type", "owm:p", "dcterms:title", "https://ex.org/q"]),
            inner,
            max_size=4,
        ).map(lambda d: {k: (v if k not in ("id", "type") else "owm:T") for k, v in d.items()})
        | st.builds(
            # an extension value with a context of its own that aliases @type: not in the
            # streaming form as far as the reordering can tell
            lambda v: {"@context": {"t": "@type"}, "owm:p": v, "t": "owm:T"},
            inner,
        )
    ),
    max_leaves=8,
)


def _shuffled(d: dict[str, Any], order: list[int]) -> dict[str, Any]:
    keys = list(d)
    ranked = sorted(range(len(keys)), key=lambda i: (order[i % len(order)] if order else 0, i))
    return {keys[i]: d[keys[i]] for i in ranked}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["owm:x", "dcat:y", "dcterms:creator", "https://ex.org/p"]),
        _JSONLD_VALUES,
        max_size=3,
    ),
    st.lists(st.integers(0, 9), max_size=12),
    st.booleans(),
)
def test_streaming_parse_reads_what_the_general_parser_reads(
    extensions: dict[str, Any], order: list[int], proof: bool
) -> None:
    from owmanifest.errors import InvalidManifestError
    from owmanifest.manifest.document import _parse_streaming, _streaming_order, load_document

    doc = json.loads(doc_bytes())
    doc.update(extensions)
    if proof:
        doc["proof"] = [
            {
                "type": "DataIntegrityProof",
                "cryptosuite": "eddsa-rdfc-2022",
                "created": "2026-01-01T00:00:00Z",
                "verificationMethod": "did:key:z6Mkx#z6Mkx",
                "proofPurpose": "assertionMethod",
                "proofValue": "z" + "1" * 86,
            }
        ]
    # any key order, at every level: the reordering must not depend on the writer's
    doc = _shuffled(doc, order)
    doc["files"] = [_shuffled(f, order[::-1]) for f in doc["files"]]
    data = json.dumps(doc).encode()
    try:
        expected = _general_parse(data)
    except SyntaxError:
        event("not JSON-LD")
        with pytest.raises(InvalidManifestError):
            load_document(data, source="m.jsonld")
        return
    try:
        got = load_document(data, source="m.jsonld").quads
    except InvalidManifestError as exc:
        event("refused by the schema")
        assert exc.path == "m.jsonld"
        return
    streamed = _parse_streaming(json.dumps(_streaming_order(doc)).encode()) is not None
    event("streaming parser" if streamed else "general parser")
    _same_statements(got, expected)


def test_streaming_parse_is_used_for_manifests(monkeypatch: pytest.MonkeyPatch) -> None:

    calls: list[bool] = []
    real = document._parse_streaming

    def spy(payload: bytes) -> tuple[pyoxigraph.Quad, ...] | None:
        result = real(payload)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(document, "_parse_streaming", spy)
    from .fixtures import signed_bytes

    for data in (doc_bytes(), signed_bytes()):
        quads = document.load_document(data, source="m.jsonld").quads
        _same_statements(quads, _general_parse(data))
    assert calls == [True, True]


def test_streaming_parse_falls_back_to_the_general_parser() -> None:
    from owmanifest.manifest.document import _parse_streaming, _streaming_order, load_document

    doc = json.loads(doc_bytes())
    doc["owm:x"] = {"@context": {"t": "@type"}, "owm:p": 1, "t": "owm:T"}
    data = json.dumps(doc).encode()
    assert _parse_streaming(json.dumps(_streaming_order(doc)).encode()) is None
    _same_statements(load_document(data, source="m.jsonld").quads, _general_parse(data))


def _jsonld_files() -> list[Path]:
    """Every JSON-LD file in the test assets and the shared vectors that the general parser
    reads offline (the vectors' documents with remote contexts are left out)."""
    roots = [Path(__file__).parents[1] / "assets", Path(__file__).parents[3] / "shared" / "vectors"]
    found = []
    for path in sorted(p for root in roots if root.is_dir() for p in root.rglob("*.json*")):
        try:
            _general_parse(path.read_bytes())
        except (ValueError, SyntaxError, OSError):
            continue
        found.append(path)
    return found


@pytest.mark.parametrize("path", _jsonld_files(), ids=lambda p: p.name)
def test_streaming_parse_on_every_json_ld_file_we_have(path: Path) -> None:
    from owmanifest.manifest.document import _parse_streaming, _streaming_order

    got = _parse_streaming(json.dumps(_streaming_order(json.loads(path.read_bytes()))).encode())
    if got is not None:
        _same_statements(got, _general_parse(path.read_bytes()))


# --- JSON-LD: plain file nodes written as N-Quads ----------------------------------------------
# ``load_document`` writes the statements of plain file nodes itself (``_plain_file_lines``) and
# leaves the rest to pyoxigraph. For any dataset id and file nodes: the document is refused
# exactly when the schema refuses it, its statements are the general parser's, every line
# written is the line pyoxigraph writes for that statement, and the canonical form is RDFC's.

_PLAIN_DATASET_IDS = [
    "https://openworm.org/data/sample",
    "http://ex.org:8080/a/b",
    "https://ex.org",
]
_DATASET_IDS = st.sampled_from(
    [
        *_PLAIN_DATASET_IDS * 4,
        "https://ex.org/a/./b",
        "https://ex.org/a/..",
        "https://ex.org/x%41",
        "https://ex.org/q?x=1",
        "https://ex.org/a#f",
        "urn:x:1",
        "owm:ds",
    ]
)
_FILE_PATHS = st.one_of(
    st.sampled_from(["a.txt", "d/b c.bin", "é/ü", 'q"', "b\\s", "t\tx", "n\n", "\x7f", "x\ud800"]),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
    st.text(max_size=8),
)
_ROOT = "bep52:" + "ab" * 32


def _rarely(draw: st.DrawFn, usual: Any, unusual: list[Any]) -> Any:
    """``usual``, or one of ``unusual`` once in ten draws."""
    return draw(st.sampled_from(unusual)) if draw(st.integers(0, 9)) == 0 else usual


@st.composite
def _file_nodes(draw: st.DrawFn, dataset: str) -> dict[str, Any]:
    path = draw(_FILE_PATHS)
    try:
        ident = _rarely(draw, file_iri(dataset, path), [f"{dataset}#{path}", "https://ex.org/x"])
    except UnicodeEncodeError:  # quote() of a lone surrogate
        ident = f"{dataset}#x"
    node: dict[str, Any] = {"id": ident}
    kind = _rarely(draw, "File", [None, ["File"], "Other"])
    if kind is not None:
        node["type"] = kind
    node["path"] = path
    node["byteSize"] = _rarely(draw, draw(st.integers(0, 1 << 40)), [-1, 1 << 64, True, 1.5])
    root = _rarely(draw, _ROOT, [None, "bep52:00", 7])
    if root is not None:
        node["merkleRoot"] = root
    if _rarely(draw, False, [True]):
        node["owm:note"] = "x"
    return node


@st.composite
def _documents_with_files(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    doc = json.loads(doc_bytes())
    dataset = draw(_DATASET_IDS)
    doc["id"] = dataset
    doc["files"] = draw(st.lists(_file_nodes(dataset), max_size=4))
    return doc, doc["files"]


def _serialized(quads: Any) -> set[bytes]:
    return {f"{q} .\n".encode() for q in quads}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents_with_files())
def test_plain_file_lines_are_the_general_parsers_statements(
    case: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    doc, files = case
    try:
        data = json.dumps(doc, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        data = json.dumps(doc).encode()  # lone surrogates as \u escapes
    rest, lines = document._plain_file_lines(json.loads(data))
    taken = len(files) - len(rest.get("files", ()))
    event(f"{taken} of {len(files)} plain")
    with mock.patch.object(document, "_compiled_reader", lambda: None):  # the Python loop
        assert document._plain_file_lines(json.loads(data)) == (rest, lines)
    for f in files:  # a plain node is a valid file object of the schema
        if document._plain_file_lines({"id": doc["id"], "files": [f]})[1]:
            assert schemas._files_valid({"files": [f]})
    try:
        schemas.validate(json.loads(data), "manifest", source="m.jsonld")
    except InvalidManifestError as exc:
        with pytest.raises(InvalidManifestError) as refused:
            document.load_document(data, source="m.jsonld")
        assert refused.value.message == exc.message  # the same problem, in the same place
        return
    try:
        expected = _general_parse(data)
    except (SyntaxError, ValueError):
        event("not JSON-LD")
        return
    written = _serialized(expected)
    assert set(lines.splitlines(keepends=True)) <= written
    got = document.load_document(data, source="m.jsonld").quads
    assert set(got) == set(expected)
    streamed = document.load_document(data, source="m.jsonld", keep_json=False, stream=True)
    parts = streamed.stream_parts()
    assert parts is not None
    written_rest = pyoxigraph.serialize(parts[0], format=pyoxigraph.RdfFormat.N_QUADS)
    assert written_rest is not None
    core = document._compiled_reader()
    if core is not None:
        indexed = core.index(written_rest, parts[1], *document._INDEX_VOCAB)
        if indexed is not None:
            assert indexed[0] == canonical.canonical_nquads(expected)


def test_plain_file_lines_of_a_created_manifest() -> None:
    doc = json.loads(doc_bytes())
    rest, lines = document._plain_file_lines(doc)
    assert "files" not in rest and rest["id"] == doc["id"]
    assert lines.count(b"\n") == sum(4 + ("merkleRoot" in f) for f in doc["files"])
    assert set(lines.splitlines(keepends=True)) <= _serialized(_general_parse(doc_bytes()))


# --- the model: a file node read without building a _Node ---------------------------------------

_DATASET = "https://openworm.org/data/sample"
_XSD = "http://www.w3.org/2001/XMLSchema#"


def _literal(text: str, datatype: str | None = None, language: str | None = None) -> Any:
    if language:
        return pyoxigraph.Literal(text, language=language)
    return pyoxigraph.Literal(text, datatype=pyoxigraph.NamedNode(_XSD + (datatype or "string")))


_PATHS = st.sampled_from(["a", "d/f.txt", "é", "a b", "x\ny", "../x", ""])
_TERMS = st.one_of(
    _PATHS.map(_literal),
    st.sampled_from(["0", "1", "-0", "+7", "007", "-1", "x", "1.0", " 1", "9" * 30]).flatmap(
        lambda t: st.sampled_from([_literal(t, "integer"), _literal(t, "int"), _literal(t)])
    ),
    st.sampled_from(
        ["bep52:" + "ab" * 32, "bep52:" + "AB" * 32, "sha256:" + "ab" * 32, "bep52:ab", "bep52:"]
    ).flatmap(lambda t: st.sampled_from([_literal(t), _literal(t, language="en")])),
    st.sampled_from([pyoxigraph.NamedNode("https://ex.org/x"), pyoxigraph.BlankNode("b")]),
)
_PREDICATES = st.sampled_from(
    [
        "https://openworm.org/ns/owmanifest#path",
        "http://www.w3.org/ns/dcat#byteSize",
        "https://openworm.org/ns/owmanifest#merkleRoot",
        "http://purl.org/dc/terms/title",
    ]
)


def _outcome(fn: Any) -> Any:
    try:
        return fn()
    except InvalidManifestError as exc:
        return f"{type(exc).__name__}: {exc} | {exc.expected} | {exc.observed}"


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.tuples(_PREDICATES, _TERMS), max_size=6), st.booleans())
def test_file_fast_path_equals_the_node_accessors(pairs: list[Any], iri_from_path: bool) -> None:
    from owmanifest.manifest.jsonld import file_iri as make_iri

    flat = [x for pair in pairs for x in pair]
    iri = f"{_DATASET}#d/f.txt"
    if iri_from_path:
        paths = [o.value for p, o in pairs if p.endswith("#path") and hasattr(o, "value")]
        with contextlib.suppress(UnicodeEncodeError):
            iri = make_iri(_DATASET, paths[0]) if paths else iri
    fast = _outcome(lambda: document._file_entry(iri, flat, _DATASET, "m"))
    slow = _outcome(
        lambda: document._file_entry_checked(document._Node(iri, "m", flat), _DATASET, "m")
    )
    event("accepted" if isinstance(fast, FileEntry) else "refused")
    assert fast == slow


# --- one statement's N-Quads line ---------------------------------------------------------------
# The verifier's one pass (``manifest_from_stream``) writes each statement as ``f"{quad} ."``;
# the canonical form must be what pyoxigraph's N-Quads serializer writes.

_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_NODES = st.sampled_from(
    [
        pyoxigraph.NamedNode("https://ex.org/s"),
        pyoxigraph.NamedNode("https://ex.org/é?q=1#x%20y"),
        pyoxigraph.NamedNode("did:key:z6Mkx"),
    ]
)
_OBJECTS = st.one_of(
    _NODES,
    _TEXT.map(pyoxigraph.Literal),
    st.builds(
        lambda t, dt: pyoxigraph.Literal(t, datatype=pyoxigraph.NamedNode(dt)),
        _TEXT,
        st.sampled_from([_XSD + "integer", _XSD + "dateTime", "https://ex.org/dt"]),
    ),
    st.builds(
        lambda t, lang: pyoxigraph.Literal(t, language=lang),
        _TEXT,
        st.sampled_from(["en", "en-US", "de-CH-1996"]),
    ),
)


@SETTINGS
@given(_NODES, _NODES, _OBJECTS, st.one_of(st.just(pyoxigraph.DefaultGraph()), _NODES))
def test_a_statement_line_is_what_the_serializer_writes(s: Any, p: Any, o: Any, g: Any) -> None:
    quad = pyoxigraph.Quad(s, p, o, g)
    written = pyoxigraph.serialize([quad], format=pyoxigraph.RdfFormat.N_QUADS)
    assert f"{quad} .\n".encode() == written


@SETTINGS
@given(st.lists(st.tuples(_NODES, _NODES, _OBJECTS), max_size=8))
def test_canonical_from_lines_is_canonical_nquads(triples: list[tuple[Any, Any, Any]]) -> None:
    quads = [pyoxigraph.Quad(s, p, o) for s, p, o in triples]
    lines = dict.fromkeys(f"{q} .".encode() for q in quads)
    got = canonical.canonical_from_lines(lines)
    if got is None:  # "_:" or "<<" in a literal: the caller takes the full algorithm
        assert any(b"_:" in line or b"<<" in line for line in lines)
    else:
        assert got == canonical.canonical_nquads(quads)


# --- the compiled one pass (ADR 0008) -----------------------------------------------------------
# ``_nqindex.index`` reads pyoxigraph's N-Quads of a document: its canonical body must be
# ``canonical_from_lines`` of the body statements (or no answer where that has none), and it
# must put aside exactly the statements in a named graph or with the proof predicate.

_PROOF = pyoxigraph.NamedNode("https://w3id.org/security#proof")
_GRAPHS = st.one_of(st.just(pyoxigraph.DefaultGraph()), _NODES, st.just(pyoxigraph.BlankNode("g0")))


@pytest.mark.skipif(not document.compiled_reader(), reason="the compiled one pass is not built")
@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.one_of(_NODES, st.just(pyoxigraph.BlankNode("s0"))),
            st.one_of(_NODES, st.just(_PROOF)),
            st.one_of(_OBJECTS, st.just(pyoxigraph.BlankNode("o0"))),
            _GRAPHS,
        ),
        max_size=10,
    )
)
def test_compiled_one_pass_splits_and_sorts_as_the_python_one(quads: list[Any]) -> None:
    statements = [pyoxigraph.Quad(*q) for q in quads]
    data = pyoxigraph.serialize(statements, format=pyoxigraph.RdfFormat.N_QUADS) or b""
    lines = data.splitlines(keepends=True)
    core = document._compiled_reader()
    got = core.index(data, b"", *document._INDEX_VOCAB)
    # the same read from two buffers (pyoxigraph's lines, then plain_lines'), cut anywhere
    half = len(lines) // 2
    assert core.index(b"".join(lines[:half]), b"".join(lines[half:]), *document._INDEX_VOCAB) == got
    aside = [q for q in statements if type(q.graph_name) is not pyoxigraph.DefaultGraph
             or q.predicate == _PROOF]  # fmt: skip
    body = dict.fromkeys(f"{q} .".encode() for q in statements if q not in aside)
    expected = canonical.canonical_from_lines(body)
    if got is None:
        event("no answer")
        assert expected is None or not body
        return
    event("answered")
    assert got[0] == expected
    assert got[1] == b"".join(f"{q} .\n".encode() for q in aside)


# Subjects that are prefixes of each other ("…#a", "…#a.txt", "…#a/b"), as file IRIs can be: the
# line order then differs from the IRI order, and runs break where a reader might not expect it.
_RUN_SUBJECTS = [
    pyoxigraph.NamedNode(f"https://ex.org/d#{name}") for name in ("a", "a.txt", "a/b", "b", "é")
]
_RUN_LINES = st.builds(
    lambda s, p, o: f"{pyoxigraph.Quad(s, p, o)} .".encode(),
    st.sampled_from([*_RUN_SUBJECTS, pyoxigraph.NamedNode("https://ex.org/d")]),
    st.sampled_from([pyoxigraph.NamedNode(f"https://ex.org/p{k}") for k in (1, 2, 10)]),
    st.one_of(
        st.sampled_from(_RUN_SUBJECTS), st.sampled_from(["", "x", "x y"]).map(pyoxigraph.Literal)
    ),
)


@pytest.mark.skipif(not document.compiled_reader(), reason="the compiled one pass is not built")
@SETTINGS
@given(st.lists(st.lists(_RUN_LINES, max_size=12), min_size=1, max_size=40), st.booleans())
def test_compiled_sort_of_runs_is_pythons_sort(chunks: list[list[bytes]], presorted: bool) -> None:
    # a body in a few sorted runs is merged, one in more than 32 runs goes to the MSD sort: both
    # must give Python's sort of the unique lines
    if presorted:
        chunks = [sorted(chunk) for chunk in chunks]
    lines = [line for chunk in chunks for line in chunk]
    if not lines:
        return  # (no statements: no answer)
    runs = 1 + sum(b < a for a, b in itertools.pairwise(lines))
    event("merged" if runs <= 32 else "MSD sort")
    core = document._compiled_reader()
    data = b"".join(line + b"\n" for line in lines)
    got = core.index(data, b"", *document._INDEX_VOCAB)
    assert got is not None
    assert got[0] == b"".join(line + b"\n" for line in sorted(set(lines)))
