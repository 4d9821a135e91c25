"""A third-party transport found through the ``owmanifest.transports`` entry-point group.

The toy distribution in ``tests/assets/toy_transport`` declares two entry points: ``toy`` (a
working transport) and ``toybroken`` (a module that cannot be imported). It is made visible in
two ways, neither of which touches the running virtual environment:

* a ``.dist-info`` directory written by hand on ``sys.path`` (fast, in process);
* a real ``pip install --target`` of the distribution, used from a fresh interpreter
  (proves the ``pyproject.toml`` declaration works, and that plugins load lazily).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from owmanifest.errors import DependencyError
from owmanifest.transport import fetch, known_schemes, open_transport, registry
from tests.unit.transport_support import PIECE, Dataset, make_dataset

REPO = Path(__file__).resolve().parents[2]
TOY = REPO / "tests" / "assets" / "toy_transport"
PACKAGE = "owmanifest_toy_transport"


def _entry_points_txt() -> str:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((TOY / "pyproject.toml").read_text())["project"]
    lines = []
    for group, eps in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {value}" for name, value in eps.items())
    return "\n".join(lines) + "\n"


@pytest.fixture
def toy_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The toy distribution, installed by hand as a .dist-info on sys.path."""
    site = tmp_path / "site"
    shutil.copytree(TOY / PACKAGE, site / PACKAGE)
    info = site / "owmanifest_toy_transport-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: owmanifest-toy-transport\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(_entry_points_txt())
    monkeypatch.syspath_prepend(str(site))
    registry.refresh()
    yield site
    registry.refresh()
    for name in [m for m in sys.modules if m.startswith(PACKAGE)]:
        del sys.modules[name]


def _reversed_copy(ds: Dataset, where: Path) -> None:
    for path, blob in ds.data.items():
        target = where / (path + ".reversed")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob[::-1])


@pytest.fixture
def ds(tmp_path: Path) -> Dataset:
    return make_dataset(tmp_path / "src", {"big.bin": 3 * PIECE + 9, "d/small.txt": 42, "empty": 0})


def test_toy_plugin_fetches(toy_on_path: Path, ds: Dataset, tmp_path: Path) -> None:
    assert {"toy", "toybroken"} <= set(known_schemes())
    assert PACKAGE not in sys.modules  # listing schemes loads no plugin
    store = tmp_path / "toy store"
    _reversed_copy(ds, store)
    transport = open_transport(store.as_uri().replace("file:", "toy:", 1))
    assert type(transport).__module__ == PACKAGE
    report = fetch(ds.verified, tmp_path / "dest", [transport], piece_layers=ds.layers)
    ds.check(tmp_path / "dest")
    assert report.bytes_by_source == {transport.name: sum(len(b) for b in ds.data.values())}


def test_the_command_line_fetches_from_a_plugin_mirror(
    toy_on_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A third-party scheme given as --mirror is used like a built-in one (it used to be
    dropped without a word unless --transport named it, which it cannot)."""
    from owmanifest.cli import main

    from ..unit.fixtures import ASSETS, DIDS

    store = tmp_path / "toy store"
    for path in (ASSETS / "dataset").rglob("*"):
        if path.is_file():
            target = store / (path.relative_to(ASSETS / "dataset").as_posix() + ".reversed")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes()[::-1])
    trust = ["--trust", DIDS["alice"], "--trust", DIDS["bob"], "--no-state", "--no-dht"]
    mirror = store.as_uri().replace("file:", "toy:", 1)
    dest = tmp_path / "dest"
    code = main(["fetch", str(ASSETS / "signed.jsonld"), str(dest), *trust, "--mirror", mirror])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"sources: {mirror}" in err or mirror in err
    assert (dest / "README.txt").read_bytes() == (ASSETS / "dataset" / "README.txt").read_bytes()
    # a scheme no transport reads is named, not dropped
    code = main(
        [
            "fetch",
            str(ASSETS / "signed.jsonld"),
            str(tmp_path / "d2"),
            *trust,
            "--mirror",
            "gopher://x/y",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "gopher://x/y" in err and "no transport reads" in err


def test_broken_plugin_is_named(toy_on_path: Path) -> None:
    with pytest.raises(DependencyError) as info:
        open_transport("toybroken://x")
    message = str(info.value)
    assert "toybroken" in message
    assert "owmanifest_toy_transport.broken:Nope" in message
    assert "owmanifest-toy-transport" in message  # the distribution to blame
    assert "owmanifest_toy_transport_missing_dependency" in message
    # the broken plugin does not stop the working one
    assert open_transport("toy:///nowhere").name == "toy:///nowhere"


def test_pip_installed_plugin_in_a_fresh_interpreter(ds: Dataset, tmp_path: Path) -> None:
    """Build and install the toy distribution with pip (offline), then use it from a subprocess."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode:
        pytest.skip("pip is not available in this interpreter")
    pytest.importorskip("hatchling", reason="building the toy plugin offline needs hatchling")
    source = tmp_path / "toy-src"
    shutil.copytree(TOY, source)
    target = tmp_path / "site"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert list(target.glob("owmanifest_toy_transport-*.dist-info/entry_points.txt"))

    store = tmp_path / "store"
    _reversed_copy(ds, store)
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from owmanifest.transport import fetch, known_schemes, open_transport
        from tests.unit.transport_support import make_dataset

        assert "toy" in known_schemes(), known_schemes()
        assert {PACKAGE!r} not in sys.modules, "plugin imported before use"
        ds = make_dataset(Path({str(tmp_path / "src2")!r}), {{"big.bin": {3 * PIECE + 9}}})
        t = open_transport({str(store.as_uri()).replace("file:", "toy:", 1)!r})
        assert {PACKAGE!r} in sys.modules
        report = fetch(ds.verified, Path({str(tmp_path / "dest")!r}), [t],
                       piece_layers=ds.layers)
        print(",".join(report.fetched))
        """
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(target), str(REPO), *filter(None, [env.get("PYTHONPATH")])]
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "big.bin"
    assert (tmp_path / "dest" / "big.bin").read_bytes() == ds.data["big.bin"]
