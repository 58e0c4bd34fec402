"""Batch reports on disk: ``manifest.json``, ``report.csv`` and an HTML gallery (``letzflow report``).

Reports can be written at any time: while a batch still runs they are partial and say so. Memory stays
bounded whatever the batch size: the CSV and the gallery walk the ledger a chunk of items at a time,
media are streamed to files, and galleries of more than ``page_size`` items are split into
``gallery.html``, ``gallery-2.html``, … linked to each other.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import itertools
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from storage import lanes
from storage.ledger import Ledger, chunked
from storage.media import StorageError, join_key
from storage.models import ITEM_TERMINAL, Batch, Item, Step
from tasks import runtime
from tasks.batch import manifest
from workers.gallery import PageInfo, item_card, page_head, page_tail

log = logging.getLogger(__name__)

FORMATS = ("json", "csv", "html")
PAGE_SIZE = 2000
CHUNK_ITEMS = 100
DOWNLOAD_THREADS = 8
#: SigV4 presigned URLs live at most 7 days.
PRESIGN_EXPIRES = 7 * 24 * 3600
READ_CHUNK = 1024 * 1024
CSV_COLUMNS = (
    "item_id", "status", "step", "kind", "variant", "branch", "step_state", "letzai_id", "image_id",
    "key", "sha256", "size", "content_type", "reused_from", "error",
)  # fmt: skip
FINISHED_BATCH = ("done", "cancelled")


def default_out(batch_id: str) -> Path:
    """``letzflow-reports/<batch id>`` under the current directory."""
    return Path("letzflow-reports") / batch_id


def write_reports(
    batch_id: str,
    formats: Iterable[str],
    out: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    page_size: int = PAGE_SIZE,
) -> list[Path]:
    """Write the requested reports of a batch into ``out`` and return their paths (the first gallery page
    for ``html``; further pages and ``media/`` sit beside it).

    ``download=True`` copies every output into ``<out>/media/<key>`` so the gallery works offline;
    ``download=False`` links presigned URLs instead (valid 7 days).

    Raises:
        ValueError: an unknown format.
        LookupError: no such batch.
        StorageError: the store cannot be reached (html only; single missing objects are shown in the page).
    """
    wanted = list(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    unknown = sorted(set(wanted) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown report format(s) {', '.join(unknown)}: use json, csv and/or html")
    ledger = runtime.ledger()
    batch = ledger.batch(batch_id)
    if batch is None:
        raise LookupError(f"no batch {batch_id!r} in the ledger")
    folder = Path(out) if out is not None else default_out(batch_id)
    folder.mkdir(parents=True, exist_ok=True)
    counts = ledger.item_counts(batch_id)
    partial = is_partial(batch, counts)
    generated_at = datetime.now(UTC)
    paths: list[Path] = []
    for fmt in wanted:
        if fmt == "json":
            paths.append(
                write_manifest(batch, folder / "manifest.json", partial=partial, generated_at=generated_at)
            )
        elif fmt == "csv":
            paths.append(write_csv(ledger, batch_id, folder / "report.csv"))
        else:
            gallery = Gallery(ledger, runtime.store(), folder, download=download, page_size=page_size)
            paths.append(gallery.write(batch, counts, partial=partial, generated_at=generated_at)[0])
    return paths


def is_partial(batch: Batch, item_counts: dict[str, int]) -> bool:
    """True while the batch may still change: not done/cancelled, or some item not finished."""
    unfinished = sum(n for state, n in item_counts.items() if state not in ITEM_TERMINAL)
    return batch.state not in FINISHED_BATCH or unfinished > 0


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[IO[str]]:
    """Write ``path`` through a temporary file renamed at the end: readers never see half a report."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_manifest(batch: Batch, path: Path, *, partial: bool, generated_at: datetime) -> Path:
    """The manifest document (:func:`tasks.batch.manifest`) plus when and whether partially it was made."""
    doc = manifest(batch)
    doc["report"] = {"generated_at": generated_at.isoformat(), "partial": partial}
    with _atomic(path) as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return path


def _origin(out: dict[str, Any]) -> str:
    """``batch/step`` an output was reused from (no job paid for it), or "" when rendered here."""
    origin = out.get("reused_from") or {}
    return f"{origin.get('batch')}/{origin.get('step')}" if origin else ""


