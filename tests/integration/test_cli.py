"""The command line end to end: keygen, create, sign, verify, show, convert, demo; exit codes."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from owmanifest.cli import main

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "generated"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def workflow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    data = tmp_path / "data"
    shutil.copytree(ASSETS / "dataset", data)
    dids = {}
    for name in ("alice", "bob"):
        code, out, _ = run(capsys, "keygen", "--out", str(tmp_path / f"{name}.key"))
        assert code == 0
        dids[name] = out.strip()
    manifest = tmp_path / "m.jsonld"
    code, _, err = run(
        capsys,
        "create",
        str(data),
        "--id",
        "https://openworm.org/data/cli",
        "--version",
        "1",
        "--signer",
        dids["alice"],
        "--signer",
        str(tmp_path / "bob.key"),
        "-o",
        str(manifest),
    )
    assert code == 0, err
    return {"data": str(data), "manifest": str(manifest), "tmp": str(tmp_path), **dids}


def test_keygen_writes_private_key_0600(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "keygen", "--out", str(tmp_path / "k.key"))
    assert code == 0
    assert out.startswith("did:key:z6Mk")
    assert stat.S_IMODE(os.stat(tmp_path / "k.key").st_mode) == 0o600
    assert "privateKey" not in out + err
    code, _, err = run(capsys, "keygen", "--out", str(tmp_path / "k.key"))
    assert code == 2 and "refusing to overwrite" in err


def test_keygen_makes_a_private_directory_for_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the guide's first command, on a machine where ~/.owmanifest does not exist yet
    target = tmp_path / "home" / ".owmanifest" / "alice.key"
    code, out, err = run(capsys, "keygen", "--out", str(target))
    assert code == 0 and out.startswith("did:key:"), err
    assert stat.S_IMODE(os.stat(target.parent).st_mode) == 0o700
    assert f"created directory {target.parent}" in err
    (tmp_path / "file").write_bytes(b"")
    code, _, err = run(capsys, "keygen", "--out", str(tmp_path / "file" / "x" / "k.key"))
    assert code == 2 and "cannot create the key file's directory" in err


def test_keygen_encrypted_and_sign_with_passphrase(
    workflow: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OWM_TEST_PASS", "correct horse")
    key = str(Path(workflow["tmp"]) / "enc.key")
    code, _, _ = run(capsys, "keygen", "--out", key, "--passphrase-env", "OWM_TEST_PASS")
    assert code == 0
    assert "correct horse" not in Path(key).read_text()
    code, _, err = run(
        capsys,
        "sign",
        workflow["manifest"],
        "--key",
        key,
        "--allow-unlisted",
        "--passphrase-env",
        "OWM_TEST_PASS",
    )
    assert code == 0, err
    monkeypatch.setenv("OWM_TEST_PASS", "wrong")
    code, _, err = run(
        capsys,
        "sign",
        workflow["manifest"],
        "--key",
        key,
        "--allow-unlisted",
        "--passphrase-env",
        "OWM_TEST_PASS",
    )
    assert code == 2 and "Traceback" not in err


def test_full_workflow_and_exit_codes(
    workflow: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    m, data, tmp = workflow["manifest"], workflow["data"], workflow["tmp"]
    trust = ["--trust", workflow["alice"], "--trust", workflow["bob"]]
    assert run(capsys, "sign", m, "--key", f"{tmp}/alice.key", "--check", data)[0] == 0
    code, _, err = run(capsys, "verify", m, data, *trust)
    assert code == 1 and "1 of the required 2" in err
    assert run(capsys, "sign", m, "--key", f"{tmp}/bob.key")[0] == 0
    code, _, err = run(capsys, "verify", m, data, *trust)
    assert code == 0, err
    assert "OK:" in err
    code, out, _ = run(capsys, "verify", m, data, *trust, "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    # one flipped byte -> exit 1, the file named
    target = Path(data) / "blocks" / "70000.bin"
    raw = bytearray(target.read_bytes())
    raw[123] ^= 1
    target.write_bytes(bytes(raw))
    code, out, err = run(capsys, "verify", m, data, *trust, "--json")
    assert code == 1
    assert "blocks/70000.bin" in err
    assert json.loads(out)["tree"]["problems"][0]["kind"] == "digest"
    # --only checks the files it selects; a glob that selects nothing is bad usage, not success
    code, _, err = run(capsys, "verify", m, data, *trust, "--only", "README*")
    assert code == 0 and "1 file(s) verified" in err
    for globs in (["nomatch*"], ["README*", "typo*"]):
        code, _, err = run(capsys, "verify", m, data, *trust, *(f"--only={g}" for g in globs))
        assert code == 2 and "no file of the manifest matches --only" in err
        assert globs[-1] in err and "Traceback" not in err
    # conversions keep the signatures
    for suffix in ("trig", "nq"):
        conv = f"{tmp}/m.{suffix}"
        assert run(capsys, "convert", m, "-o", conv)[0] == 0
        assert run(capsys, "verify", conv, *trust)[0] == 0
    # show
    code, out, _ = run(capsys, "show", m)
    assert code == 0 and "2 of 2 required" in out
    code, out, _ = run(capsys, "show", m, "--json")
    shown = json.loads(out)
    assert len(shown["proofs"]) == 2 and all(p["signatureValid"] for p in shown["proofs"])


_CREATE = [
    "create",
    str(ASSETS / "dataset"),
    "--id",
    "https://x.org/d",
    "--version",
    "1",
    "--signer",
    "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
]

BAD_USAGE = {
    "no-command": [],
    "unknown-command": ["frobnicate"],
    "verify-without-trust": ["verify", str(ASSETS / "signed.jsonld")],
    "missing-manifest": ["verify", "/nonexistent.jsonld", "--trust", "did:key:z6Mkx"],
    "malformed-manifest": ["show", str(ASSETS / "dids.txt")],
    "bad-trust-key": ["verify", str(ASSETS / "signed.jsonld"), "--trust", "https://x"],
    "verify-not-a-directory": [
        "verify",
        str(ASSETS / "signed.jsonld"),
        str(ASSETS / "dids.txt"),
        "--unsafe-trust-manifest-signers",
    ],
    # create refuses what every other verb would refuse in its output, before hashing
    **{
        f"create-{name}": [*_CREATE, *extra]
        for name, extra in {
            "bad-id": ["--id", "not an iri", "-o", "/tmp/owm-never.jsonld"],
            "bad-threshold": ["--threshold", "3", "-o", "/tmp/owm-never.jsonld"],
            "format-unlike-the-name": ["--format", "trig", "-o", "/tmp/owm-never.jsonld"],
            "created-not-a-datetime": ["--created", "yesterday", "-o", "/tmp/owm-never.jsonld"],
            "expires-not-a-datetime": ["--expires", "never", "-o", "/tmp/owm-never.jsonld"],
            "expires-not-a-day": [
                "--expires",
                "2099-02-30T12:00:00Z",
                "-o",
                "/tmp/owm-never.jsonld",
            ],
            "created-offset-out-of-range": [
                "--created",
                "2026-01-01T00:00:00+99:99",
                "-o",
                "/tmp/owm-never.jsonld",
            ],
            "version-over-20-digits": ["--version", "9" * 21, "-o", "/tmp/owm-never.jsonld"],
            "huge-piece-length": ["--piece-length", str(1 << 40), "-o", "/tmp/owm-never.jsonld"],
            "zero-workers": ["--workers", "0", "-o", "/tmp/owm-never.jsonld"],
            "output-directory-missing": ["-o", "/tmp/owm-never-dir/m.jsonld"],
            "output-is-a-directory": ["-o", "/tmp", "--force"],
        }.items()
    },
    "convert-unwritable": ["convert", str(ASSETS / "signed.jsonld"), "-o", "/proc/owm.trig"],
    "show-negative-limit": ["show", str(ASSETS / "signed.jsonld"), "--limit", "-1"],
    "seed-negative-duration": ["seed", str(ASSETS / "signed.jsonld"), "/tmp", "--duration", "-1"],
    "fetch-negative-stall-timeout": [
        "fetch",
        str(ASSETS / "signed.jsonld"),
        "/tmp/owm-never-dir",
        "--stall-timeout",
        "-5",
    ],
    "demo-in-a-directory-with-files": ["demo", "--dir", str(ASSETS)],
    "sign-json-and-manifest-on-stdout": [
        "sign",
        str(ASSETS / "unsigned.jsonld"),
        "--key",
        str(ASSETS / "alice.key"),
        "-o",
        "-",
        "--json",
    ],
    "sign-into-a-trig-name": [
        "sign",
        str(ASSETS / "unsigned.jsonld"),
        "--key",
        str(ASSETS / "alice.key"),
        "-o",
        "/tmp/owm-never.trig",
    ],
    "convert-to-unlike-the-name": [
        "convert",
        str(ASSETS / "signed.jsonld"),
        "-o",
        "/tmp/owm-never.jsonld",
        "--to",
        "trig",
    ],
    "convert-to-stdout-without-to": ["convert", str(ASSETS / "signed.jsonld"), "-o", "-"],
    "fetch-mirror-not-a-url": [
        "fetch",
        str(ASSETS / "signed.jsonld"),
        "/tmp/owm-never-dir",
        "--unsafe-trust-manifest-signers",
        "--no-state",
        "--mirror",
        "http://[::1",
    ],
    "create-to-stdout": [*_CREATE, "-o", "-", "--format", "json-ld"],
    # what the manifest schema refuses on reading must be refused before writing (a review)
    "create-license-not-an-iri": [*_CREATE, "-o", "/tmp/owm-never.jsonld", "--license", "MIT"],
    "create-mirror-not-a-url": [*_CREATE, "-o", "/tmp/owm-never.jsonld", "--mirror", "not a url"],
    "create-tracker-not-a-url": [*_CREATE, "-o", "/tmp/owm-never.jsonld", "--tracker", "x"],
    "keygen-to-stdout": ["keygen", "--out", "-"],
    "trust-remove-unknown": [
        "trust",
        "remove",
        "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
    ],
}


@pytest.mark.parametrize("argv", BAD_USAGE.values(), ids=BAD_USAGE.keys())
def test_bad_usage_exits_2_without_traceback(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code, _, err = run(capsys, *argv)
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
        err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert not Path("/tmp/owm-never.jsonld").exists()


@pytest.mark.parametrize("suffix", ["trig", "nq"])
def test_create_writes_trig_and_nquads(
    suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / f"m.{suffix}"
    assert run(capsys, *_CREATE, "-o", str(target))[0] == 0
    code, out, _ = run(capsys, "show", str(target), "--json")
    assert code == 0 and json.loads(out)["id"] == "https://x.org/d"


@pytest.mark.parametrize("suffix", ["trig", "nq"])
def test_sign_writes_the_format_it_read_under_a_name_that_says_so(
    suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """TriG went into a .jsonld output, and a .trig output of a TriG manifest was refused as
    'not JSON-LD' (found by a review)."""
    source = tmp_path / f"m.{suffix}"
    assert run(capsys, *_CREATE, "-o", str(source))[0] == 0
    key = ["--key", str(ASSETS / "alice.key"), "--allow-unlisted"]
    code, _, err = run(capsys, "sign", str(source), *key, "-o", str(tmp_path / "s.jsonld"))
    assert code == 2 and "disagrees" in err and not (tmp_path / "s.jsonld").exists()
    code, _, err = run(capsys, "sign", str(source), *key, "-o", str(tmp_path / f"s.{suffix}"))
    assert code == 0, err
    code, out, _ = run(capsys, "show", str(tmp_path / f"s.{suffix}"), "--json")
    assert code == 0 and len(json.loads(out)["proofs"]) == 1


def test_sign_does_not_overwrite_another_file_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.jsonld"
    other.write_text("keep\n")
    sign = ["sign", str(ASSETS / "unsigned.jsonld"), "--key", str(ASSETS / "alice.key")]
    code, _, err = run(capsys, *sign, "-o", str(other))
    assert code == 2 and "--force" in err and other.read_text() == "keep\n"
    assert run(capsys, *sign, "-o", str(other), "--force")[0] == 0
    assert "proof" in other.read_text()


@pytest.mark.parametrize(
    ("output", "in_place"),
    [
        pytest.param(lambda m: m.parent / "." / m.name, True, id="the-manifest-spelled-otherwise"),
        pytest.param(
            lambda m: m.parent.parent / "x" / ".." / m.parent.name / m.name, True, id="dotdot"
        ),
        pytest.param(lambda m: _link(m, os.symlink), False, id="a-symbolic-link-to-it"),
        pytest.param(lambda m: _link(m, os.link), False, id="a-hard-link-to-it"),
    ],
)
def test_sign_in_place_is_the_manifests_own_name_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: Any, in_place: bool
) -> None:
    """Only the manifest's own directory entry is signing in place: writing to another name
    of it (a link) would replace that name and leave the manifest unsigned, so it is an
    existing output and needs --force."""
    (tmp_path / "x").mkdir()
    manifest = tmp_path / "d" / "m.jsonld"
    manifest.parent.mkdir()
    shutil.copy(ASSETS / "unsigned.jsonld", manifest)
    target = output(manifest)
    code, _, err = run(
        capsys, "sign", str(manifest), "--key", str(ASSETS / "alice.key"), "-o", str(target)
    )
    if in_place:
        assert code == 0 and "proof" in json.loads(manifest.read_text())
    else:
        assert code == 2 and "--force" in err and "proof" not in json.loads(manifest.read_text())


def _link(manifest: Path, make: Any) -> Path:
    link = manifest.with_name("link.jsonld")
    make(manifest, link)
    return link


def test_create_leaves_its_own_output_out_of_the_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'create . -o m.jsonld' run again (a new version) would list the previous manifest and
    torrent as dataset files, which the signed manifest could then never match (found by a
    review): the outputs are reported, not listed."""
    data = tmp_path / "data"
    shutil.copytree(ASSETS / "dataset", data)
    alice = (ASSETS / "dids.txt").read_text().split()[1]
    create = ["create", str(data), "--id", "https://x.org/d", "--signer", alice, "--force"]
    # the output named through a symbolic link to the directory: the same files
    os.symlink(data, tmp_path / "link")
    output = str(tmp_path / "link" / "m.jsonld")
    for version in ("1", "2"):
        code, _, err = run(capsys, *create, "--version", version, "-o", output)
        assert code == 0, err
    assert "m.jsonld.torrent: this command's output" in err
    listed = {f["path"] for f in json.loads((data / "m.jsonld").read_text())["files"]}
    assert listed == {p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()} - {
        "m.jsonld",
        "m.jsonld.torrent",
    }
    assert run(capsys, "sign", str(data / "m.jsonld"), "--key", str(ASSETS / "alice.key"))[0] == 0
    verify = ["verify", str(data / "m.jsonld"), str(data), "--trust", alice, "--no-state"]
    assert run(capsys, *verify)[0] == 0
    # the next version under another name: the earlier manifest is data now, and create says so
    code, _, err = run(capsys, *create, "--version", "3", "-o", str(data / "m3.jsonld"))
    assert code == 0, err
    assert "note: m.jsonld and m.jsonld.torrent look like an earlier manifest" in err


