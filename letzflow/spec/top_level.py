"""A spec's top-level fields other than its steps and items: ``name``, ``max_jobs``, ``reuse`` and the lane
(``priority``, ``weight``, ``max_inflight``), each checked with the fix named."""

from __future__ import annotations

import difflib
import re
from typing import Any

from letzflow.spec.problems import ProblemLog

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
TOP_LEVEL = (
    "name",
    "description",
    "max_jobs",
    "reuse",
    "priority",
    "weight",
    "max_inflight",
    "steps",
    "items",
    "items_csv",
)
#: Named priorities (any whole number 0-9 works too; higher gets free slots first).
PRIORITIES = {"low": 1, "normal": 5, "high": 9}


def check_top(doc: dict[Any, Any], lines: dict[str, Any], log: ProblemLog) -> tuple[str, int | None]:
    """Unknown top-level fields, ``name``, ``max_jobs`` and ``reuse``; the name and max_jobs to use."""
    for key in doc:
        if key not in TOP_LEVEL:
            close = difflib.get_close_matches(str(key), TOP_LEVEL, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            log.add(
                None,
                str(key),
                f"unknown top-level field: {hint}known: {', '.join(TOP_LEVEL)}",
                lines.get(str(key)),
            )
    name = doc.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        log.add(
            None,
            "name",
            f"{name!r} is invalid: use 1-100 letters, digits, '-', '_' or '.' starting with a "
            "letter or digit, e.g. spring-catalog (it becomes part of the storage keys)",
            lines.get("name"),
        )
        name = "invalid"
    max_jobs = doc.get("max_jobs")
    if max_jobs is not None and (not isinstance(max_jobs, int) or isinstance(max_jobs, bool) or max_jobs < 1):
        log.add(
            None,
            "max_jobs",
            f"{max_jobs!r} is invalid: a positive whole number of LetzAI jobs",
            lines.get("max_jobs"),
        )
        max_jobs = None
    reuse = doc.get("reuse", True)
    if not isinstance(reuse, bool):
        what = f"{reuse!r} is invalid: true (reuse earlier outputs) or false"
        log.add(None, "reuse", what, lines.get("reuse"))
    return name, max_jobs


def parse_priority(value: Any) -> int | None:
    """A priority name (low, normal, high) or a whole number 0-9 as its number; None when invalid."""
    if isinstance(value, str) and value.strip().lower() in PRIORITIES:
        return PRIORITIES[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return value
    return None


def check_lane(doc: dict[Any, Any], lines: dict[str, Any], log: ProblemLog) -> tuple[int, float, int | None]:
    """``priority``, ``weight`` and ``max_inflight``, each checked (the defaults: normal, 1, none)."""
    priority = parse_priority(doc.get("priority", "normal"))
    if priority is None:
        log.add(
            None,
            "priority",
            f"{doc.get('priority')!r} is invalid: low, normal, high, or a whole number 0-9 (higher first)",
            lines.get("priority"),
        )
        priority = 5
    weight = doc.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
        log.add(
            None,
            "weight",
            f"{weight!r} is invalid: a number above 0 (share within its priority)",
            lines.get("weight"),
        )
        weight = 1
    cap = doc.get("max_inflight")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        log.add(
            None,
            "max_inflight",
            f"{cap!r} is invalid: a whole number of jobs >= 1",
            lines.get("max_inflight"),
        )
        cap = None
    return priority, float(weight), cap
