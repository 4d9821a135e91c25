"""Fuzzing the readers of untrusted input with hypothesis: manifests (JSON-LD, N-Quads, TriG),
torrents and bencoding, key files, trust files, rollback state, paths, DIDs.

The property is the same everywhere: only ``owmanifest.errors.Error`` subclasses may escape,
never a bare exception, never a hang (a per-example alarm, plus the suite's watchdog for hangs
in native code); and whatever is *accepted* must be exactly what was signed.

``OWMANIFEST_FUZZ_EXAMPLES`` sets the number of examples per target (default 100; the nightly
``slow`` run multiplies it by 20).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from owmanifest.errors import Error
from owmanifest.manifest.bencode import bdecode, bencode
from owmanifest.manifest.document import load_document
from owmanifest.manifest.paths import check_path
from owmanifest.manifest.torrent import info_hashes, parse_torrent
from owmanifest.signing import convert_document
from owmanifest.verify import verify_manifest
from owmanifest.verify.result import VerifiedManifest

from ..unit.fixtures import ASSETS, DIDS, ONE_PASS_READERS, key, one_pass_reader, signed_bytes
from .ledger import LEDGER, attack, false_accept
from .support import BOTH, fixture_verified

EXAMPLES = int(os.environ.get("OWMANIFEST_FUZZ_EXAMPLES", "100"))
PER_EXAMPLE_SECONDS = 30.0


def fuzz_settings(factor: float = 1.0) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(
        deadline=None,
        max_examples=max(1, int(EXAMPLES * factor)),
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
        ],
    )


class Hang(BaseException):
    """Raised by the per-example alarm."""


@contextlib.contextmanager
def alarm(seconds: float = PER_EXAMPLE_SECONDS) -> Iterator[None]:
    def ring(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer within {seconds:g} s: a hang")

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def only_owmanifest_errors(category: str, action: Callable[[], Any]) -> Any:
    """Run ``action``; returns its result, or ``None`` if it raised an owmanifest ``Error``."""
    attack(category)
    try:
        with alarm():
            return action()
    except Error:
        return None
    except Exception as exc:
        with LEDGER._lock:
            LEDGER.bare_exceptions.append(f"{category}: {type(exc).__name__}: {exc}"[:300])
        raise AssertionError(f"{category}: a bare {type(exc).__name__} escaped: {exc}") from exc


# --- mutations ------------------------------------------------------------------------------------

#: Tokens that mean something to one of the parsers.
TOKENS = [
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b'\\"',
    b"_:b0",
    b"_:",
    b"<",
    b">",
    b"<>",
    b"@context",
    b"@id",
    b"@type",
    b"@graph",
    b"@base",
    b"@vocab",
    b"@prefix",
    b"@reverse",
    b"GRAPH",
    b"PREFIX",
    b'"""',
    b"^^",
    b"@en",
    b".",
    b";",
    b"#",
    b"9" * 30,
    b"-1",
    b"1e999",
    b"NaN",
    b"null",
    b"true",
    b"\xff",
    b"\xc0\x80",
    b"\xef\xbb\xbf",
    b"\n",
    b"\r",
    b"\t",
    b"\x00",
    b"i-0e",
    b"i0e",
    b"0:",
    b"1:",
    b"d",
    b"l",
    b"e",
    b"4294967296:",
    b"i99999999999999999999999999e",
    b"../",
    b"/",
    b"did:key:z6Mk",
    b"bep52:",
    b"rdfc-sha256:",
]