def test_a_dataset_without_bytes_has_no_torrent_even_after_one_with(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """create --force of a version without bytes removes the earlier version's torrent, and
    fetch ignores a stale sidecar of such a manifest (found by a review: fetch failed)."""
    alice = (ASSETS / "dids.txt").read_text().split()[1]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "nothing.txt").write_bytes(b"")
    m = tmp_path / "m.jsonld"
    create = ["create", "--id", "https://x.org/e", "--signer", alice, "-o", str(m), "--force"]
    assert run(capsys, *create, str(ASSETS / "dataset"), "--version", "1")[0] == 0
    assert (tmp_path / "m.jsonld.torrent").exists()
    code, _, err = run(capsys, *create, str(empty), "--version", "2")
    assert code == 0 and "removed" in err and not (tmp_path / "m.jsonld.torrent").exists()
    assert run(capsys, "sign", str(m), "--key", str(ASSETS / "alice.key"))[0] == 0
    shutil.copy(ASSETS / "unsigned.jsonld.torrent", tmp_path / "m.jsonld.torrent")  # stale
    fetch = ["fetch", str(m), str(tmp_path / "out"), "--trust", alice, "--no-state"]
    code, _, err = run(capsys, *fetch, "--mirror", str(empty))
    assert code == 0, err
    assert (tmp_path / "out" / "nothing.txt").read_bytes() == b""


