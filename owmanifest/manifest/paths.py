"""Rules for the file paths a manifest may contain.

A path is relative, POSIX (``/`` separated), UTF-8 in Unicode NFC, with no empty, ``.`` or ``..``
segment, no backslash, no NUL or other control character (C0, DEL, C1), no U+FFFE or U+FFFF
(canonical N-Quads escapes those two, so a path holding one has two text forms), does not start
like a Windows drive (``C:``), and does not start with owmanifest's working area
(``.owmanifest``, in any case). Two paths of one manifest may not differ only by case (they
would collide on case-insensitive file systems), and no path may be a prefix directory of
another file's path (``a`` and ``a/b`` cannot both be files).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from itertools import repeat
from operator import itemgetter

from ..errors import PathError

__all__ = ["STATE_DIR_NAME", "case_key", "check_path", "check_paths"]

#: owmanifest's own state inside a dataset or download directory; never part of a dataset.
STATE_DIR_NAME = ".owmanifest"

_MAX_PATH_BYTES = 4096
_MAX_SEGMENT_BYTES = 255
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ufffe\uffff]").search

#: A path of printable ASCII that :func:`check_path` accepts as it is: segments of 1-255
#: characters, none "." or "..", no backslash, not a drive ("C:"). Most paths are like this;
#: for them the checks below are one regular expression (tested against check_path).
_SIMPLE_SEGMENT = r"(?!\.\.?(?:/|\Z))[ -.0-\[\]-~]{1,255}"
_NOT_RESERVED = r"(?![A-Za-z]:)(?!(?i:\.owmanifest)(?:/|\Z))"  # no drive, no working area
_SIMPLE_PATH = re.compile(rf"{_NOT_RESERVED}{_SIMPLE_SEGMENT}(?:/{_SIMPLE_SEGMENT})*").fullmatch


def check_path(path: str, *, source: str | None = None) -> str:
    """Return ``path`` if it is acceptable in a manifest.

    Raises:
        PathError: the path breaks one of the rules; the message says which.
    """
    if type(path) is str and len(path) <= _MAX_PATH_BYTES and _SIMPLE_PATH(path):
        return path
    return _check_path(path, source)


def _check_path(path: str, source: str | None) -> str:
    """:func:`check_path`, every rule one by one."""

    def bad(reason: str, observed: object = None) -> PathError:
        return PathError(
            f"unacceptable file path {path!r}: {reason}",
            path=source,
            expected="relative POSIX path, NFC, no '.', '..' or empty segments",
            observed=observed if observed is not None else repr(path),
        )

    if not isinstance(path, str):
        raise bad("not a string", type(path).__name__)
    if not path:
        raise bad("empty path")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise bad("not valid UTF-8 (lone surrogate)") from exc
    if len(encoded) > _MAX_PATH_BYTES:
        raise bad("too long", f"{len(encoded)} bytes")
    if _CONTROL(path):
        raise bad("contains a NUL or control character, or U+FFFE/U+FFFF")
    if "\\" in path:
        raise bad("contains a backslash")
    if path.startswith("/"):
        raise bad("absolute path")
    if len(path) >= 2 and path[1] == ":" and path[0].isalpha():
        raise bad("looks like a Windows drive path")
    if case_key(path.split("/", 1)[0]) == case_key(STATE_DIR_NAME):
        raise bad(f"starts with owmanifest's working area ({STATE_DIR_NAME}, in any case)")
    if not unicodedata.is_normalized("NFC", path):
        raise bad("not in Unicode NFC", repr(unicodedata.normalize("NFC", path)))
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise bad(f"has a {segment or 'empty'!r} segment")
        if len(segment.encode("utf-8")) > _MAX_SEGMENT_BYTES:
            raise bad("a segment is longer than 255 bytes")
    return path


def case_key(path: str) -> str:
    """The key under which two paths collide on a case-insensitive file system."""
    return unicodedata.normalize("NFC", path.casefold())


#: Paths of :data:`_SIMPLE_PATH`, one per line (no simple path holds a line feed).
_LINE_SEGMENT = _SIMPLE_SEGMENT.replace(r"\Z", r"\n")  # a path's end is its line's
_LINE_NOT_RESERVED = _NOT_RESERVED.replace(r"\Z", r"\n")
_SIMPLE_LINES = re.compile(
    rf"(?:{_LINE_NOT_RESERVED}{_LINE_SEGMENT}(?:/{_LINE_SEGMENT})*\n)*"
).fullmatch
_LINES_AT_ONCE = 4096  # paths per match: a bounded string for the regular expression engine


def _plainly_fine(paths: list[str]) -> bool:
    """Whether ``paths`` are all simple (see :data:`_SIMPLE_PATH`), distinct without regard to
    case, and none is a directory of another, case aside: what :func:`check_paths` finds of
    nearly every manifest, found here in a few operations over all paths at once. ``False``
    means "look closer", not "bad"."""
    try:
        if max(map(len, paths), default=0) > _MAX_PATH_BYTES:
            return False
        for start in range(0, len(paths), _LINES_AT_ONCE):
            if _SIMPLE_LINES("\n".join(paths[start : start + _LINES_AT_ONCE]) + "\n") is None:
                return False
    except TypeError:  # not a string
        return False
    keys = "\n".join(paths).lower().split("\n")  # case_key of a simple path is its lower case
    unique = set(keys)
    if not len(unique) == len(keys) == len(paths):  # a duplicate, or a line feed in a path
        return False
    dirs: set[str] = set()
    level = unique
    while level:  # the parents of the paths, then theirs, ...
        level = set(map(itemgetter(0), map(str.rpartition, level, repeat("/"))))
        level.discard("")
        level -= dirs
        dirs |= level
    return unique.isdisjoint(dirs)


def check_paths(paths: Iterable[str], *, source: str | None = None) -> None:
    """Check every path and the relations between them.

    Raises:
        PathError: a bad path, a duplicate, a case collision, or a file that is also a directory.
    """
    paths = list(paths)
    if _plainly_fine(paths):
        return
    seen: dict[str, str] = {}  # case_key -> path
    exact: set[str] = set()
    simple = _SIMPLE_PATH
    for path in paths:
        if type(path) is str and len(path) <= _MAX_PATH_BYTES and simple(path):
            key = path.lower()  # case_key of ASCII: casefold is lower, NFC changes nothing
        else:
            _check_path(path, source)
            key = case_key(path)
        if path in exact:
            raise PathError(f"duplicate file path {path!r}", path=source)
        other = seen.get(key)
        if other is not None:
            raise PathError(
                f"file paths differ only by case: {other!r} and {path!r}",
                path=source,
                expected="paths unique without regard to case",
                observed=f"{other!r}, {path!r}",
            )
        seen[key] = path
        exact.add(path)
    dirs: set[str] = set()
    for path in exact:
        end = path.rfind("/")
        while end > 0:
            parent = path[:end]
            if parent in dirs:
                break  # and so are its own parents
            dirs.add(parent)
            end = path.rfind("/", 0, end)
    clash = sorted(exact & dirs)
    if clash:
        raise PathError(
            f"{clash[0]!r} is both a file and a directory", path=source, observed=clash[0]
        )
    folded_dirs = {case_key(d): d for d in dirs}
    for key, path in seen.items():
        d = folded_dirs.get(key)
        if d is not None and d != path:
            raise PathError(f"file {path!r} collides by case with directory {d!r}", path=source)
