"""Trust over time: rotation chains, rollback and freeze, expiry, trust store, thresholds."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from owmanifest.errors import (
    ExpiredError,
    PolicyError,
    RollbackError,
    SignatureError,
    UsageError,
    VerificationError,
)
from owmanifest.manifest.digest import Digest
from owmanifest.manifest.document import load_document
from owmanifest.manifest.jsonld import dumps, manifest_to_jsonld
from owmanifest.manifest.model import FileEntry, Manifest
from owmanifest.signing import sign_document
from owmanifest.verify import TrustPolicy, verify_manifest
from owmanifest.verify.manifest import CLOCK_SKEW, verify_chain, verify_successor
from owmanifest.verify.result import TrustAnchor, VerifiedManifest
from owmanifest.verify.state import StateStore
from owmanifest.verify.truststore import TrustStore

from .fixtures import DIDS, key

DATASET = "https://openworm.org/data/rotation"
NAMES = ("alice", "bob", "carol", "mallory")


def make(
    version: int,
    signers: Sequence[str],
    threshold: int,
    sign_with: Sequence[str],
    previous: Digest | None = None,
    expires: str | None = None,
    content: int = 0,
) -> bytes:
    m = Manifest(
        id=DATASET,
        version=version,
        files=(FileEntry("data.bin", 10 + content, Digest("bep52", bytes([version]) * 32)),),
        signers=tuple(sorted(DIDS[s] for s in signers)),
        threshold=threshold,
        piece_length=16384,
        created="2026-01-01T00:00:00Z",
        previous_version=previous,
        expires=expires,
    )
    doc = dumps(manifest_to_jsonld(m))
    for name in sign_with:
        doc = sign_document(
            load_document(doc, source=f"v{version}"),
            key(name),
            allow_unlisted=True,
            created="2026-01-01T00:00:00Z",
        )
    return doc


def trust(*names: str, revoked: Sequence[str] = ()) -> TrustPolicy:
    return TrustPolicy.from_keys([DIDS[n] for n in names], revoked=[DIDS[n] for n in revoked])


@pytest.fixture
def v1() -> VerifiedManifest:
    return verify_manifest(make(1, ["alice", "bob"], 2, ["alice", "bob"]), trust("alice", "bob"))


def test_same_signers_successor(v1: VerifiedManifest) -> None:
    v2 = make(2, ["alice", "bob"], 2, ["alice", "bob"], previous=v1.canonical_hash)
    vm = verify_successor(TrustAnchor.from_verified(v1), v2, trust())
    assert vm.manifest.version == 2


def test_rotation_with_old_threshold_is_followed(v1: VerifiedManifest) -> None:
    # carol replaces alice; the old pair endorses the change
    v2 = make(2, ["bob", "carol"], 2, ["bob", "carol", "alice"], previous=v1.canonical_hash)
    vm = verify_successor(TrustAnchor.from_verified(v1), v2, trust())
    assert set(vm.signers) == {DIDS["bob"], DIDS["carol"]}
    # and the caller trusts carol for v3 without touching any trust store
    v3 = make(3, ["bob", "carol"], 2, ["bob", "carol"], previous=vm.canonical_hash)
    vm3 = verify_chain(TrustAnchor.from_verified(v1), [v2, v3], trust())
    assert vm3.manifest.version == 3


ROTATION_ATTACKS = {
    "signers-changed-without-old-threshold": (
        lambda h: make(2, ["bob", "carol"], 2, ["bob", "carol"], previous=h),
        PolicyError,
    ),
    "threshold-lowered-without-old-threshold": (
        lambda h: make(2, ["alice", "bob"], 1, ["alice"], previous=h),
        PolicyError,
    ),
    "takeover-by-outsider": (
        lambda h: make(2, ["mallory"], 1, ["mallory"], previous=h),
        PolicyError,
    ),
    "no-link": (lambda h: make(2, ["alice", "bob"], 2, ["alice", "bob"]), PolicyError),
    "wrong-link": (
        lambda h: make(
            2, ["alice", "bob"], 2, ["alice", "bob"], previous=Digest("rdfc-sha256", bytes(32))
        ),
        PolicyError,
    ),
    "not-newer": (
        lambda h: make(1, ["alice", "bob"], 2, ["alice", "bob"], previous=h),
        RollbackError,
    ),
    "below-new-threshold": (
        lambda h: make(2, ["alice", "bob"], 2, ["alice"], previous=h),
        PolicyError,
    ),
}


@pytest.mark.parametrize("case", ROTATION_ATTACKS.values(), ids=ROTATION_ATTACKS.keys())
def test_rotation_attack_is_refused(v1: VerifiedManifest, case: tuple) -> None:  # type: ignore[type-arg]
    make_doc, error = case
    with pytest.raises(error):
        verify_successor(TrustAnchor.from_verified(v1), make_doc(v1.canonical_hash), trust())


def test_the_callers_minimum_threshold_holds_by_succession_too(v1: VerifiedManifest) -> None:
    """verify_manifest asked max(threshold, minimum); the succession path, tried exactly when
    that refused, asked only the manifest's own threshold (found by a review)."""
    strict = TrustPolicy.from_keys([DIDS["alice"], DIDS["bob"]], minimum_threshold=2)
    anchor = TrustAnchor.from_verified(v1)
    v2 = make(2, ["alice", "bob"], 1, ["alice"], previous=v1.canonical_hash)  # threshold 1
    with pytest.raises(PolicyError, match="1 of the required 2"):
        verify_manifest(v2, strict)
    with pytest.raises(PolicyError, match="1 of the required 2"):
        verify_successor(anchor, v2, strict)
    both = make(2, ["alice", "bob"], 1, ["alice", "bob"], previous=v1.canonical_hash)
    assert verify_successor(anchor, both, strict).manifest.version == 2


