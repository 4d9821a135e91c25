"""Run the owmanifest command line and die like ``kill -9`` at a chosen point of a fetch.

    python crash_driver.py POINT N -- owmanifest arguments...

At the ``N``-th time the process reaches ``POINT`` it calls ``os._exit(137)``: no ``finally``,
no flush of Python buffers, no state saved: exactly what ``SIGKILL`` leaves behind, but at a
deterministic place. Points:

* ``piece-written``: right after a verified piece was written to the partial area (the piece
  state is saved at most every 0.5 s, so it usually does not list that piece yet);
* ``state-replacing``: while saving the piece state, after the temporary file was written and
  before it replaces the old state;
* ``before-expose``: a file verified whole, before it is moved to its final path;
* ``after-expose``: right after the move, before the partial area's state for it is removed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

KILLED = 137


def _on_nth(n: int, original: Callable[..., Any], *, before: bool) -> Callable[..., Any]:
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if before and calls == n:
            os._exit(KILLED)
        result = original(*args, **kwargs)
        if not before and calls == n:
            os._exit(KILLED)
        return result

    return wrapper


def install(point: str, n: int) -> None:
    from owmanifest.transport import _partial

    if point == "piece-written":
        _partial.PartialFile.write_piece = _on_nth(  # type: ignore[method-assign]
            n, _partial.PartialFile.write_piece, before=False
        )
    elif point == "state-replacing":
        original_replace = os.replace
        calls = 0

        def atomic_write_json(path: Any, value: Any) -> None:
            nonlocal calls
            calls += 1
            tmp = path.with_name(f".{path.name}.crash.tmp")  # as write_atomic names them
            import json

            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(value, f, separators=(",", ":"), sort_keys=True)
            if calls == n:
                os._exit(KILLED)
            original_replace(tmp, path)

        _partial.atomic_write_json = atomic_write_json  # type: ignore[assignment]
    elif point == "before-expose":
        _partial.PartialFile.finalize = _on_nth(  # type: ignore[method-assign]
            n, _partial.PartialFile.finalize, before=True
        )
    elif point == "after-expose":
        _partial._fsync_dir = _on_nth(n, _partial._fsync_dir, before=False)  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown crash point {point!r}")


def main() -> int:
    point, n, sep, *args = sys.argv[1:]
    assert sep == "--", "usage: crash_driver.py POINT N -- ARGS"
    install(point, int(n))
    from owmanifest.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
