"""base58/multibase, Ed25519 keys, did:key, and key files."""

from __future__ import annotations

import json
import os
import pickle
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.pwhash.argon2id as argon2id
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from owmanifest.errors import KeyFileError, SignatureError, UsageError
from owmanifest.schemas import load_schema
from owmanifest.verify import keys
from owmanifest.verify._multibase import (
    MAX_ENCODED_LENGTH,
    b58decode,
    b58encode,
    multibase_decode,
    multibase_encode,
)
from owmanifest.verify.keys import (
    PrivateKey,
    PublicKey,
    is_encrypted_key_file,
    read_key_file,
    write_key_file,
)

OPS, MEM = argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN  # fast enough for tests
SEED = bytes(range(32))
PASSPHRASE = b"correct horse battery staple"

# --- base58 / multibase --------------------------------------------------------------------------

KNOWN_BASE58 = {
    b"": "",
    b"\0": "1",
    b"\0\0\x01": "112",
    b"hello world": "StV1DL6CwTryKyV",
    b"\xff": "5Q",
}


@pytest.mark.parametrize(
    ("raw", "encoded"), KNOWN_BASE58.items(), ids=list(map(repr, KNOWN_BASE58))
)
def test_base58_known_values(raw: bytes, encoded: str) -> None:
    assert b58encode(raw) == encoded
    assert b58decode(encoded) == raw


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=80))
def test_base58_round_trip(raw: bytes) -> None:
    assert b58decode(b58encode(raw)) == raw
    assert multibase_decode(multibase_encode(raw if raw else b"\0")) == (raw if raw else b"\0")


BAD_BASE58 = {
    "zero": "0abc",
    "capital O": "abOc",
    "capital I": "Iabc",
    "small l": "abcl",
    "space": "ab c",
    "non-ascii": "ab\u00e9",
    "too long": "2" * (MAX_ENCODED_LENGTH + 1),
}


@pytest.mark.parametrize("text", BAD_BASE58.values(), ids=BAD_BASE58.keys())
def test_base58_rejects(text: str) -> None:
    with pytest.raises(SignatureError):
        b58decode(text)


BAD_MULTIBASE = {"empty": "", "only prefix": "z", "base64url": "uAQID", "base16": "f0102"}


@pytest.mark.parametrize("text", BAD_MULTIBASE.values(), ids=BAD_MULTIBASE.keys())
def test_multibase_rejects(text: str) -> None:
    with pytest.raises(SignatureError, match="multibase"):
        multibase_decode(text)


# --- public keys and did:key ---------------------------------------------------------------------

KEY = PrivateKey.from_seed(SEED)
MB = KEY.public_key.multibase


def test_did_key_forms() -> None:
    pub = KEY.public_key
    assert MB.startswith("z6Mk") and len(MB) == 48
    assert pub.did == f"did:key:{MB}"
    assert pub.verification_method == f"did:key:{MB}#{MB}"
    assert PublicKey.from_did(pub.did) == pub
    assert PublicKey.from_did(pub.verification_method) == pub
    assert PublicKey.from_multibase(MB) == pub
    assert str(pub) == pub.did and pub.did in repr(pub)


OTHER_MB = PrivateKey.from_seed(b"\1" * 32).public_key.multibase
BAD_DIDS = {
    "not a did": "z6Mk" + MB[4:],
    "did:web": "did:web:example.org",
    "other fragment": f"did:key:{MB}#{OTHER_MB}",
    "key-1 fragment": f"did:key:{MB}#key-1",
    "empty": "did:key:",
    "secp256k1": "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
    "truncated": f"did:key:{MB[:-2]}",
    "not base58": "did:key:z6MkI0Ol",
    "https": "https://example.org/keys/1",
}


@pytest.mark.parametrize("did", BAD_DIDS.values(), ids=BAD_DIDS.keys())
def test_from_did_rejects(did: str) -> None:
    with pytest.raises(SignatureError):
        PublicKey.from_did(did)


def test_public_key_length_is_checked() -> None:
    with pytest.raises(SignatureError, match="32 bytes"):
        PublicKey(b"\0" * 31)


def test_sign_and_verify() -> None:
    signature = KEY.sign(b"message")
    assert len(signature) == 64
    assert KEY.sign(b"message") == signature  # deterministic
    KEY.public_key.verify(b"message", signature)
    with pytest.raises(SignatureError, match="does not verify") as info:
        KEY.public_key.verify(b"massage", signature)
    assert info.value.uri == KEY.public_key.verification_method
    with pytest.raises(SignatureError, match="64 bytes"):
        KEY.public_key.verify(b"message", signature[:-1])
    other = PrivateKey.generate()
    with pytest.raises(SignatureError):
        other.public_key.verify(b"message", signature)


