"""The one switch for the optional compiled parts: the hashing core (``_hashcore``, ADR 0007
and 0009) and the verifier's one pass (``_nqindex``, ADR 0008).

``OWMANIFEST_PURE_PYTHON=1`` makes both run in Python, with the same results; tests and
``bench/run.py`` use it to compare. Kept apart so that reading a manifest does not import the
hashing engine to learn it.
"""

from __future__ import annotations

import os

PURE_PYTHON_ENV = "OWMANIFEST_PURE_PYTHON"


def pure_python_requested() -> bool:
    """Whether the environment asks for pure Python (read at each call)."""
    return bool(os.environ.get(PURE_PYTHON_ENV))