def test_a_verification_failure_says_what_was_expected_and_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The line that says why verification failed keeps the error's expected and observed
    values (found by a review: an expired manifest did not say when it expired)."""
    alice = (ASSETS / "dids.txt").read_text().split()[1]
    m = str(tmp_path / "m.jsonld")
    create = ["create", str(ASSETS / "dataset"), "--id", "https://x.org/x", "--version", "1"]
    assert (
        run(capsys, *create, "--signer", alice, "-o", m, "--expires", "2020-01-01T00:00:00Z")[0]
        == 0
    )
    assert run(capsys, "sign", m, "--key", str(ASSETS / "alice.key"))[0] == 0
    code, _, err = run(capsys, "verify", m, "--trust", alice, "--no-state")
    assert code == 1
    assert "has expired (expected before 2020-01-01T00:00:00Z" in err


def test_a_malformed_torrent_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_torrent = str(ASSETS / "unsigned.jsonld")
    fetch = ["fetch", str(ASSETS / "signed.jsonld"), str(tmp_path / "out"), "--no-state"]
    code, _, err = run(
        capsys, *fetch, "--unsafe-trust-manifest-signers", "--torrent", not_a_torrent
    )
    assert code == 2 and f"{not_a_torrent}: malformed bencode" in err


def test_fetch_into_a_file_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    a_file = str(ASSETS / "dids.txt")
    fetch = ["fetch", str(ASSETS / "signed.jsonld"), a_file, "--no-state"]
    code, _, err = run(capsys, *fetch, "--unsafe-trust-manifest-signers")
    assert code == 2 and f"{a_file}: the destination exists and is not a directory" in err


def test_fetch_tells_what_went_wrong_on_the_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A source that failed though another one served is told, not only in --json (found by a
    review: a mirror missing every file went unmentioned)."""
    (tmp_path / "empty").mkdir()
    fetch = ["fetch", str(ASSETS / "signed.jsonld"), str(tmp_path / "out"), "--no-state"]
    mirrors = ["--mirror", str(tmp_path / "empty"), "--mirror", str(ASSETS / "dataset")]
    code, _, err = run(capsys, *fetch, "--unsafe-trust-manifest-signers", *mirrors)
    assert code == 0, err
    assert f"note: README.txt: {tmp_path / 'empty'}" in err
    # the local directories before BitTorrent, which would first wait for peers (DHT on)
    assert f"sources: {tmp_path / 'empty'}, {ASSETS / 'dataset'}, bittorrent" in err