def test_revoked_key_breaks_rotation(v1: VerifiedManifest) -> None:
    v2 = make(2, ["bob", "carol"], 2, ["bob", "carol", "alice"], previous=v1.canonical_hash)
    with pytest.raises(PolicyError):
        verify_successor(TrustAnchor.from_verified(v1), v2, trust(revoked=["alice"]))


def test_rollback_and_freeze(tmp_path: Path, v1: VerifiedManifest) -> None:
    store = StateStore(tmp_path / "state")
    v2 = verify_manifest(
        make(2, ["alice", "bob"], 2, ["alice", "bob"], previous=v1.canonical_hash),
        trust("alice", "bob"),
    )
    store.check(v2)
    assert store.record(v2)
    with pytest.raises(RollbackError):
        store.check(v1)
    store.check(v1, allow_downgrade=True)
    fork = verify_manifest(
        make(2, ["alice", "bob"], 2, ["alice", "bob"], previous=v1.canonical_hash, content=1),
        trust("alice", "bob"),
    )
    with pytest.raises(RollbackError) as info:
        store.check(fork)
    assert "same version" in str(info.value) or "already verified" in str(info.value)
    store.check(v2)  # the same manifest again is fine
    assert not store.record(v1)  # never records an older version
    assert store.anchor(DATASET).version == 2  # type: ignore[union-attr]


