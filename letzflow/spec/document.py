"""Batch specs: YAML or JSON, items inline or from a CSV, validated in full before anything is spent.

```yaml
name: spring-catalog
max_jobs: 500
steps:
  - generate: {width: 1600, height: 1600, quality: 3, variants: 2}
  - skin_fix: {intensity: 3}
  - upscale: {strength: 1, size: 4}
  - animate: {prompt: "slow orbit", settings: {mode: default, duration: 4}}
items_csv: products.csv          # or  items: [{id: sku-001, prompt: "..."}]
```
:func:`load_spec` reports every problem at once (item, field, line, and the fix) as a :class:`SpecError`.
Step parameters use the API's field names (snake_case forms of documented fields are converted); fields
letzflow does not know are passed through unvalidated. Only a first ``generate`` step may fan out.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from letzflow.spec.items import ItemSource, check_items
from letzflow.spec.problems import Problem, ProblemLog, SpecError
from letzflow.spec.requests import ItemSpec, StepSpec
from letzflow.spec.steps import parse_steps
from letzflow.spec.top_level import check_lane, check_top
from storage import lanes


@dataclass
class BatchSpec:
    """A validated spec: its steps, and its items streamed on demand (a CSV is re-read on each pass)."""

    name: str
    steps: list[StepSpec]
    max_jobs: int | None = None
    #: reuse done outputs of earlier batches with the same content key (``reuse: false``: render anew)
    reuse: bool = True
    #: the lane for free in-flight slots (0-9, higher first), the share within it, and an own cap
    priority: int = 5
    weight: float = 1.0
    max_inflight: int | None = None
    source_path: Path | None = None
    spec_hash: str = ""
    item_count: int = 0
    _items: ItemSource | None = field(default=None, repr=False, compare=False)

    def iter_items(self) -> Iterator[ItemSpec]:
        """Every item in order; local ``image_url`` paths are absolute."""
        if self._items is not None:
            yield from self._items.items()

    def variants(self) -> int:
        """Variants per item: the product of the steps' ``variants`` (only ``generate`` fans out)."""
        total = 1
        for step in self.steps:
            total *= step.variants
        return total

    def step_dicts(self) -> list[dict[str, Any]]:
        """The steps as the batch row stores them (:meth:`StepSpec.to_row`)."""
        return [s.to_row() for s in self.steps]

    def planned_jobs(self) -> dict[str, int]:
        """LetzAI jobs per endpoint for the whole batch: items x variants x branches, for each step."""
        jobs: dict[str, int] = {}
        for step, per_item in zip(self.steps, lanes.jobs_per_item(self.step_dicts()), strict=True):
            jobs[step.endpoint] = jobs.get(step.endpoint, 0) + self.item_count * per_item
        return jobs

    def total_jobs(self) -> int:
        """Every LetzAI job the batch would create."""
        return sum(self.planned_jobs().values())


#: libyaml's safe loader where PyYAML was built with it (about 10x faster on a 20,000-item spec).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _node_lines(text: str) -> dict[str, Any]:
    """1-based lines of the top-level keys, ``steps[i]`` and ``items[i]`` (best effort; JSON is YAML)."""
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError:
        return {}
    lines: dict[str, Any] = {}
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            name = str(getattr(key, "value", ""))
            lines[name] = key.start_mark.line + 1
            if isinstance(value, yaml.SequenceNode):
                lines[f"{name}[]"] = tuple(node.start_mark.line + 1 for node in value.value)
    return lines


def _parse(text: str, fmt: str) -> Any:
    try:
        return json.loads(text) if fmt == "json" else yaml.load(text, Loader=_LOADER)
    except json.JSONDecodeError as exc:
        message = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise SpecError([Problem(None, "(syntax)", message, exc.lineno)]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            [Problem(None, "(syntax)", f"invalid YAML{where}: {what}", mark.line + 1 if mark else None)]
        ) from exc


def _csv_source(
    value: Any, base_dir: Path, digest: Any, log: ProblemLog, line: int | None
) -> ItemSource | None:
    if not isinstance(value, str) or not value.strip():
        log.add(None, "items_csv", f"{value!r} is invalid: give the path of a CSV file", line)
        return None
    path = (base_dir / Path(value).expanduser()).resolve()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = [h.strip() for h in next(csv.reader(handle), [])]
    except OSError as exc:
        log.add(None, "items_csv", f"cannot read {path}: {exc.strerror or exc}", line)
        return None
    except UnicodeDecodeError:
        log.add(None, "items_csv", f"{path} is not UTF-8 text: save the CSV as UTF-8", line)
        return None
    if "id" not in header:
        log.add(
            None,
            "items_csv",
            f"{path.name}: the first row must name the columns, including id (got "
            f"{', '.join(header) or 'nothing'})",
            line,
        )
        return None
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        log.add(
            None, "items_csv", f"{path.name}: column {', '.join(dupes)} appears twice in the header", line
        )
        return None
    return ItemSource(base_dir, csv_path=path)


