"""Reading manifest documents (JSON-LD, TriG, N-Quads, Turtle) into RDF and into the model.

The model is always extracted from the RDF quads, never from the JSON text, so that what a
verifier uses is exactly what was signed (the signature covers the canonical RDF).
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._gc import paused_gc
from ..errors import InvalidManifestError
from . import vocab as v
from ._compiled import pure_python_requested
from ._rdftext import shown
from .digest import BEP52, Digest
from .jsonld import file_iri, loads_json
from .model import DID_KEY_RE, FileEntry, Manifest, is_xsd_datetime
from .paths import check_paths

if TYPE_CHECKING:
    import pyoxigraph

__all__ = [
    "FORMATS",
    "ManifestDocument",
    "detect_format",
    "load_document",
    "manifest_from_quads",
    "manifest_from_stream",
    "read_document",
]

#: Format names accepted on input/output, with their usual file suffixes.
FORMATS: dict[str, tuple[str, ...]] = {
    "json-ld": (".jsonld", ".json"),
    "trig": (".trig",),
    "n-quads": (".nq", ".nquads"),
    "turtle": (".ttl",),
    "n-triples": (".nt",),
}

#: Hard limit for a manifest document's size (a 1,000,000-file manifest is ~400 MB of JSON-LD).
MAX_DOCUMENT_BYTES = 2 * 1024**3


class ManifestDocument:
    """A parsed (not yet verified) manifest document.

    Attributes:
        source: the path or URI it was read from, for messages.
        format: one of :data:`FORMATS`.
        quads: every quad of the document, proofs included. A document read with
            ``stream=True`` parses them when this is first used (and reports a syntax error
            then, as :class:`~owmanifest.errors.InvalidManifestError`).
        json: the JSON value when the input was JSON-LD (kept so ``sign`` can add a proof
            without rewriting anything else); ``None`` for other formats, or when the reader
            did not keep it (``keep_json=False``: a large manifest's JSON is a tenth of what
            reading it costs in memory).
    """

    __slots__ = ("_lines", "_payload", "_quads", "format", "json", "source")

    def __init__(
        self,
        source: str,
        format: str,
        quads: tuple[pyoxigraph.Quad, ...] | None = None,
        json: dict[str, Any] | None = None,
        *,
        payload: bytes | None = None,
        lines: bytes = b"",
    ) -> None:
        if (quads is None) == (payload is None):
            raise TypeError("a ManifestDocument has either its quads or the RDF to parse")
        if lines and payload is None:
            raise TypeError("N-Quads lines come with a payload to parse")
        self.source = source
        self.format = format
        self.json = json
        self._quads = quads
        self._payload = payload
        self._lines = lines

    def __repr__(self) -> str:
        return f"<ManifestDocument {self.format} {self.source!r}>"

    @property
    def quads(self) -> tuple[pyoxigraph.Quad, ...]:
        if self._quads is None:
            assert self._payload is not None
            self._quads = _parse_quads(self._payload, self.format, self.source, self._lines)
            self._payload = None
            self._lines = b""
        return self._quads

    def stream(self) -> Iterator[pyoxigraph.Quad] | None:
        """The quads one at a time, parsed and not kept, if this document was read with
        ``stream=True`` and :attr:`quads` was not used yet; else ``None``.

        For a reader that needs each statement once: at 1,000,000 files, holding every quad
        costs 2.3 GB. The iterator raises ``SyntaxError`` (or ``ValueError``) where the
        document cannot be read this way; :attr:`quads` then reads it as usual and reports
        what is wrong.
        """
        parts = self.stream_parts()
        if parts is None:
            return None
        import pyoxigraph as ox

        quads, lines = parts
        if not lines:
            return quads
        nq = ox.RdfFormat.N_QUADS
        return itertools.chain(quads, ox.parse(lines, format=nq, rename_blank_nodes=False))

    def stream_parts(self) -> tuple[Iterator[pyoxigraph.Quad], bytes] | None:
        """What :meth:`stream` gives, in two parts: the quads still to parse, one at a time,
        and the statements a JSON-LD reader already wrote as N-Quads lines (the plain file
        nodes, see ``_plain_file_lines``; ``b""`` when there are none)."""
        if self._payload is None:
            return None
        import pyoxigraph as ox

        fmt = ox.RdfFormat.STREAMING_JSON_LD if self.format == "json-ld" else None
        quads = ox.parse(
            self._payload, format=fmt or _rdf_format(self.format), rename_blank_nodes=False
        )
        return quads, self._lines


def _rdf_format(name: str) -> pyoxigraph.RdfFormat:
    import pyoxigraph as ox

    return {
        "json-ld": ox.RdfFormat.JSON_LD,
        "trig": ox.RdfFormat.TRIG,
        "n-quads": ox.RdfFormat.N_QUADS,
        "turtle": ox.RdfFormat.TURTLE,
        "n-triples": ox.RdfFormat.N_TRIPLES,
    }[name]


def detect_format(name: str, data: bytes | None = None) -> str:
    """Guess the format from a file name suffix, else from the first byte of the content.

    Raises:
        InvalidManifestError: when neither tells.
    """
    lower = name.lower()
    for fmt, suffixes in FORMATS.items():
        if lower.endswith(suffixes):
            return fmt
    if data is not None:
        head = data.lstrip()[:1]
        if head in (b"{", b"["):
            return "json-ld"
        if head in (b"<", b"_"):
            return "n-quads"
        if head == b"@" or head.lower() == b"p":
            return "trig"
    raise InvalidManifestError(
        "cannot tell the manifest format",
        path=name,
        expected="a suffix among " + ", ".join(s for ss in FORMATS.values() for s in ss),
    )


def _check_context(doc: Any, source: str) -> None:
    if not isinstance(doc, dict):
        raise InvalidManifestError(
            "a JSON-LD manifest must be a JSON object", path=source, observed=type(doc).__name__
        )
    ctx = doc.get("@context")
    if ctx != v.CONTEXT:
        if isinstance(ctx, str) or (isinstance(ctx, list) and any(isinstance(c, str) for c in ctx)):
            raise InvalidManifestError(
                "the manifest refers to a remote @context; owmanifest never fetches contexts",
                path=source,
                expected="the inline owmanifest context",
                observed=ctx if isinstance(ctx, str) else "a list with remote contexts",
            )
        raise InvalidManifestError(
            "the manifest's @context is not the owmanifest context (it may redefine terms)",
            path=source,
            expected="the inline owmanifest context (owmanifest.manifest.vocab.CONTEXT)",
            observed="a different @context",
        )


@paused_gc
def load_document(
    data: bytes,
    *,
    source: str,
    format: str | None = None,
    keep_json: bool = True,
    stream: bool = False,
) -> ManifestDocument:
    """Parse a manifest document.

    JSON-LD input is parsed strictly, must carry exactly the owmanifest inline context and is
    checked against ``manifest.schema.json`` before it is turned into RDF.

    Args:
        keep_json: keep the JSON value (``sign`` needs it).
        stream: do not parse the RDF yet; see :meth:`ManifestDocument.stream`. Syntax errors
            in the RDF are then reported when the quads are first used.

    Raises:
        InvalidManifestError: unreadable, malformed, or not of the expected shape.
    """
    import json as _json

    fmt = format or detect_format(source, data)
    if fmt not in FORMATS:
        raise InvalidManifestError(
            f"unknown format {fmt!r}", path=source, expected=", ".join(FORMATS), observed=fmt
        )
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidManifestError(
            "manifest document too large",
            path=source,
            expected=f"<= {MAX_DOCUMENT_BYTES} bytes",
            observed=f"{len(data)} bytes",
        )
    doc: dict[str, Any] | None = None
    payload, lines = data, b""
    if fmt == "json-ld":
        from ..schemas import validate

        parsed = loads_json(data, source=source)
        _check_context(parsed, source)
        rest, lines = _plain_file_lines(parsed)
        # Plain file nodes are valid file objects of the schema: the rest is what to check
        # (with an empty files list where every file was plain).
        try:
            if rest is parsed:
                validate(parsed, "manifest", source=source)
            else:
                validate({"files": [], **rest}, "manifest", source=source)
        except InvalidManifestError:
            if rest is not parsed:  # the same problem, located in the whole document
                validate(parsed, "manifest", source=source)
            raise
        doc = parsed if keep_json else None
        payload = _json.dumps(_streaming_order(rest)).encode("utf-8")
        del parsed, rest  # freed now unless kept
    if stream:
        return ManifestDocument(source=source, format=fmt, json=doc, payload=payload, lines=lines)
    quads = _parse_quads(payload, fmt, source, lines)
    return ManifestDocument(source=source, format=fmt, quads=quads, json=doc)


def _parse_quads(
    payload: bytes, fmt: str, source: str, lines: bytes = b""
) -> tuple[pyoxigraph.Quad, ...]:
    """Every quad of ``payload`` (for JSON-LD: the JSON as :func:`_streaming_order` wrote it),
    then those of ``lines`` (the N-Quads of :func:`_plain_file_lines`).

    Raises:
        InvalidManifestError: not valid RDF of that format.
    """
    quads = _parse_payload(payload, fmt, source)
    return quads + _parse_lines(lines, source) if lines else quads


def _parse_payload(payload: bytes, fmt: str, source: str) -> tuple[pyoxigraph.Quad, ...]:
    import pyoxigraph as ox

    if fmt == "json-ld":
        quads = _parse_streaming(payload)
        if quads is not None:
            return quads
        # Not in the streaming form after all (an extension value with its own context, say):
        # the general parser reads it, and reports any error.
    try:
        return tuple(ox.parse(payload, format=_rdf_format(fmt), rename_blank_nodes=False))
    except SyntaxError as exc:
        raise InvalidManifestError(f"not valid {fmt}: {exc}", path=source) from exc
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InvalidManifestError(f"cannot parse {fmt}: {exc}", path=source) from exc


def _parse_lines(lines: bytes, source: str) -> tuple[pyoxigraph.Quad, ...]:
    """The quads of :func:`_plain_file_lines`' N-Quads."""
    import pyoxigraph as ox

    try:
        return tuple(ox.parse(lines, format=ox.RdfFormat.N_QUADS, rename_blank_nodes=False))
    except (SyntaxError, ValueError) as exc:  # not expected: the lines are written here
        raise InvalidManifestError(f"cannot read the file statements: {exc}", path=source) from exc


