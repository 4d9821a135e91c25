"""RDFC-1.0: the W3C test suite, the poison-graph guard, and properties of canonical_nquads."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, Literal

import pyoxigraph
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from owmanifest.errors import CanonicalizationError
from owmanifest.manifest.canonical import (
    DEFAULT_MAX_BLANK_NODES,
    canonical_hash,
    canonical_nquads,
)
from tests.conftest import find_shared

EVAL = "rdfc:RDFC10EvalTest"
NEGATIVE = "rdfc:RDFC10NegativeEvalTest"
MAP = "rdfc:RDFC10MapTest"
SUITE_SUBDIR = Path("vectors/rdf-canon/tests")


def _suite_params() -> list[Any]:
    shared = find_shared()
    manifest = None if shared is None else shared / SUITE_SUBDIR / "manifest.jsonld"
    if manifest is None or not manifest.is_file():
        return [
            pytest.param(
                None,
                id="suite-missing",
                marks=pytest.mark.skip(
                    reason="W3C RDFC-1.0 suite not found (set OWMANIFEST_SHARED)"
                ),
            )
        ]
    entries = json.loads(manifest.read_text("utf-8"))["entries"]
    params = []
    for entry in entries:
        marks = []
        if entry["type"] == MAP:
            marks.append(
                pytest.mark.skip(
                    reason="map test: pyoxigraph does not expose the issued-identifiers map"
                )
            )
        params.append(pytest.param(entry, id=entry["id"].lstrip("#"), marks=marks))
    return params


def _quads(path: Path) -> list[pyoxigraph.Quad]:
    return list(pyoxigraph.parse(path=str(path), format=pyoxigraph.RdfFormat.N_QUADS))


@pytest.mark.parametrize("entry", _suite_params())
def test_w3c_rdfc10(entry: dict[str, Any], shared_dir: Path) -> None:
    base = shared_dir / SUITE_SUBDIR
    quads = _quads(base / entry["action"])
    algorithm: Literal["sha256", "sha384"] = (
        "sha384" if entry.get("hashAlgorithm") == "SHA384" else "sha256"
    )
    if entry["type"] == NEGATIVE:
        with pytest.raises(CanonicalizationError) as info:
            canonical_nquads(quads, hash_algorithm=algorithm)
        assert "poison" in str(info.value)
        return
    assert entry["type"] == EVAL
    expected = (base / entry["result"]).read_bytes()
    assert canonical_nquads(quads, hash_algorithm=algorithm) == expected


def test_suite_has_every_test_type(shared_dir: Path) -> None:
    manifest = shared_dir / SUITE_SUBDIR / "manifest.jsonld"
    types = {e["type"] for e in json.loads(manifest.read_text("utf-8"))["entries"]}
    assert types == {EVAL, NEGATIVE, MAP}


# --- guard ---------------------------------------------------------------------------------------

EX = "http://example.org/"
P = pyoxigraph.NamedNode(EX + "p")


def _clique(n: int) -> list[pyoxigraph.Quad]:
    nodes = [pyoxigraph.BlankNode() for _ in range(n)]
    return [pyoxigraph.Quad(a, P, b) for a in nodes for b in nodes]


def _ring(n: int) -> list[pyoxigraph.Quad]:
    nodes = [pyoxigraph.BlankNode() for _ in range(n)]
    both = [(nodes[i], nodes[(i + 1) % n]) for i in range(n)]
    return [pyoxigraph.Quad(a, P, b) for a, b in both] + [pyoxigraph.Quad(b, P, a) for a, b in both]


def test_too_many_blank_nodes() -> None:
    quads = [
        pyoxigraph.Quad(pyoxigraph.NamedNode(EX), P, pyoxigraph.BlankNode())
        for _ in range(DEFAULT_MAX_BLANK_NODES + 1)
    ]
    with pytest.raises(CanonicalizationError) as info:
        canonical_nquads(quads, source="/tmp/m.trig")
    assert info.value.observed == DEFAULT_MAX_BLANK_NODES + 1
    assert str(DEFAULT_MAX_BLANK_NODES) in str(info.value.expected)
    assert info.value.path == "/tmp/m.trig"
    assert len(canonical_nquads(quads, max_blank_nodes=100).splitlines()) == len(quads)


def test_source_uri_goes_to_uri() -> None:
    with pytest.raises(CanonicalizationError) as info:
        canonical_nquads(_clique(3), max_blank_nodes=2, source="https://example.org/m.jsonld")
    assert info.value.uri == "https://example.org/m.jsonld"
    assert info.value.path is None


@pytest.mark.parametrize("n", [7, 10])
def test_cliques_are_refused_before_pyoxigraph_runs(n: int) -> None:
    # a 10-clique takes pyoxigraph minutes; the guard answers at once
    with pytest.raises(CanonicalizationError, match="poison"):
        canonical_nquads(_clique(n))


def test_symmetric_but_harmless_graphs_pass() -> None:
    assert len(canonical_nquads(_clique(5)).splitlines()) == 25
    assert len(canonical_nquads(_ring(DEFAULT_MAX_BLANK_NODES)).splitlines()) == 128


def test_triple_terms_are_refused() -> None:
    inner = pyoxigraph.Triple(pyoxigraph.NamedNode(EX + "a"), P, pyoxigraph.NamedNode(EX + "b"))
    with pytest.raises(CanonicalizationError, match="triple terms"):
        canonical_nquads([pyoxigraph.Quad(pyoxigraph.NamedNode(EX), P, inner)])


def test_empty_and_hash() -> None:
    assert canonical_nquads([]) == b""
    quads = [pyoxigraph.Quad(pyoxigraph.NamedNode(EX), P, pyoxigraph.Literal("x"))]
    data = canonical_nquads(quads)
    assert data == b'<http://example.org/> <http://example.org/p> "x" .\n'
    digest = canonical_hash(quads)
    assert digest.algorithm == "rdfc-sha256"
    assert digest.value == hashlib.sha256(data).digest()


def test_line_separators_inside_literals_do_not_split_lines() -> None:
    # canonical N-Quads escapes only \n, \r, \", \\ (and some controls); U+2028, U+000C, U+0085
    # stay raw, and a naive splitlines() would cut statements apart.
    quads = [
        pyoxigraph.Quad(pyoxigraph.NamedNode(EX + str(i)), P, pyoxigraph.Literal(text))
        for i, text in enumerate(["a\u2028b", "c\x0cd", "e\x85f", "g\nh"])
    ]
    lines = canonical_nquads(quads).split(b"\n")
    assert len(lines) == 5 and lines[-1] == b""


# --- properties ----------------------------------------------------------------------------------

IRIS = [pyoxigraph.NamedNode(EX + name) for name in ("a", "b", "c")]
PREDICATES = [pyoxigraph.NamedNode(EX + name) for name in ("p", "q")]
LABELS = [f"b{i}" for i in range(6)]
TEXT = st.text(
    alphabet=st.sampled_from('aZ"\\\n\r\t\x00\x0c\x7f\u2028\u00e9\U0001f41b '), max_size=4
)
LITERALS = st.one_of(
    TEXT.map(pyoxigraph.Literal),
    st.tuples(TEXT, st.sampled_from(["en", "fr-be"])).map(
        lambda t: pyoxigraph.Literal(t[0], language=t[1])
    ),
    st.integers(-3, 3).map(
        lambda i: pyoxigraph.Literal(
            str(i), datatype=pyoxigraph.NamedNode("http://www.w3.org/2001/XMLSchema#integer")
        )
    ),
)


@st.composite
def datasets(draw: st.DrawFn, *, blank: bool = True) -> list[tuple[Any, ...]]:
    """Quads as tuples, blank nodes as ("_", label) to relabel later."""
    node = st.sampled_from(IRIS)
    if blank:
        node = st.one_of(node, st.sampled_from(LABELS).map(lambda label: ("_", label)))
    graph = st.one_of(st.none(), node)
    quad = st.tuples(node, st.sampled_from(PREDICATES), st.one_of(node, LITERALS), graph)
    return draw(st.lists(quad, max_size=12))


def _build(raw: list[tuple[Any, ...]], names: dict[str, str]) -> list[pyoxigraph.Quad]:
    def term(value: Any) -> Any:
        if isinstance(value, tuple):
            return pyoxigraph.BlankNode(names[value[1]])
        return value

    return [
        pyoxigraph.Quad(term(s), p, term(o), None if g is None else term(g)) for s, p, o, g in raw
    ]


def _outcome(quads: list[pyoxigraph.Quad]) -> bytes | str:
    try:
        return canonical_nquads(quads)
    except CanonicalizationError as error:
        return f"refused: {error.message}"


@settings(deadline=None, max_examples=150)
@given(datasets(), st.randoms(use_true_random=False))
def test_invariant_under_relabelling_and_shuffling(
    raw: list[tuple[Any, ...]], rnd: random.Random
) -> None:
    first = _build(raw, {label: label for label in LABELS})
    fresh = [f"x{i}y" for i in range(len(LABELS))]
    rnd.shuffle(fresh)
    shuffled = list(raw)
    rnd.shuffle(shuffled)
    second = _build(shuffled, dict(zip(LABELS, fresh, strict=True)))
    assert _outcome(first) == _outcome(second)
    out = _outcome(first)
    if isinstance(out, bytes) and out:
        lines = out.split(b"\n")[:-1]
        assert lines == sorted(set(lines))
        assert b"_:b" not in out  # every blank node relabelled _:c14nN


@settings(deadline=None, max_examples=150)
@given(datasets(blank=False))
def test_fast_path_equals_rdfc(raw: list[tuple[Any, ...]]) -> None:
    quads = _build(raw, {})
    dataset = pyoxigraph.Dataset(quads)
    dataset.canonicalize(pyoxigraph.CanonicalizationAlgorithm.RDFC_1_0)
    slow = pyoxigraph.serialize(dataset, format=pyoxigraph.RdfFormat.N_QUADS)
    assert slow is not None
    expected = b"".join(sorted(line + b"\n" for line in set(slow.split(b"\n")) if line))
    assert canonical_nquads(quads) == expected
