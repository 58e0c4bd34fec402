"""Batch specs: YAML or JSON, items inline or from a CSV; validated in full before anything is spent.

Every problem is collected (item id, field, line) and raised at once as a :class:`SpecError`. Items from a
CSV are streamed: a 100k-row file is never held in memory as objects (only the set of ids is kept).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from letzai.limits import validate_request
from tasks.step_requests import (
    ENDPOINTS,
    ItemSpec,
    StepSpec,
    TemplateError,
    build_request,
    item_source_kind,
)

__all__ = ["BatchSpec", "ItemSpec", "Problem", "SpecError", "StepSpec", "build_request", "item_source_kind",
           "load_spec", "load_spec_text"]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_VARIANTS = 10
PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"
PLACEHOLDER_URL = "https://example.invalid/source.png"
NEEDS_SOURCE = ("edit", "skin_fix", "upscale")
MAX_REPORTED = 200


@dataclass
class Problem:
    item: str | None
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.item + ' ' if self.item else ''}field {self.field}: {self.message}"


class SpecError(ValueError):
    """The spec is invalid; ``problems`` lists every problem found (nothing was submitted)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = [str(p) for p in problems[:MAX_REPORTED]]
        if len(problems) > MAX_REPORTED:
            shown.append(f"… and {len(problems) - MAX_REPORTED} more problems")
        super().__init__("\n".join(shown))


@dataclass
class BatchSpec:
    name: str
    steps: list[StepSpec]
    max_jobs: int | None = None
    source_path: Path | None = None
    spec_hash: str = ""
    item_count: int = 0
    _inline: list[dict[str, Any]] | None = field(default=None, repr=False)
    _csv: Path | None = field(default=None, repr=False)

    def iter_items(self) -> Iterator[ItemSpec]:
        """Every item, in order (a CSV is read again on each call)."""
        if self._csv is not None:
            for _line, row in _csv_rows(self._csv):
                yield ItemSpec(id=str(row.get("id", "")).strip(), fields=_clean(row))
        else:
            for raw in self._inline or []:
                yield ItemSpec(id=str(raw.get("id", "")).strip(), fields=_clean(raw))

    def variants(self) -> int:
        total = 1
        for step in self.steps:
            total *= step.variants
        return total

    def planned_jobs(self) -> dict[str, int]:
        """LetzAI jobs per endpoint for the whole batch."""
        jobs: dict[str, int] = {}
        for step in self.steps:
            jobs[step.endpoint] = jobs.get(step.endpoint, 0) + self.item_count * self.variants()
        return jobs

    def total_jobs(self) -> int:
        return sum(self.planned_jobs().values())


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in row.items() if k is not None}


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            yield reader.line_num, row


