"""The security suite: a watchdog against hangs, and the ledger's summary at the end of a run."""

from __future__ import annotations

import faulthandler
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .ledger import LEDGER

#: A test of this suite that runs longer than this is a hang: the watchdog dumps every
#: thread's stack and ends the process, so a hang can never stall CI silently.
WATCHDOG_SECONDS = float(os.environ.get("OWMANIFEST_SECURITY_WATCHDOG", "900"))


#: What ``slow`` means here: the same tests, many more examples, kills and bytes.
SLOW_DEFAULTS = {
    "OWMANIFEST_FUZZ_EXAMPLES": "2000",
    "OWMANIFEST_SECURITY_EXAMPLES": "200",
    "OWMANIFEST_SECURITY_KILLS": "12",
    "OWMANIFEST_SWARM_MIB": "32",
}


def _slow_requested(config: pytest.Config) -> bool:
    return os.environ.get("OWMANIFEST_SECURITY_SLOW") == "1" or "slow" in (
        config.getoption("markexpr", "") or ""
    ).replace("not slow", "")


def pytest_configure(config: pytest.Config) -> None:
    if _slow_requested(config):
        for name, value in SLOW_DEFAULTS.items():
            os.environ.setdefault(name, value)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests of this suite run only on request (``-m slow`` or
    ``OWMANIFEST_SECURITY_SLOW=1``), so the default run stays short."""
    if _slow_requested(config):
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="slow: run with -m slow or OWMANIFEST_SECURITY_SLOW=1")
    for item in items:
        if "slow" in item.keywords and here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    summary = LEDGER.summary()
    if not summary["attacks_tried"] and not summary["faults_injected"]:
        return
    tr = terminalreporter
    tr.section("owmanifest security ledger")
    tr.write_line(
        f"attacks tried: {summary['attacks_tried']}, faults injected: "
        f"{summary['faults_injected']}, false accepts: {summary['false_accepts']}, "
        f"data lost: {summary['data_lost']}, bare exceptions: {summary['bare_exceptions']}"
    )
    tr.write_line(f"attacks by category: {summary['attacks_by_category']}")
    tr.write_line(f"faults by kind: {summary['faults_by_kind']}")
    for note in summary["notes"]:  # type: ignore[attr-defined]
        tr.write_line(str(note))
    for key in ("false_accept_cases", "data_lost_cases", "bare_exception_cases"):
        for case in summary[key]:  # type: ignore[attr-defined]
            tr.write_line(f"  {key}: {case}")
    target = os.environ.get("OWMANIFEST_SECURITY_LEDGER")
    if target:
        LEDGER.write(Path(target))