def test_fetch_refuses_a_token_variable_that_is_not_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OWM_TEST_TOKEN", raising=False)
    fetch = ["fetch", str(ASSETS / "signed.jsonld"), str(tmp_path / "out"), "--no-state"]
    code, _, err = run(
        capsys, *fetch, "--unsafe-trust-manifest-signers", "--token-env", "OWM_TEST_TOKEN"
    )
    assert code == 2 and "$OWM_TEST_TOKEN is not set" in err


def test_owmeta_list_of_a_manifest_without_bundles_says_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "owmeta", "list", str(ASSETS / "signed.jsonld"))
    assert code == 0 and "0 bundle archive(s)" in err and "not an owmeta bundle manifest" in err


def test_json_on_stdout_for_usage_errors_and_convert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["show", str(ASSETS / "signed.jsonld"), "--limit", "x", "--json"])
    out = capsys.readouterr().out
    assert info.value.code == 2 and json.loads(out)["error"]["error"] == "UsageError"
    target = tmp_path / "m.trig"
    code, out, _ = run(
        capsys, "convert", str(ASSETS / "signed.jsonld"), "-o", str(target), "--json"
    )
    assert code == 0 and json.loads(out) == {"ok": True, "manifest": str(target), "format": "trig"}


def test_sign_from_stdin_with_json_keeps_stdout_one_json_document() -> None:
    """Signing standard input writes the signed manifest to standard output: with --json the
    two would be mixed, so it is bad usage, answered in JSON (found by a review)."""
    key = str(ASSETS / "alice.key")
    result = subprocess.run(
        [sys.executable, "-m", "owmanifest", "sign", "-", "--key", key, "--json"],
        input=(ASSETS / "unsigned.jsonld").read_bytes(),
        capture_output=True,
    )
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["error"] == "UsageError"