def _item_lines(text: str) -> list[int]:
    """Line numbers of the inline items in a YAML/JSON text (best effort)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if getattr(key, "value", None) == "items" and isinstance(value, yaml.SequenceNode):
            return [node.start_mark.line + 1 for node in value.value]
    return []


def _parse_steps(raw: Any, base_dir: Path, problems: list[Problem]) -> list[StepSpec]:
    if not isinstance(raw, list) or not raw:
        problems.append(Problem(None, "steps", "give a non-empty list of steps, e.g. `- generate: {width: 1600}`"))
        return []
    steps = []
    for n, entry in enumerate(raw):
        where = f"steps[{n}]"
        if not isinstance(entry, dict) or len(entry) != 1:
            problems.append(Problem(None, where, "each step is a one-key mapping such as `- upscale: {size: 4}`"))
            continue
        kind, params = next(iter(entry.items()))
        if kind not in ENDPOINTS:
            problems.append(Problem(None, where, f"unknown step kind {kind!r}; known: {', '.join(ENDPOINTS)}"))
            continue
        params = dict(params or {}) if isinstance(params, dict | type(None)) else None
        if params is None:
            problems.append(Problem(None, f"{where}.{kind}", "step parameters must be a mapping"))
            continue
        variants = params.pop("variants", 1)
        if variants != 1 and kind != "generate":
            problems.append(Problem(None, f"{where}.{kind}.variants", "only a generate step can fan out"))
        if not isinstance(variants, int) or isinstance(variants, bool) or not 1 <= variants <= MAX_VARIANTS:
            problems.append(Problem(None, f"{where}.{kind}.variants",
                                    f"{variants!r} is invalid: an integer 1–{MAX_VARIANTS}"))
            variants = 1
        skip = params.pop("skip_checks", [])
        if not isinstance(skip, list) or not all(isinstance(s, str) for s in skip):
            problems.append(Problem(None, f"{where}.{kind}.skip_checks", "a list of field names"))
            skip = []
        mask = params.get("mask")
        if isinstance(mask, str) and not mask.startswith("data:"):
            mask_path = (base_dir / mask).resolve()
            if not mask_path.is_file():
                problems.append(Problem(None, f"{where}.{kind}.mask", f"mask file {mask_path} does not exist"))
            params["mask"] = str(mask_path)
        steps.append(StepSpec(index=len(steps), kind=kind, params=params, variants=variants,
                              skip_checks=frozenset(skip)))
    return steps


def _check_item(spec: BatchSpec, item: ItemSpec, label: str, line: int | None, problems: list[Problem]) -> None:
    image_id, url = None, None
    for step in spec.steps:
        if step.index == 0 and step.kind in NEEDS_SOURCE + ("animate",):
            url = item.fields.get("image_url") or None
            if not url and step.kind in NEEDS_SOURCE and not _names_source(step):
                problems.append(Problem(label, "image_url", f"step 1 ({step.kind}) needs a source photo: give the "
                                        "item an image_url (https URL, local file or s3://bucket/key)", line))
                return
            if url and item_source_kind(str(url)) == "path" and not Path(str(url)).is_file():
                problems.append(Problem(label, "image_url", f"local file {url} does not exist", line))
                return
            url = PLACEHOLDER_URL if url else None
        try:
            endpoint, body = build_request(step, item, image_id, url)
        except TemplateError as exc:
            problems.append(Problem(label, f"steps[{step.index}].{step.kind}.prompt", str(exc), line))
            return
        except OSError as exc:
            problems.append(Problem(label, f"steps[{step.index}].{step.kind}", str(exc), line))
            return
        if endpoint in ("images", "videos") and not str(body.get("prompt") or "").strip():
            problems.append(Problem(label, "prompt", f"missing — step {step.index + 1} ({step.kind}) needs a "
                                    "prompt: give the item a prompt or the step a `prompt:`", line))
            return
        for error in validate_request(endpoint, body, step.skip_checks):
            problems.append(Problem(label, f"steps[{step.index}].{step.kind}.{error.field}",
                                    f"{error.value!r} is invalid: {error.allowed} (or add "
                                    f"`skip_checks: [{error.field}]` to the step if LetzAI changed the range)", line))
        image_id, url = (PLACEHOLDER_ID, PLACEHOLDER_URL) if step.endpoint != "upscale" else (None, PLACEHOLDER_URL)


def _names_source(step: StepSpec) -> bool:
    return any(k in step.params for k in ("imageUrl", "inputImageUrls", "originalImageCompletionId", "imageUrls"))


def load_spec_text(text: str, fmt: str, base_dir: Path, source_path: Path | None = None) -> BatchSpec:
    """Parse and validate a spec given as text ("yaml" or "json"). Raises SpecError with every problem."""
    problems: list[Problem] = []
    try:
        doc = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise SpecError([Problem(None, "(syntax)", f"invalid JSON: {exc.msg} at column {exc.colno}", exc.lineno)]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        col = f" at column {mark.column + 1}" if mark else ""
        raise SpecError([Problem(None, "(syntax)", f"invalid YAML: {getattr(exc, 'problem', exc)}{col}", line)]) from exc
    if not isinstance(doc, dict):
        raise SpecError([Problem(None, "(top level)", "a spec is a mapping with name, steps and items")])
    known = {"name", "steps", "items", "items_csv", "max_jobs", "description"}
    for key in doc:
        if key not in known:
            problems.append(Problem(None, str(key), f"unknown top-level field; known: {', '.join(sorted(known))}"))
    name = doc.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(Problem(None, "name", f"{name!r} is invalid: letters, digits, '-', '_' or '.' (it becomes "
                                "part of the storage keys)"))
        name = "invalid"
    max_jobs = doc.get("max_jobs")
    if max_jobs is not None and (not isinstance(max_jobs, int) or isinstance(max_jobs, bool) or max_jobs < 1):
        problems.append(Problem(None, "max_jobs", f"{max_jobs!r} is invalid: a positive integer"))
        max_jobs = None
    steps = _parse_steps(doc.get("steps"), base_dir, problems)
    spec = BatchSpec(name=name, steps=steps, max_jobs=max_jobs, source_path=source_path)
    digest = hashlib.sha256(json.dumps({k: v for k, v in doc.items() if k != "items_csv"}, sort_keys=True,
                                       default=str).encode())
    lines: list[int] = []
    if "items" in doc and "items_csv" in doc:
        problems.append(Problem(None, "items", "give either items or items_csv, not both"))
    elif "items_csv" in doc:
        csv_path = (base_dir / str(doc["items_csv"])).resolve()
        spec._csv = csv_path
        try:
            with csv_path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            with csv_path.open(newline="", encoding="utf-8-sig") as handle:
                header = next(csv.reader(handle), None)
            if not header or "id" not in [h.strip() for h in header]:
                problems.append(Problem(None, "items_csv", f"{csv_path}: the first row must name the columns, "
                                        "including id"))
                spec._csv = None
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(None, "items_csv", f"cannot read {csv_path}: {exc}"))
            spec._csv = None
    elif isinstance(doc.get("items"), list):
        spec._inline = [i if isinstance(i, dict) else {"__invalid__": i} for i in doc["items"]]
        lines = _item_lines(text) if fmt == "yaml" else []
    else:
        problems.append(Problem(None, "items", "give a list of items (each with an id) or items_csv: file.csv"))
    spec.spec_hash = digest.hexdigest()
    _check_items(spec, lines, problems)
    if spec.max_jobs is not None and spec.total_jobs() > spec.max_jobs:
        problems.append(Problem(None, "max_jobs", f"the batch would create {spec.total_jobs()} LetzAI jobs, more "
                                f"than max_jobs {spec.max_jobs}: raise max_jobs or trim items/variants"))
    if problems:
        raise SpecError(problems)
    return spec


def _check_items(spec: BatchSpec, lines: list[int], problems: list[Problem]) -> None:
    seen: dict[str, str] = {}
    count = 0
    rows: Iterator[tuple[int | None, dict[str, Any]]]
    if spec._csv is not None:
        rows = ((line, row) for line, row in _csv_rows(spec._csv))
    else:
        rows = ((lines[n] if n < len(lines) else None, raw) for n, raw in enumerate(spec._inline or []))
    try:
        for n, (line, raw) in enumerate(rows):
            count += 1
            where = f"row {line}" if spec._csv is not None else f"items[{n}]"
            if "__invalid__" in raw:
                problems.append(Problem(where, "item", "each item is a mapping with an id", line))
                continue
            if None in raw or any(v is None for v in raw.values()):
                problems.append(Problem(where, "columns", "wrong number of columns for the CSV header", line))
                continue
            item = ItemSpec(id=str(raw.get("id", "")).strip(), fields=_clean(raw))
            if not item.id:
                problems.append(Problem(where, "id", "missing: every item needs a unique id", line))
                continue
            label = f"{where} (id {item.id})"
            if item.id in seen:
                problems.append(Problem(label, "id", f"duplicate id, also at {seen[item.id]}", line))
                continue
            seen[item.id] = where
            _check_item(spec, item, label, line, problems)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        problems.append(Problem(None, "items_csv", f"cannot read the CSV: {exc}"))
    if count == 0 and (spec._csv is not None or spec._inline is not None):
        problems.append(Problem(None, "items", "the batch has no items"))
    spec.item_count = count


def load_spec(path: str | Path) -> BatchSpec:
    """Read and validate a spec file (.yaml, .yml or .json). Raises SpecError, or OSError if unreadable."""
    path = Path(path).resolve()
    text = path.read_text(encoding="utf-8")
    fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    return load_spec_text(text, fmt, path.parent, source_path=path)
