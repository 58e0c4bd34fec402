"""Batch reports: manifest.json, report.csv and the HTML gallery, from an SQLite ledger and the fake store."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from PIL import Image

from storage.fake_media import InMemoryMediaStore
from storage.layout import media_key
from storage.ledger import Ledger
from tasks import runtime
from workers.report import write_reports

SAMPLE_MP4 = Path(__file__).resolve().parents[2] / "letzai" / "sim" / "sample.mp4"
STEPS = [
    {"index": 0, "kind": "generate", "remote_kind": "image", "variants": 1},
    {"index": 1, "kind": "upscale", "remote_kind": "upscale", "variants": 1},
    {"index": 2, "kind": "animate", "remote_kind": "video", "variants": 1},
]
EVIL_PROMPT = '<script>alert("x")</script> & a "quoted" bag'
FAILURE = "Image too small: <512 px> & not upscalable"
#: Thumbnail colours: the Chromium test looks for them in the screenshot.
COLORS = {"red": (220, 40, 40), "blue": (40, 90, 220), "green": (30, 170, 80), "amber": (240, 170, 20)}


def png(color: tuple[int, int, int], size: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class SampleBatch:
    ledger: Ledger
    store: InMemoryMediaStore
    batch_id: str
    keys: list[str]


def finish_step(
    ledger: Ledger,
    store: InMemoryMediaStore,
    batch_id: str,
    item: str,
    step: Any,
    data: bytes,
    content_type: str,
) -> str:
    """Store ``data`` as the step's single output and mark the step done, the way the copy task does."""
    ext = "mp4" if content_type == "video/mp4" else "png"
    key = media_key("spring <catalog>", batch_id, item, step.index, step.kind, ext)
    stored = store.put_bytes(key, data, content_type)
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=10 * step.index)
    output = {
        "key": stored.key, "sha256": stored.sha256, "size": stored.size, "content_type": content_type,
        "image_id": f"img-{item}-{step.index}", "source_url": f"https://cdn.example/{item}/{step.index}",
    }  # fmt: skip
    ledger.update_step(
        step.id, state="done", remote_id=f"job-{item}-{step.index}", outputs=[output],
        results=[{"url": output["source_url"], "image_id": output["image_id"]}],
        submitted_at=start, finished_at=start + timedelta(seconds=8.5),
    )  # fmt: skip
    return stored.key


def build_sample(tmp_path: Path, *, state: str = "done", extra_items: int = 0) -> SampleBatch:
    """``sku-ok`` done (2 PNGs, an MP4), ``sku-<evil>`` failed at upscale, ``sku-wait`` not started."""
    ledger = Ledger("sqlite:///" + str(tmp_path / "l.db"))
    store = InMemoryMediaStore(prefix="tenant")
    items = [("sku-ok", {"prompt": "studio photo of a red handbag"}), ("sku-<evil>", {"prompt": EVIL_PROMPT}),
             ("sku-wait", {"prompt": "a lamp"})]  # fmt: skip
    items += [(f"more-{n:03d}", {"prompt": f"extra {n}"}) for n in range(extra_items)]
    batch = ledger.create_batch(name="spring <catalog>", spec_hash="h", steps=STEPS, items=items)
    keys: list[str] = []
    by_key = {item.key: item for item in ledger.items(batch.id)}
    ok, evil = (by_key[k] for k in ("sku-ok", "sku-<evil>"))
    assert ok.id is not None and evil.id is not None
    gen, up, anim = ledger.item_steps(ok.id)
    keys.append(finish_step(ledger, store, batch.id, "sku-ok", gen, png(COLORS["red"]), "image/png"))
    keys.append(finish_step(ledger, store, batch.id, "sku-ok", up, png(COLORS["blue"], 128), "image/png"))
    keys.append(finish_step(ledger, store, batch.id, "sku-ok", anim, SAMPLE_MP4.read_bytes(), "video/mp4"))
    gen, up, anim = ledger.item_steps(evil.id)
    keys.append(finish_step(ledger, store, batch.id, "sku-<evil>", gen, png(COLORS["green"]), "image/png"))
    assert up.id is not None and anim.id is not None
    assert ledger.transition(up.id, ["planned"], "failed", error_message=FAILURE, error_class="BadRequest")
    assert ledger.transition(anim.id, ["planned"], "skipped")
    for item_id in (ok.id, evil.id):
        assert ledger.set_item_state(item_id, ["pending"], "queued")
        assert ledger.settle_item(item_id) in ("done", "failed")
    ledger.update_batch(batch.id, state=state)
    return SampleBatch(ledger, store, batch.id, keys)


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SampleBatch:
    built = build_sample(tmp_path)
    monkeypatch.setattr(runtime, "_cache", {"ledger": built.ledger, "store": built.store})
    return built


