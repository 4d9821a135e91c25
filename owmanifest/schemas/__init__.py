"""JSON Schemas for every JSON input owmanifest accepts, loaded with importlib.resources."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from ..errors import Error, InvalidManifestError

__all__ = ["load_schema", "validate"]


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema ``<name>.schema.json`` shipped in this package."""
    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(name: str) -> Any:
    import jsonschema

    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate(
    instance: Any, name: str, *, source: str, error: type[Error] = InvalidManifestError
) -> None:
    """Validate ``instance`` against schema ``name``.

    Raises:
        Error: (``error`` class) naming the JSON pointer of the first problem and the reason.
    """
    validator = _validator(name)
    if name == "manifest" and _files_valid(instance):
        # Every file object is valid, so they contribute no error: check the rest only.
        instance = {**instance, "files": []}
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.path), list(e.path)))
    if not errors:
        return
    first = errors[0]
    # Prefer the most specific message among oneOf/anyOf alternatives.
    best = first
    if first.context:
        best = min(first.context, key=lambda e: -len(e.absolute_path))
    pointer = "/" + "/".join(str(p) for p in best.absolute_path)
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    raise error(
        f"does not match the {name} schema at {pointer}: {best.message}{more}",
        path=source,
        expected=f"{name} schema: {best.validator}",
        observed=pointer,
    )


@cache
def _file_rules() -> tuple[frozenset[str], frozenset[str], re.Pattern[str], re.Pattern[str]]:
    """The manifest schema's rules for one file object, read from the schema itself."""
    defs = load_schema("manifest")["$defs"]
    file = defs["file"]
    props = file["properties"]
    return (
        frozenset(props),
        frozenset(file["required"]),
        re.compile(defs["absoluteIri"]["pattern"]),
        re.compile(props["merkleRoot"]["pattern"]),
    )


def _files_valid(instance: Any) -> bool:
    """Whether every object of a manifest's ``files`` array is plainly valid (a fast path).

    jsonschema takes ~40 µs per file object; a manifest of 1,000,000 files would spend most of
    its reading time there. This check accepts only file objects that the schema accepts (the
    same patterns, applied with ``re.search`` as jsonschema does); anything unusual (extension
    keys, a float byte size, a bad value) returns ``False``, and then the whole document goes
    through jsonschema, so error messages and pointers are exactly jsonschema's.
    """
    if not isinstance(instance, dict):
        return False
    files = instance.get("files")
    if type(files) is not list:
        return False
    known, required, iri, root = _file_rules()
    iri_search, root_search = iri.search, root.search
    for f in files:
        if type(f) is not dict or not required.issubset(f) or not known.issuperset(f):
            return False
        ident, path, size = f["id"], f["path"], f["byteSize"]
        if type(ident) is not str or iri_search(ident) is None:
            return False
        if type(path) is not str or not path:
            return False
        if type(size) is not int or size < 0:
            return False
        if "type" in f and f["type"] != "File":
            return False
        if "merkleRoot" in f:
            value = f["merkleRoot"]
            if type(value) is not str or root_search(value) is None:
                return False
    return True