@st.composite
def mutated(draw: st.DrawFn, base: bytes, max_ops: int = 4) -> bytes:
    """``base`` with one to ``max_ops`` random edits (flip, set, insert, delete, splice, token)."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "splice", "token"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            i = min(pos, len(data) - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "splice":
            src = draw(st.integers(0, len(data)))
            data[pos:pos] = data[src : src + draw(st.integers(1, 256))]
        else:
            data[pos:pos] = draw(st.sampled_from(TOKENS))
    return bytes(data)


# --- manifests ------------------------------------------------------------------------------------

_ORIGINAL: VerifiedManifest | None = None


def original() -> VerifiedManifest:
    global _ORIGINAL
    if _ORIGINAL is None:
        _ORIGINAL = fixture_verified()
    return _ORIGINAL


def _formats() -> dict[str, bytes]:
    doc = load_document(signed_bytes(), source="signed.jsonld")
    return {
        "json-ld": signed_bytes(),
        "n-quads": convert_document(doc, "n-quads"),
        "trig": convert_document(doc, "trig"),
    }


FORMATS = _formats()


def check_manifest(data: bytes, fmt: str | None, category: str) -> None:
    """Parse, extract and verify; an accepted document must be the signed one.

    Both ways of reading are run: all quads first (``load_document``), and the one pass over
    the quads as they are parsed that the command line uses (``stream=True``), with each of
    its implementations (compiled and Python). They must give the same verified manifest, or
    the same error.
    """

    def run(stream: bool = False) -> VerifiedManifest:
        doc = load_document(
            data,
            source="fuzzed" if fmt is None else f"fuzzed.{fmt}",
            format=fmt,
            stream=stream,
        )
        return verify_manifest(doc, BOTH)

    def answer(stream: bool) -> object:
        try:
            with alarm():
                return run(stream)
        except Error as exc:
            return f"{type(exc).__name__}: {exc}"

    vm = only_owmanifest_errors(category, run)
    usual = vm if vm is not None else answer(False)
    for reader in ONE_PASS_READERS:
        with one_pass_reader(reader):
            streamed = answer(True)
        if streamed != usual:
            raise AssertionError(f"{category}: the {reader} one pass answered {streamed!r}")
    if vm is not None:
        o = original()
        if vm.canonical_hash != o.canonical_hash or vm.manifest != o.manifest:
            raise false_accept(f"{category}: a mutated manifest verified with other content")
        if set(vm.signers) != set(o.signers):
            raise false_accept(f"{category}: verified by other signers {vm.signers}")


@pytest.mark.parametrize("fmt", ["json-ld", "n-quads", "trig", "detect"])
@fuzz_settings()
@given(data=st.data())
def test_fuzz_manifest_bytes(fmt: str, data: st.DataObject) -> None:
    base = FORMATS["json-ld" if fmt == "detect" else fmt]
    blob = data.draw(mutated(base), label="document")
    check_manifest(blob, None if fmt == "detect" else fmt, f"fuzz/manifest-{fmt}")


JSON_KEYS = [
    "@context",
    "@id",
    "@type",
    "@graph",
    "@base",
    "@vocab",
    "@reverse",
    "@included",
    "@nest",
    "@value",
    "@language",
    "@index",
    "@list",
    "@set",
    "@json",
    "@direction",
    "owm:x",
    "https://evil.example/p",
    "id",
    "type",
    "path",
    "byteSize",
    "merkleRoot",
    "proof",
    "files",
    "version",
    "threshold",
    "authorizedSigner",
    "pieceLength",
    "previousVersion",
    "expires",
    "proofValue",
    "verificationMethod",
    "cryptosuite",
    "created",
    "proofPurpose",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from([*JSON_KEYS, DIDS["alice"], "bep52:" + "0" * 64, "../x", "_:b0"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(JSON_KEYS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nodes(v, (*path, i))


@fuzz_settings()
@given(data=st.data())
def test_fuzz_manifest_json_structure(data: st.DataObject) -> None:
    """Replace, delete or add values anywhere in the JSON-LD tree."""
    doc: Any = json.loads(signed_bytes())
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        paths = list(_nodes(doc))
        where = data.draw(st.sampled_from(paths), label="where")
        op = data.draw(st.sampled_from(["replace", "delete", "add"]), label="op")
        if not where:
            doc = data.draw(json_values) if op == "replace" else doc
            continue
        parent = doc
        for step in where[:-1]:
            parent = parent[step]
        last = where[-1]
        if op == "replace":
            parent[last] = data.draw(json_values, label="value")
        elif op == "delete":
            del parent[last]
        else:
            target = parent[last]
            if isinstance(target, dict):
                target[data.draw(st.sampled_from(JSON_KEYS), label="key")] = data.draw(json_values)
            elif isinstance(target, list):
                target.append(data.draw(json_values, label="item"))
    check_manifest(json.dumps(doc).encode(), "json-ld", "fuzz/manifest-json-structure")


_TERM = re.compile(rb'<[^>]*>|_:[A-Za-z0-9]+|"(?:[^"\\]|\\.)*"(?:\^\^<[^>]*>|@[A-Za-z-]+)?')


@fuzz_settings()
@given(data=st.data())
def test_fuzz_nquads_statements(data: st.DataObject) -> None:
    """Drop, duplicate, reorder statements and move terms between them (valid N-Quads that say
    something else)."""
    lines = FORMATS["n-quads"].splitlines(keepends=True)
    terms = sorted({t for line in lines for t in _TERM.findall(line)})
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        op = data.draw(st.sampled_from(["drop", "dup", "swap", "term"]), label="op")
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        if op == "drop" and len(lines) > 1:
            del lines[i]
        elif op == "dup":
            lines.insert(data.draw(st.integers(0, len(lines))), lines[i])
        elif op == "swap":
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            found = list(_TERM.finditer(lines[i]))
            if found:
                m = data.draw(st.sampled_from(found))
                new = data.draw(st.sampled_from(terms))
                lines[i] = lines[i][: m.start()] + new + lines[i][m.end() :]
    check_manifest(b"".join(lines), "n-quads", "fuzz/nquads-statements")


# --- torrents and bencoding -----------------------------------------------------------------------

TORRENT = (ASSETS / "unsigned.jsonld.torrent").read_bytes()


def check_torrent_bytes(blob: bytes, category: str) -> None:
    manifest = original().manifest
    original_layers = parse_torrent(TORRENT).piece_layers
    only_owmanifest_errors(category + "/bdecode", lambda: bdecode(blob))
    only_owmanifest_errors(category + "/info_hashes", lambda: info_hashes(blob))
    only_owmanifest_errors(category + "/parse_torrent", lambda: parse_torrent(blob))
    try:
        from owmanifest.transport.bittorrent import check_torrent
    except ImportError:  # pragma: no cover - the BitTorrent transport is optional here
        return
    parsed = only_owmanifest_errors(
        category + "/check_torrent", lambda: check_torrent(manifest, blob)
    )
    if parsed is not None:
        if (
            parsed.info_hashes.v2 != manifest.info_hash_v2
            or parsed.info_hashes.v1 != manifest.info_hash_v1
        ):
            raise false_accept(f"{category}: a torrent with other info-hashes was accepted")
        if dict(parsed.piece_layers) != dict(original_layers):
            raise false_accept(f"{category}: a torrent with other piece layers was accepted")


@fuzz_settings(2)
@given(blob=mutated(TORRENT))
def test_fuzz_torrent_bytes(blob: bytes) -> None:
    check_torrent_bytes(blob, "fuzz/torrent-bytes")


bvalues = st.recursive(
    st.integers(min_value=-(2**70), max_value=2**70) | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.binary(max_size=12), children, max_size=4)
    ),
    max_leaves=10,
)


def _bnodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _bnodes(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _bnodes(v, (*path, i))


@fuzz_settings(2)
@given(data=st.data())
def test_fuzz_torrent_structure(data: st.DataObject) -> None:
    """Well-formed bencoding that says something else: any value of the torrent replaced."""
    tree: Any = bdecode(TORRENT)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        nodes = list(_bnodes(tree))[1:]
        if not nodes:
            break
        where = data.draw(st.sampled_from(nodes), label="where")
        parent = tree
        for step in where[:-1]:
            parent = parent[step]
        if data.draw(st.booleans(), label="delete") and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = data.draw(bvalues, label="value")
    check_torrent_bytes(bencode(tree), "fuzz/torrent-structure")


@fuzz_settings()
@given(value=bvalues)
def test_bencode_round_trip(value: Any) -> None:
    attack("fuzz/bencode-round-trip")
    assert bdecode(bencode(value)) == value


@fuzz_settings()
@given(
    blob=st.binary(max_size=200)
    | st.builds(lambda a, b: a + b, st.sampled_from(TOKENS), st.binary(max_size=50))
)
def test_fuzz_bdecode_random_bytes(blob: bytes) -> None:
    value = only_owmanifest_errors("fuzz/bdecode-random", lambda: bdecode(blob))
    if value is not None:
        assert bencode(value) == blob  # only canonical input is accepted


# --- key files, trust files, rollback state -------------------------------------------------------


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    from owmanifest.verify.keys import write_key_file

    where = tmp_path_factory.mktemp("keys")
    write_key_file(where / "enc.key", key("alice"), passphrase=b"pw", opslimit=1, memlimit=8192)
    return {
        "plain": (ASSETS / "alice.key").read_bytes(),
        "encrypted": (where / "enc.key").read_bytes(),
    }


def _cheap_kdf(blob: bytes) -> bool:
    """Whether decrypting ``blob`` (if it parses) would run a small Argon2id."""
    try:
        enc = json.loads(blob)["encrypted"]
        return int(enc["opslimit"]) <= 4 and int(enc["memlimit"]) <= 1 << 20
    except Exception:
        return True  # it will not get as far as the KDF


@pytest.mark.parametrize("which", ["plain", "encrypted"])
@fuzz_settings()
@given(data=st.data())
def test_fuzz_key_file(
    key_files: dict[str, bytes],
    tmp_path_factory: pytest.TempPathFactory,
    which: str,
    data: st.DataObject,
) -> None:
    from owmanifest.verify.keys import read_key_file

    blob = data.draw(mutated(key_files[which]), label="key file")
    path = tmp_path_factory.mktemp("k") / "fuzzed.key"
    path.write_bytes(blob)
    only_owmanifest_errors("fuzz/key-file", lambda: read_key_file(path))
    if which == "encrypted" and _cheap_kdf(blob):
        got = only_owmanifest_errors("fuzz/key-file", lambda: read_key_file(path, passphrase=b"pw"))
        if got is not None and got != key("alice"):
            raise false_accept("an altered encrypted key file decrypted to another key")


def _trust_file() -> bytes:
    doc = {
        "type": "owmanifest-trust",
        "version": 1,
        "keys": [
            {"id": DIDS["alice"], "name": "Alice", "datasets": ["https://openworm.org/data/*"]},
            {"id": DIDS["bob"]},
            {"id": DIDS["mallory"], "revoked": True, "reason": "stolen"},
        ],
    }
    return json.dumps(doc, indent=1).encode()


@fuzz_settings()
@given(blob=mutated(_trust_file()))
def test_fuzz_trust_file(tmp_path_factory: pytest.TempPathFactory, blob: bytes) -> None:
    from owmanifest.verify.trustfile import policy_from_trust_data, read_trust_file

    path = tmp_path_factory.mktemp("t") / "trust.json"
    path.write_bytes(blob)
    doc = only_owmanifest_errors("fuzz/trust-file", lambda: read_trust_file(path))
    if doc is not None:
        policy = only_owmanifest_errors("fuzz/trust-file", lambda: policy_from_trust_data([doc]))
        if policy is not None and DIDS["mallory"] in policy.trusted:
            revoked = any(k.get("id") == DIDS["mallory"] and k.get("revoked") for k in doc["keys"])
            if revoked:
                raise false_accept("a revoked key is trusted")


@fuzz_settings()
@given(data=st.data())
def test_fuzz_rollback_state(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    from owmanifest.verify.state import StateStore

    where = tmp_path_factory.mktemp("state")
    store = StateStore(where)
    store.record(original())
    (path,) = where.glob("*.json")
    path.write_bytes(data.draw(mutated(path.read_bytes()), label="state"))
    only_owmanifest_errors("fuzz/rollback-state", lambda: store.anchor(original().manifest.id))
    only_owmanifest_errors("fuzz/rollback-state", lambda: store.check(original()))


# --- paths and identifiers ------------------------------------------------------------------------

path_text = st.text(
    alphabet=st.sampled_from(list("ab./\\:\x00\n \u0301\u00e9\u2215\uff0e\u212aK-"))
    | st.characters(),
    max_size=30,
)


@fuzz_settings(5)
@given(path=path_text)
def test_any_accepted_path_stays_inside_the_destination(path: str) -> None:
    """An oracle for the path rules: whatever ``check_path`` accepts is a relative, normalized
    POSIX path that cannot leave a destination directory."""
    accepted = only_owmanifest_errors("fuzz/path", lambda: check_path(path))
    if accepted is None:
        return
    parts = path.split("/")
    bad = (
        path.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in path
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in path)
        or unicodedata.normalize("NFC", path) != path
        or os.path.normpath("/dest/" + path) != "/dest/" + path
        or not PurePosixPath("/dest", path).is_relative_to("/dest")
    )
    if bad:
        raise false_accept(f"path {path!r}")


@fuzz_settings(2)
@given(
    text=st.text(max_size=80)
    | st.just("did:key:z6Mk")
    | st.builds(lambda s: DIDS["alice"][:-3] + s, st.text(max_size=5))
)
def test_fuzz_did_and_multibase(text: str) -> None:
    from owmanifest.manifest.digest import Digest
    from owmanifest.verify._multibase import multibase_decode
    from owmanifest.verify.keys import PublicKey

    only_owmanifest_errors("fuzz/did", lambda: PublicKey.from_did(text))
    only_owmanifest_errors("fuzz/did", lambda: multibase_decode(text))
    only_owmanifest_errors("fuzz/did", lambda: Digest.parse(text))


def test_alarm_turns_a_hang_into_a_failure() -> None:
    """The per-example alarm works (so a hang in Python code fails instead of stalling)."""
    import time

    with pytest.raises(Hang), alarm(0.2):
        time.sleep(5)


def test_fuzz_corpus_is_what_we_think(tmp_path: Path) -> None:
    """The bases the fuzzers start from are valid, so mutations start from accepted input."""
    for fmt, blob in FORMATS.items():
        vm = verify_manifest(load_document(blob, source=f"x.{fmt}", format=fmt), BOTH)
        assert vm.canonical_hash == original().canonical_hash
    assert parse_torrent(TORRENT).name == "test-fixture"


@pytest.mark.parametrize(
    "blob",
    [b"[" * 20_000 + b"]" * 20_000, b'{"publicKeyMultibase": ' + b"9" * 5000 + b"}"],
    ids=["deep-nesting", "integer-over-python-digit-limit"],
)
def test_key_file_reader_regressions(tmp_path: Path, blob: bytes) -> None:
    """Regression: ``read_key_file`` let a ``RecursionError`` / ``ValueError`` escape."""
    from owmanifest.errors import KeyFileError
    from owmanifest.verify.keys import read_key_file

    (tmp_path / "bad.key").write_bytes(blob)
    attack("fuzz/key-file")
    with pytest.raises(KeyFileError):
        read_key_file(tmp_path / "bad.key")
