"""JSON Schemas for every JSON input owmanifest accepts, loaded with importlib.resources."""

from __future__ import annotations

import json
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
