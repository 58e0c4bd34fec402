"""The reliability suite's summary: one row per fault, printed at the end of the run.

Tests run in several processes (pytest-xdist), so each row is appended as a JSON line to one log file
(``LETZFLOW_RELIABILITY_FIGURES_LOG``, chosen by the controlling process and inherited by the test
processes); the controller prints the table and saves it as JSON (``LETZFLOW_RELIABILITY_FIGURES``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

COLUMNS = (
    "fault",
    "items",
    "done",
    "failed",
    "lost",
    "duplicate_posts",
    "unconfirmed",
    "lineage_checked",
    "recovered_s",
    "note",
)
FIGURES_FILE = Path(os.environ.get("LETZFLOW_RELIABILITY_FIGURES", "/tmp/letzflow-reliability-figures.json"))


LOG_VAR = "LETZFLOW_RELIABILITY_FIGURES_LOG"


def start_log() -> None:
    """In the controlling process: a fresh log for this run's rows (test processes inherit its path)."""
    if LOG_VAR not in os.environ:
        handle, path = tempfile.mkstemp(prefix="letzflow-figures-", suffix=".jsonl")
        os.close(handle)
        os.environ[LOG_VAR] = path


def append_row(row: dict[str, Any]) -> None:
    """Add one row (from any test process); a single short append is atomic."""
    path = os.environ.get(LOG_VAR)
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(row) + "\n")


def read_rows() -> list[dict[str, Any]]:
    path = os.environ.get(LOG_VAR)
    if not path or not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]


def terminal_summary(terminalreporter: Any) -> None:
    """Print the figures table (and save it as JSON for docs/reliability.md)."""
    FIGURES = read_rows()
    if not FIGURES:
        return
    rows = [[str(row.get(c, "")) if row.get(c) is not None else "-" for c in COLUMNS] for row in FIGURES]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    terminalreporter.section("letzflow reliability figures")
    terminalreporter.write_line("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    for r in rows:
        terminalreporter.write_line("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    FIGURES_FILE.write_text(json.dumps(FIGURES, indent=2))
