"""The verifier never depends on a transport and does no network I/O."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "owmanifest"
FORBIDDEN_IN_VERIFY = (
    "owmanifest.transport",
    "socket",
    "http",
    "urllib.request",
    "libtorrent",
    "requests",
    "ssl",
)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = ".".join(
                    path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level]
                )
                base = f"{pkg}.{node.module}" if node.module else pkg
            else:
                base = node.module or ""
            names.append(base)
            names.extend(f"{base}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize(
    "module", sorted(PACKAGE.joinpath("verify").glob("*.py")), ids=lambda p: p.name
)
def test_verify_imports_no_transport_or_network(module: Path) -> None:
    for name in _imports(module):
        for bad in FORBIDDEN_IN_VERIFY:
            assert not (name == bad or name.startswith(bad + ".")), f"{module.name} imports {name}"


@pytest.mark.parametrize(
    "module", sorted(PACKAGE.joinpath("manifest").glob("*.py")), ids=lambda p: p.name
)
def test_manifest_layer_imports_nothing_above_it(module: Path) -> None:
    for name in _imports(module):
        assert not name.startswith(("owmanifest.verify", "owmanifest.transport", "owmanifest.cli"))


def test_importing_the_verifier_loads_no_transport() -> None:
    code = (
        "import sys, owmanifest.verify, owmanifest.verify.blocks, owmanifest.verify.keys;"
        "bad = [m for m in sys.modules if m.startswith('owmanifest.transport') or m in "
        "('socket', 'libtorrent', 'http.client', 'ssl')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