def test_manifest_lists_every_item_output_and_error(sample: SampleBatch, tmp_path: Path) -> None:
    [path] = write_reports(sample.batch_id, ["json"], str(tmp_path / "out"))
    doc = json.loads(path.read_text())
    assert path.name == "manifest.json"
    items = {it["id"]: it for it in doc["items"]}
    assert set(items) == {"sku-ok", "sku-<evil>", "sku-wait"}
    assert [o["key"] for o in items["sku-ok"]["outputs"]] == sample.keys[:3]
    assert items["sku-ok"]["outputs"][2]["content_type"] == "video/mp4"
    assert items["sku-<evil>"]["status"] == "failed"
    assert {(e["step"], e["state"]) for e in items["sku-<evil>"]["errors"]} == {(2, "failed"), (3, "skipped")}
    assert FAILURE in items["sku-<evil>"]["error"]
    assert items["sku-wait"]["outputs"] == [] and items["sku-wait"]["status"] == "pending"
    assert doc["report"]["partial"] is True


def test_csv_has_a_row_per_output_and_failure_and_one_for_empty_items(
    sample: SampleBatch, tmp_path: Path
) -> None:
    [path] = write_reports(sample.batch_id, ["csv"], str(tmp_path / "out"))
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert [(r["item_id"], r["step"], r["kind"]) for r in rows] == [
        ("sku-ok", "1", "generate"), ("sku-ok", "2", "upscale"), ("sku-ok", "3", "animate"),
        ("sku-<evil>", "1", "generate"), ("sku-<evil>", "2", "upscale"), ("sku-wait", "", ""),
    ]  # fmt: skip
    first = rows[0]
    data = sample.store.get_bytes(sample.keys[0])
    assert first["status"] == "done" and first["variant"] == "1" and first["letzai_id"] == "job-sku-ok-0"
    assert (first["key"], first["sha256"], first["size"]) == (
        sample.keys[0], hashlib.sha256(data).hexdigest(), str(len(data)),
    )  # fmt: skip
    assert rows[2]["content_type"] == "video/mp4"
    assert rows[4]["status"] == "failed" and rows[4]["error"] == FAILURE and rows[4]["key"] == ""
    assert rows[5]["status"] == "pending" and rows[5]["error"] == ""


def test_gallery_is_offline_escaped_and_shows_failures(sample: SampleBatch, tmp_path: Path) -> None:
    out = tmp_path / "out"
    [page] = write_reports(sample.batch_id, ["html"], str(out))
    doc = page.read_text()
    assert page == out / "gallery.html"
    for item in ("sku-ok", "sku-&lt;evil&gt;", "sku-wait"):
        assert f">{item}</h2>" in doc
    assert "<script>" not in doc and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; a" in doc
    assert "spring &lt;catalog&gt;" in doc
    assert "Image too small: &lt;512 px&gt; &amp; not upscalable" in doc
    srcs = re.findall(r'src="([^"]+)"', doc)
    assert len(srcs) == 4 and all(s.startswith("media/") for s in srcs)
    for src, key in zip(srcs, sample.keys, strict=True):
        local = out / unquote(src)
        assert local.read_bytes() == sample.store.get_bytes(key)
    assert doc.count('<img loading="lazy"') == 3
    assert doc.count("<video controls muted playsinline") == 1
    assert '<span class="t">12:00:10 → 12:00:18</span><span class="t">8.5 s</span>' in doc
    assert "Partial report" in doc and "2 of 3 items have finished" in doc


def test_finished_batch_report_is_not_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = build_sample(tmp_path, state="done")
    wait = next(i for i in built.ledger.items(built.batch_id) if i.key == "sku-wait")
    built.ledger.set_item_state(wait.id, ["pending"], "cancelled")  # type: ignore[arg-type]
    monkeypatch.setattr(runtime, "_cache", {"ledger": built.ledger, "store": built.store})
    paths = write_reports(built.batch_id, ["json", "html"], str(tmp_path / "out"))
    assert json.loads(paths[0].read_text())["report"]["partial"] is False
    assert "Partial report" not in paths[1].read_text()


