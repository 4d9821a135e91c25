"""The schemas' fast path (``owmanifest.schemas.surely_valid``): what it accepts, jsonschema
accepts, on the valid documents of every schema and on random edits of them."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from owmanifest.schemas import load_schema, surely_valid

from .fixtures import ASSETS, signed_bytes
from .test_document import doc_bytes

DID = "did:key:z6MkkrLTpSfXzswtH6RhUYcL9oKpEBVT8iQizN73jZNuYxJA"
ENCRYPTED_KEY = {
    "type": "owmanifest-ed25519-private-key",
    "version": 1,
    "publicKeyMultibase": DID.removeprefix("did:key:"),
    "encrypted": {
        "kdf": "argon2id",
        "salt": "A" * 22 + "==",
        "opslimit": 3,
        "memlimit": 268435456,
        "cipher": "xsalsa20poly1305",
        "ciphertext": "B" * 96,
    },
}
VALID: dict[str, list[Any]] = {
    "manifest": [json.loads(doc_bytes()), json.loads(signed_bytes())],
    "keyfile": [json.loads((ASSETS / "alice.key").read_bytes()), ENCRYPTED_KEY],
    "trust": [
        {
            "type": "owmanifest-trust",
            "version": 1,
            "keys": [
                {"id": DID, "name": "alice", "datasets": ["https://openworm.org/*"]},
                {"id": DID, "revoked": True, "reason": "lost", "added": "2026-01-01"},
            ],
        }
    ],
    "state": [
        {
            "type": "owmanifest-state",
            "version": 1,
            "dataset": "https://openworm.org/data/x",
            "trusted": {
                "version": 2,
                "canonicalHash": "rdfc-sha256:" + "0" * 64,
                "signers": [DID],
                "threshold": 1,
                "verifiedAt": "2026-01-01T00:00:00Z",
            },
        }
    ],
    "hashcache": [
        {
            "type": "owmanifest-hashcache",
            "version": 2,
            "dataset": "https://openworm.org/data/x",
            "directory": "/data/x",
            "paths": ["a.txt", "b/c.txt"],
            "records": "0123456789abcdef" * 18,
        }
    ],
    "fetched": [
        {
            "type": "owmanifest-fetched",
            "version": 1,
            "dataset": "https://openworm.org/data/x",
            "directory": "/data/x",
            "files": {},
        },
        {
            "type": "owmanifest-fetched",
            "version": 1,
            "dataset": "https://openworm.org/data/x",
            "directory": "/data/x",
            "files": {"a.txt": "0123456789abcdef" * 5, "b/c.txt": "fedcba9876543210" * 5},
        },
    ],
    "hashcache-tree": [
        {
            "type": "owmanifest-hashcache-tree",
            "version": 1,
            "dataset": "https://openworm.org/data/x",
            "directory": "/data/x",
            "fingerprint": "sha256:" + "0123456789abcdef" * 4,
        }
    ],
}


def test_every_schema_has_valid_examples() -> None:
    from importlib import resources

    shipped = {
        p.name.removesuffix(".schema.json")
        for p in resources.files("owmanifest.schemas").iterdir()
        if p.name.endswith(".schema.json")
    }
    assert shipped == set(VALID)


def _jsonschema_errors(instance: Any, name: str) -> list[str]:
    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return [e.message for e in cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(instance)]


@pytest.mark.parametrize(
    ("name", "instance"), [(n, i) for n, items in VALID.items() for i in items], ids=repr
)
def test_valid_documents_take_the_fast_path(name: str, instance: Any) -> None:
    assert _jsonschema_errors(instance, name) == []
    assert surely_valid(instance, name)


_VALUES = st.sampled_from(
    [None, True, False, 0, 1, -1, 3.0, 16384, "", "x", "Manifest", "File", DID, "bep52:" + "a" * 64,
     "https://ex.org/x", "rdfc-sha256:" + "0" * 64, [], {}, ["Manifest"], [DID], [DID, DID],
     {"@value": 1}, {"id": "https://ex.org/y"}]
)  # fmt: skip
_KEYS = st.sampled_from(
    ["x", "id", "type", "version", "owm:x", "dcterms:creator", "https://ex.org/p", "proof",
     "files", "encrypted", "privateKeyMultibase", "keys", "name", "revoked", "trusted"]
)  # fmt: skip


def _containers(value: Any) -> list[Any]:
    out = [value]
    if isinstance(value, dict):
        for item in value.values():
            out += _containers(item)
    elif isinstance(value, list):
        for item in value:
            out += _containers(item)
    return [c for c in out if isinstance(c, (dict, list))]


@st.composite
def _edited(draw: st.DrawFn) -> tuple[str, Any]:
    name = draw(st.sampled_from(sorted(VALID)))
    doc = copy.deepcopy(draw(st.sampled_from(VALID[name])))
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(_containers(doc)))
        if isinstance(target, dict):
            op = draw(st.sampled_from(["set", "delete", "add"]))
            if op == "add" or not target:
                target[draw(_KEYS)] = copy.deepcopy(draw(_VALUES))
            elif op == "delete":
                del target[draw(st.sampled_from(sorted(target)))]
            else:
                target[draw(st.sampled_from(sorted(target)))] = copy.deepcopy(draw(_VALUES))
        elif target and draw(st.booleans()):
            target[draw(st.integers(0, len(target) - 1))] = copy.deepcopy(draw(_VALUES))
        else:
            target.append(copy.deepcopy(draw(_VALUES)))
    return name, doc


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_edited())
def test_what_the_fast_path_accepts_jsonschema_accepts(case: tuple[str, Any]) -> None:
    name, doc = case
    fast = surely_valid(doc, name)
    errors = _jsonschema_errors(doc, name)
    verdict = "valid" if not errors else "invalid"
    event(f"{name}: {'accepted' if fast else 'not sure'}, jsonschema {verdict}")
    if fast:
        assert errors == [], (name, doc)


def test_verifying_a_valid_manifest_does_not_import_jsonschema() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from owmanifest.manifest.document import load_document\n"
        "from owmanifest.verify import TrustPolicy\n"
        "from owmanifest.verify.manifest import check_proofs\n"
        "from owmanifest.verify.keys import read_key_file\n"
        f"data = open({str(ASSETS / 'signed.jsonld')!r}, 'rb').read()\n"
        "doc = load_document(data, source='m', stream=True)\n"
        "_, _, outcomes = check_proofs(doc, TrustPolicy())\n"
        "assert len(outcomes) == 2 and all(o.signer for o in outcomes), outcomes\n"
        f"read_key_file({str(ASSETS / 'alice.key')!r})\n"
        "print('jsonschema' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_schema_error_names_the_rule_and_the_value_found() -> None:
    """expected/observed say the rule broken and the value that broke it (found by a review:
    they said 'manifest schema: minimum' and the JSON pointer)."""
    from owmanifest.errors import InvalidManifestError
    from owmanifest.schemas import validate

    doc = json.loads(doc_bytes())
    doc["version"] = -3
    with pytest.raises(InvalidManifestError) as info:
        validate(doc, "manifest", source="m.jsonld")
    assert (info.value.expected, info.value.observed) == ("minimum 1 at /version", "-3")
    doc["version"] = 1
    doc["title"] = "x" * 200
    doc["license"] = ["a" * 100]
    with pytest.raises(InvalidManifestError) as info:
        validate(doc, "manifest", source="m.jsonld")
    assert len(str(info.value.observed)) <= 80