def test_an_unwritable_state_is_an_error_that_names_it(
    tmp_path: Path, v1: VerifiedManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a bare OSError (which escaped the owmeta loaders; found by a review)."""
    import errno

    import owmanifest.verify.state as state

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(state, "write_atomic", full)
    with pytest.raises(UsageError, match=r"cannot record.*No space left") as info:
        StateStore(tmp_path / "state").record(v1)
    assert info.value.path is not None and info.value.path.startswith(str(tmp_path / "state"))


def test_corrupt_state_is_an_error_not_a_reset(tmp_path: Path, v1: VerifiedManifest) -> None:
    store = StateStore(tmp_path / "state")
    store.record(v1)
    for p in (tmp_path / "state").iterdir():
        p.write_text("{garbage")
    with pytest.raises(UsageError):
        store.check(v1)


def test_expiry() -> None:
    doc = make(1, ["alice"], 1, ["alice"], expires="2026-06-01T00:00:00Z")
    policy = trust("alice")
    verify_manifest(doc, policy, now=datetime(2026, 5, 1, tzinfo=timezone.utc))
    inside_skew = datetime(2026, 6, 1, tzinfo=timezone.utc) + CLOCK_SKEW - timedelta(seconds=1)
    verify_manifest(doc, policy, now=inside_skew)
    with pytest.raises(ExpiredError):
        verify_manifest(doc, policy, now=datetime(2026, 6, 2, tzinfo=timezone.utc))


@pytest.mark.parametrize(
    ("expires", "expired"),
    [
        pytest.param("10000-01-01T00:00:00Z", False, id="after-year-9999"),
        pytest.param("-0044-03-15T12:00:00Z", True, id="before-year-1"),
        pytest.param("0001-01-01T00:00:00+14:00", True, id="before-year-1-in-utc"),
        pytest.param("9999-12-31T23:59:59-14:00", False, id="after-year-9999-in-utc"),
        pytest.param("2026-05-31T24:00:00Z", False, id="end-of-day-midnight"),
        pytest.param("2026-05-31T24:00:00+14:00", True, id="earlier-in-utc"),
    ],
)
def test_expiry_reads_any_xsd_date(expires: str, expired: bool) -> None:
    """Dates Python's datetime cannot hold, midnight at the end of a day and offsets: compared
    in seconds of any year, never a traceback (found by a review: `fromisoformat` raised)."""
    doc = make(1, ["alice"], 1, ["alice"], expires=expires)
    now = datetime(2026, 6, 1, 0, 5, tzinfo=timezone.utc)  # the clock skew is 5 minutes
    if expired:
        with pytest.raises(ExpiredError):
            verify_manifest(doc, trust("alice"), now=now)
    else:
        verify_manifest(doc, trust("alice"), now=now)


@settings(deadline=None, max_examples=300)
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(None)
    ),
    offset=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_xsd_datetime_seconds_is_the_unix_time(moment: datetime, offset: int) -> None:
    """For every date Python can hold, with any offset: the POSIX time, fractions dropped."""
    from owmanifest.manifest.model import is_xsd_datetime, xsd_datetime_seconds

    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset)))
    text = aware.isoformat()
    assert is_xsd_datetime(text, require_timezone=True)
    whole = aware.replace(microsecond=0)
    assert xsd_datetime_seconds(text) == int(
        (whole - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()
    )


def test_trust_store(tmp_path: Path) -> None:
    store = TrustStore(tmp_path / "trust.json")
    assert store.policy().is_empty
    store.add(DIDS["alice"], name="Alice", datasets=["https://openworm.org/data/*"])
    store.add(DIDS["bob"])
    doc = make(1, ["alice", "bob"], 2, ["alice", "bob"])
    verify_manifest(doc, store.policy())
    other = Manifest(
        id="https://elsewhere.org/d",
        version=1,
        files=(),
        signers=(DIDS["alice"],),
        threshold=1,
        piece_length=16384,
    )
    assert store.policy().why_not(DIDS["alice"], other) is not None
    store.revoke(DIDS["bob"], reason="lost")
    with pytest.raises(PolicyError):
        verify_manifest(doc, store.policy())
    with pytest.raises(UsageError):
        store.add(DIDS["bob"])  # revocation is not undone by add
    assert store.remove(DIDS["bob"])
    assert not store.remove(DIDS["bob"])
    shipped = tmp_path / "project.json"
    shipped.write_text(
        json.dumps(
            {
                "type": "owmanifest-trust",
                "version": 1,
                "keys": [
                    {"id": DIDS["bob"], "name": "Bob"},
                    {"id": DIDS["mallory"], "revoked": True},
                ],
            }
        )
    )
    assert store.import_file(shipped) == 2
    verify_manifest(doc, store.policy())
    assert DIDS["mallory"] in store.policy().revoked


BAD_TRUST_FILES = {
    "not-json": b"{",
    "wrong-type": b'{"type": "x", "version": 1, "keys": []}',
    "bad-did": b'{"type": "owmanifest-trust", "version": 1, "keys": [{"id": "did:web:x"}]}',
    "unknown-field": b'{"type": "owmanifest-trust", "version": 1, "keys": [], "x": 1}',
    # an empty list of datasets read as "every dataset" (found by a review)
    "no-datasets": (
        b'{"type": "owmanifest-trust", "version": 1, "keys": [{"id": "'
        + DIDS["alice"].encode()
        + b'", "datasets": []}]}'
    ),
    "empty-pattern": (
        b'{"type": "owmanifest-trust", "version": 1, "keys": [{"id": "'
        + DIDS["alice"].encode()
        + b'", "datasets": [""]}]}'
    ),
}


@pytest.mark.parametrize("data", BAD_TRUST_FILES.values(), ids=BAD_TRUST_FILES.keys())
def test_bad_trust_file(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "t.json"
    p.write_bytes(data)
    with pytest.raises(UsageError):
        TrustStore(tmp_path / "store.json").import_file(p)


def test_patterns_given_as_one_string_are_refused() -> None:
    # one string would be read a character at a time, and its "*" trusts every dataset
    with pytest.raises(TypeError, match="sequence of dataset id patterns"):
        TrustPolicy(scoped={DIDS["alice"]: "https://nothere.example/*"})  # type: ignore[dict-item]
    policy = TrustPolicy(scoped={DIDS["alice"]: ["https://openworm.org/*"]})  # type: ignore[dict-item]
    assert policy.scoped[DIDS["alice"]] == ("https://openworm.org/*",)
    # an empty scope, from Python (a trust file may not hold one), trusts for no dataset
    v = make(1, ["alice"], 1, ["alice"])
    with pytest.raises(PolicyError):
        verify_manifest(v, TrustPolicy(scoped={DIDS["alice"]: ()}))


@settings(deadline=None, max_examples=40)
@given(
    authorized=st.sets(st.sampled_from(NAMES), min_size=1),
    signed=st.sets(st.sampled_from(NAMES)),
    trusted=st.sets(st.sampled_from(NAMES)),
    threshold=st.integers(1, 4),
)
def test_threshold_property(
    authorized: set[str], signed: set[str], trusted: set[str], threshold: int
) -> None:
    threshold = min(threshold, len(authorized))
    doc = make(1, sorted(authorized), threshold, sorted(signed))
    counted = authorized & signed & trusted
    policy = trust(*sorted(trusted))
    if len(counted) >= threshold:
        vm = verify_manifest(doc, policy)
        assert set(vm.signers) == {DIDS[n] for n in counted}
    else:
        with pytest.raises(VerificationError) as info:
            verify_manifest(doc, policy)
        assert not isinstance(info.value, SignatureError)
