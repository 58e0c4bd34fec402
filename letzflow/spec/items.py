"""A spec's items: an inline list or a CSV streamed row by row, and the checks each item must pass.

Every item is checked by building each step's request with placeholder sources and running
:func:`letzai.limits.validate_request` on it, so range problems surface before anything is submitted.
Memory stays bounded over a 100k-row CSV: only the set of (storage-safe) ids is kept.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from letzai.errors import ValidationError
from letzai.limits import ASSET_EXTENSIONS, validate_request
from letzflow.spec.problems import ProblemLog
from letzflow.spec.requests import (
    ITEM_PROMPT,
    NEEDS_SOURCE,
    TEMPLATED,
    ItemSpec,
    StepSpec,
    TemplateError,
    build_request,
)
from letzflow.spec.requests import item_source_kind as source_kind
from storage.layout import safe_segment

PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"
PLACEHOLDER_URL = "https://example.invalid/source.png"


@dataclass(frozen=True)
class Row:
    """One raw item: ``where`` it is (``items[3]``, ``products.csv row 4``), its fields or what is wrong."""

    where: str
    line: int | None
    fields: dict[str, Any] | None
    error: tuple[str, str] | None = None


@dataclass(frozen=True)
class ItemSource:
    """Where the items come from: an inline list (with YAML line numbers) or a CSV file, re-read per pass."""

    base_dir: Path
    inline: list[Any] | None = None
    lines: tuple[int, ...] = ()
    csv_path: Path | None = None

    def rows(self) -> Iterator[Row]:
        """Every item row in order.

        Raises:
            OSError, UnicodeDecodeError, csv.Error: the CSV cannot be read.
        """
        if self.csv_path is not None:
            yield from self._csv_rows(self.csv_path)
            return
        for n, raw in enumerate(self.inline or []):
            line = self.lines[n] if n < len(self.lines) else None
            if isinstance(raw, dict):
                yield Row(f"items[{n}]", line, self._fields(raw))
            else:
                yield Row(
                    f"items[{n}]",
                    line,
                    None,
                    ("item", f"{raw!r} is not a mapping: write `- {{id: ..., ...}}`"),
                )

    def _csv_rows(self, path: Path) -> Iterator[Row]:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            # strict: an unclosed quote is an error, not the rest of the file read as one value
            reader = csv.reader(handle, strict=True)
            header = [h.strip() for h in next(reader, [])]
            for row_number, values in _strict_rows(reader, path):
                if not any(v.strip() for v in values):
                    continue
                where = f"{path.name} row {row_number}"
                if len(values) != len(header):
                    message = (
                        f"wrong number of columns: {len(values)}, the header has {len(header)} (check the "
                        "commas, and quote values that contain one)"
                    )
                    yield Row(where, row_number, None, ("columns", message))
                    continue
                yield Row(where, row_number, self._fields(dict(zip(header, values, strict=True))))

    def _fields(self, raw: dict[Any, Any]) -> dict[str, Any]:
        fields = {str(k).strip(): v for k, v in raw.items()}
        value = fields.get("image_url")
        if isinstance(value, str):
            value = fields["image_url"] = value.strip()
            if value and source_kind(value) == "path":
                fields["image_url"] = str((self.base_dir / Path(value).expanduser()).resolve())
        return fields

    def items(self) -> Iterator[ItemSpec]:
        """Every well-formed item, streamed."""
        for row in self.rows():
            if row.fields is not None:
                yield ItemSpec(id=item_id(row.fields), fields=row.fields)


def _strict_rows(reader: Any, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(row number, values) from the second row on; a malformed row raises naming where it began."""
    row_number = 1
    while True:
        row_number += 1
        started = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise csv.Error(
                f'{path.name} row {row_number} (line {started}): {exc}: a value opened with a quote (") is '
                'never closed, or a quote inside a value is not doubled ("")'
            ) from exc
        yield row_number, values