def csv_rows(item: Item, steps: list[Step]) -> Iterator[dict[str, Any]]:
    """One row per stored output and per failed step; an item with neither still gets one row."""
    emitted = False
    for st in steps:
        base = {
            "item_id": item.key, "status": item.state, "step": st.index + 1, "kind": st.kind,
            "variant": st.variant + 1, "branch": lanes.label(st.branch), "step_state": st.state,
            "letzai_id": st.remote_id or "",
        }  # fmt: skip
        for out in st.outputs or []:
            emitted = True
            yield base | {
                "image_id": out.get("image_id") or "", "key": out.get("key", ""),
                "sha256": out.get("sha256", ""), "size": out.get("size", ""),
                "content_type": out.get("content_type", ""), "error": "",
                "reused_from": _origin(out),
            }  # fmt: skip
        if st.state == "failed":
            emitted = True
            yield base | {"error": st.error_message or "failed"}
    if not emitted:
        yield {"item_id": item.key, "status": item.state, "error": item.error or ""}


def write_csv(ledger: Ledger, batch_id: str, path: Path) -> Path:
    """``report.csv``: :data:`CSV_COLUMNS`, one row per item and output (see :func:`csv_rows`)."""
    with _atomic(path) as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, restval="")
        writer.writeheader()
        for item, steps in ledger.iter_items_with_steps(batch_id):
            writer.writerows(csv_rows(item, steps))
    return path


class Gallery:
    """Writes the HTML pages and resolves each output to a local copy or a presigned URL."""

    def __init__(
        self, ledger: Ledger, store: Any, folder: Path, *, download: bool = True, page_size: int = PAGE_SIZE
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.folder = folder
        self.download = download
        self.page_size = max(1, page_size)
        self.media_dir = folder / "media"

    def write(
        self, batch: Batch, item_counts: dict[str, int], *, partial: bool, generated_at: datetime
    ) -> list[Path]:
        """Write every page; their paths, first page first.

        Raises:
            StorageError: the store cannot be reached at all.
        """
        self.store.check()
        step_counts = self.ledger.step_counts(batch.id)
        pages = max(1, math.ceil(sum(item_counts.values()) / self.page_size))
        written: list[Path] = []
        with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
            cards = self._cards(batch.id, pool)
            for number in range(1, pages + 1):
                page = PageInfo(number, pages)
                written.append(self.folder / page.name())
                with _atomic(written[-1]) as out:
                    out.write(page_head(batch, item_counts, step_counts, page, partial=partial,
                                        generated_at=generated_at))  # fmt: skip
                    for card in itertools.islice(cards, self.page_size if number < pages else None):
                        out.write(card)
                    out.write(page_tail(page))
        return written

    def _cards(self, batch_id: str, pool: ThreadPoolExecutor) -> Iterator[str]:
        """Each item's card, in item order; a chunk's media are fetched in parallel before its cards."""
        for chunk in chunked(self.ledger.iter_items_with_steps(batch_id), CHUNK_ITEMS):
            outputs = [o for _, steps in chunk for st in steps for o in st.outputs or []]
            resolved = dict(zip((o["key"] for o in outputs), pool.map(self.resolve, outputs), strict=True))
            for item, steps in chunk:
                yield item_card(item, steps, functools.partial(_lookup, resolved))

    def resolve(self, output: dict[str, Any]) -> tuple[str | None, str | None]:
        """``(src, None)`` for the page, or ``(None, reason)`` when the output cannot be shown."""
        key = str(output.get("key") or "")
        try:
            join_key("", key)
            if not self.download:
                return self.store.presign(key, PRESIGN_EXPIRES), None
            self.fetch(key, self.media_dir / key, output.get("size"), output.get("sha256"))
        except (StorageError, ValueError, OSError) as exc:
            log.warning("report: cannot show %s: %s", key, exc)
            return None, f"not available: {getattr(exc, 'message', None) or exc}"
        return "media/" + quote(key), None

    def fetch(self, key: str, dest: Path, size: int | None = None, sha256: str | None = None) -> None:
        """Stream ``key`` into ``dest`` unless a copy of the right size is there already.

        Raises:
            StorageError: the object is missing or unreadable, or its sha256 differs from the ledger's.
        """
        if size is not None and dest.is_file() and dest.stat().st_size == size:
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as f:
                for chunk in self._chunks(key):
                    digest.update(chunk)
                    f.write(chunk)
            if sha256 and digest.hexdigest() != sha256:
                raise StorageError(f"sha256 of {key!r} differs from the ledger's", code="ChecksumMismatch")
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def _chunks(self, key: str) -> Iterator[bytes]:
        return self.store.iter_bytes(key, READ_CHUNK)


def _lookup(
    resolved: dict[str, tuple[str | None, str | None]], output: dict[str, Any]
) -> tuple[str | None, str | None]:
    return resolved[output["key"]]