# --- private keys --------------------------------------------------------------------------------


def test_private_key_never_shows_its_secret() -> None:
    secret_forms = [KEY.to_multibase(), SEED.hex(), repr(SEED)]
    for shown in (repr(KEY), str(KEY), f"{KEY}", f"{KEY!r}"):
        assert KEY.public_key.did in shown
        for secret in secret_forms:
            assert secret not in shown
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(KEY)


def test_private_key_constructors() -> None:
    assert PrivateKey.from_seed(SEED) == KEY
    assert PrivateKey.from_multibase(KEY.to_multibase()) == KEY
    assert KEY.to_multibase().startswith("z3u2")
    assert KEY.seed() == SEED
    assert PrivateKey.generate() != PrivateKey.generate()
    with pytest.raises(KeyFileError, match="32 bytes"):
        PrivateKey.from_seed(b"short")
    with pytest.raises(KeyFileError, match="privateKeyMultibase"):
        PrivateKey.from_multibase(MB)  # a public key is not a private key


# --- key files -----------------------------------------------------------------------------------


def test_plain_key_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "alice.key"
    write_key_file(path, KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text("utf-8"))
    assert document == {
        "type": "owmanifest-ed25519-private-key",
        "version": 1,
        "publicKeyMultibase": MB,
        "privateKeyMultibase": KEY.to_multibase(),
    }
    assert read_key_file(path) == KEY
    assert read_key_file(path, passphrase=b"ignored for plain files") == KEY
    assert not is_encrypted_key_file(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.key"]  # no temp file left


def test_encrypted_key_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "alice.key"
    write_key_file(path, KEY, passphrase=PASSPHRASE, opslimit=OPS, memlimit=MEM)
    data = path.read_text("utf-8")
    assert KEY.to_multibase() not in data
    document = json.loads(data)
    assert document["encrypted"]["kdf"] == "argon2id"
    assert document["encrypted"]["cipher"] == "xsalsa20poly1305"
    assert document["encrypted"]["opslimit"] == OPS
    assert is_encrypted_key_file(path)
    assert read_key_file(path, passphrase=PASSPHRASE) == KEY


def test_encrypted_key_file_errors_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "alice.key"
    write_key_file(path, KEY, passphrase=PASSPHRASE, opslimit=OPS, memlimit=MEM)
    with pytest.raises(KeyFileError, match="passphrase is required") as info:
        read_key_file(path)
    assert info.value.path == str(path)
    with pytest.raises(KeyFileError, match="wrong passphrase") as info:
        read_key_file(path, passphrase=b"wrong")
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(UsageError, match="bytes"):
        read_key_file(path, passphrase="text")  # type: ignore[arg-type]


def test_write_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    write_key_file(path, KEY)
    other = PrivateKey.generate()
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path, other)
    assert read_key_file(path) == KEY
    write_key_file(path, other, overwrite=True)
    assert read_key_file(path) == other
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key"]


def test_file_is_created_with_mode_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    modes: list[int] = []
    real_open: Callable[..., int] = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if flags & os.O_CREAT:
            modes.append(mode)
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", spy)
    old = os.umask(0)
    try:
        write_key_file(tmp_path / "k.key", KEY)
    finally:
        os.umask(old)
    assert modes == [0o600]
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600


def test_write_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot write"):
        write_key_file(tmp_path / "missing-dir" / "k.key", KEY)
    with pytest.raises(UsageError, match="passphrase"):
        write_key_file(tmp_path / "k.key", KEY, passphrase=b"", opslimit=OPS, memlimit=MEM)
    with pytest.raises(UsageError, match="opslimit"):
        write_key_file(tmp_path / "k.key", KEY, passphrase=PASSPHRASE, opslimit=0)
    with pytest.raises(UsageError, match="memlimit"):
        write_key_file(tmp_path / "k.key", KEY, passphrase=PASSPHRASE, opslimit=1, memlimit=1024)
    assert list(tmp_path.iterdir()) == []


def test_schema_bounds_match_the_code() -> None:
    encrypted = load_schema("keyfile")["$defs"]["encrypted"]["properties"]
    assert encrypted["opslimit"]["maximum"] == keys.MAX_OPSLIMIT
    assert encrypted["memlimit"]["maximum"] == keys.MAX_MEMLIMIT
    assert encrypted["memlimit"]["minimum"] == argon2id.MEMLIMIT_MIN


