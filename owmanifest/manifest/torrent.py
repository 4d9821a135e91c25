"""The sidecar torrent: a deterministic hybrid BitTorrent v1+v2 torrent built from the scan.

:func:`build_torrent` writes the same bytes for the same files, piece length and options, and
the same ``info`` dictionary as libtorrent 2.1 (``create_torrent(files, piece_length,
flags=0)``) for the same directory, so that both compute the same info-hashes:

* files are ordered as BEP 52's file tree orders them: by path components compared as raw
  UTF-8 bytes, component by component;
* the v1 ``files`` list has the same order; when the torrent has more than one file, every file
  whose size is not a multiple of the piece length is followed by a BEP 47 pad file
  (``attr: "p"``, path ``[".pad", "<size>"]``), the last one included, as libtorrent writes them;
  empty files get no pad file and no ``pieces root``;
* no ``creation date``, ``comment`` or ``created by``; trackers (``announce``, plus
  ``announce-list`` with one tier when there are several) and web seeds (``url-list``) are
  outside ``info``, so they do not change the info-hashes; ``private: 1`` is inside ``info``.

See ``docs/adr/0001-bep52-merkle-roots.md`` for the piece-length rule and the one case where
libtorrent's own output differs (and is rejected by libtorrent itself).

:func:`parse_torrent` is strict: it checks the structure, the paths, the agreement of the v1
file list with the v2 file tree, and that every piece layer hashes to its file's root.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import InvalidManifestError, UsageError
from .bencode import BValue, Encoded, bdecode_dict, bencode
from .digest import BEP52, Digest
from .hashing import FileHashes
from .merkle import BLOCK_SIZE, HASH_SIZE, root_from_piece_layer

__all__ = [
    "MAX_PIECES",
    "MAX_PIECE_LENGTH",
    "MIN_PIECE_LENGTH",
    "InfoHashes",
    "ParsedTorrent",
    "TorrentFile",
    "build_torrent",
    "build_torrent_with_hashes",
    "choose_piece_length",
    "info_hashes",
    "parse_torrent",
]

MIN_PIECE_LENGTH = BLOCK_SIZE
"""Smallest piece length BEP 52 allows (16 KiB)."""

MAX_PIECE_LENGTH = 16 * 1024 * 1024
"""Largest piece length :func:`choose_piece_length` picks (16 MiB)."""

MAX_PIECES = 2048
"""Target upper bound on the number of pieces :func:`choose_piece_length` aims for."""

_SHA1_SIZE = 20


def choose_piece_length(total_size: int, file_count: int = 1) -> int:
    """The piece length for a dataset of ``total_size`` bytes in ``file_count`` non-empty files.

    The rule: the smallest power of two of at least 16 KiB for which the dataset has at most
    2048 pieces (``ceil(total_size / piece_length) <= 2048``), capped at 16 MiB (datasets over
    32 GiB then have more than 2048 pieces). Pad files are not counted. Then, while
    ``2 * file_count * piece_length > total_size`` and the piece length is over 16 KiB, halve
    it: in a hybrid torrent every file starts on a piece boundary and its last v1 piece is
    SHA-1'd with zero padding, up to ``file_count * piece_length`` bytes of zeros in all; this
    keeps the padding no larger than half the data (10,000 files of 1-64 KiB: 16 KiB pieces and
    ~0.08 GB of padding instead of 256 KiB and ~2.3 GB). With one file the second step never
    applies. See ``docs/adr/0001-bep52-merkle-roots.md``.

    Raises:
        ValueError: ``total_size`` or ``file_count`` is negative.
    """
    if total_size < 0:
        raise ValueError(f"negative total size {total_size}")
    if file_count < 0:
        raise ValueError(f"negative file count {file_count}")
    piece = MIN_PIECE_LENGTH
    while piece < MAX_PIECE_LENGTH and -(-total_size // piece) > MAX_PIECES:
        piece *= 2
    while piece > MIN_PIECE_LENGTH and 2 * file_count * piece > total_size:
        piece //= 2
    return piece


@dataclass(frozen=True)
class TorrentFile:
    """One file to put in a torrent.

    Attributes:
        path: dataset-relative POSIX path (``a/b.txt``).
        size: size in bytes.
        hashes: the file's hashes at the torrent's piece length (with v1 pieces for a hybrid).
    """

    path: str
    size: int
    hashes: FileHashes


@dataclass(frozen=True)
class InfoHashes:
    """A torrent's info-hashes as lowercase hex.

    Attributes:
        v1: SHA-1 of the ``info`` dictionary; ``None`` for a v2-only torrent.
        v2: SHA-256 of the ``info`` dictionary, all 64 hex digits (BEP 52 truncates it to 40
            digits only where a v1 info-hash is expected, e.g. in trackers and the DHT).
    """

    v1: str | None
    v2: str


@dataclass(frozen=True)
class ParsedTorrent:
    """A torrent that passed :func:`parse_torrent`.

    Attributes:
        name: the top directory name.
        piece_length: the piece length.
        info_hashes: the info-hashes.
        private: whether ``private`` is set.
        files: ``(path, size, pieces root)`` in torrent order, pad files excluded;
            the root is ``None`` for empty files.
        piece_layers: pieces root → concatenated piece layer (files larger than one piece).
        trackers: announce URLs, tiers flattened, in order.
        web_seeds: BEP 19 web seed URLs.
    """

    name: str
    piece_length: int
    info_hashes: InfoHashes
    private: bool
    files: tuple[tuple[str, int, bytes | None], ...]
    piece_layers: Mapping[bytes, bytes]
    trackers: tuple[str, ...]
    web_seeds: tuple[str, ...]


# --- building ------------------------------------------------------------------------------------


def _components(path: str) -> list[str]:
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise ValueError(f"not a relative POSIX file path: {path!r}")
    return parts


# A relative path whose segments are neither empty, "." nor "..", and hold no NUL (what
# _components accepts, in one match for the common case).
_PLAIN_PATH = re.compile(r"(?!\.\.?(?:/|\Z))[^/\x00]+(?:/(?!\.\.?(?:/|\Z))[^/\x00]+)*").fullmatch


def _sort_key(path: str) -> bytes:
    """The path's UTF-8 components joined by NUL: in the order of the component lists (NUL is
    below every byte of a component and never in one), compared in one ``memcmp``."""
    if not _PLAIN_PATH(path):
        _components(path)  # raises the reason
    return path.encode("utf-8").replace(b"/", b"\x00")  # no "/" byte inside a UTF-8 character


def _check_piece_length(piece_length: int) -> None:
    if piece_length < MIN_PIECE_LENGTH or piece_length & (piece_length - 1):
        raise ValueError(f"piece length must be a power of two >= 16 KiB: {piece_length}")


def build_torrent(
    name: str,
    files: Sequence[TorrentFile],
    piece_length: int,
    *,
    hybrid: bool = True,
    private: bool = False,
    trackers: Sequence[str] = (),
    web_seeds: Sequence[str] = (),
) -> bytes:
    """Build the bencoded torrent; see :func:`build_torrent_with_hashes` (same arguments).

    Raises:
        UsageError: the files hold no data at all (a torrent needs at least one piece).
        ValueError: see :func:`build_torrent_with_hashes`.
    """
    torrent, _ = build_torrent_with_hashes(
        name,
        files,
        piece_length,
        hybrid=hybrid,
        private=private,
        trackers=trackers,
        web_seeds=web_seeds,
    )
    return torrent


def build_torrent_with_hashes(
    name: str,
    files: Sequence[TorrentFile],
    piece_length: int,
    *,
    hybrid: bool = True,
    private: bool = False,
    trackers: Sequence[str] = (),
    web_seeds: Sequence[str] = (),
) -> tuple[bytes, InfoHashes]:
    """Build the bencoded torrent (always the multi-file layout, ``name`` being the directory).

    Returns the torrent and its info-hashes, computed over the ``info`` dictionary as encoded
    (the same as :func:`info_hashes` of the torrent, without decoding it again: on 100,000
    files that decoding took longer than building).

    Args:
        name: the top directory name (one path component).
        files: the files, in any order; their hashes must have been computed at
            ``piece_length`` (with v1 pieces when ``hybrid``).
        piece_length: power of two, at least 16 KiB.
        hybrid: also write the v1 part (``files`` and ``pieces``); otherwise a v2-only torrent.
        private: set ``private: 1`` in ``info`` (BEP 27).
        trackers: announce URLs (one tier).
        web_seeds: BEP 19 web seed URLs.

    Raises:
        UsageError: the files hold no data at all (a torrent needs at least one piece).
        ValueError: bad name, path, piece length or duplicate path; hashes that do not fit the
            sizes or the piece length; v1 hashes missing for a hybrid torrent.
    """
    _check_piece_length(piece_length)
    if not name or "/" in name or name in (".", "..") or "\x00" in name:
        raise ValueError(f"not a valid torrent name: {name!r}")
    keyed = sorted(((_sort_key(f.path), f) for f in files), key=operator.itemgetter(0))
    for (a, before), (b, after) in itertools.pairwise(keyed):
        if b == a or b.startswith(a + b"\x00"):  # the same path, or a file as a directory
            raise ValueError(f"path {after.path!r} collides with {before.path!r}")
    if sum(f.size for f in files) == 0:
        raise UsageError("cannot make a torrent of no data (only empty files, or none)")

    # The file tree is written as it is walked: the files in component order are the tree's
    # depth-first order with each dictionary's keys sorted as bencode sorts them (NUL, between
    # components, is below every byte of one), so each file closes the directories it leaves
    # and opens those it enters. The same bytes as bencode() of nested dictionaries, without
    # them (10,000 files: a third of the time).
    tree: list[bytes] = [b"d"]
    layers: dict[bytes, bytes] = {}
    v1_files: list[bytes] = []  # the encoded entries of the v1 "files" list
    v1_pieces: list[bytes] = []
    pads: dict[int, bytes] = {}
    folder: list[bytes] = []  # the directory of the previous file, as components
    prefix = b""  # its components as the start of a bencoded list, for the v1 entries
    for key, f in keyed:
        _check_hashes(f, piece_length, hybrid)
        *parts, name_part = key.split(b"\x00")
        if parts != folder:
            same = 0
            while same < len(folder) and same < len(parts) and folder[same] == parts[same]:
                same += 1
            tree.append(b"e" * (len(folder) - same))
            tree.extend(b"%d:%bd" % (len(part), part) for part in parts[same:])
            folder = parts
            prefix = b"".join(b"%d:%b" % (len(part), part) for part in parts)
        root = f.hashes.root
        if root is not None:
            tree.append(
                b"%d:%bd0:d6:lengthi%de11:pieces root32:%bee"
                % (len(name_part), name_part, f.size, root)
            )
            if f.size > piece_length:
                layers[root] = f.hashes.piece_layer
        else:
            tree.append(b"%d:%bd0:d6:lengthi%deee" % (len(name_part), name_part, f.size))
        if hybrid:
            v1_files.append(
                b"d6:lengthi%de4:pathl%b%d:%bee" % (f.size, prefix, len(name_part), name_part)
            )
            pad = -f.size % piece_length
            if pad and len(keyed) > 1:
                padding = pads.get(pad)
                if padding is None:
                    padding = pads[pad] = _pad_entry(pad).data
                v1_files.append(padding)
            v1_pieces.append(f.hashes.v1_pieces or b"")
    tree.append(b"e" * (len(folder) + 1))
    if hybrid and len(keyed) == 1:
        # a lone file is followed by no pad file: its last piece is hashed unpadded
        only = keyed[0][1].hashes
        v1_pieces = [(only.v1_pieces or b"")[:-_SHA1_SIZE] + (only.v1_last_unpadded or b"")]

    info: dict[str, object] = {
        "file tree": Encoded(b"".join(tree)),
        "meta version": 2,
        "name": name,
        "piece length": piece_length,
    }
    if hybrid:
        info["files"] = Encoded(b"l%be" % b"".join(v1_files))
        info["pieces"] = b"".join(v1_pieces)
    if private:
        info["private"] = 1
    encoded_info = bencode(info)
    hashes = InfoHashes(
        v1=hashlib.sha1(encoded_info).hexdigest() if hybrid else None,
        v2=hashlib.sha256(encoded_info).hexdigest(),
    )
    # "piece layers" written directly too: bencode() of the dictionary, ~3x faster
    piece_layers = b"".join(
        [b"32:%b%d:%b" % (root, len(layer), layer) for root, layer in sorted(layers.items())]
    )
    torrent: dict[str, object] = {
        "info": Encoded(encoded_info),
        "piece layers": Encoded(b"d%be" % piece_layers),
    }
    if trackers:
        torrent["announce"] = trackers[0]
        if len(trackers) > 1:
            torrent["announce-list"] = [list(trackers)]
    if web_seeds:
        torrent["url-list"] = web_seeds[0] if len(web_seeds) == 1 else list(web_seeds)
    return bencode(torrent), hashes


def _pad_entry(size: int) -> Encoded:
    """``bencode({"attr": "p", "length": size, "path": [".pad", str(size)]})``, written directly
    (a torrent of many small files has one pad entry per file)."""
    digits = b"%d" % size
    return Encoded(b"d4:attr1:p6:lengthi%be4:pathl4:.pad%d:%bee" % (digits, len(digits), digits))


def _check_hashes(f: TorrentFile, piece_length: int, hybrid: bool) -> None:
    h = f.hashes
    pieces = -(-f.size // piece_length)
    problems = []
    if h.size != f.size:
        problems.append("size differs from its hashes' size")
    if (h.root is None) != (f.size == 0) or (h.root is not None and len(h.root) != HASH_SIZE):
        problems.append("bad root")
    if len(h.piece_layer) != (pieces * HASH_SIZE if f.size > piece_length else 0):
        problems.append("piece layer does not fit the size and piece length")
    if hybrid:
        if h.v1_pieces is None or len(h.v1_pieces) != pieces * _SHA1_SIZE:
            problems.append("v1 pieces missing or not fitting the size and piece length")
        if (h.v1_last_unpadded is None) != (f.size == 0):
            problems.append("v1 last piece hash missing")
    if problems:
        raise ValueError(f"{f.path}: " + "; ".join(problems))


# --- parsing -------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, message: str, *, expected: object = None, observed: object = None) -> Exception:
        return InvalidManifestError(
            f"invalid torrent: {message}", path=self.source, expected=expected, observed=observed
        )

    def dict_(self, value: BValue | None, what: str) -> dict[bytes, BValue]:
        if not isinstance(value, dict):
            raise self.fail(f"{what} is not a dictionary")
        return value

    def list_(self, value: BValue | None, what: str) -> list[BValue]:
        if not isinstance(value, list):
            raise self.fail(f"{what} is not a list")
        return value

    def int_(self, value: BValue | None, what: str, minimum: int = 0) -> int:
        if not isinstance(value, int) or value < minimum:
            raise self.fail(f"bad {what}", expected=f"an integer >= {minimum}", observed=value)
        return value

    def bytes_(self, value: BValue | None, what: str, size: int | None = None) -> bytes:
        if not isinstance(value, bytes) or (size is not None and len(value) != size):
            raise self.fail(f"{what} is not a string" + (f" of {size} bytes" if size else ""))
        return value

    def text(self, value: BValue | None, what: str) -> str:
        raw = self.bytes_(value, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"bad {what}", expected="UTF-8 text", observed=raw) from None

    def component(self, value: BValue | None, what: str) -> str:
        text = self.text(value, what)
        if text in ("", ".", "..") or "/" in text or "\x00" in text:
            raise self.fail(
                f"bad {what}", expected="a path component other than . or ..", observed=repr(text)
            )
        return text

    def walk(
        self,
        node: dict[bytes, BValue],
        prefix: tuple[str, ...],
        out: list[tuple[str, int, bytes | None]],
    ) -> None:
        """Collect the files of a BEP 52 file tree in tree order (keys are already sorted)."""
        for key, child in node.items():
            if key == b"":
                raise self.fail("file tree has an empty path component")
            name = self.component(key, "file tree key")
            child = self.dict_(child, f"file tree node {'/'.join((*prefix, name))!r}")
            if b"" in child:
                path = "/".join((*prefix, name))
                if len(child) != 1:
                    raise self.fail(f"file {path!r} is also a directory")
                out.append((path, *self.file_entry(self.dict_(child[b""], path), path)))
            else:
                if not child:
                    raise self.fail(f"empty directory {'/'.join((*prefix, name))!r}")
                self.walk(child, (*prefix, name), out)

    def file_entry(self, entry: dict[bytes, BValue], path: str) -> tuple[int, bytes | None]:
        size = self.int_(entry.get(b"length"), f"length of {path!r}")
        attr = entry.get(b"attr", b"")
        if not isinstance(attr, bytes) or set(attr) - set(b"xh"):
            raise self.fail(f"unsupported attributes of {path!r}", expected="x or h", observed=attr)
        root = entry.get(b"pieces root")
        if size == 0:
            if root is not None:
                raise self.fail(f"empty file {path!r} has a pieces root")
            return 0, None
        return size, self.bytes_(root, f"pieces root of {path!r}", HASH_SIZE)

    def urls(self, value: BValue | None, what: str) -> list[str]:
        if value is None:
            return []
        if isinstance(value, bytes):
            return [self.text(value, what)]
        if not isinstance(value, list):
            raise self.fail(f"{what} is not a URL or a list of URLs")
        return [self.text(v, what) for v in value]


def _decode_info(
    data: bytes, source: str
) -> tuple[dict[bytes, BValue], dict[bytes, BValue], InfoHashes]:
    """The top-level dictionary, ``info``, and the hashes of ``info`` exactly as encoded."""
    p = _Parser(source)
    top, spans = bdecode_dict(data, source=source)
    info = p.dict_(top.get(b"info"), "info")
    start, end = spans[b"info"]
    encoded = memoryview(data)[start:end]
    v1 = hashlib.sha1(encoded).hexdigest() if b"pieces" in info else None
    return top, info, InfoHashes(v1=v1, v2=hashlib.sha256(encoded).hexdigest())


def info_hashes(torrent: bytes, *, source: str = "<torrent>") -> InfoHashes:
    """The info-hashes of a bencoded torrent (v1 only when it has v1 ``pieces``).

    Raises:
        InvalidManifestError: not canonical bencoding, no ``info`` dictionary, or not a v2
            torrent (``meta version`` is not 2), naming ``source``.
    """
    _, info, hashes = _decode_info(torrent, source)
    if info.get(b"meta version") != 2:
        raise _Parser(source).fail("not a BitTorrent v2 torrent")
    return hashes


def parse_torrent(data: bytes, *, source: str = "<torrent>") -> ParsedTorrent:
    """Parse and check a v2 or hybrid torrent.

    Checks: canonical bencoding; ``meta version`` 2; a valid name and piece length; a file
    tree of safe, UTF-8 path components (no symlinks, no pad attribute); a piece layer for
    each file larger than one piece, of the right length and hashing to the file's root, and no
    other layer; for a hybrid, a v1 file list equal to the file tree in the same order with
    exactly the pad files needed, and ``pieces`` of the right length.

    Args:
        data: the bencoded torrent.
        source: what to name in error messages (a path or URI).

    Raises:
        InvalidManifestError: any check fails.
    """
    p = _Parser(source)
    top, info, hashes = _decode_info(data, source)
    if info.get(b"meta version") != 2:
        raise p.fail("not a BitTorrent v2 torrent", expected=2, observed=info.get(b"meta version"))
    name = p.component(info.get(b"name"), "name")
    piece_length = p.int_(info.get(b"piece length"), "piece length", MIN_PIECE_LENGTH)
    if piece_length & (piece_length - 1):
        raise p.fail("bad piece length", expected="a power of two", observed=piece_length)
    private_value = info.get(b"private", 0)
    if private_value not in (0, 1):
        raise p.fail("bad private flag", expected="0 or 1", observed=private_value)

    files: list[tuple[str, int, bytes | None]] = []
    p.walk(p.dict_(info.get(b"file tree"), "file tree"), (), files)
    if not files:
        raise p.fail("no files")
    if sum(size for _, size, _ in files) == 0:
        raise p.fail("no data")

    layers = _check_layers(p, top, files, piece_length)
    if b"pieces" in info:
        _check_v1(p, info, name, files, piece_length)
    elif b"files" in info or b"length" in info:
        raise p.fail("v1 file list without v1 pieces")

    trackers = p.urls(top.get(b"announce"), "announce")
    if b"announce-list" in top:
        tiers = [
            p.urls(tier, "announce-list tier")
            for tier in p.list_(top[b"announce-list"], "announce-list")
        ]
        trackers = list(dict.fromkeys([*(t for tier in tiers for t in tier), *trackers]))
    return ParsedTorrent(
        name=name,
        piece_length=piece_length,
        info_hashes=hashes,
        private=private_value == 1,
        files=tuple(files),
        piece_layers=layers,
        trackers=tuple(trackers),
        web_seeds=tuple(p.urls(top.get(b"url-list"), "url-list")),
    )


def _check_layers(
    p: _Parser,
    top: dict[bytes, BValue],
    files: list[tuple[str, int, bytes | None]],
    piece_length: int,
) -> dict[bytes, bytes]:
    given = p.dict_(top.get(b"piece layers", {}), "piece layers")
    wanted = {root: (path, size) for path, size, root in files if root and size > piece_length}
    for root in given:
        if root not in wanted:
            raise p.fail(
                "piece layer for a root that no file has",
                expected="a file's root",
                observed=root.hex(),
            )
    layers: dict[bytes, bytes] = {}
    for root, (path, size) in wanted.items():
        if root not in given:
            raise p.fail(f"no piece layer for {path!r}")
        layer = p.bytes_(given[root], f"piece layer of {path!r}")
        pieces = math.ceil(size / piece_length)
        if len(layer) != pieces * HASH_SIZE:
            raise p.fail(
                f"piece layer of {path!r} has the wrong length",
                expected=pieces * HASH_SIZE,
                observed=len(layer),
            )
        nodes = [layer[i : i + HASH_SIZE] for i in range(0, len(layer), HASH_SIZE)]
        computed = root_from_piece_layer(nodes, piece_length)
        if computed != root:
            raise p.fail(
                f"piece layer of {path!r} does not hash to its pieces root",
                expected=Digest(BEP52, root),
                observed=Digest(BEP52, computed),
            )
        layers[root] = layer
    return layers


def _check_v1(
    p: _Parser,
    info: dict[bytes, BValue],
    name: str,
    files: list[tuple[str, int, bytes | None]],
    piece_length: int,
) -> None:
    """The v1 part must describe the same files, in the same order, piece-aligned."""
    pieces = p.bytes_(info[b"pieces"], "pieces")
    if b"length" in info:
        if b"files" in info or len(files) != 1 or files[0][0] != name:
            raise p.fail("single-file v1 layout does not match the file tree")
        v1_total = p.int_(info[b"length"], "length")
        if v1_total != files[0][1]:
            raise p.fail(
                "v1 length differs from the file tree", expected=files[0][1], observed=v1_total
            )
    else:
        entries = p.list_(info.get(b"files"), "files")
        v1_total = 0
        position = 0
        for raw in entries:
            entry = p.dict_(raw, "v1 file entry")
            size = p.int_(entry.get(b"length"), "v1 file length")
            attr = entry.get(b"attr", b"")
            if not isinstance(attr, bytes):
                raise p.fail("v1 file attr is not a string")
            parts = [
                p.component(c, "v1 path component") for c in p.list_(entry.get(b"path"), "v1 path")
            ]
            if b"p" in attr:
                need = -v1_total % piece_length  # a pad completes the previous file's last piece
                if size == 0 or size != need:
                    raise p.fail("misplaced pad file", expected=need, observed=size)
            else:
                if v1_total % piece_length:
                    raise p.fail(f"v1 file {'/'.join(parts)!r} does not start on a piece boundary")
                if position >= len(files) or files[position][:2] != ("/".join(parts), size):
                    raise p.fail(
                        "v1 file list differs from the file tree",
                        expected=files[position][:2] if position < len(files) else None,
                        observed=("/".join(parts), size),
                    )
                if set(attr) - set(b"xh"):
                    raise p.fail("unsupported v1 file attributes", expected="x or h", observed=attr)
                position += 1
            v1_total += size
        if position != len(files):
            raise p.fail("v1 file list is shorter than the file tree")
    expected = math.ceil(v1_total / piece_length) * _SHA1_SIZE
    if len(pieces) != expected:
        raise p.fail("v1 pieces have the wrong length", expected=expected, observed=len(pieces))
