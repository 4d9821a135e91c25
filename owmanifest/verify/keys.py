"""Ed25519 keys: ``did:key`` identifiers, signing, verification, and key files.

A public key is known by its ``did:key`` (``did:key:z6Mk...``); its verification method, the IRI a
proof names, is ``did:key:<mb>#<mb>``. Private keys are 32-byte Ed25519 seeds (PyNaCl); they
never appear in ``repr``, ``str`` or error messages.

Key files are JSON (schema: ``owmanifest/schemas/keyfile.schema.json``)::

    {"type": "owmanifest-ed25519-private-key", "version": 1,
     "publicKeyMultibase": "z6Mk...",
     "privateKeyMultibase": "z3u2..."}                     # or, with a passphrase:
     "encrypted": {"kdf": "argon2id", "salt": "<b64>", "opslimit": 3, "memlimit": 268435456,
                   "cipher": "xsalsa20poly1305", "ciphertext": "<b64>"}}

They are written atomically with mode 0600 from creation.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import nacl.exceptions
import nacl.signing

from ..errors import KeyFileError, SignatureError, UsageError
from ..schemas import load_schema, surely_valid
from ._multibase import (
    ED25519_PRIV,
    ED25519_PUB,
    multibase_decode,
    multibase_encode,
    multicodec_unwrap,
    multicodec_wrap,
)

__all__ = [
    "DEFAULT_MEMLIMIT",
    "DEFAULT_OPSLIMIT",
    "KEY_FILE_TYPE",
    "PrivateKey",
    "PublicKey",
    "is_encrypted_key_file",
    "read_key_file",
    "read_public_key",
    "write_key_file",
]

KEY_FILE_TYPE: Final = "owmanifest-ed25519-private-key"
KEY_FILE_VERSION: Final = 1
#: Argon2id cost of new encrypted key files (libsodium's "moderate": 3 passes, 256 MiB; the
#: values of ``nacl.pwhash.argon2id.OPSLIMIT_MODERATE``/``MEMLIMIT_MODERATE``, tested, written
#: out so that reading a public key does not import the password hashing).
DEFAULT_OPSLIMIT: Final = 3
DEFAULT_MEMLIMIT: Final = 256 * 1024**2
#: Bounds accepted in key files (also in the schema): a key file cannot make us spend more.
MAX_OPSLIMIT: Final = 64
MAX_MEMLIMIT: Final = 4 * 1024**3
MAX_KEY_FILE_SIZE: Final = 64 * 1024

_DID_KEY: Final = "did:key:"
_SEED_SIZE: Final = 32
_SIGNATURE_SIZE: Final = 64


@dataclass(frozen=True, repr=False)
class PublicKey:
    """An Ed25519 public key.

    Attributes:
        raw: the 32-byte public key.
    """

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != 32:
            raise SignatureError(
                "an Ed25519 public key is 32 bytes",
                expected="32 bytes",
                observed=f"{len(self.raw)} bytes" if isinstance(self.raw, bytes) else "not bytes",
            )

    @classmethod
    def from_multibase(cls, text: str) -> PublicKey:
        """Parse ``publicKeyMultibase`` (``z6Mk...``: multicodec ``ed25519-pub`` + 32 bytes).

        Raises:
            SignatureError: not base58btc multibase, or not an Ed25519 public key.
        """
        data = multibase_decode(text)
        return cls(multicodec_unwrap(ED25519_PUB, data, length=32, what="Ed25519 public key"))

    @classmethod
    def from_did(cls, did_or_method: str) -> PublicKey:
        """Parse ``did:key:<mb>`` or the verification method ``did:key:<mb>#<mb>``.

        Raises:
            SignatureError: not a ``did:key`` of an Ed25519 key, or a fragment that is not the
                key itself.
        """
        if not isinstance(did_or_method, str) or not did_or_method.startswith(_DID_KEY):
            raise SignatureError(
                "not a did:key identifier",
                expected="did:key:z6Mk...",
                observed=did_or_method if isinstance(did_or_method, str) else None,
            )
        identifier, hash_sign, fragment = did_or_method[len(_DID_KEY) :].partition("#")
        if hash_sign and fragment != identifier:
            raise SignatureError(
                "the fragment of a did:key verification method must be the key itself",
                uri=did_or_method,
                expected=identifier,
                observed=fragment,
            )
        try:
            return cls.from_multibase(identifier)
        except SignatureError as error:
            raise SignatureError(
                f"not an Ed25519 did:key: {error.message}",
                uri=did_or_method,
                expected=error.expected,
                observed=error.observed,
            ) from None

    @property
    def multibase(self) -> str:
        """``publicKeyMultibase``: ``z6Mk...``."""
        return multibase_encode(multicodec_wrap(ED25519_PUB, self.raw))

    @property
    def did(self) -> str:
        """``did:key:z6Mk...``."""
        return _DID_KEY + self.multibase

    @property
    def verification_method(self) -> str:
        """``did:key:z6Mk...#z6Mk...``, the IRI a proof names as its verificationMethod."""
        mb = self.multibase
        return f"{_DID_KEY}{mb}#{mb}"

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check an Ed25519 signature of ``message`` by this key.

        Raises:
            SignatureError: the signature is not 64 bytes or does not verify.
        """
        if len(signature) != _SIGNATURE_SIZE:
            raise SignatureError(
                "an Ed25519 signature is 64 bytes",
                uri=self.verification_method,
                expected="64 bytes",
                observed=f"{len(signature)} bytes",
            )
        try:
            nacl.signing.VerifyKey(self.raw).verify(message, signature)
        except (nacl.exceptions.CryptoError, ValueError):
            raise SignatureError(
                "signature does not verify", uri=self.verification_method
            ) from None

    def __str__(self) -> str:
        return self.did

    def __repr__(self) -> str:
        return f"PublicKey({self.did!r})"


class PrivateKey:
    """An Ed25519 signing key. Its ``repr`` shows the public key only.

    Create with :meth:`generate`, :meth:`from_seed`, :meth:`from_multibase` or
    :func:`read_key_file`.
    """

    __slots__ = ("_signing_key", "public_key")

    _signing_key: nacl.signing.SigningKey
    public_key: PublicKey

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        self._signing_key = signing_key
        self.public_key = PublicKey(bytes(signing_key.verify_key))

    @classmethod
    def generate(cls) -> PrivateKey:
        """A new random key (from the operating system's CSPRNG)."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> PrivateKey:
        """The key of a 32-byte Ed25519 seed.

        Raises:
            KeyFileError: the seed is not 32 bytes.
        """
        if not isinstance(seed, bytes) or len(seed) != _SEED_SIZE:
            raise KeyFileError(
                "an Ed25519 seed is 32 bytes",
                expected="32 bytes",
                observed=f"{len(seed)} bytes" if isinstance(seed, bytes) else "not bytes",
            )
        return cls(nacl.signing.SigningKey(seed))

    @classmethod
    def from_multibase(cls, text: str) -> PrivateKey:
        """Parse ``privateKeyMultibase`` (``z3u2...``: multicodec ``ed25519-priv`` + seed).

        Raises:
            KeyFileError: not base58btc multibase, or not an Ed25519 private key.
        """
        try:
            data = multibase_decode(text)
            seed = multicodec_unwrap(ED25519_PRIV, data, length=_SEED_SIZE, what="private key")
        except SignatureError as error:
            raise KeyFileError(
                f"not an Ed25519 privateKeyMultibase: {error.message}",
                expected=error.expected,
                observed=error.observed,
            ) from None
        return cls.from_seed(seed)

    def seed(self) -> bytes:
        """The 32-byte seed. Secret: do not log or print it."""
        return bytes(self._signing_key)

    def to_multibase(self) -> str:
        """``privateKeyMultibase`` (``z3u2...``). Secret: do not log or print it."""
        return multibase_encode(multicodec_wrap(ED25519_PRIV, self.seed()))

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
        return bytes(self._signing_key.sign(message).signature)

    def __repr__(self) -> str:
        return f"PrivateKey(public_key={self.public_key.did!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PrivateKey):
            return NotImplemented
        return hmac.compare_digest(self.seed(), other.seed())

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __reduce__(self) -> Any:
        raise TypeError("PrivateKey cannot be pickled (it would copy the secret seed)")


# --- key files -----------------------------------------------------------------------------------


def write_key_file(
    path: str | os.PathLike[str],
    key: PrivateKey,
    *,
    passphrase: bytes | None = None,
    overwrite: bool = False,
    opslimit: int = DEFAULT_OPSLIMIT,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> None:
    """Write ``key`` to a key file, atomically and readable by its owner only (mode 0600).

    The file is written to a temporary file in the same directory, created with mode 0600,
    flushed to disk, then moved into place.

    Args:
        path: where to write.
        key: the key.
        passphrase: if given, the seed is encrypted with a key derived from it (Argon2id).
        overwrite: replace an existing file (refused by default).
        opslimit: Argon2id passes (1 to 64).
        memlimit: Argon2id memory in bytes (8 KiB to 4 GiB).

    Raises:
        KeyFileError: the file exists (and ``overwrite`` is false), or cannot be written.
        UsageError: an empty passphrase, or Argon2id limits out of range.
    """
    target = Path(path)
    document: dict[str, Any] = {
        "type": KEY_FILE_TYPE,
        "version": KEY_FILE_VERSION,
        "publicKeyMultibase": key.public_key.multibase,
    }
    if passphrase is None:
        document["privateKeyMultibase"] = key.to_multibase()
    else:
        document["encrypted"] = _encrypt(key.seed(), passphrase, opslimit, memlimit)
    data = (json.dumps(document, indent=2) + "\n").encode()
    if not overwrite and os.path.lexists(target):
        raise KeyFileError("key file already exists (refusing to overwrite)", path=str(target))
    directory = target.parent
    temporary = directory / f".{target.name}.{os.urandom(8).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(temporary, flags, 0o600)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # exact, whatever the umask
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        _move_into_place(temporary, target, overwrite=overwrite)
        _fsync_directory(directory)
    except OSError as error:
        raise KeyFileError(
            f"cannot write key file: {error.strerror or error}", path=str(target)
        ) from None
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def read_key_file(path: str | os.PathLike[str], *, passphrase: bytes | None = None) -> PrivateKey:
    """Read a key file written by :func:`write_key_file`.

    A passphrase given for an unencrypted file is ignored.

    Raises:
        KeyFileError: unreadable, not JSON, not valid against the key file schema (the message
            names the JSON pointer and the reason), encrypted but no passphrase given, wrong
            passphrase or corrupted ciphertext, or a public key that does not match the
            private key.
        UsageError: the passphrase is not bytes.
    """
    where = str(path)
    document = _load(path)
    encrypted = document.get("encrypted")
    if encrypted is None:
        try:
            key = PrivateKey.from_multibase(document["privateKeyMultibase"])
        except KeyFileError as error:
            raise KeyFileError(
                error.message, path=where, expected=error.expected, observed=error.observed
            ) from None
    else:
        if passphrase is None:
            raise KeyFileError("the key file is encrypted: a passphrase is required", path=where)
        if not isinstance(passphrase, bytes):
            raise UsageError("the passphrase must be bytes", observed=type(passphrase).__name__)
        key = PrivateKey.from_seed(_decrypt(encrypted, passphrase, where))
    if key.public_key.multibase != document["publicKeyMultibase"]:
        raise KeyFileError(
            "the public key in the key file does not match its private key",
            path=where,
            expected=document["publicKeyMultibase"],
            observed=key.public_key.multibase,
        )
    return key


def read_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """The public key of the key file at ``path`` (no passphrase needed, even if encrypted).

    Raises:
        KeyFileError: as :func:`read_key_file` for an unreadable or invalid file.
    """
    document = _load(path)
    try:
        return PublicKey.from_multibase(document["publicKeyMultibase"])
    except SignatureError as error:
        raise KeyFileError(
            error.message, path=str(path), expected=error.expected, observed=error.observed
        ) from None


def is_encrypted_key_file(path: str | os.PathLike[str]) -> bool:
    """Whether the key file at ``path`` is encrypted with a passphrase.

    Raises:
        KeyFileError: as :func:`read_key_file` for an unreadable or invalid file.
    """
    return "encrypted" in _load(path)


def _encrypt(seed: bytes, passphrase: bytes, opslimit: int, memlimit: int) -> dict[str, Any]:
    import nacl.pwhash.argon2id as argon2id
    import nacl.secret
    import nacl.utils

    if not isinstance(passphrase, bytes) or not passphrase:
        raise UsageError("the passphrase must be non-empty bytes")
    if not 1 <= opslimit <= MAX_OPSLIMIT:
        raise UsageError(
            "Argon2id opslimit out of range", expected=f"1..{MAX_OPSLIMIT}", observed=opslimit
        )
    if not argon2id.MEMLIMIT_MIN <= memlimit <= MAX_MEMLIMIT:
        raise UsageError(
            "Argon2id memlimit out of range",
            expected=f"{argon2id.MEMLIMIT_MIN}..{MAX_MEMLIMIT}",
            observed=memlimit,
        )
    salt = nacl.utils.random(argon2id.SALTBYTES)
    box_key = argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase, salt, opslimit, memlimit)
    ciphertext = bytes(nacl.secret.SecretBox(box_key).encrypt(seed))
    return {
        "kdf": "argon2id",
        "salt": base64.b64encode(salt).decode(),
        "opslimit": opslimit,
        "memlimit": memlimit,
        "cipher": "xsalsa20poly1305",
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }


def _decrypt(encrypted: dict[str, Any], passphrase: bytes, where: str) -> bytes:
    import nacl.pwhash.argon2id as argon2id
    import nacl.secret

    try:
        salt = base64.b64decode(encrypted["salt"], validate=True)
        ciphertext = base64.b64decode(encrypted["ciphertext"], validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError("invalid base64 in the encrypted key", path=where) from None
    try:
        box_key = argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase,
            salt,
            encrypted["opslimit"],
            encrypted["memlimit"],
        )
    except (nacl.exceptions.CryptoError, ValueError, MemoryError):
        raise KeyFileError(
            "cannot derive the key-encryption key (Argon2id parameters rejected)", path=where
        ) from None
    try:
        seed = bytes(nacl.secret.SecretBox(box_key).decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, ValueError):
        raise KeyFileError(
            "cannot decrypt the key file: wrong passphrase, or the file is corrupted", path=where
        ) from None
    if len(seed) != _SEED_SIZE:
        raise KeyFileError(
            "the decrypted key is not an Ed25519 seed",
            path=where,
            expected=f"{_SEED_SIZE} bytes",
            observed=f"{len(seed)} bytes",
        )
    return seed


def _load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read, parse and validate a key file."""
    where = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_FILE_SIZE + 1)
    except OSError as error:
        raise KeyFileError(f"cannot read key file: {error.strerror or error}", path=where) from None
    if len(data) > MAX_KEY_FILE_SIZE:
        raise KeyFileError(
            "key file too large", path=where, expected=f"at most {MAX_KEY_FILE_SIZE} bytes"
        )
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise KeyFileError("key file is not UTF-8", path=where) from None
    except json.JSONDecodeError as error:
        # error.msg never quotes the document, so no key material leaks into the message
        raise KeyFileError(
            f"key file is not JSON: {error.msg} (line {error.lineno}, column {error.colno})",
            path=where,
        ) from None
    except (ValueError, RecursionError):
        # ValueError: an integer over Python's digit limit; RecursionError: nesting too deep
        raise KeyFileError(
            "key file is not acceptable JSON (a number too large or nesting too deep)",
            path=where,
        ) from None
    if surely_valid(document, "keyfile"):
        problem = None  # without importing jsonschema
    else:
        import jsonschema

        problem = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if problem is not None:
        pointer = "".join(
            "/" + str(part).replace("~", "~0").replace("/", "~1") for part in problem.absolute_path
        )
        raise KeyFileError(
            f"invalid key file at {pointer or 'the top level'}: {_reason(problem)}",
            path=where,
            expected=f"a document valid against {_SCHEMA_NAME}",
            observed=f"{pointer or '(top level)'}: {_kind(problem.instance)}",
        )
    assert isinstance(document, dict)
    return document


_SCHEMA_NAME: Final = "keyfile.schema.json"


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = load_schema("keyfile")  # importlib.resources, owmanifest/schemas/keyfile.schema.json
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def _reason(error: Any) -> str:
    """Why ``error`` failed, without quoting the value (it may be a private key)."""
    keyword, value = error.validator, error.validator_value
    if keyword == "required":
        missing = [name for name in value if name not in error.instance]
        return f"missing required property {', '.join(map(repr, missing))}"
    if keyword == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(name for name in error.instance if name not in allowed)
        return f"unexpected property {', '.join(map(repr, extra))}"
    if keyword == "oneOf":
        names = [name for alternative in value for name in alternative.get("required", [])]
        return f"must contain exactly one of {' or '.join(map(repr, names))}"
    if keyword == "const":
        return f"must be {json.dumps(value)}"
    if keyword == "type":
        return f"must be of type {value}"
    if keyword == "pattern":
        return f"must match the pattern {value}"
    if keyword in ("minimum", "maximum"):
        return f"must be {'>=' if keyword == 'minimum' else '<='} {value}"
    return f"fails the {keyword!r} constraint"


def _kind(instance: object) -> str:
    if isinstance(instance, bool):
        return "a boolean"
    if isinstance(instance, int):
        return f"the integer {instance}"
    if isinstance(instance, str):
        return f"a string of {len(instance)} characters"
    if isinstance(instance, dict):
        return "an object"
    if isinstance(instance, list):
        return "an array"
    return "null" if instance is None else type(instance).__name__


def _move_into_place(temporary: Path, target: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)  # atomic, and fails if target exists
    except FileExistsError:
        raise KeyFileError(
            "key file already exists (refusing to overwrite)", path=str(target)
        ) from None
    except OSError:
        # no hard links on this file system: check, then rename (a small race remains)
        if os.path.lexists(target):
            raise KeyFileError(
                "key file already exists (refusing to overwrite)", path=str(target)
            ) from None
        os.replace(temporary, target)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
