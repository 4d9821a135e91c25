"""Trust from the command line: the trust store, rollback protection, following rotations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from owmanifest.cli import main
from owmanifest.manifest.document import load_document
from owmanifest.verify import TrustPolicy, verify_manifest

from ..unit.fixtures import ASSETS, DIDS
from ..unit.test_trust import make


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_trust_add_says_for_which_datasets(capsys: pytest.CaptureFixture[str]) -> None:
    """Adding a key again without --dataset leaves its scope as it was, and says so (found by
    a review: it printed 'trusting DID' as if for every dataset)."""
    alice = DIDS["alice"]
    code, _, err = run(capsys, "trust", "add", alice, "--dataset", "https://openworm.org/*")
    assert code == 0 and "for https://openworm.org/* only" in err
    code, _, err = run(capsys, "trust", "add", alice)
    assert code == 0 and "for https://openworm.org/* only" in err and "trust remove" in err
    code, out, _ = run(capsys, "trust", "list", "--json")
    assert json.loads(out)["keys"][0]["datasets"] == ["https://openworm.org/*"]
    assert run(capsys, "trust", "remove", alice)[0] == 0
    code, _, err = run(capsys, "trust", "add", alice)
    assert code == 0 and "for every dataset" in err


def test_state_forget_answers_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "state", "forget", "https://x.org/none", "--json")
    assert code == 0 and json.loads(out) == {"dataset": "https://x.org/none", "forgot": False}


def test_trust_store_drives_verify(capsys: pytest.CaptureFixture[str]) -> None:
    signed = str(ASSETS / "signed.jsonld")
    assert run(capsys, "verify", signed)[0] == 2  # nobody trusted yet
    assert run(capsys, "trust", "add", DIDS["alice"], "--name", "Alice")[0] == 0
    assert run(capsys, "trust", "add", DIDS["bob"])[0] == 0
    code, _, err = run(capsys, "verify", signed)
    assert code == 0, err
    code, out, _ = run(capsys, "trust", "list", "--json")
    assert {k["id"] for k in json.loads(out)["keys"]} == {DIDS["alice"], DIDS["bob"]}
    assert run(capsys, "trust", "revoke", DIDS["bob"], "--reason", "lost laptop")[0] == 0
    code, _, err = run(capsys, "verify", signed)
    assert code == 1 and "revoked" in err
    # a revocation in the store also beats an ad-hoc --trust
    code, _, _ = run(capsys, "verify", signed, "--trust", DIDS["alice"], "--trust", DIDS["bob"])
    assert code == 1


def test_rollback_refused_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = make(1, ["alice", "bob"], 2, ["alice", "bob"])
    h1 = verify_manifest(v1, TrustPolicy.from_keys([DIDS["alice"], DIDS["bob"]])).canonical_hash
    v2 = make(2, ["alice", "bob"], 2, ["alice", "bob"], previous=h1)
    (tmp_path / "v1.jsonld").write_bytes(v1)
    (tmp_path / "v2.jsonld").write_bytes(v2)
    trust = ["--trust", DIDS["alice"], "--trust", DIDS["bob"]]
    assert run(capsys, "verify", str(tmp_path / "v2.jsonld"), *trust)[0] == 0
    code, _, err = run(capsys, "verify", str(tmp_path / "v1.jsonld"), *trust)
    assert code == 1 and "rollback" in err
    code, _, err = run(capsys, "verify", str(tmp_path / "v1.jsonld"), *trust, "--allow-downgrade")
    assert code == 0 and "WARNING" in err
    # accepted for that run only: the record keeps version 2, so v1 is refused again and a
    # fork of version 2 (another manifest with the same version) still is
    code, out, _ = run(capsys, "state", "show", "https://openworm.org/data/rotation", "--json")
    assert json.loads(out)["version"] == 2
    code, _, err = run(capsys, "verify", str(tmp_path / "v1.jsonld"), *trust)
    assert code == 1 and "rollback" in err
    fork = make(2, ["alice", "bob"], 2, ["alice", "bob"], previous=h1, content=1)
    (tmp_path / "v2b.jsonld").write_bytes(fork)
    code, _, err = run(capsys, "verify", str(tmp_path / "v2b.jsonld"), *trust)
    assert code == 1 and "already verified with different content" in err


def test_rotation_followed_with_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = TrustPolicy.from_keys([DIDS["alice"], DIDS["bob"]])
    v1 = make(1, ["alice", "bob"], 2, ["alice", "bob"])
    h1 = verify_manifest(v1, policy).canonical_hash
    v2 = make(2, ["bob", "carol"], 2, ["bob", "carol", "alice"], previous=h1)
    h2 = verify_manifest(v2, TrustPolicy.from_keys([DIDS["bob"], DIDS["carol"]])).canonical_hash
    v3 = make(3, ["bob", "carol"], 2, ["bob", "carol"], previous=h2)
    for i, doc in enumerate((v1, v2, v3), 1):
        (tmp_path / f"v{i}.jsonld").write_bytes(doc)
    trust = ["--trust", DIDS["alice"], "--trust", DIDS["bob"]]
    assert run(capsys, "verify", str(tmp_path / "v1.jsonld"), *trust)[0] == 0
    # v3 directly: carol is not trusted and the chain is missing
    assert run(capsys, "verify", str(tmp_path / "v3.jsonld"), *trust)[0] == 1
    code, _, err = run(
        capsys,
        "verify",
        str(tmp_path / "v3.jsonld"),
        *trust,
        "--chain",
        str(tmp_path / "v2.jsonld"),
    )
    assert code == 0, err
    assert "succession" in err
    assert load_document(v3, source="v3").format == "json-ld"


def test_a_change_of_signers_says_who_must_endorse_it_and_how(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    v1 = make(1, ["alice"], 1, ["alice"])
    h1 = verify_manifest(v1, TrustPolicy.from_keys([DIDS["alice"]])).canonical_hash
    v2 = make(2, ["carol"], 1, ["carol"], previous=h1)  # alice has not endorsed it
    (tmp_path / "v1.jsonld").write_bytes(v1)
    (tmp_path / "v2.jsonld").write_bytes(v2)
    trust = ["--trust", DIDS["alice"]]
    assert run(capsys, "verify", str(tmp_path / "v1.jsonld"), *trust)[0] == 0
    code, _, err = run(capsys, "verify", str(tmp_path / "v2.jsonld"), *trust)
    assert code == 1
    assert f"{DIDS['carol']}: not one of version 1's signers" in err  # not "of this manifest"
    assert DIDS["alice"] in err and "--allow-unlisted" in err
    # the endorsement itself: refused by default, with the flag to use
    alice_key = tmp_path / "alice.key"
    alice_key.write_bytes((ASSETS / "alice.key").read_bytes())
    alice_key.chmod(0o600)
    code, _, err = run(capsys, "sign", str(tmp_path / "v2.jsonld"), "--key", str(alice_key))
    assert code == 2 and "--allow-unlisted" in err
    code, _, err = run(
        capsys, "sign", str(tmp_path / "v2.jsonld"), "--key", str(alice_key), "--allow-unlisted"
    )
    assert code == 0, err
    code, _, err = run(capsys, "verify", str(tmp_path / "v2.jsonld"), *trust)
    assert code == 0 and "succession" in err, err


def test_given_trust_that_trusts_nobody_never_falls_back_to_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--trust/--trust-file replace the trust store; if every key they give is revoked there,
    or the file lists none, nobody is trusted (found by a review: the whole store was used)."""
    signed = str(tmp_path / "v1.jsonld")
    (tmp_path / "v1.jsonld").write_bytes(make(1, ["alice"], 1, ["alice"]))
    assert run(capsys, "trust", "add", DIDS["alice"])[0] == 0
    assert run(capsys, "trust", "revoke", DIDS["bob"])[0] == 0
    bob_only = tmp_path / "bob.json"
    bob_only.write_text(json.dumps({"type": "owmanifest-trust", "version": 1,
                                    "keys": [{"id": DIDS["bob"]}]}))  # fmt: skip
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"type": "owmanifest-trust", "version": 1, "keys": []}))
    for given in (["--trust-file", str(bob_only)], ["--trust-file", str(empty)],
                  ["--trust", DIDS["bob"]]):  # fmt: skip
        code, _, err = run(capsys, "verify", signed, *given, "--no-state")
        assert code == 2 and "trusts no key" in err, (given, err)
    assert run(capsys, "verify", signed, "--no-state")[0] == 0  # the store itself trusts alice


