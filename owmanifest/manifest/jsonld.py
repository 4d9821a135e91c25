"""Writing manifests as JSON-LD (the storage format) and reading JSON text strictly.

The JSON-LD we write always carries the inline :data:`~owmanifest.manifest.vocab.CONTEXT`; a
manifest never refers to a remote context. What gets signed is not this text but the RDFC-1.0
canonical form of the RDF it denotes (see :mod:`owmanifest.manifest.canonical`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from ..errors import InvalidManifestError
from .model import Manifest
from .vocab import CONTEXT

__all__ = ["dumps", "file_iri", "loads_json", "manifest_to_jsonld"]

MAX_JSON_DEPTH = 32
MAX_INT_DIGITS = 20


def file_iri(dataset_id: str, path: str) -> str:
    """The IRI of a file node: the dataset id with the percent-encoded path as fragment."""
    return f"{dataset_id}#{quote(path, safe='/')}"


def manifest_to_jsonld(manifest: Manifest) -> dict[str, Any]:
    """The JSON-LD document (without proofs) for ``manifest``, keys in a fixed, readable order."""
    m = manifest
    doc: dict[str, Any] = {"@context": CONTEXT, "id": m.id, "type": ["Dataset", "Manifest"]}
    if m.title is not None:
        doc["title"] = m.title
    if m.description is not None:
        doc["description"] = m.description
    if m.license is not None:
        doc["license"] = m.license
    doc["version"] = m.version
    if m.created is not None:
        doc["created"] = m.created
    if m.expires is not None:
        doc["expires"] = m.expires
    if m.previous_version is not None:
        doc["previousVersion"] = str(m.previous_version)
    doc["authorizedSigner"] = list(m.signers)
    doc["threshold"] = m.threshold
    doc["pieceLength"] = m.piece_length
    if m.torrent_name is not None:
        doc["torrentName"] = m.torrent_name
    if m.info_hash_v1 is not None:
        doc["infoHashV1"] = m.info_hash_v1
    if m.info_hash_v2 is not None:
        doc["infoHashV2"] = m.info_hash_v2
    if m.private:
        doc["private"] = True
    if m.mirrors:
        doc["mirror"] = list(m.mirrors)
    if m.trackers:
        doc["tracker"] = list(m.trackers)
    files = []
    for f in m.files:
        node: dict[str, Any] = {
            "id": file_iri(m.id, f.path),
            "type": "File",
            "path": f.path,
            "byteSize": f.size,
        }
        if f.root is not None:
            node["merkleRoot"] = str(f.root)
        files.append(node)
    doc["files"] = files
    return doc


def dumps(document: dict[str, Any]) -> bytes:
    """Serialize a JSON-LD document: UTF-8, 2-space indent, trailing newline."""
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(Exception):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _HugeNumber(text)
    return int(text)


class _HugeNumber(Exception):
    pass


class _BadConstant(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise _BadConstant(name)


def loads_json(data: bytes, *, source: str) -> Any:
    """Parse JSON strictly: UTF-8 only, no duplicate keys, no NaN/Infinity, bounded numbers/depth.

    Raises:
        InvalidManifestError: naming ``source`` and the position or reason.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidManifestError(
            f"not UTF-8 text (byte {exc.start})", path=source, expected="UTF-8"
        ) from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    # Cheap pre-check so that deeply nested input cannot exhaust the recursion limit.
    depth = 0
    deepest = 0
    in_string = False
    escaped = False
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
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    break
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise InvalidManifestError(
            "JSON nested too deeply",
            path=source,
            expected=f"<= {MAX_JSON_DEPTH}",
            observed=f"> {MAX_JSON_DEPTH}",
        )
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_int=_parse_int,
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as exc:
        raise InvalidManifestError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", path=source
        ) from exc
    except _DuplicateKey as exc:
        raise InvalidManifestError(
            f"duplicate JSON object key {exc.args[0]!r}", path=source, observed=exc.args[0]
        ) from exc
    except _HugeNumber as exc:
        raise InvalidManifestError(
            "number too large",
            path=source,
            expected=f"at most {MAX_INT_DIGITS} digits",
            observed=exc.args[0][:40],
        ) from exc
    except _BadConstant as exc:
        raise InvalidManifestError(
            f"JSON constant {exc.args[0]} is not allowed", path=source, observed=exc.args[0]
        ) from exc
    except RecursionError as exc:
        raise InvalidManifestError("JSON nested too deeply", path=source) from exc