def _plain() -> dict[str, Any]:
    return {
        "type": "owmanifest-ed25519-private-key",
        "version": 1,
        "publicKeyMultibase": MB,
        "privateKeyMultibase": KEY.to_multibase(),
    }


def _encrypted() -> dict[str, Any]:
    return {
        "type": "owmanifest-ed25519-private-key",
        "version": 1,
        "publicKeyMultibase": MB,
        "encrypted": {
            "kdf": "argon2id",
            "salt": "A" * 22 + "==",
            "opslimit": 1,
            "memlimit": 8192,
            "cipher": "xsalsa20poly1305",
            "ciphertext": "A" * 96,
        },
    }


def _with(base: Callable[[], dict[str, Any]], change: Callable[[dict[str, Any]], Any]) -> bytes:
    document = base()
    change(document)
    return json.dumps(document).encode()


SECRET = KEY.to_multibase()
BAD_FILES: dict[str, tuple[bytes, str]] = {
    "not json": (b"{not json", "not JSON"),
    "not utf-8": (b'{"type": "\xff"}', "not UTF-8"),
    "array": (b"[]", "at the top level: must be of type object"),
    "wrong type": (_with(_plain, lambda d: d.update(type="ssh-key")), "/type: must be"),
    "version 2": (_with(_plain, lambda d: d.update(version=2)), "/version: must be 1"),
    "no public key": (
        _with(_plain, lambda d: d.pop("publicKeyMultibase")),
        "missing required property 'publicKeyMultibase'",
    ),
    "both forms": (
        _with(_plain, lambda d: d.update(encrypted=_encrypted()["encrypted"])),
        "exactly one of 'privateKeyMultibase' or 'encrypted'",
    ),
    "neither form": (
        _with(_plain, lambda d: d.pop("privateKeyMultibase")),
        "privateKeyMultibase",
    ),
    "extra property": (
        _with(_plain, lambda d: d.update(comment="x")),
        "unexpected property 'comment'",
    ),
    "bad private key": (
        _with(_plain, lambda d: d.update(privateKeyMultibase=SECRET[:-1] + "0")),
        "/privateKeyMultibase: must match the pattern",
    ),
    "public key as private": (
        _with(_plain, lambda d: d.update(privateKeyMultibase=MB)),
        "/privateKeyMultibase: must match the pattern",
    ),
    "mismatched public key": (
        _with(_plain, lambda d: d.update(publicKeyMultibase=OTHER_MB)),
        "does not match its private key",
    ),
    "scrypt": (
        _with(_encrypted, lambda d: d["encrypted"].update(kdf="scrypt")),
        "/encrypted/kdf: must be",
    ),
    "memlimit too high": (
        _with(_encrypted, lambda d: d["encrypted"].update(memlimit=2**40)),
        "/encrypted/memlimit: must be <=",
    ),
    "opslimit string": (
        _with(_encrypted, lambda d: d["encrypted"].update(opslimit="3")),
        "/encrypted/opslimit: must be of type integer",
    ),
    "short salt": (
        _with(_encrypted, lambda d: d["encrypted"].update(salt="AAAA")),
        "/encrypted/salt: must match",
    ),
    "garbage ciphertext": (
        _with(_encrypted, lambda d: None),
        "wrong passphrase",
    ),
    "too large": (b" " * (keys.MAX_KEY_FILE_SIZE + 1), "too large"),
}


@pytest.mark.parametrize(("data", "message"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_key_files(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(data)
    with pytest.raises(KeyFileError) as info:
        read_key_file(path, passphrase=PASSPHRASE)
    error = info.value
    assert message in str(error)
    assert error.path == str(path)
    for shown in (str(error), error.diagnostics(), json.dumps(error.to_json())):
        assert SECRET not in shown and SECRET[4:20] not in shown
    # no chained nacl/json/jsonschema traceback behind the message
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


def test_unreadable_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        read_key_file(tmp_path / "absent.key")
    with pytest.raises(KeyFileError, match="cannot read"):
        is_encrypted_key_file(tmp_path / "absent.key")


def test_default_key_encryption_cost_is_libsodiums_moderate() -> None:
    # written out in keys.py so that reading public keys does not import nacl.pwhash
    assert keys.DEFAULT_OPSLIMIT == argon2id.OPSLIMIT_MODERATE
    assert keys.DEFAULT_MEMLIMIT == argon2id.MEMLIMIT_MODERATE