# A dataset IRI that every JSON-LD processor keeps as it is: http(s), a host name, a path of
# plain characters without "." or ".." segments, no query, fragment or percent-escape.
_PLAIN_DATASET_IRI = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~!$&'()*+,;=:@-]*)*"
).fullmatch
# A path written as an N-Quads literal needs no escape: no control character, quote or backslash.
_PLAIN_LITERAL = re.compile(r'[^\x00-\x1f\x7f"\\]+').fullmatch
_PLAIN_SIZE_LIMIT = 1 << 63
#: The largest piece length a manifest may have (what ``create`` allows; spec §2).
MAX_PIECE_LENGTH = 128 * 1024 * 1024


def _plain_file_lines(doc: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Split the plain file nodes off a JSON-LD manifest (its context checked): ``(rest, lines)``,
    where ``rest`` is ``doc`` without them and ``lines`` their statements as N-Quads, the
    ``dcterms:hasPart`` statements linking them included.

    Call it before the schema check: a plain file node is a valid file object of
    ``manifest.schema.json``. A plain file node is one as ``create`` writes it: the keys
    ``id`` (the IRI :func:`file_iri` gives for its path), ``type`` (``"File"``, optional),
    ``path`` (a string with no character N-Quads escapes), ``byteSize`` (an integer) and
    ``merkleRoot`` (a ``bep52:`` root, optional), under a dataset IRI of the form
    :data:`_PLAIN_DATASET_IRI`. For those the context fixes every statement and the text of
    each, so they are written here directly: at 10,000 files this takes a fifth of the time
    of JSON-LD to RDF to N-Quads through pyoxigraph. Everything else stays in ``rest`` for
    pyoxigraph's reader, which gives the same statements for plain nodes (a hypothesis
    property in the tests compares both on generated nodes;
    ``docs/adr/0010-plain-file-statements.md``).
    """
    files = doc.get("files")
    dataset = doc.get("id")
    if type(files) is not list or type(dataset) is not str or not _PLAIN_DATASET_IRI(dataset):
        return doc, b""
    head = f"<{dataset}> <{v.DCTERMS_HAS_PART}> <"
    kind = f"> <{v.RDF_TYPE}> <{v.OWM_FILE}> .\n"
    props = (v.OWM_PATH, v.DCAT_BYTE_SIZE, v.OWM_MERKLE_ROOT)
    path_p, size_p, root_p = (f'> <{p}> "' for p in props)
    integer = f'"^^<{v.XSD_INTEGER}> .\n'
    others: list[Any]
    core = _compiled_reader()
    if core is not None:  # the same loop, compiled (_nqindex.plain_lines): ~10x faster
        texts = (head, kind, path_p, size_p, root_p, integer)
        others, written = core.plain_lines(files, dataset, *(t.encode() for t in texts))
        return _without_plain(doc, files, others, written)
    plain_literal, root_ok = _PLAIN_LITERAL, _BEP52_ROOT
    out: list[str] = []
    parts: list[str] = []
    others = []
    for f in files:
        if type(f) is not dict or not 3 <= len(f) <= 5:
            others.append(f)
            continue
        iri, path, size = f.get("id"), f.get("path"), f.get("byteSize")
        root = f.get("merkleRoot")
        typed = "type" in f
        if (
            len(f) != 3 + typed + (root is not None)
            or type(path) is not str
            or type(size) is not int
            or not 0 <= size < _PLAIN_SIZE_LIMIT
            or (typed and f["type"] != "File")
            or (root is not None and (type(root) is not str or not root_ok(root)))
            or not plain_literal(path)
            or not (path.isascii() or _encodable(path))
            or iri != file_iri(dataset, path)
        ):
            others.append(f)
            continue
        # each file's lines in the order of their predicates, the hasPart statements after all
        # files: for files in path order, sorted runs (the compiled one pass merges them)
        if typed:
            out.append(f"<{iri}{kind}")
        out.append(f"<{iri}{size_p}{size}{integer}")
        if root is not None:
            out.append(f'<{iri}{root_p}{root}" .\n')
        out.append(f'<{iri}{path_p}{path}" .\n')
        parts.append(f"{head}{iri}> .\n")
    return _without_plain(doc, files, others, "".join(out + parts).encode("utf-8"))


def _without_plain(
    doc: dict[str, Any], files: list[Any], others: list[Any], lines: bytes
) -> tuple[dict[str, Any], bytes]:
    """``doc`` with only the ``others`` of its ``files``, and the plain ones' ``lines``."""
    if len(others) == len(files):
        return doc, b""
    rest = {key: value for key, value in doc.items() if key != "files"}
    if others:
        rest["files"] = others
    return rest, lines