def item_id(fields: dict[str, Any]) -> str:
    """The item's id as a string ("" when absent)."""
    value = fields.get("id")
    return "" if value is None else str(value).strip()


def check_items(source: ItemSource, steps: list[StepSpec], log: ProblemLog) -> int:
    """Check every item (ids unique, sources, prompts, ranges); returns how many items there are."""
    seen: set[str] = set()
    validate = CachedValidator()
    clashes: dict[str, list[tuple[str, int | None]]] = {}
    count = 0
    for row in source.rows():
        count += 1
        if row.fields is None:
            assert row.error is not None
            log.add(row.where, row.error[0], row.error[1], row.line)
            continue
        item = ItemSpec(id=item_id(row.fields), fields=row.fields)
        if not item.id:
            log.add(
                row.where,
                "id",
                "missing — every item needs a unique id (it names its storage folder)",
                row.line,
            )
            continue
        label = f"{row.where} (id {item.id})"
        key = safe_segment(item.id)
        if key in seen:
            clashes.setdefault(key, []).append((label, row.line))
            continue
        seen.add(key)
        if steps:
            check_item(steps, item, label, row.line, log, validate)
    if clashes:
        _report_clashes(source, clashes, log)
    return count


def _report_clashes(
    source: ItemSource, clashes: dict[str, list[tuple[str, int | None]]], log: ProblemLog
) -> None:
    first: dict[str, str] = {}
    for row in source.rows():
        ident = item_id(row.fields) if row.fields is not None else ""
        key = safe_segment(ident) if ident else ""
        if key in clashes and key not in first:
            first[key] = f"{row.where} (id {ident})"
            if len(first) == len(clashes):
                break
    for key, labels in clashes.items():
        for label, line in labels:
            log.add(
                label,
                "id",
                f"duplicate id, also at {first[key]}: make ids unique (ids name storage folders, where "
                f"{key!r} stands for both)",
                line,
            )


def source_problem(value: str) -> str | None:
    """What is wrong with an item's ``image_url`` (already resolved), or None."""
    kind = source_kind(value)
    if kind == "s3":
        bucket, _, key = value[len("s3://") :].partition("/")
        return None if bucket and key else f"{value!r} is not of the form s3://bucket/key"
    if kind == "path":
        path = Path(value)
        if not path.is_file():
            return f"local file {path} does not exist (relative paths are read from the spec's folder)"
        if path.suffix.lstrip(".").lower() not in ASSET_EXTENSIONS:
            return f"{path.name} cannot be uploaded to LetzAI: use one of {', '.join(ASSET_EXTENSIONS[:5])}"
    return None


class CachedValidator:
    """:func:`validate_request` memoised on a body's *shape*, so 100k items cost a few distinct checks.

    Only the prompt and the templated URL fields differ between items; the limits check those for
    presence, type and scheme only, so the shape keeps exactly that of them (and the type of long strings,
    such as a base64 mask) and everything else verbatim.
    """

    MAX_SHAPES = 1024

    def __init__(self) -> None:
        self._cache: dict[str, list[ValidationError]] = {}
        self._static_done: set[int] = set()

    def static_step_done(self, step: StepSpec) -> bool:
        """Whether ``step`` reads nothing from the item and was already checked (then skip it)."""
        if step.index in self._static_done:
            return True
        reads_item = "prompt" in step.params or any(k in step.params for k in TEMPLATED)
        if step.index > 0 and step.kind in ("upscale", "skin_fix") and not reads_item:
            self._static_done.add(step.index)
        return False

    @staticmethod
    def _shape(name: str, value: Any) -> Any:
        if name == "prompt" and isinstance(value, str):
            return bool(value.strip())
        if name in TEMPLATED:
            entries = value if isinstance(value, list) else [value]
            kinds = [source_kind(v) if isinstance(v, str) and v else repr(v) for v in entries]
            return kinds if isinstance(value, list) else kinds[0]
        if isinstance(value, str) and len(value) > 256:
            return "<long string>"
        return value

    def __call__(self, endpoint: str, body: dict[str, Any], skip: set[str]) -> list[ValidationError]:
        """The problems of ``body``, as :func:`validate_request` finds them."""
        shape = [(k, self._shape(k, v)) for k, v in body.items()]
        key = repr((endpoint, sorted(skip), shape))
        errors = self._cache.get(key)
        if errors is None:
            errors = validate_request(endpoint, body, skip)
            if len(self._cache) < self.MAX_SHAPES:
                self._cache[key] = errors
        return errors


