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
    if name == "manifest" and _files_valid(instance):
        # Every file object is valid, so they contribute no error: check the rest only.
        instance = {**instance, "files": []}
    if surely_valid(instance, name):
        return  # without importing jsonschema (~50 ms per command)
    validator = _validator(name)
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
        expected=f"{best.validator} {_short(best.validator_value)} at {pointer}",
        observed=_short(best.instance),
    )


def _short(value: Any) -> str:
    """A JSON value for a message: at most 80 characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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


def is_absolute_iri(value: str) -> bool:
    """Whether ``value`` is an absolute IRI as the manifest schema requires of ids, licenses,
    mirrors and trackers (its own pattern, applied as jsonschema applies it)."""
    return _file_rules()[2].search(value) is not None


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


# --- a fast path: the subset of JSON Schema that our schemas use --------------------------------

_TYPES: dict[str, Any] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,  # jsonschema also takes 3.0: not sure, then
    "boolean": lambda v: type(v) is bool,
}
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description"})


def surely_valid(instance: Any, name: str) -> bool:
    """Whether ``instance`` is valid against schema ``name`` for certain (a fast path).

    It knows the keywords our schemas use, read the way jsonschema reads them, and answers
    ``True`` only when every keyword it meets is one of those and holds. ``False`` means
    invalid *or not sure* (an unknown keyword, a float where an integer is expected, ...):
    then jsonschema validates, and its messages are the ones users see. A test checks, on
    generated and mutated documents of every schema, that what this accepts jsonschema
    accepts.
    """
    schema = load_schema(name)
    return _surely(schema, instance, schema)


def _resolve(schema: Any, root: dict[str, Any]) -> Any:
    while type(schema) is dict and "$ref" in schema and len(schema) == 1:
        ref = schema["$ref"]
        if type(ref) is not str or not ref.startswith("#/$defs/"):
            return None
        schema = root.get("$defs", {}).get(ref[len("#/$defs/") :])
    return schema


def _surely(schema: Any, value: Any, root: dict[str, Any]) -> bool:
    if schema is True:
        return True
    if type(schema) is not dict:
        return False
    for key, rule in schema.items():
        if key in _ANNOTATIONS:
            continue
        check = _KEYWORDS.get(key)
        if check is None or not check(rule, value, schema, root):
            return False
    return True


def _surely_not(schema: Any, value: Any, root: dict[str, Any]) -> bool:
    """Whether ``value`` is surely invalid against ``schema``: its type does not fit, or it
    lacks a required key."""
    schema = _resolve(schema, root)
    if type(schema) is not dict:
        return False
    kind = schema.get("type")
    if type(kind) is str and kind in _TYPES and not _TYPES[kind](value):
        return True
    required = schema.get("required")
    return (
        type(value) is dict and type(required) is list and any(key not in value for key in required)
    )


def _additional(rule: Any, value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    if type(value) is not dict:
        return True
    named = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return all(
        _surely(rule, item, root)
        for key, item in value.items()
        if key not in named and not any(re.search(p, key) for p in patterns)
    )


def _pattern_properties(
    rule: Any, value: Any, schema: dict[str, Any], root: dict[str, Any]
) -> bool:
    if type(value) is not dict:
        return True
    return all(
        _surely(sub, item, root)
        for pattern, sub in rule.items()
        for key, item in value.items()
        if re.search(pattern, key)
    )


def _unique(rule: Any, value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    if type(value) is not list or not rule:
        return True
    return all(type(item) is str for item in value) and len(set(value)) == len(value)


def _const(rule: Any, value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    return type(rule) in (str, int) and type(value) is type(rule) and value == rule


def _number(compare: Any) -> Any:
    def check(rule: Any, value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
        return type(value) not in (int, float) or compare(value, rule)

    return check


_KEYWORDS: dict[str, Any] = {
    "type": lambda rule, value, schema, root: (
        type(rule) is str and rule in _TYPES and _TYPES[rule](value)
    ),
    "required": lambda rule, value, schema, root: (
        type(value) is not dict or all(key in value for key in rule)
    ),
    "properties": lambda rule, value, schema, root: (
        type(value) is not dict
        or all(_surely(sub, value[key], root) for key, sub in rule.items() if key in value)
    ),
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional,
    "items": lambda rule, value, schema, root: (
        type(value) is not list or all(_surely(rule, item, root) for item in value)
    ),
    "minItems": lambda rule, value, schema, root: type(value) is not list or len(value) >= rule,
    "maxItems": lambda rule, value, schema, root: type(value) is not list or len(value) <= rule,
    "uniqueItems": _unique,
    "contains": lambda rule, value, schema, root: (
        type(value) is not list or any(_surely(rule, item, root) for item in value)
    ),
    "const": _const,
    "pattern": lambda rule, value, schema, root: (
        type(value) is not str or re.search(rule, value) is not None
    ),
    "minLength": lambda rule, value, schema, root: type(value) is not str or len(value) >= rule,
    "minimum": _number(lambda value, rule: value >= rule),
    "maximum": _number(lambda value, rule: value <= rule),
    "$ref": lambda rule, value, schema, root: (
        (target := _resolve({"$ref": rule}, root)) is not None and _surely(target, value, root)
    ),
    "oneOf": lambda rule, value, schema, root: (
        sum(_surely(sub, value, root) for sub in rule) == 1
        and all(_surely(sub, value, root) or _surely_not(sub, value, root) for sub in rule)
    ),
}
