"""Incremental catalogs: key every planned step by content, reuse what an earlier batch already rendered.

- :func:`content_keys_for` gives :meth:`Ledger.create_batch` each planned step's content key
  (:mod:`letzflow.spec.content`), reading each input photo's identity once: a local file's sha256, an
  ``s3://`` object's ETag, a URL's ETag or Last-Modified (HEAD), else the sha256 of its bytes; a URL that
  cannot be read now is keyed by its address.
- :func:`reuse_done` marks the batch's planned steps whose key matches a done step of another batch as
  ``ready`` with that step's outputs: their copy is server-side, no LetzAI job is created.
- :func:`summarize` says, per step, how many are reused, changed since the catalog's last run, or new, the
  jobs that will be paid, and which items disappeared (reported, never deleted); it streams the items a
  chunk at a time, so a 100k-item catalog is planned in bounded memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from letzflow.spec import BatchSpec, ItemSpec, item_source_kind
from letzflow.spec.content import item_keys, photo_identity
from storage import lanes
from storage.ledger import Ledger, chunked
from storage.media_base import MediaStore, StorageError
from storage.models import Batch

CHUNK = 500
HEAD_TIMEOUT = 5.0
Keys = dict[tuple[int, int, str], str]


class PhotoIdentities:
    """Each input photo's identity, read once per value (a catalog names the same photo many times).

    ``store`` reads an ``s3://`` photo's ETag; ``open_store`` builds it instead, on the first ``s3://`` photo
    (an S3 client costs a few tenths of a second to build, and most catalogs name none).
    """

    def __init__(
        self, store: MediaStore | None = None, *, open_store: Callable[[], MediaStore] | None = None
    ) -> None:
        self.store = store
        self.open_store = open_store
        self.known: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        if value not in self.known:
            self.known[value] = self._read(value)
        return self.known[value]

    def _read(self, value: str) -> str:
        kind = item_source_kind(value)
        if kind == "path":
            digest = hashlib.sha256()
            with Path(value).open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            return photo_identity(kind, value, sha256=digest.hexdigest())
        if kind == "s3":
            bucket, _, key = value[len("s3://") :].partition("/")
            etag = None
            if self.store is None and self.open_store is not None:
                self.store, self.open_store = self.open_store(), None
            if self.store is not None:
                try:
                    etag = self.store.etag_of(bucket, key)
                except StorageError:
                    etag = None
            return photo_identity(kind, value, etag=etag)
        return photo_identity(kind, value, **_url_identity(value))


def _url_identity(url: str) -> dict[str, str | None]:
    import requests  # only catalogs with URL photos need it (its import is a twentieth of a second)

    try:
        head = requests.head(url, timeout=HEAD_TIMEOUT, allow_redirects=True)
        tag = head.headers.get("ETag") or head.headers.get("Last-Modified")
        if head.ok and tag:
            return {"etag": tag}
        with requests.get(url, timeout=HEAD_TIMEOUT, stream=True) as got:
            if not got.ok:
                return {}
            digest = hashlib.sha256()
            for chunk in got.iter_content(1 << 16):
                digest.update(chunk)
            return {"sha256": digest.hexdigest()}
    except requests.RequestException:
        return {}


def content_keys_for(spec: BatchSpec, photos: PhotoIdentities) -> Callable[[str, dict[str, Any]], Keys]:
    """``keys(item key, fields)`` → each planned step's content key, by (variant, index, branch)."""
    plan = lanes.plan(spec.step_dicts())

    def keys(item_key: str, fields: dict[str, Any]) -> Keys:
        public = {k: v for k, v in fields.items() if not k.startswith("_")}
        photo = photos(str(fields["image_url"])) if fields.get("image_url") else None
        return item_keys(spec.steps, ItemSpec(item_key, public), plan, photo, parent=lanes.parent)

    return keys


def reuse_done(ledger: Ledger, batch: Batch) -> int:
    """Mark the batch's planned steps that an earlier batch already rendered; how many."""
    reused = 0
    for chunk in ledger.catalog.planned_with_keys(batch.id):
        found = ledger.catalog.done_by_key((k for _i, k in chunk), exclude_batch=batch.id)
        reused += ledger.catalog.reuse([(i, found[k]) for i, k in chunk if k in found])
    return reused


@dataclass
class StepPlan:
    """One step of the catalog: planned jobs by what becomes of them."""

    kind: str
    reused: int = 0
    changed: int = 0
    new: int = 0

    @property
    def to_pay(self) -> int:
        return self.changed + self.new


@dataclass
class PlanSummary:
    steps: list[StepPlan]
    previous: str | None = None
    disappeared: list[str] = field(default_factory=list)

    @property
    def jobs_to_pay(self) -> int:
        return sum(s.to_pay for s in self.steps)

    @property
    def reused(self) -> int:
        return sum(s.reused for s in self.steps)


def summarize(ledger: Ledger, spec: BatchSpec, photos: PhotoIdentities, *, fresh: bool) -> PlanSummary:
    """What running ``spec`` would pay for, step by step, against this ledger (nothing is written)."""
    previous = ledger.catalog.last_run(spec.name)
    before = ledger.catalog.step_keys(previous.id) if previous is not None else {}
    gone = {key for key, *_ in before}
    summary = PlanSummary([StepPlan(s.kind) for s in spec.steps], previous.id if previous else None)
    keys_of = content_keys_for(spec, photos)
    for chunk in chunked(spec.iter_items(), CHUNK):
        keyed = [(item.id, keys_of(item.id, item.fields)) for item in chunk]
        done = {} if fresh else ledger.catalog.done_by_key(k for _i, ks in keyed for k in ks.values())
        for item_id, keys in keyed:
            gone.discard(item_id)
            for (variant, index, branch), key in keys.items():
                tally = summary.steps[index]
                if key in done:
                    tally.reused += 1
                elif (item_id, variant, index, branch) in before:
                    tally.changed += 1
                else:
                    tally.new += 1
    summary.disappeared = sorted(gone)
    return summary
