"""RDF terms and statements as error messages show them."""

from __future__ import annotations

from typing import Any

__all__ = ["shown"]

_BLANK = "_:…"


def shown(value: Any, limit: int = 200) -> str:
    """A term or quad in N-Quads notation, with every blank node shown as ``_:…``, at most
    ``limit`` characters.

    A JSON-LD processor makes up a blank node's label anew on each parse: a message that showed
    it would differ between two readings of one document (the usual one and the one pass),
    which must give the same answer (a fuzzer compares them).
    """
    import pyoxigraph as ox

    def term(t: Any) -> str:
        return _BLANK if isinstance(t, ox.BlankNode) else str(t)

    if isinstance(value, ox.Quad):
        parts = [value.subject, value.predicate, value.object]
        if not isinstance(value.graph_name, ox.DefaultGraph):
            parts.append(value.graph_name)
        text = " ".join(term(t) for t in parts)
    else:
        text = term(value)
    return text[:limit]
