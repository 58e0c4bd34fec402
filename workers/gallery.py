"""The HTML gallery of a batch: self-contained pages (inline CSS, no scripts) written a card at a time.

:mod:`workers.report` drives it: :func:`page_head`, one :func:`item_card` per item, then :func:`page_tail`.
Every piece of user or API text goes through :func:`html.escape`; media references are built by the
caller (relative paths for an offline copy, or presigned URLs).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from storage import lanes
from storage.models import Batch, Item, Step

#: A stored output's ``src`` for the page, or ``(None, reason)`` when it cannot be shown.
MediaRef = Callable[[dict[str, Any]], tuple[str | None, str | None]]

ITEM_ORDER = ("done", "failed", "queued", "pending", "cancelled")
STEP_MISSING = {"failed": "failed", "skipped": "skipped", "cancelled": "cancelled", "planned": "planned"}

CSS = """
:root{--bg:#f4f5f7;--card:#fff;--ink:#1d2330;--muted:#677085;--line:#e3e6ec;--ok:#16794c;--okbg:#e3f5ec;
--bad:#b42318;--badbg:#fdecea;--run:#1f5fbf;--runbg:#e6efff;--idle:#5b6475;--idlebg:#eceef2;--warnbg:#fff4d6}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
sans-serif}
header.top{background:var(--card);border-bottom:1px solid var(--line);padding:22px 32px 18px}
h1{margin:0 0 2px;font-size:22px;font-weight:650;letter-spacing:-.01em}
.sub{color:var(--muted);font-size:13px}.sub code{color:var(--ink)}
.chips{display:flex;flex-wrap:wrap;gap:8px;margin-top:14px}
.chip{border-radius:999px;padding:3px 11px;font-size:12.5px;background:var(--idlebg);color:var(--idle)}
.chip b{font-weight:650}
.partial{margin-top:14px;background:var(--warnbg);border:1px solid #f1d58a;border-radius:8px;padding:8px 12px}
.stepsum{margin-top:12px;color:var(--muted);font-size:12.5px}.stepsum span{margin-right:16px}
main{padding:24px 32px 40px;display:grid;gap:18px;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));
align-items:start}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 16px 16px;
box-shadow:0 1px 2px rgba(16,24,40,.05);min-width:0}
.card.failed{border-color:#f3c4bf}
.card>header{display:flex;align-items:center;justify-content:space-between;gap:8px}
.card h2{margin:0;font:600 14px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
overflow-wrap:anywhere}
.prompt{margin:6px 0 12px;color:#3a4256;display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;
overflow:hidden}
.badge{border-radius:999px;padding:2px 9px;font-size:11.5px;font-weight:600;text-transform:uppercase;
letter-spacing:.03em;background:var(--idlebg);color:var(--idle);white-space:nowrap}
.s-done{background:var(--okbg);color:var(--ok)}.s-failed{background:var(--badbg);color:var(--bad)}
.s-queued,.s-running{background:var(--runbg);color:var(--run)}
.variant{margin:10px 0 4px;color:var(--muted);font-size:12px}
.strip{display:grid;gap:8px;grid-template-columns:repeat(auto-fill,minmax(118px,1fr))}
figure{margin:0;min-width:0}
.thumb{display:block;aspect-ratio:1;width:100%;border-radius:8px;overflow:hidden;background:var(--idlebg)}
.thumb img,.thumb video{width:100%;height:100%;object-fit:cover;display:block}
.ph{display:flex;align-items:center;justify-content:center;text-align:center;padding:6px;font-size:11.5px;
color:var(--muted);border:1px dashed #cfd4dd;background:#fafbfc}
.ph.bad{color:var(--bad);border-color:#f3c4bf;background:var(--badbg)}
figcaption{margin-top:4px;font-size:11.5px;line-height:1.3}figcaption b{font-weight:600}
figcaption .t{display:block;color:var(--muted);font-variant-numeric:tabular-nums}
.errors{margin:12px 0 0;padding:8px 10px;list-style:none;background:var(--badbg);border-radius:8px;
color:var(--bad);font-size:12.5px;overflow-wrap:anywhere}
.errors li+li{margin-top:4px}
nav.pages{padding:0 32px 32px;display:flex;flex-wrap:wrap;gap:6px}
nav.pages a,nav.pages span{padding:4px 10px;border-radius:6px;background:var(--card);
border:1px solid var(--line);color:var(--ink);text-decoration:none}
nav.pages span{background:var(--ink);color:#fff}
"""


@dataclass(frozen=True)
class PageInfo:
    """Where a page sits: 1-based ``number`` of ``pages``, and the file name of every page."""

    number: int
    pages: int

    def name(self, number: int | None = None) -> str:
        n = self.number if number is None else number
        return "gallery.html" if n == 1 else f"gallery-{n}.html"


def e(value: object) -> str:
    """HTML-escape any value (None becomes an empty string)."""
    return html.escape("" if value is None else str(value), quote=True)


def as_utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime (SQLite hands back naive values, which the ledger wrote as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def duration(seconds: float) -> str:
    """``8.2 s``, ``3 min 05 s``, ``2 h 04 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def step_timing(step: Step) -> tuple[str, str]:
    """``("submitted → finished", "duration")`` (UTC clock times), or what is known so far."""
    start, end = as_utc(step.submitted_at), as_utc(step.finished_at)
    if start and end:
        return f"{start:%H:%M:%S} → {end:%H:%M:%S}", duration((end - start).total_seconds())
    if start:
        return f"{start:%H:%M:%S} → …", step.state
    if end:
        return f"→ {end:%H:%M:%S}", step.state
    return "", step.state


def _timing_title(step: Step) -> str:
    stamps = [(label, as_utc(value)) for label, value in (("submitted", step.submitted_at),
              ("finished", step.finished_at))]  # fmt: skip
    return ", ".join(f"{label} {value:%Y-%m-%d %H:%M:%S} UTC" for label, value in stamps if value)


def page_head(
    batch: Batch,
    item_counts: Mapping[str, int],
    step_counts: Mapping[tuple[int, str, str], int],
    page: PageInfo,
    *,
    partial: bool,
    generated_at: datetime,
) -> str:
    """The document start: title, batch facts, counts, timings, a partial-report notice."""
    total = sum(item_counts.values())
    chips = [f'<span class="chip"><b>{total}</b> items</span>']
    for state in (*ITEM_ORDER, *sorted(set(item_counts) - set(ITEM_ORDER))):
        if item_counts.get(state):
            chips.append(f'<span class="chip s-{e(state)}"><b>{item_counts[state]}</b> {e(state)}</span>')
    created, finished = as_utc(batch.created_at), as_utc(batch.finished_at)
    timing = f"started {created:%Y-%m-%d %H:%M:%S} UTC" if created else ""
    if created and finished:
        timing += f" · finished {finished:%H:%M:%S} · took {duration((finished - created).total_seconds())}"
    elif created:
        timing += f" · running for {duration((generated_at - created).total_seconds())}"
    notice = ""
    if partial:
        settled = sum(item_counts.get(s, 0) for s in ("done", "failed", "cancelled"))
        notice = (
            f'<div class="partial"><b>Partial report:</b> the batch is {e(batch.state)}; '
            f"{settled} of {total} items have finished. Run the report again for the rest.</div>"
        )
    if batch.message:
        notice += f'<div class="partial">{e(batch.message)}</div>'
    title = f"{batch.name} · {batch.id}" + (f" · page {page.number}" if page.pages > 1 else "")
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>\n"
        f'<header class="top"><h1>{e(batch.name)}</h1>'
        f'<div class="sub">batch <code>{e(batch.id)}</code> · <span class="badge s-{e(batch.state)}">'
        f"{e(batch.state)}</span> · {e(timing)} · {batch.jobs_submitted} LetzAI jobs · "
        f"report {generated_at:%Y-%m-%d %H:%M:%S} UTC</div>"
        f'<div class="chips">{"".join(chips)}</div>{_step_summary(step_counts)}{notice}</header>\n'
        f"{_nav(page)}<main>\n"
    )


def _step_summary(step_counts: Mapping[tuple[int, str, str], int]) -> str:
    per_step: dict[tuple[int, str], dict[str, int]] = {}
    for (index, kind, state), n in step_counts.items():
        per_step.setdefault((index, kind), {})[state] = n
    parts = []
    for (index, kind), states in sorted(per_step.items()):
        detail = ", ".join(f"{n} {e(s)}" for s, n in sorted(states.items(), key=lambda kv: -kv[1]))
        parts.append(f"<span><b>{index + 1} · {e(kind)}</b>: {detail}</span>")
    return f'<div class="stepsum">{"".join(parts)}</div>' if parts else ""


def page_tail(page: PageInfo) -> str:
    """The document end, with links to the other pages."""
    return f"</main>\n{_nav(page)}</body></html>\n"


def _nav(page: PageInfo) -> str:
    if page.pages <= 1:
        return ""
    links = [
        f"<span>{n}</span>" if n == page.number else f'<a href="{e(page.name(n))}">{n}</a>'
        for n in range(1, page.pages + 1)
    ]
    return f'<nav class="pages">{"".join(links)}</nav>\n'


def item_card(item: Item, steps: Sequence[Step], media: MediaRef) -> str:
    """One item: id, prompt, status, every step's outputs in order with timings, failures in red."""
    multi = len({st.variant for st in steps}) > 1
    lines: dict[tuple[int, tuple[int, ...]], list[Step]] = {}
    for step in steps:
        path = tuple(int(p) for p in step.branch.split(".")) if step.branch else ()
        lines.setdefault((step.variant, path), []).append(step)
    strips = []
    for (variant, _path), rows in sorted(lines.items()):
        where = lanes.describe(variant, rows[0].branch, multi)
        label = f'<div class="variant">{e(where)}</div>' if where else ""
        figures = "".join(_figures(item, step, media) for step in sorted(rows, key=lambda s: s.index))
        strips.append(f'{label}<div class="strip">{figures}</div>')
    errors = [
        f"<li>step {st.index + 1} {e(st.kind)}"
        + (f" ({e(where)})" if (where := lanes.describe(st.variant, st.branch, multi)) else "")
        + f": {e(st.error_message or st.state)}</li>"
        for st in steps
        if st.state == "failed"
    ]
    if not errors and item.error and item.state == "failed":
        errors.append(f"<li>{e(item.error)}</li>")
    prompt = item.fields.get("prompt")
    return (
        f'<article class="card {e(item.state)}" id="item-{e(item.key)}">'
        f'<header><h2>{e(item.key)}</h2><span class="badge s-{e(item.state)}">{e(item.state)}</span></header>'
        + (f'<p class="prompt" title="{e(prompt)}">{e(prompt)}</p>' if prompt else "")
        + "".join(strips)
        + (f'<ul class="errors">{"".join(errors)}</ul>' if errors else "")
        + "</article>\n"
    )


def _figures(item: Item, step: Step, media: MediaRef) -> str:
    span, took = step_timing(step)
    caption = (
        f'<figcaption title="{e(_timing_title(step))}"><b>{step.index + 1} · {e(step.kind)}</b>'
        + (f'<span class="t">{e(span)}</span>' if span else "")
        + f'<span class="t">{e(took)}</span>'
    )
    if not step.outputs:
        text = STEP_MISSING.get(step.state, step.state)
        cls = "ph bad" if step.state == "failed" else "ph"
        why = f' title="{e(step.error_message)}"' if step.error_message else ""
        return f'<figure><div class="thumb {cls}"{why}>{e(text)}</div>{caption}</figcaption></figure>'
    parts = []
    for n, out in enumerate(step.outputs, 1):
        src, problem = media(out)
        suffix = f" #{n}" if len(step.outputs) > 1 else ""
        alt = f"{item.key} step {step.index + 1} {step.kind}{suffix}"
        content_type = str(out.get("content_type") or "")
        if src is None:
            body = f'<div class="thumb ph bad">{e(problem or "missing")}</div>'
        elif content_type.startswith("video/"):
            body = (
                f'<div class="thumb"><video controls muted playsinline preload="metadata" '
                f'src="{e(src)}" title="{e(alt)}"></video></div>'
            )
        elif content_type.startswith("image/"):
            body = (
                f'<a class="thumb" href="{e(src)}" target="_blank"><img loading="lazy" src="{e(src)}" '
                f'alt="{e(alt)}"></a>'
            )
        else:
            body = f'<a class="thumb ph" href="{e(src)}" target="_blank">{e(content_type or "file")}</a>'
        origin = out.get("reused_from") or {}
        reused = (
            f'<span class="t" title="no job paid: the same content was rendered by batch '
            f'{e(str(origin.get("batch")))}">reused · {e(str(origin.get("batch")))}</span>'
            if origin
            else ""
        )
        parts.append(f"<figure>{body}{caption}{reused}</figcaption></figure>")
    return "".join(parts)
