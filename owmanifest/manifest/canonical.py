"""RDF Dataset Canonicalization (RDFC-1.0) with a guard against poison graphs.

:func:`canonical_nquads` returns the canonical N-Quads of a set of quads: blank nodes relabelled
``_:c14n0``, ``_:c14n1``, ... by RDFC-1.0 (W3C Recommendation, 2024), one statement per line,
lines sorted by Unicode code point (= UTF-8 byte order), each ending in ``"\\n"``. This is the
form that Data Integrity proofs (``eddsa-rdfc-2022``) hash and sign.

The relabelling is done by pyoxigraph (``Dataset.canonicalize(RDFC_1_0)``), which passes the W3C
test suite but has no limit on its work: RDFC-1.0 is exponential on some blank-node structures
("poison graphs", e.g. a clique of ten blank nodes takes minutes). Because a verifier
canonicalizes documents it does not trust, two checks run first (see
``docs/adr/0003-canonicalizer.md``):

1. at most ``max_blank_nodes`` distinct blank nodes;
2. an estimate of the work of the Hash N-Degree Quads step (the exponential one), computed from
   the first-degree hashes and the shape of the graph without any hashing, must not exceed
   ``max_work``. It counts the permutations RDFC-1.0 tries, ignoring its path pruning.

Datasets without blank nodes take a fast path: their canonical form is the sorted, de-duplicated
N-Quads serialization, and pyoxigraph's canonicalizer is not called.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Final, Literal

import pyoxigraph

from .._gc import paused_gc
from ..errors import CanonicalizationError
from .digest import Digest

__all__ = [
    "DEFAULT_MAX_BLANK_NODES",
    "DEFAULT_MAX_WORK",
    "RDFC_SHA256",
    "canonical_from_lines",
    "canonical_hash",
    "canonical_nquads",
]

#: Default limit on distinct blank nodes in a dataset to canonicalize. Manifests name their
#: nodes with IRIs; the blank nodes in a signed manifest are its proof graphs and proof nodes.
DEFAULT_MAX_BLANK_NODES: Final = 64

#: Default limit on the estimated work of RDFC-1.0's Hash N-Degree Quads step. The unit is one
#: call or one tried permutation; pyoxigraph manages roughly 2 million of them per second on
#: the reference machine, so the default bounds canonicalization to well under a second. Every
#: evaluation test of the W3C suite needs less than 3,400; a 6-clique ~41,000; a 7-clique
#: ~400,000 (rejected); the 10-clique poison test is rejected.
DEFAULT_MAX_WORK: Final = 100_000

#: The :class:`Digest` algorithm name of :func:`canonical_hash`.
RDFC_SHA256: Final = "rdfc-sha256"

_ALGORITHMS: Final = {
    "sha256": pyoxigraph.CanonicalizationAlgorithm.RDFC_1_0_SHA_256,
    "sha384": pyoxigraph.CanonicalizationAlgorithm.RDFC_1_0_SHA_384,
}
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")

_Node = pyoxigraph.BlankNode
_Label = tuple[str, object]


@paused_gc
def canonical_nquads(
    quads: Iterable[pyoxigraph.Quad],
    *,
    max_blank_nodes: int = DEFAULT_MAX_BLANK_NODES,
    max_work: int = DEFAULT_MAX_WORK,
    hash_algorithm: Literal["sha256", "sha384"] = "sha256",
    source: str | None = None,
) -> bytes:
    """The RDFC-1.0 canonical N-Quads of ``quads``.

    Args:
        quads: the dataset; duplicates are ignored.
        max_blank_nodes: refuse datasets with more distinct blank nodes than this.
        max_work: refuse datasets whose estimated Hash N-Degree Quads work exceeds this.
        hash_algorithm: the RDFC-1.0 hash function; ``sha256`` is the default of RDFC-1.0 and
            the one ``eddsa-rdfc-2022`` uses.
        source: the file or URI the quads come from, for error messages.

    Returns:
        UTF-8 canonical N-Quads, lines sorted by code point, each ending in ``"\\n"``; ``b""``
        for an empty dataset.

    Raises:
        CanonicalizationError: too many blank nodes, too ambiguous a blank-node structure
            (a possible poison graph), or RDF 1.2 triple terms (not defined by RDFC-1.0).
    """
    where = _where(source)
    if not isinstance(quads, (list, tuple)):
        quads = list(quads)
    serialized = [_nquads(quads)]
    if b"_:" not in serialized[0] and b"<<" not in serialized[0]:
        # No blank node (serialized "_:x") and no triple term ("<<( ... )>>") anywhere, not
        # even inside a literal: the fast path below, without a Python loop over the quads.
        return _sorted_lines(serialized)
    del serialized
    unique = list(dict.fromkeys(quads))
    blank: set[_Node] = set()
    for quad in unique:
        if isinstance(quad.subject, pyoxigraph.Triple) or isinstance(
            quad.object, pyoxigraph.Triple
        ):
            raise CanonicalizationError(
                "RDF 1.2 triple terms cannot be canonicalized by RDFC-1.0",
                **where,
                observed=str(quad),
            )
        for term in (quad.subject, quad.object, quad.graph_name):
            if isinstance(term, pyoxigraph.BlankNode):
                blank.add(term)
    if not blank:
        return _sorted_lines([_nquads(unique)])
    if len(blank) > max_blank_nodes:
        raise CanonicalizationError(
            "too many blank nodes to canonicalize",
            **where,
            expected=f"at most {max_blank_nodes}",
            observed=len(blank),
        )
    if _estimate_work(unique, max_work) > max_work:
        raise CanonicalizationError(
            "blank-node structure too ambiguous to canonicalize safely (possible poison graph)",
            **where,
            expected=f"at most {max_work} units of RDFC-1.0 work",
            observed=f"more than {max_work}",
        )
    try:
        algorithm = _ALGORITHMS[hash_algorithm]
    except KeyError:
        raise CanonicalizationError(
            "unsupported RDFC-1.0 hash algorithm",
            **where,
            expected=" or ".join(_ALGORITHMS),
            observed=hash_algorithm,
        ) from None
    dataset = pyoxigraph.Dataset(unique)
    dataset.canonicalize(algorithm)
    return _sorted_lines([_nquads(dataset)])


def canonical_from_lines(lines: Iterable[bytes]) -> bytes | None:
    """The canonical N-Quads of a dataset given as its statements' N-Quads lines.

    Args:
        lines: one line per statement as pyoxigraph writes it (``f"{quad} ."``), in UTF-8,
            without the newline and without duplicates.

    Returns:
        What :func:`canonical_nquads` returns for those statements; or ``None`` when a line
        may hold a blank node or an RDF 1.2 triple term (``_:`` or ``<<`` anywhere, the test
        of :func:`canonical_nquads`' own fast path): those need the full algorithm, from
        the quads.
    """
    ordered = sorted(lines)  # UTF-8 byte order is code point order
    if not ordered:
        return b""
    ordered.append(b"")  # the final newline
    data = b"\n".join(ordered)
    del ordered
    if b"_:" in data or b"<<" in data:
        return None
    return data


def canonical_hash(
    quads: Iterable[pyoxigraph.Quad],
    *,
    max_blank_nodes: int = DEFAULT_MAX_BLANK_NODES,
    max_work: int = DEFAULT_MAX_WORK,
    source: str | None = None,
) -> Digest:
    """``Digest("rdfc-sha256", sha256(canonical_nquads(quads)))``.

    Raises:
        CanonicalizationError: as :func:`canonical_nquads`.
    """
    data = canonical_nquads(
        quads, max_blank_nodes=max_blank_nodes, max_work=max_work, source=source
    )
    return Digest(RDFC_SHA256, hashlib.sha256(data).digest())


def _where(source: str | None) -> dict[str, str | None]:
    if source is None:
        return {}
    if _URI_SCHEME.match(source):
        return {"uri": source}
    return {"path": source}


def _nquads(quads: Iterable[pyoxigraph.Quad]) -> bytes:
    data = pyoxigraph.serialize(quads, format=pyoxigraph.RdfFormat.N_QUADS)
    assert data is not None  # no output given: serialize returns the bytes
    return data


def _sorted_lines(serialized: list[bytes]) -> bytes:
    """The lines of ``serialized[0]`` (taken out of the list, so that it can be freed as soon
    as it is split), de-duplicated and sorted, each ending in a newline."""
    # Split on "\n" only: canonical N-Quads escapes "\n" and "\r" in literals, but other line
    # separators (U+000B, U+000C, U+0085, U+2028, ...) appear raw. UTF-8 byte order is code
    # point order.
    # De-duplicated keeping the input order: documents list their statements nearly sorted
    # already, which Python's sort (timsort) turns into a ten times faster sort than a set's.
    # Each intermediate is dropped as soon as the next exists: at 1,000,000 files these are
    # hundreds of MB each.
    split = serialized.pop().split(b"\n")
    unique = dict.fromkeys(split)
    del split
    unique.pop(b"", None)
    if not unique:
        return b""
    ordered = sorted(unique)
    del unique
    ordered.append(b"")  # the final newline, without copying the joined bytes again
    return b"\n".join(ordered)


class _WorkExceeded(Exception):
    pass


def _capped_factorial(n: int, limit: int) -> int:
    result = 1
    for i in range(2, n + 1):
        result *= i
        if result > limit:
            raise _WorkExceeded
    return result


def _estimate_work(quads: Sequence[pyoxigraph.Quad], limit: int) -> int:
    """Estimate the work of RDFC-1.0's Hash N-Degree Quads step on ``quads``.

    Mirrors the structure of RDFC-1.0 sections 4.4 and 4.8 without hashing: blank nodes with a
    unique first-degree signature are issued canonical identifiers up front (no N-degree work);
    every other blank node starts a Hash N-Degree Quads call. In a call, related blank nodes
    are grouped as the related-hash map groups them (position, predicate, and the issued
    identifier or first-degree signature of the related node); a group of ``k`` distinct nodes
    costs ``k!`` permutations, each repeating the recursion into the group's not-yet-issued nodes.
    The path-pruning of RDFC-1.0 is ignored, and canonical identifiers issued between
    N-degree rounds are not credited, so this over-estimates on the graphs measured (see the
    ADR); groups are visited largest first, the order that maximizes the count. The
    estimate does not depend on blank-node labels or on the order of the quads.

    Returns ``limit + 1`` as soon as the estimate exceeds ``limit``.
    """
    adjacent: defaultdict[_Node, list[pyoxigraph.Quad]] = defaultdict(list)
    for quad in quads:
        seen: set[_Node] = set()
        for term in (quad.subject, quad.object, quad.graph_name):
            if isinstance(term, pyoxigraph.BlankNode) and term not in seen:
                seen.add(term)
                adjacent[term].append(quad)

    def signature(node: _Node) -> tuple[str, ...]:
        def show(term: object) -> str:
            if isinstance(term, pyoxigraph.BlankNode):
                return "_:a" if term == node else "_:z"
            return "" if isinstance(term, pyoxigraph.DefaultGraph) else str(term)

        return tuple(
            sorted(
                f"{show(q.subject)} {q.predicate} {show(q.object)} {show(q.graph_name)}"
                for q in adjacent[node]
            )
        )

    first_degree = {node: signature(node) for node in adjacent}

    def _label_key(label: _Label) -> tuple[str, tuple[str, ...]]:
        kind, value = label
        if isinstance(value, pyoxigraph.BlankNode):
            return kind, first_degree[value]
        assert isinstance(value, tuple)
        return kind, value

    counts = Counter(first_degree.values())
    canonical = {node for node, sig in first_degree.items() if counts[sig] == 1}
    total = 0

    def n_degree(node: _Node, issued: frozenset[_Node]) -> tuple[int, frozenset[_Node]]:
        groups: defaultdict[tuple[str, str, _Label], list[_Node]] = defaultdict(list)
        for quad in adjacent[node]:
            for position, term in (("s", quad.subject), ("o", quad.object), ("g", quad.graph_name)):
                if not isinstance(term, pyoxigraph.BlankNode) or term == node:
                    continue
                label: _Label
                if term in canonical:
                    label = ("c", term)
                elif term in issued:
                    label = ("i", term)
                else:
                    label = ("h", first_degree[term])
                predicate = "" if position == "g" else quad.predicate.value
                groups[(position, predicate, label)].append(term)
        work = 1
        # Largest groups first; ties, and the order of recursion, by keys that do not depend
        # on blank-node labels or input order, so the estimate does not either.
        ordered = sorted(
            groups.items(),
            key=lambda item: (-len(set(item[1])), item[0][0], item[0][1], _label_key(item[0][2])),
        )
        for _, members in ordered:
            related = sorted(set(members), key=first_degree.__getitem__)
            permutations = _capped_factorial(len(related), limit)
            recurse = [r for r in related if r not in issued and r not in canonical]
            issued = issued | frozenset(recurse)
            sub = 0
            for other in recurse:
                cost, issued = n_degree(other, issued)
                sub += cost
                if sub > limit:
                    raise _WorkExceeded
            work += permutations * (1 + sub)
            if work > limit:
                raise _WorkExceeded
        return work, issued

    try:
        for node in sorted(adjacent, key=first_degree.__getitem__):
            if node not in canonical:
                total += n_degree(node, frozenset((node,)))[0]
                if total > limit:
                    raise _WorkExceeded
    except _WorkExceeded:
        return limit + 1
    return total
