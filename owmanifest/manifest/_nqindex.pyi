"""Type stub of the compiled one pass over a manifest's N-Quads (_nqindex.c, ADR 0008)."""

def index(
    nquads: bytes,
    more: bytes,
    type: bytes,
    path: bytes,
    size: bytes,
    root: bytes,
    part: bytes,
    proof: bytes,
    file: bytes,
    integer: bytes,
    /,
) -> (
    tuple[bytes, bytes, bytes, dict[str, tuple[str, int, bytes | None]], dict[str, list[str]]]
    | None
): ...
def plain_lines(
    files: list[object],
    dataset: str,
    head: bytes,
    kind: bytes,
    path: bytes,
    size: bytes,
    root: bytes,
    integer: bytes,
    /,
) -> tuple[list[object], bytes]: ...
