"""Planning an incremental catalog: a 10k-item re-run against a ledger that already holds 100k done steps.

Measures, on a fresh SQLite ledger (no services needed):
- ``seed_s``: writing the earlier catalog (50k items x 2 steps, marked done with stored outputs);
- ``summary_s``: ``letzflow run --dry-run``'s plan (``tasks.catalog.summarize``: keys, bulk lookups);
- ``create_s`` + ``reuse_s``: recording the batch with its content keys, then marking the reused steps;
- ``jobs_to_pay`` for a 1 % change (100 items' prompts changed: 200 jobs of 20,000 planned);
and, as baselines in the same run, the same plan against an empty ledger (nothing to reuse) and against a
ledger holding only the catalog itself (``--done-items`` = ``--items``: the same matches, 5x fewer rows):
``scale_summary_ratio`` and ``scale_create_ratio`` (100k-step ledger over the small one) near 1 mean the
lookups do not grow with the ledger (indexed, never a scan per item).

    .venv/bin/python -m bench.bench_plan [--items 10000] [--done-items 50000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml
from sqlalchemy import update
from sqlmodel import col

from bench.harness import machine
from letzflow.spec import load_spec
from storage.ledger import Ledger
from storage.models import Step
from tasks.catalog import PhotoIdentities, content_keys_for, reuse_done, summarize

STEPS = [{"generate": {"width": 1024, "height": 1024}}, {"upscale": {"strength": 1, "size": 4}}]


def write_spec(folder: Path, name: str, items: int, changed: int = 0) -> Path:
    rows = [
        {"id": f"sku-{k:06d}", "prompt": f"studio photo of product {k}" + (" v2" if k < changed else "")}
        for k in range(items)
    ]
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": "shop", "steps": STEPS, "items": rows}))
    return path


def seed(ledger: Ledger, folder: Path, items: int) -> float:
    """An earlier run of the catalog, every step done with one stored output."""
    t0 = time.perf_counter()
    spec = load_spec(write_spec(folder, "seed", items))
    batch = ledger.create_batch(
        name="shop",
        spec_hash="seed",
        steps=spec.step_dicts(),
        items=((i.id, i.fields) for i in spec.iter_items()),
        content_keys=content_keys_for(spec, PhotoIdentities(None)),
    )
    out = [{"key": "k", "sha256": "0" * 64, "size": 1, "content_type": "image/png", "image_id": None}]
    with ledger.engine.begin() as conn:
        conn.execute(update(Step).where(col(Step.batch_id) == batch.id).values(state="done", outputs=out))
    return time.perf_counter() - t0


def plan(ledger: Ledger, spec_path: Path) -> dict[str, float]:
    spec = load_spec(spec_path)
    photos = PhotoIdentities(None)
    t0 = time.perf_counter()
    summary = summarize(ledger, spec, photos, fresh=False)
    t1 = time.perf_counter()
    batch = ledger.create_batch(
        name=spec.name,
        spec_hash=spec.spec_hash,
        steps=spec.step_dicts(),
        items=((i.id, i.fields) for i in spec.iter_items()),
        content_keys=content_keys_for(spec, photos),
    )
    t2 = time.perf_counter()
    reused = reuse_done(ledger, batch)
    t3 = time.perf_counter()
    return {
        "summary_s": round(t1 - t0, 3),
        "create_s": round(t2 - t1, 3),
        "reuse_s": round(t3 - t2, 3),
        "jobs_to_pay": summary.jobs_to_pay,
        "reused_steps": reused,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--done-items", type=int, default=50_000, help="earlier items (2 done steps each)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = write_spec(folder, "rerun", args.items, changed=args.items // 100)
        empty = plan(Ledger(f"sqlite:///{folder / 'empty.db'}"), spec)
        small_ledger = Ledger(f"sqlite:///{folder / 'small.db'}")
        seed(small_ledger, folder, args.items)
        small = plan(small_ledger, spec)
        full_ledger = Ledger(f"sqlite:///{folder / 'full.db'}")
        seed_s = seed(full_ledger, folder, args.done_items)
        full = plan(full_ledger, spec)
    print(
        json.dumps(
            {
                "bench": "plan",
                "items": args.items,
                "done_steps": 2 * args.done_items,
                "seed_s": round(seed_s, 2),
                **full,
                "planned_jobs": 2 * args.items,
                "baseline_empty_ledger": empty,
                "baseline_small_ledger": small,
                "scale_summary_ratio": round(full["summary_s"] / max(small["summary_s"], 1e-6), 2),
                "scale_create_ratio": round(
                    (full["create_s"] + full["reuse_s"]) / max(small["create_s"] + small["reuse_s"], 1e-6), 2
                ),
                "summary_ratio": round(full["summary_s"] / max(empty["summary_s"], 1e-6), 2),
                "create_ratio": round(
                    (full["create_s"] + full["reuse_s"]) / max(empty["create_s"] + empty["reuse_s"], 1e-6), 2
                ),
                **machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