def _needs_prompt(endpoint: str, body: dict[str, Any]) -> bool:
    return endpoint in ("images", "videos") or (endpoint == "image_edits" and body.get("mode") == "context")


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def check_item(
    steps: list[StepSpec],
    item: ItemSpec,
    label: str,
    line: int | None,
    log: ProblemLog,
    validate: CachedValidator | None = None,
) -> None:
    """Build every step's request for ``item`` with placeholder sources and record what is wrong."""
    image_id: str | None = None
    url: str | None = None
    first = steps[0]
    value = item.fields.get("image_url")
    if first.index != 0:
        image_id, url = PLACEHOLDER_ID, PLACEHOLDER_URL
    elif first.kind != "generate" and value not in (None, ""):
        problem = source_problem(str(value))
        if problem:
            log.add(label, "image_url", problem, line)
            return
        url = PLACEHOLDER_URL
    elif first.kind in NEEDS_SOURCE and not first.names_own_source():
        log.add(
            label,
            "image_url",
            f"missing — step 1 ({first.kind}) needs a source photo: give the item an image_url "
            "(an https URL, a local file or s3://bucket/key)",
            line,
        )
        return
    for step in steps:
        if validate is not None and validate.static_step_done(step):
            image_id, url = _next_source(step.endpoint)
            continue
        where = f"steps[{step.index}].{step.kind}"
        try:
            endpoint, body = build_request(step, item, image_id, url)
        except TemplateError as exc:
            owner = "the item's prompt" if exc.where == ITEM_PROMPT else f"{where}.{exc.where}"
            log.add(
                label,
                exc.name,
                f"missing — {owner} uses {{{exc.name}}} but the item has no field {exc.name!r}: add it "
                "(write {{ and }} for literal braces)",
                line,
            )
            image_id, url = _next_source(step.endpoint)
            continue
        except OSError as exc:
            if exc.filename and Path(exc.filename).exists():
                log.add(None, f"{where}.mask", f"cannot read {exc.filename}: {exc.strerror}")
            return
        skip = set(step.skip_checks)
        if _needs_prompt(endpoint, body) and not str(body.get("prompt") or "").strip():
            log.add(
                label,
                "prompt",
                f"missing — every item needs a prompt (or give the {step.kind} step a prompt)",
                line,
            )
            skip.add("prompt")
        for name in TEMPLATED:
            values = body.get(name)
            for entry in values if isinstance(values, list) else [values] if values else []:
                if isinstance(entry, str) and source_kind(entry) != "url":
                    log.add(
                        label,
                        f"{where}.{name}",
                        f"{_short(entry)} is not a public http(s) URL (only the "
                        "item's image_url may be a local file or s3:// key)",
                        line,
                    )
                    skip.add(name)
        for error in (validate or CachedValidator())(endpoint, body, skip):
            log.add(
                label,
                f"{where}.{error.field}",
                f"{_short(error.value)} is invalid: {error.allowed} — fix it, "
                f"or add `skip_checks: [{error.field}]` to the step if LetzAI changed the range",
                line,
            )
        image_id, url = _next_source(endpoint)


def _next_source(endpoint: str) -> tuple[str | None, str]:
    """Placeholder output of a step: an upscale yields a URL only, other steps a LetzAI image."""
    return (None, PLACEHOLDER_URL) if endpoint == "upscale" else (PLACEHOLDER_ID, PLACEHOLDER_URL)
