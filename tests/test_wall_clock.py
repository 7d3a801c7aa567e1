"""No rule, handler or list reads the machine's date: "today" comes from the campaign's clock
(povguard_platform.clock). Record timestamps that say when the system did something stay real time, and each such
read is listed here with its reason, so that a new direct read anywhere else fails this test."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*ROOT.glob("libs/*/src"), *ROOT.glob("services/*/src")]
WALL_CLOCK = {("date", "today"), ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"),
              ("time", "time")}
ALLOWED = Counter({  # file → how many reads, each a record timestamp, not a campaign date
    "libs/platform/src/povguard_platform/clock.py": 1,  # the clock itself
    "libs/platform/src/povguard_platform/auth.py": 2,  # token issue and expiry; the verified-token cache
    "libs/platform/src/povguard_platform/relay.py": 1,  # relay delay metrics
    "services/assessment/src/povguard_assessment/handlers.py": 1,  # when a passed deadline was recorded (as_of)
    "services/audit/src/povguard_audit/recheck.py": 1,  # when a ledger recheck ran
    "services/audit/src/povguard_audit/witness.py": 1,  # a cosignature's time
})


def wall_clock_reads(path: Path) -> list[int]:
    """Lines of `date.today()`, `datetime.now()`, `datetime.utcnow()`, `time.time()` and of references to them
    (`default=date.today`)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and (node.value.id, node.attr) in WALL_CLOCK):
            lines.append(node.lineno)
    return sorted(lines)


def test_only_the_clock_and_record_timestamps_read_the_wall_clock() -> None:
    found = Counter({str(p.relative_to(ROOT)): len(reads) for src in SOURCES for p in src.rglob("*.py")
                     if (reads := wall_clock_reads(p))})
    unexpected = {f: n for f, n in found.items() if n > ALLOWED.get(f, 0)}
    assert not unexpected, f"read the campaign's clock (povguard_platform.clock.Clock) instead: {unexpected}"


def test_the_guard_catches_a_direct_read(tmp_path: Path) -> None:
    handler = tmp_path / "handler.py"
    handler.write_text("from datetime import date, datetime\n\n"
                       "def f():\n    return date.today(), datetime.now()\n\n"
                       "class A:\n    today = staticmethod(date.today)\n")
    assert wall_clock_reads(handler) == [4, 4, 7]
