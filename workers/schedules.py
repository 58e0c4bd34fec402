"""Scheduled pipelines: a schedule file (cron expression → spec) loaded into Celery beat.

```yaml
schedules:
  - {name: nightly-catalog, cron: "0 2 * * *", spec: catalog.yaml}
```
Each firing starts a batch named ``{schedule}-{YYYYmmdd-HHMM}`` (:func:`tasks.firing.fire`, claimed once
in the ledger whatever the number of beats). A firing while the schedule's previous batch is still running
is refused (logged), never doubled.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from celery.schedules import crontab

from workers.errors import WorkersError

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")


class ScheduleError(WorkersError, ValueError):
    """The schedule file is invalid; the message names the entry and the field."""


@dataclass(frozen=True)
class Schedule:
    name: str
    cron: str
    spec: Path
    #: firings reuse done outputs of earlier batches by content (a catalog sync); false: fresh content
    reuse: bool = True
    #: the lane of its batches (0-9; None: the spec's own ``priority``)
    priority: int | None = None

    def crontab(self) -> crontab:
        minute, hour, day_of_month, month, day_of_week = self.cron.split()
        return crontab(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month, day_of_week=day_of_week
        )


def load_schedules(path: str | Path) -> list[Schedule]:
    """Parse and check a schedule file; every spec it names must exist and be valid.

    Raises:
        ScheduleError: naming the entry and field at fault.
    """
    from croniter import croniter

    from letzflow.spec import SpecError, load_spec

    path = Path(path)
    try:
        doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScheduleError(f"{path}: cannot read the schedule file: {exc}") from exc
    entries = doc.get("schedules") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise ScheduleError(f"{path}: expected a list under `schedules:`")
    result, seen = [], set()
    for n, entry in enumerate(entries):
        where = f"{path}: schedules[{n}]"
        if not isinstance(entry, dict):
            raise ScheduleError(f"{where}: expected a mapping with name, cron and spec")
        name, cron, spec = entry.get("name"), entry.get("cron"), entry.get("spec")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ScheduleError(f"{where} field name: {name!r} must be letters, digits, '.', '_' or '-'")
        if name in seen:
            raise ScheduleError(f"{where} field name: {name!r} is used twice")
        seen.add(name)
        if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
            raise ScheduleError(f"{where} ({name}) field cron: {cron!r} is not a 5-field cron expression")
        if not isinstance(spec, str):
            raise ScheduleError(f"{where} ({name}) field spec: give the path of a batch spec")
        spec_path = (path.parent / spec).resolve()
        try:
            load_spec(spec_path)
        except SpecError as exc:
            raise ScheduleError(f"{where} ({name}) field spec: {spec_path} is invalid:\n{exc}") from exc
        except OSError as exc:
            raise ScheduleError(
                f"{where} ({name}) field spec: cannot read {spec_path}: {exc.strerror}"
            ) from exc
        reuse = entry.get("reuse", True)
        if not isinstance(reuse, bool):
            raise ScheduleError(f"{where} ({name}) field reuse: {reuse!r} must be true or false")
        priority = None
        if "priority" in entry:
            from letzflow.spec.top_level import parse_priority

            priority = parse_priority(entry["priority"])
            if priority is None:
                raise ScheduleError(
                    f"{where} ({name}) field priority: {entry['priority']!r} must be low, normal, high or 0-9"
                )
        result.append(Schedule(name, cron, spec_path, reuse, priority))
    return result


def beat_entries(schedules: list[Schedule]) -> dict[str, dict[str, Any]]:
    """Celery beat_schedule entries that fire ``run_schedule`` for each schedule."""
    return {
        f"schedule:{s.name}": {
            "task": "letzflow.run_schedule",
            "schedule": s.crontab(),
            "args": (s.name, str(s.spec), s.cron, s.reuse, s.priority),
            "options": {"queue": "batch", "expires": 3600},
        }
        for s in schedules
    }
