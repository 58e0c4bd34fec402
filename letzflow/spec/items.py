"""A spec's items: an inline list or a CSV streamed row by row, and the pass over them all.

Each item is checked by :func:`letzflow.spec.item_checks.check_item`; this module reads the rows (inline
or CSV, strictly) and checks ids across them. Memory stays bounded over a 100k-row CSV: only the set of
(storage-safe) ids is kept.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from letzflow.spec.item_checks import CachedValidator, check_item
from letzflow.spec.problems import ProblemLog
from letzflow.spec.requests import ItemSpec, StepSpec
from letzflow.spec.requests import item_source_kind as source_kind
from storage.layout import safe_segment


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
