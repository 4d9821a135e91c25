"""The ledger of the security suite: attacks tried, faults injected, false accepts, data lost.

Every attack goes through :func:`refused` (or is recorded with :func:`attack`), every injected
fault through :func:`fault`; a bad outcome is recorded *before* the test fails, so the summary
printed at the end of the run (see ``conftest.py``) counts it even when the assertion stops the
test. ``OWMANIFEST_SECURITY_LEDGER=path.json`` also writes the counts as JSON.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from owmanifest.errors import Error

__all__ = ["LEDGER", "Ledger", "attack", "fault", "lost", "refused"]

E = TypeVar("E", bound=Error)


@dataclass
class Ledger:
    """Counts kept over one test session."""

    attacks: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    false_accepts: list[str] = field(default_factory=list)
    bare_exceptions: list[str] = field(default_factory=list)
    data_lost: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> dict[str, object]:
        return {
            "attacks_tried": sum(self.attacks.values()),
            "attacks_by_category": dict(sorted(self.attacks.items())),
            "faults_injected": sum(self.faults.values()),
            "faults_by_kind": dict(sorted(self.faults.items())),
            "false_accepts": len(self.false_accepts),
            "false_accept_cases": list(self.false_accepts),
            "bare_exceptions": len(self.bare_exceptions),
            "bare_exception_cases": list(self.bare_exceptions),
            "data_lost": len(self.data_lost),
            "data_lost_cases": list(self.data_lost),
            "notes": list(self.notes),
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.summary(), indent=2) + "\n", encoding="utf-8")


LEDGER = Ledger()


def attack(category: str, n: int = 1) -> None:
    """Count ``n`` attacks of ``category`` whose outcome the caller checks itself."""
    with LEDGER._lock:
        LEDGER.attacks[category] += n


def fault(kind: str, n: int = 1) -> None:
    """Count ``n`` injected faults of ``kind``."""
    with LEDGER._lock:
        LEDGER.faults[kind] += n


def false_accept(what: str) -> AssertionError:
    """Record a false accept; returns the assertion to raise."""
    with LEDGER._lock:
        LEDGER.false_accepts.append(what)
    return AssertionError(f"FALSE ACCEPT: {what}")


def lost(what: str) -> AssertionError:
    """Record lost verified data; returns the assertion to raise."""
    with LEDGER._lock:
        LEDGER.data_lost.append(what)
    return AssertionError(f"DATA LOST: {what}")


def refused(
    category: str,
    name: str,
    action: Callable[[], object],
    expected: type[E] | tuple[type[E], ...] = Error,  # type: ignore[assignment]
) -> E:
    """Run one attack; it must be refused with an ``expected`` owmanifest error.

    Returns the error. Raises ``AssertionError`` (after recording it) when the attack was
    accepted, or when anything but an :class:`owmanifest.errors.Error` escaped.
    """
    attack(category)
    try:
        action()
    except expected as exc:
        return exc
    except Error as exc:
        raise AssertionError(
            f"{category}/{name}: refused, but with {type(exc).__name__} ({exc}), not {expected}"
        ) from exc
    except Exception as exc:
        with LEDGER._lock:
            LEDGER.bare_exceptions.append(f"{category}/{name}: {type(exc).__name__}")
        raise AssertionError(
            f"{category}/{name}: a bare {type(exc).__name__} escaped: {exc}"
        ) from exc
    raise false_accept(f"{category}/{name}")