def test_without_download_the_gallery_links_presigned_urls(sample: SampleBatch, tmp_path: Path) -> None:
    out = tmp_path / "out"
    [page] = write_reports(sample.batch_id, ["html"], str(out), download=False)
    srcs = re.findall(r'src="([^"]+)"', page.read_text())
    assert srcs == [sample.store.presign(k, 7 * 24 * 3600) for k in sample.keys]
    assert not (out / "media").exists()


def test_missing_media_is_reported_in_the_card_not_raised(sample: SampleBatch, tmp_path: Path) -> None:
    sample.store.delete(sample.keys[1])
    [page] = write_reports(sample.batch_id, ["html"], str(tmp_path / "out"))
    doc = page.read_text()
    assert "not available: no object" in doc
    assert len(re.findall(r'src="media/', doc)) == 3


def test_redownload_skips_copies_already_on_disk(sample: SampleBatch, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_reports(sample.batch_id, ["html"], str(out))
    sample.store.available = False
    with pytest.raises(Exception, match="unreachable"):
        write_reports(sample.batch_id, ["html"], str(out))
    sample.store.available = True
    calls: list[str] = []
    original = sample.store.get_bytes

    def counting_get(key: str) -> bytes:
        calls.append(key)
        return original(key)

    sample.store.get_bytes = counting_get  # type: ignore[method-assign]
    write_reports(sample.batch_id, ["html"], str(out))
    assert calls == []


def test_big_batches_are_paginated_with_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = build_sample(tmp_path, extra_items=7)
    monkeypatch.setattr(runtime, "_cache", {"ledger": built.ledger, "store": built.store})
    out = tmp_path / "out"
    [first] = write_reports(built.batch_id, ["html"], str(out), page_size=4)
    pages = sorted(out.glob("gallery*.html"))
    assert [p.name for p in pages] == ["gallery-2.html", "gallery-3.html", "gallery.html"]
    cards = [re.findall(r'<article class="card [a-z]+" id="item-([^"]+)"', p.read_text()) for p in pages]
    assert [len(c) for c in cards] == [4, 2, 4]
    expected = [html.escape(i.key) for i in built.ledger.items(built.batch_id)]
    assert sorted(card for page in cards for card in page) == sorted(expected)
    assert 'href="gallery-2.html"' in first.read_text() and 'href="gallery.html"' in pages[1].read_text()


def test_unknown_format_and_unknown_batch_fail_clearly(sample: SampleBatch, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pdf"):
        write_reports(sample.batch_id, ["pdf"], str(tmp_path))
    with pytest.raises(LookupError, match="nope"):
        write_reports("nope", ["json"], str(tmp_path))


def test_default_folder_is_letzflow_reports_batch_id(
    sample: SampleBatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    paths = write_reports(sample.batch_id, ["json", "csv", "html"])
    folder = Path("letzflow-reports") / sample.batch_id
    assert paths == [folder / "manifest.json", folder / "report.csv", folder / "gallery.html"]
    assert all(p.is_file() for p in paths)
    assert not list(folder.rglob("*.tmp")) and not list(folder.rglob("*.part"))


def test_media_stream_from_s3_into_the_offline_copy(
    sample: SampleBatch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import mock_aws

    from storage.media import S3MediaStore, make_s3_client
    from workers.report import Gallery

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "t"),
        ("AWS_SECRET_ACCESS_KEY", "t"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = make_s3_client(None)
        client.create_bucket(Bucket="media")
        s3 = S3MediaStore(client, "media", "tenant")
        data = SAMPLE_MP4.read_bytes()
        stored = s3.put_bytes("b/1/item/03-animate.mp4", data, "video/mp4")
        gallery = Gallery(sample.ledger, s3, tmp_path)
        output = {"key": stored.key, "size": stored.size, "sha256": stored.sha256}
        assert gallery.resolve(output) == ("media/b/1/item/03-animate.mp4", None)
        assert (tmp_path / "media" / stored.key).read_bytes() == data
        src, problem = gallery.resolve({"key": "b/1/item/gone.png", "size": 3, "sha256": "x"})
        assert src is None and problem is not None and "no object" in problem
        (tmp_path / "media" / stored.key).unlink()
        src, problem = gallery.resolve(output | {"sha256": "0" * 64})
        assert src is None and problem is not None and "sha256" in problem
        assert not (tmp_path / "media" / stored.key).exists()
