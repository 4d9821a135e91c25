"""Transports by URI scheme: built-ins, register(), entry points, clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from owmanifest.errors import DependencyError, UsageError
from owmanifest.manifest.model import FileEntry
from owmanifest.transport import (
    HttpTransport,
    LocalTransport,
    RangeTransport,
    known_schemes,
    open_sources,
    open_transport,
    register,
    registry,
    scheme_of,
    transport_factory,
)


class Dummy(RangeTransport):
    def __init__(self, uri: str, **options: object) -> None:
        self.name = uri
        self.options = options

    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        yield b""


@pytest.fixture
def fake_entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[metadata.EntryPoint]]:
    """Replace the installed entry points of the group with a list the test fills."""
    eps: list[metadata.EntryPoint] = []

    def entry_points(*, group: str) -> list[metadata.EntryPoint]:
        assert group == registry.ENTRY_POINT_GROUP
        return list(eps)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    registry.refresh()
    yield eps
    registry.refresh()


SCHEMES = [
    ("https://mirror.example/ds/", "https"),
    ("HTTP://mirror.example/", "http"),
    ("file:///media/usb/ds", "file"),
    ("/media/usb/ds", "file"),
    ("relative/dir", "file"),
    (r"C:\data\ds", "file"),
    ("magnet:?xt=urn:btmh:1220abc", "magnet"),
    ("s3+https://bucket/x", "s3+https"),
]


@pytest.mark.parametrize(("uri", "scheme"), SCHEMES, ids=[s[0] for s in SCHEMES])
def test_scheme_of(uri: str, scheme: str) -> None:
    assert scheme_of(uri) == scheme


def test_builtins_are_known_without_installation(fake_entry_points: list[object]) -> None:
    assert {"http", "https", "file"} <= set(known_schemes())
    assert isinstance(open_transport("https://mirror.example/ds"), HttpTransport)
    assert isinstance(open_transport("http://127.0.0.1:8000/ds/"), HttpTransport)
    local = open_transport("file:///srv/data")
    assert isinstance(local, LocalTransport)
    assert local.directory == Path("/srv/data")
    assert isinstance(open_transport("/srv/data", link=True), LocalTransport)


def test_unknown_scheme_lists_the_known_ones(fake_entry_points: list[object]) -> None:
    with pytest.raises(UsageError) as info:
        open_transport("gopher://example.org/ds")
    assert "gopher" in str(info.value)
    assert "http" in str(info.value.expected) and "file" in str(info.value.expected)


def test_bad_options_are_a_usage_error(fake_entry_points: list[object]) -> None:
    with pytest.raises(UsageError, match="cannot open a transport"):
        open_transport("https://mirror.example/", no_such_option=1)


def test_register_and_unregister(fake_entry_points: list[object]) -> None:
    register("dummy", Dummy)
    try:
        t = open_transport("dummy://x", speed=3)
        assert isinstance(t, Dummy) and t.options == {"speed": 3}
        assert "dummy" in known_schemes()
        with pytest.raises(UsageError, match="already registered"):
            register("DUMMY", Dummy)
        register("dummy", Dummy, replace=True)
    finally:
        registry.unregister("dummy")
    with pytest.raises(UsageError):
        transport_factory("dummy")


def test_factory_exceptions_become_usage_errors(fake_entry_points: list[object]) -> None:
    def picky(uri: str) -> Dummy:
        raise ValueError("no such bucket")

    register("picky", picky)
    try:
        with pytest.raises(UsageError, match="no such bucket"):
            open_transport("picky://x")
    finally:
        registry.unregister("picky")


def test_register_refuses_bad_schemes() -> None:
    with pytest.raises(UsageError):
        register("no spaces", Dummy)


def test_entry_point_is_loaded_lazily(fake_entry_points: list[metadata.EntryPoint]) -> None:
    fake_entry_points.append(
        metadata.EntryPoint("lazy", f"{__name__}:Dummy", registry.ENTRY_POINT_GROUP)
    )
    fake_entry_points.append(
        metadata.EntryPoint("broken", "no_such_module_xyz:Thing", registry.ENTRY_POINT_GROUP)
    )
    assert {"lazy", "broken"} <= set(known_schemes())  # listing loads nothing
    assert isinstance(open_transport("lazy://x"), Dummy)  # the broken one does not matter


def test_broken_plugin_names_its_entry_point(
    fake_entry_points: list[metadata.EntryPoint],
) -> None:
    fake_entry_points.append(
        metadata.EntryPoint("broken", "no_such_module_xyz:Thing", registry.ENTRY_POINT_GROUP)
    )
    with pytest.raises(DependencyError) as info:
        open_transport("broken://x")
    message = str(info.value)
    assert "'broken'" in message and "no_such_module_xyz:Thing" in message
    assert registry.ENTRY_POINT_GROUP in message
    assert isinstance(info.value.__cause__, ImportError)


def test_plugin_returning_a_non_transport(fake_entry_points: list[metadata.EntryPoint]) -> None:
    fake_entry_points.append(
        metadata.EntryPoint("weird", "builtins:str", registry.ENTRY_POINT_GROUP)
    )
    with pytest.raises(DependencyError, match="not a Transport"):
        open_transport("weird://x")


def test_entry_points_cannot_replace_builtins(
    fake_entry_points: list[metadata.EntryPoint],
) -> None:
    fake_entry_points.append(
        metadata.EntryPoint("https", f"{__name__}:Dummy", registry.ENTRY_POINT_GROUP)
    )
    assert isinstance(open_transport("https://example.org/"), HttpTransport)


def test_duplicate_entry_points_first_wins(
    fake_entry_points: list[metadata.EntryPoint], caplog: pytest.LogCaptureFixture
) -> None:
    fake_entry_points.append(
        metadata.EntryPoint("dup", f"{__name__}:Dummy", registry.ENTRY_POINT_GROUP)
    )
    fake_entry_points.append(
        metadata.EntryPoint("dup", "no_such_module_xyz:Thing", registry.ENTRY_POINT_GROUP)
    )
    assert isinstance(open_transport("dup://x"), Dummy)
    assert "two transport plugins" in caplog.text


def test_open_sources_for_the_command_line(fake_entry_points: list[object], tmp_path: Path) -> None:
    uris = ["https://a.example/ds/", str(tmp_path), "https://a.example/ds/", "http://b.example/"]
    sources = open_sources(uris, link=True, token_env="T", timeout=5)
    assert [type(s) for s in sources] == [HttpTransport, LocalTransport, HttpTransport]
    http, local, _ = sources
    assert isinstance(http, HttpTransport) and http.timeout == 5
    assert isinstance(local, LocalTransport) and local.link
    only_http = open_sources(uris, schemes=["http"])
    assert [s.name for s in only_http] == ["https://a.example/ds/", "http://b.example/"]
    assert [type(s) for s in open_sources(uris, schemes=["file"])] == [LocalTransport]
    with pytest.raises(UsageError):
        open_sources(["gopher://x"])


def test_builtin_that_cannot_be_imported(
    fake_entry_points: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry._BUILTINS, "magnet", "owmanifest.transport.no_such_module:X")
    with pytest.raises(DependencyError, match="no_such_module"):
        open_transport("magnet:?xt=urn:btmh:1220ab")


class Unnamed(RangeTransport):
    """A plugin that does not set ``name``: reports named every such source 'transport'."""

    def __init__(self, uri: str) -> None:
        self.root = Path(uri.split("://", 1)[1])

    def open_range(self, entry: FileEntry, offset: int, length: int) -> Iterator[bytes]:
        with open(self.root / entry.path, "rb") as f:
            f.seek(offset)
            yield f.read(length)


def test_an_unnamed_plugin_is_named_by_its_uri(fake_entry_points: list[object]) -> None:
    register("unnamed", Unnamed)
    try:
        assert open_transport("unnamed:///srv/a").name == "unnamed:///srv/a"
        assert open_transport("unnamed:///srv/b").name == "unnamed:///srv/b"
    finally:
        registry.unregister("unnamed")


def test_fetch_can_be_limited_to_a_plugin(
    fake_entry_points: list[object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--transport accepted only bittorrent, http and file: a plugin's mirror could not be
    chosen, and waited behind BitTorrent (found by a review)."""
    from owmanifest.cli import main

    from .fixtures import ASSETS, DIDS

    register("unnamed", Unnamed)
    try:
        dest = tmp_path / "dest"
        code = main(["fetch", str(ASSETS / "signed.jsonld"), str(dest), "--trust", DIDS["alice"],
                     "--trust", DIDS["bob"], "--no-state", "--transport", "unnamed",
                     "--mirror", f"unnamed://{ASSETS / 'dataset'}", "--json"])  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 0, err
        assert set(json.loads(out)["fetch"]["bytes_by_source"]) == {
            f"unnamed://{ASSETS / 'dataset'}"
        }
        code = main(["fetch", str(ASSETS / "signed.jsonld"), str(dest), "--trust", DIDS["alice"],
                     "--no-state", "--transport", "nosuch"])  # fmt: skip
        assert code == 2 and "unknown transport" in capsys.readouterr().err
    finally:
        registry.unregister("unnamed")
