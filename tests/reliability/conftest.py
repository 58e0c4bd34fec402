"""The reliability suite's summary: one row per fault, printed at the end of the run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.reliability.harness import FIGURES

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


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """Print the figures table (and save it as JSON for docs/reliability.md)."""
    if not FIGURES:
        return
    rows = [[str(row.get(c, "")) if row.get(c) is not None else "-" for c in COLUMNS] for row in FIGURES]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    terminalreporter.section("letzflow reliability figures")
    terminalreporter.write_line("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    for r in rows:
        terminalreporter.write_line("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    FIGURES_FILE.write_text(json.dumps(FIGURES, indent=2))
