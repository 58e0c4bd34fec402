"""The HTML gallery in a real browser: headless Chromium renders it offline, media load, thumbnails show.

Skips when no Chromium binary is found (set ``LETZFLOW_CHROMIUM`` to point at one). Set
``LETZFLOW_UPDATE_SCREENSHOT=1`` to refresh ``docs/gallery-screenshot.png`` from this run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tasks import runtime
from tests.unit.test_report import COLORS, build_sample
from workers.report import write_reports

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
#: Appended to a copy of the gallery: records, once media have loaded, what each element decoded.
PROBE = """<script>
function mark(){for(const i of document.images){i.dataset.loaded=i.complete&&i.naturalWidth>0?"yes":"no"}
for(const v of document.querySelectorAll("video")){v.dataset.loaded=v.videoWidth>0?"yes":"no"}}
window.addEventListener("load",mark);
for(const v of document.querySelectorAll("video")){v.addEventListener("loadedmetadata",mark)}
</script></body>"""


def chromium() -> str:
    """The Chromium (or Chrome) binary to drive, or skip the test."""
    candidates = [os.environ.get("LETZFLOW_CHROMIUM", ""), "/usr/bin/chromium"]
    candidates += [shutil.which(n) or "" for n in ("chromium", "chromium-browser", "google-chrome")]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    pytest.skip("no Chromium binary found (install chromium or set LETZFLOW_CHROMIUM=/path/to/chrome)")


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip


@pytest.fixture
def gallery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    chromium()
    sample = build_sample(tmp_path, state="running")
    monkeypatch.setattr(runtime, "_cache", {"ledger": sample.ledger, "store": sample.store})
    [page] = write_reports(sample.batch_id, ["html"], str(tmp_path / "report"))
    return page


def near(pixel: object, color: tuple[int, int, int], tolerance: int = 6) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel[:3], color, strict=True))


def test_screenshot_shows_the_cards_and_their_thumbnails(gallery: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", gallery.as_uri())
    assert shot.is_file() and shot.stat().st_size > 5000
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
    colors = rgb.getcolors(maxcolors=1 << 20) or []
    assert len(colors) > 50, "the page rendered nearly blank"
    for name in ("red", "blue", "green"):
        covered: int = sum(n for n, pixel in colors if near(pixel, COLORS[name]))
        assert covered > 80 * 80, f"the {name} thumbnail is not on the screenshot"
    if os.environ.get("LETZFLOW_UPDATE_SCREENSHOT") == "1":
        docs = REPO / "docs" / "gallery-screenshot.png"
        docs.parent.mkdir(exist_ok=True)
        rgb.crop((0, 0, 1280, 900)).save(docs, optimize=True)


def test_dom_has_every_item_and_every_medium_decodes(gallery: Path, tmp_path: Path) -> None:
    dom = run_chromium(tmp_path, "--dump-dom", gallery.as_uri()).stdout
    assert re.findall(r'<article class="card \w+" id="item-([^"]+)"', dom) == [
        "sku-ok",
        "sku-&lt;evil&gt;",
        "sku-wait",
    ]
    assert "Image too small" in dom
    probe = gallery.with_name("probe.html")
    html = gallery.read_text().replace(' loading="lazy"', "").replace("</body>", PROBE)
    probe.write_text(html)
    dom = run_chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()).stdout
    loaded = re.findall(r'<(img|video)[^>]*data-loaded="(\w+)"', dom)
    assert loaded == [("img", "yes"), ("img", "yes"), ("video", "yes"), ("img", "yes")]