def _encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (JSON escapes can make lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_LEADING_KEYS = ("@context", "@type", "type", "@id", "id")
_SCALARS = (str, int, float, bool, type(None))


def _streaming_order(value: Any) -> Any:
    """``value`` with the keys of every JSON object in the order of JSON-LD's streaming
    document form: ``@context`` first, then the type, then the id (or their aliases ``type``
    and ``id``), then the rest in document order.

    JSON-LD gives no meaning to key order, so this is the same JSON-LD document. In that order
    pyoxigraph's streaming JSON-LD parser emits each statement as soon as it is read instead
    of holding the whole document: at 1,000,000 files that is half the time and 2.3 GB less
    memory. A context is left as it is (its term definitions are not node objects).
    """
    if type(value) is list:
        return [item if type(item) in _SCALARS else _streaming_order(item) for item in value]
    if type(value) is not dict:
        return value
    out = {key: value[key] for key in _LEADING_KEYS if key in value}
    for key, item in value.items():
        if key not in out:
            out[key] = item if type(item) in _SCALARS else _streaming_order(item)
    return out


def _parse_streaming(payload: bytes) -> tuple[pyoxigraph.Quad, ...] | None:
    """The quads of a JSON-LD document in the streaming form (see :func:`_streaming_order`),
    or ``None`` when the streaming parser refuses it.

    The streaming parser refuses a document that is not in that form rather than reading it
    differently; it gives the same statements as the general parser otherwise (tested on
    every document in the tests and by a property over generated manifests).
    """
    import pyoxigraph as ox

    try:
        return tuple(
            ox.parse(payload, format=ox.RdfFormat.STREAMING_JSON_LD, rename_blank_nodes=False)
        )
    except (SyntaxError, ValueError):
        return None


def read_document(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    keep_json: bool = True,
    stream: bool = False,
) -> ManifestDocument:
    """Read and parse a manifest file (``keep_json`` and ``stream`` as for
    :func:`load_document`).

    Raises:
        InvalidManifestError: the file cannot be read or parsed.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise InvalidManifestError(
            f"cannot read manifest: {exc.strerror or exc}", path=str(p)
        ) from exc
    return load_document(data, source=str(p), format=format, keep_json=keep_json, stream=stream)


# --- RDF -> model -------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]{1,20}").fullmatch
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class _Node:
    """Property values of one subject, with typed accessors that raise precise errors."""

    def __init__(self, iri: str, source: str, pairs: Sequence[Any] = ()) -> None:
        self.iri = iri
        self.source = source
        self.props: dict[str, list[Any]] = defaultdict(list)
        for i in range(0, len(pairs), 2):
            self.props[pairs[i]].append(pairs[i + 1])

    def _bad(self, prop: str, reason: str, observed: Any = None, expected: Any = None) -> Exception:
        name = prop.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        return InvalidManifestError(
            f"<{self.iri}> {name}: {reason}",
            path=self.source,
            expected=expected,
            observed=observed,
        )

    def values(self, prop: str) -> list[Any]:
        return self.props.get(prop, [])

    def one(self, prop: str, *, required: bool) -> Any:
        vals = self.props.get(prop, [])
        if len(vals) > 1:
            raise self._bad(prop, "has more than one value", observed=len(vals), expected=1)
        if not vals:
            if required:
                raise self._bad(prop, "is missing", expected="exactly one value")
            return None
        return vals[0]

    def literal(self, prop: str, datatype: str, *, required: bool = False) -> str | None:
        import pyoxigraph as ox

        val = self.one(prop, required=required)
        if val is None:
            return None
        if not isinstance(val, ox.Literal) or val.datatype.value != datatype:
            got = val.datatype.value if isinstance(val, ox.Literal) else type(val).__name__
            raise self._bad(prop, "has the wrong type", expected=datatype, observed=got)
        return str(val.value)

    def integer(self, prop: str, *, required: bool = False, minimum: int = 0) -> int | None:
        text = self.literal(prop, v.XSD_INTEGER, required=required)
        if text is None:
            return None
        if not _INTEGER(text):
            raise self._bad(prop, "is not a valid integer", observed=text[:40])
        value = int(text)
        if value < minimum:
            raise self._bad(prop, "is too small", expected=f">= {minimum}", observed=value)
        return value

    def iri_values(self, prop: str) -> list[str]:
        import pyoxigraph as ox

        out = []
        for val in self.values(prop):
            if not isinstance(val, ox.NamedNode):
                raise self._bad(prop, "must be an IRI", observed=str(val)[:80])
            out.append(val.value)
        return out


def _file_entry(iri: str, pairs: list[Any], dataset_id: str, source: str) -> FileEntry:
    """The file described by ``pairs`` (its predicates and objects, alternating).

    Most files have exactly one path, size and root of the right types: those are read here
    without building a :class:`_Node`. Anything else goes through :class:`_Node`, which
    accepts or refuses it with the precise error (and is what a test compares this with).
    """
    import pyoxigraph as ox

    props = dict(zip(pairs[::2], pairs[1::2], strict=True))
    path_term = props.get(v.OWM_PATH)
    size_term = props.get(v.DCAT_BYTE_SIZE)
    root_term = props.get(v.OWM_MERKLE_ROOT)
    literal, xsd_string, xsd_integer = ox.Literal, _xsd_string_node(), _xsd_integer_node()
    if (
        2 * len(props) == len(pairs)  # no predicate twice
        and type(path_term) is literal
        and type(size_term) is literal
        and path_term.datatype == xsd_string
        and size_term.datatype == xsd_integer
        and (root_term is None or (type(root_term) is literal and root_term.datatype == xsd_string))
    ):
        path, size_text = path_term.value, size_term.value
        if _INTEGER(size_text) and size_text[0] != "-" and iri == file_iri(dataset_id, path):
            size = int(size_text)
            if root_term is None:
                if size == 0:
                    return FileEntry(path, 0, None)
            elif size:
                root_text = root_term.value
                if _BEP52_ROOT(root_text):
                    return FileEntry(path, size, Digest(BEP52, bytes.fromhex(root_text[6:])))
    return _file_entry_checked(_Node(iri, source, pairs), dataset_id, source)


def _file_entry_checked(fn: _Node, dataset_id: str, source: str) -> FileEntry:
    path = fn.literal(v.OWM_PATH, v.XSD_STRING, required=True)
    size = fn.integer(v.DCAT_BYTE_SIZE, required=True, minimum=0)
    assert path is not None and size is not None
    _check_file_iri(fn.iri, dataset_id, path, source)
    root_text = fn.literal(v.OWM_MERKLE_ROOT, v.XSD_STRING)
    root = None if root_text is None else Digest.parse(root_text, algorithm=BEP52)
    if (root is None) != (size == 0):
        raise fn._bad(
            v.OWM_MERKLE_ROOT,
            "must be present exactly when the file is not empty",
            expected="a root" if size else "no root",
            observed=root_text,
        )
    return FileEntry(path=path, size=size, root=root)


def _check_file_iri(iri: str, dataset_id: str, path: str, source: str) -> None:
    if iri != file_iri(dataset_id, path):
        raise InvalidManifestError(
            "a file node's IRI does not match its path",
            path=source,
            expected=file_iri(dataset_id, path),
            observed=iri,
        )


_BEP52_ROOT = re.compile(r"bep52:[0-9a-f]{64}").fullmatch


@functools.cache
def _xsd_string_node() -> pyoxigraph.NamedNode:
    import pyoxigraph as ox

    return ox.NamedNode(v.XSD_STRING)


@functools.cache
def _xsd_integer_node() -> pyoxigraph.NamedNode:
    import pyoxigraph as ox

    return ox.NamedNode(v.XSD_INTEGER)


def _absolute_iri(iri: str, source: str) -> str:
    parts = urlsplit(iri)
    if not parts.scheme or parts.fragment or "#" in iri:
        raise InvalidManifestError(
            "the dataset id must be an absolute IRI without a fragment",
            path=source,
            observed=iri,
        )
    return iri


@paused_gc
def manifest_from_quads(quads: Iterable[pyoxigraph.Quad], *, source: str) -> Manifest:
    """Extract the :class:`Manifest` from a document's quads **without** its proofs.

    Raises:
        InvalidManifestError: missing/duplicated properties, wrong types, blank nodes, bad
            paths, inconsistent file nodes.
    """
    return _manifest(quads, source, None, None)


@paused_gc
def manifest_from_stream(
    quads: Iterable[pyoxigraph.Quad],
    *,
    source: str,
    aside: list[pyoxigraph.Quad],
    lines: dict[bytes, None],
) -> Manifest:
    """Extract the :class:`Manifest` from **all** of a document's quads, read once.

    What :func:`~owmanifest.verify.proofs.split_proofs` would take out of the body (every
    statement in a named graph, and every ``sec:proof`` statement) is appended to ``aside``
    instead. Each statement of the body is put in ``lines`` as its N-Quads line (UTF-8, without
    the final newline), once, in input order; a statement seen before is skipped, as
    ``split_proofs`` drops duplicates. The result is what ``manifest_from_quads`` gives for
    the body that ``split_proofs`` returns (a test compares them).

    Raises:
        InvalidManifestError: as :func:`manifest_from_quads`.
    """
    return _manifest(quads, source, aside, lines)


def _manifest(
    quads: Iterable[pyoxigraph.Quad],
    source: str,
    aside: list[pyoxigraph.Quad] | None,
    lines: dict[bytes, None] | None,
    plain_files: dict[str, tuple[str, int, bytes | None]] | None = None,
    parts: dict[str, list[str]] | None = None,
) -> Manifest:
    """The model from ``quads``; with ``plain_files`` and ``parts`` (from the compiled one
    pass, :func:`index_stream`), also from the file nodes and ``dcterms:hasPart`` statements
    that pass already read, which are then not among ``quads``."""
    import pyoxigraph as ox

    # subject -> its predicates and objects, alternating: one list per node (a _Node, with a
    # dict of lists, costs ~1 KB more per file: 1 GB at 1,000,000 files)
    nodes: dict[str, list[Any]] = {}
    predicates: dict[str, str] = {}  # one string object per distinct predicate
    manifests: list[str] = []
    # pyoxigraph's term classes cannot be subclassed: exact type checks are isinstance checks
    default_graph, blank_node, named_node = ox.DefaultGraph, ox.BlankNode, ox.NamedNode
    for q in quads:
        s, p, o, g = q
        if type(g) is not default_graph:
            if aside is not None:
                aside.append(q)
                continue
            raise InvalidManifestError(
                "the manifest body contains a named graph that is not a proof",
                path=source,
                observed=shown(q.graph_name),
            )
        predicate = p.value
        if lines is not None:
            if predicate == v.SEC_PROOF:
                aside.append(q)  # type: ignore[union-attr]
                continue
            line = f"{q} .".encode()
            if line in lines:
                continue
            lines[line] = None
        if type(s) is blank_node or type(o) is blank_node:
            raise InvalidManifestError(
                "the manifest body contains a blank node (every node must be an IRI)",
                path=source,
                observed=shown(q),
            )
        if type(s) is not named_node:
            raise InvalidManifestError("unsupported subject", path=source, observed=shown(s))
        subject = s.value
        pairs = nodes.get(subject)
        if pairs is None:
            pairs = nodes[subject] = []
        predicate = predicates.setdefault(predicate, predicate)
        pairs += (predicate, o)
        if predicate == v.RDF_TYPE and type(o) is named_node and o.value == v.OWM_MANIFEST:
            manifests.append(subject)
    if len(manifests) != 1:
        raise InvalidManifestError(
            "a manifest document describes exactly one owm:Manifest",
            path=source,
            expected=1,
            observed=len(manifests),
        )
    ds = _Node(manifests[0], source, nodes[manifests[0]])
    dataset_id = _absolute_iri(ds.iri, source)
    version = ds.integer(v.DCAT_VERSION, required=True, minimum=1)
    threshold = ds.integer(v.OWM_THRESHOLD, required=True, minimum=1)
    piece_length = ds.integer(v.OWM_PIECE_LENGTH, required=True, minimum=16384)
    assert version is not None and threshold is not None and piece_length is not None
    if piece_length & (piece_length - 1):
        raise ds._bad(v.OWM_PIECE_LENGTH, "is not a power of two", observed=piece_length)
    if piece_length > MAX_PIECE_LENGTH:  # as create: hashing holds a piece's leaves (a review
        # found 2**62 crash the compiled engine with MemoryError, and 2**63 with OverflowError)
        raise ds._bad(v.OWM_PIECE_LENGTH, "is larger than 128 MiB", observed=piece_length)
    signers = sorted(set(ds.iri_values(v.OWM_AUTHORIZED_SIGNER)))
    if not signers:
        raise ds._bad(v.OWM_AUTHORIZED_SIGNER, "is missing", expected="at least one did:key")
    for did in signers:
        if not DID_KEY_RE.match(did):
            raise ds._bad(v.OWM_AUTHORIZED_SIGNER, "is not an Ed25519 did:key", observed=did)
    if threshold > len(signers):
        raise ds._bad(
            v.OWM_THRESHOLD,
            "is larger than the number of authorized signers",
            expected=f"<= {len(signers)}",
            observed=threshold,
        )

    def hexstr(prop: str, pattern: re.Pattern[str]) -> str | None:
        text = ds.literal(prop, v.XSD_STRING)
        if text is not None and not pattern.match(text):
            raise ds._bad(prop, "is not lowercase hex of the right length", observed=text)
        return text

    def datetime(prop: str) -> str | None:
        text = ds.literal(prop, v.XSD_DATETIME)
        if text is not None and not is_xsd_datetime(text, require_timezone=True):
            raise ds._bad(prop, "is not an xsd:dateTime with a time zone", observed=text)
        return text

    prev_text = ds.literal(v.OWM_PREVIOUS_VERSION, v.XSD_STRING)
    previous = None if prev_text is None else Digest.parse(prev_text, algorithm="rdfc-sha256")
    private_text = ds.literal(v.OWM_PRIVATE, v.XSD_BOOLEAN)
    licenses = ds.iri_values(v.DCTERMS_LICENSE)
    if len(licenses) > 1:
        raise ds._bad(v.DCTERMS_LICENSE, "has more than one value")

    files: list[FileEntry] = []
    file_iris = ds.iri_values(v.DCTERMS_HAS_PART)
    if parts:
        file_iris += parts.get(ds.iri, ())
    for file_node_iri in file_iris:
        plain = plain_files.get(file_node_iri) if plain_files else None
        if plain is not None:
            path, size, root = plain
            _check_file_iri(file_node_iri, dataset_id, path, source)
            files.append(FileEntry(path, size, None if root is None else Digest(BEP52, root)))
            continue
        file_pairs = nodes.get(file_node_iri)
        if file_pairs is None:
            raise InvalidManifestError(
                "a file listed in the manifest has no description",
                path=source,
                observed=file_node_iri,
            )
        files.append(_file_entry(file_node_iri, file_pairs, dataset_id, source))
    check_paths((f.path for f in files), source=source)
    files.sort(key=lambda f: f.path)
    return Manifest(
        id=dataset_id,
        version=version,
        files=tuple(files),
        signers=tuple(signers),
        threshold=threshold,
        piece_length=piece_length,
        info_hash_v1=hexstr(v.OWM_INFO_HASH_V1, _HEX40),
        info_hash_v2=hexstr(v.OWM_INFO_HASH_V2, _HEX64),
        torrent_name=ds.literal(v.OWM_TORRENT_NAME, v.XSD_STRING),
        title=ds.literal(v.DCTERMS_TITLE, v.XSD_STRING),
        description=ds.literal(v.DCTERMS_DESCRIPTION, v.XSD_STRING),
        license=licenses[0] if licenses else None,
        created=datetime(v.DCTERMS_CREATED),
        previous_version=previous,
        expires=datetime(v.OWM_EXPIRES),
        private=private_text == "true" or private_text == "1",
        mirrors=tuple(sorted(ds.iri_values(v.OWM_MIRROR))),
        trackers=tuple(sorted(ds.iri_values(v.OWM_TRACKER))),
    )


# --- the compiled one pass (ADR 0008) -------------------------------------------------------------


@functools.cache
def _compiled_reader() -> Any:
    """The compiled one pass (``_nqindex``), or ``None`` when it is not built or
    ``OWMANIFEST_PURE_PYTHON`` is set."""
    if pure_python_requested():
        return None
    try:
        from . import _nqindex as module
    except ImportError:
        return None
    return module


def compiled_reader() -> bool:
    """Whether :func:`index_stream` is available (the ``_nqindex`` extension is built)."""
    return _compiled_reader() is not None


_INDEX_VOCAB = (
    *(
        f"<{iri}>".encode()
        for iri in (
            v.RDF_TYPE,
            v.OWM_PATH,
            v.DCAT_BYTE_SIZE,
            v.OWM_MERKLE_ROOT,
            v.DCTERMS_HAS_PART,
            v.SEC_PROOF,
            v.OWM_FILE,
        )
    ),
    f"^^<{v.XSD_INTEGER}>".encode(),
)


@paused_gc
def index_stream(
    quads: Iterable[pyoxigraph.Quad], *, source: str, lines: bytes = b""
) -> tuple[Manifest, list[pyoxigraph.Quad], bytes] | None:
    """What :func:`manifest_from_stream` and ``canonical_from_lines`` give for ``quads``,
    without a Python object per statement: the model, the statements put aside for the proofs,
    and the body's canonical N-Quads.

    pyoxigraph writes the statements as N-Quads (each line is the statement's ``f"{quad} ."``)
    and the compiled ``_nqindex`` reads those lines: it sorts and de-duplicates the body,
    reads plain file nodes and ``dcterms:hasPart`` statements, and hands every other statement
    back, which is then read here as :func:`manifest_from_stream` reads it (ADR 0008).
    ``lines`` are statements already written as N-Quads (:meth:`ManifestDocument.stream_parts`),
    read with them.

    Returns ``None`` when that pass has no answer (a line it does not read, blank nodes or
    triple terms in the body): the caller then reads the document the usual way.

    Raises:
        InvalidManifestError, SyntaxError, ValueError: the statements are malformed (the
            caller then reads the document the usual way, for the precise error).
    """
    import pyoxigraph as ox

    core = _compiled_reader()
    if core is None:
        raise RuntimeError("the compiled one pass is not available (see compiled_reader())")
    nquads = ox.serialize(quads, format=ox.RdfFormat.N_QUADS)
    assert nquads is not None
    indexed = core.index(nquads, lines, *_INDEX_VOCAB)  # (lines read where they are)
    del nquads
    if indexed is None:
        return None
    canonical, aside, other, plain_files, parts = indexed
    nq = ox.RdfFormat.N_QUADS
    rest = ox.parse(other, format=nq, rename_blank_nodes=False)
    manifest = _manifest(rest, source, None, None, plain_files, parts)
    return manifest, list(ox.parse(aside, format=nq, rename_blank_nodes=False)), canonical


def serialize_quads(quads: Sequence[pyoxigraph.Quad], format: str) -> bytes:
    """Serialize quads as TriG or N-Quads (for ``owmanifest convert``)."""
    import pyoxigraph as ox

    if format not in ("trig", "n-quads"):
        raise InvalidManifestError(
            f"cannot write RDF format {format!r} this way", expected="trig or n-quads"
        )
    prefixes = {"owm": v.OWM, "dcat": v.DCAT, "dcterms": v.DCTERMS, "sec": v.SEC, "xsd": v.XSD}
    if format == "trig":
        out = ox.serialize(ox.Dataset(quads), format=_rdf_format(format), prefixes=prefixes)
    else:
        out = ox.serialize(ox.Dataset(quads), format=_rdf_format(format))
    assert out is not None
    return bytes(out)