def test_no_command_with_json_still_answers_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--json")
    assert code == 2 and "usage:" in err
    assert json.loads(out)["error"]["error"] == "UsageError"


def test_an_interrupted_command_still_answers_in_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import owmanifest.cli as cli

    def interrupted(*_: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_show", interrupted)
    code, out, err = run(capsys, "show", str(ASSETS / "signed.jsonld"), "--json")
    assert code == 130 and "interrupted" in err
    assert json.loads(out)["error"]["error"] == "Interrupted"


def test_verbose_shows_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-v", "show", str(ASSETS / "dids.txt"))
    assert code == 2 and "Traceback" in err


def test_demo_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "demo", "--dir", str(tmp_path / "demo"))
    assert code == 0, err
    assert "flip one byte" in err


def test_console_script_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "owmanifest", "verify", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "--trust" in result.stdout and "example" in result.stdout


def _help(parser: argparse.ArgumentParser, argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parser.parse_args(argv)
    return out.getvalue()


def test_each_command_is_defined_alone_as_with_the_others() -> None:
    """main() defines only the command it runs (build_parser(command)): the same parser."""
    from owmanifest.cli import build_parser

    everything = build_parser()
    sub = next(a for a in everything._actions if isinstance(a, argparse._SubParsersAction))
    commands = list(sub.choices)
    assert {"create", "verify", "sign", "fetch", "trust"} <= set(commands)
    for name in commands:
        assert _help(build_parser(name), [name, "--help"]) == _help(everything, [name, "--help"])
    assert _help(build_parser("verify"), ["--help"]) == _help(everything, ["--help"])


def test_every_command_teaches_with_an_example() -> None:
    """Each command's --help, and each action's of the commands that have them, shows how it
    is used (the project's rule: --help that teaches)."""
    from owmanifest.cli import build_parser

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(found[0].choices) if found else {}

    everything = build_parser()
    for name, parser in subcommands(everything).items():
        actions = subcommands(parser)
        for argv in [[name]] if not actions else [[name, action] for action in actions]:
            text = _help(everything, [*argv, "--help"])
            assert "example" in text, f"owmanifest {' '.join(argv)} --help has no example"


def test_create_dataset_without_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "empty-data"
    data.mkdir()
    (data / "a").write_bytes(b"")
    (tmp_path / "link-target").write_bytes(b"x")
    os.symlink(tmp_path / "link-target", data / "link")
    m = tmp_path / "m.jsonld"
    code, _, err = run(
        capsys,
        "create",
        str(data),
        "--id",
        "https://x.org/empty",
        "--version",
        "1",
        "--signer",
        "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
        "-o",
        str(m),
    )
    assert code == 0, err
    assert "skipped: link: symbolic link" in err
    assert not Path(str(m) + ".torrent").exists()
    code, _, err = run(
        capsys,
        "create",
        str(data),
        "--id",
        "https://x.org/empty",
        "--version",
        "1",
        "--strict",
        "--signer",
        "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
        "-o",
        str(tmp_path / "m2.jsonld"),
    )
    assert code == 2 and "symbolic link" in err


def test_signer_from_a_key_file_is_read_like_any_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text('{"type": "owmanifest-ed25519-private-key"}')
    code, _, err = run(capsys, *_CREATE, "--signer", str(bad), "-o", str(tmp_path / "m.jsonld"))
    assert code == 2 and "invalid key file" in err and "Traceback" not in err
    assert not (tmp_path / "m.jsonld").exists()


def test_extra_files_are_reported_whether_or_not_the_tree_verifies(
    workflow: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    m, data, tmp = workflow["manifest"], workflow["data"], workflow["tmp"]
    for name in ("alice", "bob"):
        assert run(capsys, "sign", m, "--key", f"{tmp}/{name}.key")[0] == 0
    trust = ["--trust", workflow["alice"], "--trust", workflow["bob"], "--no-state"]
    (Path(data) / "extra.txt").write_bytes(b"not listed\n")
    code, _, err = run(capsys, "verify", m, data, *trust)
    assert code == 0 and "extra (not in manifest): extra.txt" in err
    target = Path(data) / "README.txt"
    target.write_bytes(target.read_bytes() + b"!")
    code, _, err = run(capsys, "verify", m, data, *trust)
    assert code == 1 and "extra (not in manifest): extra.txt" in err  # (a review found it hidden)
    code, _, err = run(capsys, "verify", m, data, *trust, "--strict")
    assert code == 1 and "extra.txt" in err and "extra (not in manifest)" not in err  # once


def test_json_output_stays_utf8_with_a_file_name_that_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = str(tmp_path / "m\udcff.jsonld")  # a byte 0xff in the name, as argv decodes it
    code, out, _ = run(capsys, "show", name, "--json")
    assert code == 2
    out.encode("utf-8")  # (it held a lone surrogate, written to stdout as a raw 0xff byte)
    assert json.loads(out)["error"]["path"] == name


def test_a_passphrase_is_the_variables_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", os.fsdecode(b"\xff\xfe not UTF-8"))  # as the environment decodes it
    key = str(tmp_path / "k.key")
    code, out, err = run(capsys, "keygen", "--out", key, "--encrypt", "--passphrase-env", "PW")
    assert code == 0, err
    m = str(tmp_path / "m.jsonld")
    create = ["create", str(ASSETS / "dataset"), "--id", "https://x.org/pw", "--version", "1"]
    assert run(capsys, *create, "--signer", out.strip(), "-o", m)[0] == 0
    code, _, err = run(capsys, "sign", m, "--key", key, "--passphrase-env", "PW")
    assert code == 0, err


@pytest.mark.parametrize(
    "argv", [["--json", "--version"], ["show", "--jso"], ["show", "--js", "--limit", "x"]]
)
def test_json_mode_prints_one_document_also_here(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--version printed text under --json, and an abbreviation of --json, which argparse
    accepts, gave no JSON for a usage error (found by a review)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr().out
    assert isinstance(json.loads(out), dict)
    assert code == (0 if "--version" in argv else 2)


def test_create_skips_the_working_areas_name_in_any_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    (data / ".OWMANIFEST").mkdir(parents=True)
    (data / ".OWMANIFEST" / "notes.txt").write_bytes(b"hi\n")
    (data / "data.txt").write_bytes(b"data\n")
    m = str(tmp_path / "m.jsonld")
    code, out, err = run(capsys, *_CREATE[:1], str(data), *_CREATE[2:], "-o", m, "--json")
    assert code == 0, err
    assert json.loads(out)["files"] == 1 and "reserved name" in err


def test_trackers_in_any_order_make_the_same_torrent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The manifest records them sorted and once; the torrent wrote them as given (a review)."""
    torrents = []
    for i, order in enumerate((["http://b.example/a", "http://a.example/a", "http://b.example/a"],
                               ["http://a.example/a", "http://b.example/a"])):  # fmt: skip
        m = tmp_path / f"m{i}.jsonld"
        flags = [x for t in order for x in ("--tracker", t)]
        created = ["--created", "2026-01-01T00:00:00Z"]
        assert run(capsys, *_CREATE, "-o", str(m), *created, *flags)[0] == 0
        torrents.append((tmp_path / f"m{i}.jsonld.torrent").read_bytes())
    assert torrents[0] == torrents[1]


def test_a_piece_length_over_128_mib_is_refused_on_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A signed manifest with pieceLength 2**62 crashed verify's compiled engine (a review)."""
    doc = json.loads((ASSETS / "unsigned.jsonld").read_text())
    doc["pieceLength"] = 2**62
    m = tmp_path / "m.jsonld"
    m.write_text(json.dumps(doc))
    code, _, err = run(capsys, "show", str(m))
    assert code == 2 and ("134217728" in err or "128 MiB" in err), err