def test_the_trust_store_is_never_written_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    """An empty pattern or a name that is not UTF-8 was written, and the store then refused
    every later command, `trust remove` included (found by a review)."""
    assert run(capsys, "trust", "add", DIDS["alice"])[0] == 0
    for bad in (["--dataset", ""], ["--dataset", "https://x/*", "--dataset", ""],
                ["--name", "caf\udcff"]):  # fmt: skip
        code, _, err = run(capsys, "trust", "add", DIDS["alice"], *bad)
        assert code == 2, (bad, err)
    code, out, _ = run(capsys, "trust", "list", "--json")
    assert code == 0 and json.loads(out)["keys"][0].get("datasets") is None  # untouched


def test_a_dataset_id_that_is_not_utf8_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("show", "forget"):
        code, out, err = run(capsys, "state", action, "https://ex.org/\udcff", "--json")
        assert code == 2 and "UTF-8" in err and json.loads(out)["ok"] is False


def test_bad_input_records_no_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit-2 runs recorded the verified version before finding the input bad (found by a
    review): bad input changes nothing, the rollback state included."""
    signed = str(tmp_path / "v1.jsonld")
    (tmp_path / "v1.jsonld").write_bytes(make(1, ["alice"], 1, ["alice"]))
    (tmp_path / "data").mkdir()
    trust = ["--trust", DIDS["alice"]]
    bad_runs = {
        "verify-missing-directory": ["verify", signed, str(tmp_path / "nope"), *trust],
        "verify-glob-matching-nothing": [
            "verify",
            signed,
            str(tmp_path / "data"),
            *trust,
            "--only",
            "zz*",
        ],
        "verify-only-without-directory": ["verify", signed, *trust, "--only", "zz*"],
        "verify-fast-without-directory": ["verify", signed, *trust, "--fast"],
        "fetch-unknown-mirror-scheme": [
            "fetch",
            signed,
            str(tmp_path / "d"),
            *trust,
            "--mirror",
            "gopher://x/",
        ],
        "fetch-into-a-file": ["fetch", signed, signed, *trust],
    }
    for name, argv in bad_runs.items():
        code, _, err = run(capsys, *argv)
        assert code == 2, (name, err)
        code, out, _ = run(capsys, "state", "show", "https://openworm.org/data/rotation", "--json")
        assert json.loads(out)["trusted"] is None, name
    assert run(capsys, "verify", signed, *trust)[0] == 0  # and a good run records it
    code, out, _ = run(capsys, "state", "show", "https://openworm.org/data/rotation", "--json")
    assert json.loads(out)["version"] == 1


@pytest.mark.parametrize("flag", [["--chain", "x.jsonld"], ["--allow-downgrade"]])
def test_no_state_with_an_option_that_needs_it_is_refused(
    flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    signed = str(ASSETS / "signed.jsonld")
    code, _, err = run(capsys, "verify", signed, "--trust", DIDS["alice"], "--no-state", *flag)
    assert code == 2 and "--no-state" in err