def _hash_masks(steps: list[StepSpec], digest: Any) -> None:
    for step in steps:
        mask = step.params.get("mask")
        if isinstance(mask, str) and Path(mask).is_file():
            digest.update(Path(mask).read_bytes())


def load_spec_text(text: str, fmt: str, base_dir: Path, source_path: Path | None = None) -> BatchSpec:
    """Parse and validate a spec given as text (``fmt`` "yaml" or "json"); paths are read from ``base_dir``.

    Raises:
        SpecError: listing every problem found.
    """
    doc = _parse(text, fmt)
    if not isinstance(doc, dict):
        raise SpecError(
            [Problem(None, "(top level)", "a spec is a mapping with name, steps and items (or items_csv)")]
        )
    lines = _node_lines(text)
    log = ProblemLog()
    name, max_jobs = check_top(doc, lines, log)
    priority, weight, max_inflight = check_lane(doc, lines, log)
    steps, steps_ok = parse_steps(doc.get("steps"), base_dir, lines, log)
    digest = hashlib.sha256(
        json.dumps({k: v for k, v in doc.items() if k != "items_csv"}, sort_keys=True, default=str).encode()
    )
    source = _item_source(doc, base_dir, digest, lines, log)
    _hash_masks(steps, digest)
    spec = BatchSpec(
        name=name,
        steps=steps,
        max_jobs=max_jobs,
        reuse=doc.get("reuse", True) is not False,
        priority=priority,
        weight=weight,
        max_inflight=max_inflight,
        source_path=source_path,
        spec_hash=digest.hexdigest(),
        _items=source,
    )
    if source is not None:
        try:
            spec.item_count = check_items(source, steps, log)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            log.add(None, "items_csv", f"cannot read the CSV: {exc}", lines.get("items_csv"))
        if spec.item_count == 0:
            log.add(None, "items", "the batch has no items", lines.get("items") or lines.get("items_csv"))
    if spec.max_jobs is not None and steps_ok and spec.total_jobs() > spec.max_jobs:
        _too_many_jobs(spec, lines, log)
    log.raise_if_any()
    return spec


def _item_source(
    doc: dict[Any, Any], base_dir: Path, digest: Any, lines: dict[str, Any], log: ProblemLog
) -> ItemSource | None:
    """The items, inline or from ``items_csv`` (None when neither is given right: recorded)."""
    if "items" in doc and "items_csv" in doc:
        log.add(None, "items", "give either items or items_csv, not both", lines.get("items_csv"))
    elif "items_csv" in doc:
        return _csv_source(doc["items_csv"], base_dir, digest, log, lines.get("items_csv"))
    elif isinstance(doc.get("items"), list):
        return ItemSource(base_dir, inline=doc["items"], lines=lines.get("items[]", ()))
    else:
        log.add(
            None,
            "items",
            "give a list of items, each with an id (`items: [{id: sku-1, prompt: ...}]`), "
            "or items_csv: file.csv",
            lines.get("items"),
        )
    return None


def _too_many_jobs(spec: BatchSpec, lines: dict[str, Any], log: ProblemLog) -> None:
    steps = spec.steps
    log.add(
        None,
        "max_jobs",
        f"the batch would create {spec.total_jobs()} LetzAI jobs, more than max_jobs {spec.max_jobs} "
        f"({spec.item_count} items x {spec.variants()} variants x {len(steps)} steps"
        + (
            ", the steps after an edit with imageCompletionsCount > 1 once per image"
            if spec.total_jobs() > spec.item_count * spec.variants() * len(steps)
            else ""
        )
        + "): raise max_jobs or use fewer items, variants, completions or steps",
        lines.get("max_jobs"),
    )


def load_spec(path: str | Path) -> BatchSpec:
    """Read and validate a spec file (``.json`` is JSON, anything else YAML).

    Raises:
        SpecError: listing every problem (also when the file cannot be read).
    """
    path = Path(path).expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise SpecError([Problem(None, "(file)", f"cannot read {path}: {reason}")]) from exc
    fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    return load_spec_text(text, fmt, path.parent, source_path=path)
