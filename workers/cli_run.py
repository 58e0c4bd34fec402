"""``letzflow run``: validate a spec, say what will be paid (reuse by content), submit, optionally wait."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from workers.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    _fail,
    _ledger,
    collector_on,
    console,
    err,
)
from workers.early_check import EarlyCheck

if TYPE_CHECKING:
    from storage.media_base import MediaStore


def cmd_run(args: argparse.Namespace) -> int:
    early = None
    if not args.dry_run:  # the bucket check and the feeder's message: a forked child, while this imports
        early = EarlyCheck()
    from letzflow.spec import SpecError, load_spec

    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        return _fail(f"{args.spec} is not a valid batch spec; nothing was submitted:\n{exc}")
    except OSError as exc:
        return _fail(f"cannot read {args.spec}: {exc.strerror}")
    planned = spec.planned_jobs()
    if args.dry_run:
        console.print(
            f"[bold]{spec.name}[/]: {spec.item_count} items x {len(spec.steps)} steps "
            f"({' → '.join(s.kind for s in spec.steps)})"
        )
        for step in spec.steps[:-1]:
            if step.completions > 1:
                later = ", ".join(s.kind for s in spec.steps[step.index + 1 :])
                console.print(
                    f"  step {step.index + 1} ({step.kind}) yields {step.completions} images per job: "
                    f"{later} run once per image"
                )
        for endpoint, n in planned.items():
            console.print(f"  POST /{endpoint.replace('_', '-')}: {n} jobs")
        console.print(
            f"  total LetzAI jobs: {spec.total_jobs()}"
            + (f" (max_jobs {spec.max_jobs})" if spec.max_jobs else "")
        )
        _print_reuse(spec, fresh=args.fresh, photos=None)
        console.print("dry run: nothing was submitted")
        return EXIT_OK
    priority = None
    if args.priority is not None:
        from letzflow.spec.top_level import parse_priority

        raw = int(args.priority) if str(args.priority).isdigit() else args.priority
        priority = parse_priority(raw)
        if priority is None:
            return _fail(f"--priority {args.priority!r} is invalid: low, normal, high or a whole number 0-9")
    assert early is not None  # a dry run returned above
    return start_batch(spec, wait=args.wait, schedule=None, fresh=args.fresh, priority=priority, early=early)


def _print_reuse(spec, *, fresh: bool, photos, ledger=None) -> None:  # type: ignore[no-untyped-def]
    """Per step: reused, changed since the catalog's last run, new; the jobs to pay; vanished items."""
    from config.settings import ConfigError
    from tasks.catalog import PhotoIdentities, summarize

    if ledger is None:
        from tasks import runtime

        try:
            ledger = runtime.ledger()
        except ConfigError as exc:
            console.print(f"  reuse of earlier outputs not looked up ({exc})", highlight=False)
            return
        photos = photos or PhotoIdentities(open_store=runtime.store)
    fresh = fresh or not spec.reuse
    plan = summarize(ledger, spec, photos, fresh=fresh)
    for n, step in enumerate(plan.steps, 1):
        console.print(
            f"  step {n} {step.kind}: {step.reused} reused, {step.changed} changed, {step.new} new "
            f"-> {step.to_pay} jobs to pay"
        )
    why = "rendering anew: --fresh or reuse: false" if fresh else f"{plan.reused} reused from earlier batches"
    console.print(f"  [bold]LetzAI jobs to pay: {plan.jobs_to_pay}[/] ({why})")
    if plan.disappeared:
        shown = ", ".join(plan.disappeared[:20]) + (" …" if len(plan.disappeared) > 20 else "")
        console.print(
            f"  {len(plan.disappeared)} item(s) of the last run ({plan.previous}) are not in this spec "
            f"(their media stay in storage): {shown}",
            highlight=False,
        )


def start_batch(
    spec,
    *,
    wait: bool,
    schedule: str | None,
    name: str | None = None,
    fresh: bool = False,
    priority: int | None = None,
    early: EarlyCheck,
) -> int:  # type: ignore[no-untyped-def]
    """Record a validated spec as a batch (or find the same one from an earlier run) and start it.

    ``early``: the child forked as the command started (:mod:`workers.early_check`), which checks the
    bucket and sends the feeder's message (where it cannot, it does both here). This process imports
    neither Celery nor Redis on the way to a new batch's first POST."""
    from config.settings import get_settings
    from storage.ledger import Ledger
    from tasks.batch_start import record_spec
    from tasks.catalog import PhotoIdentities

    settings = get_settings()
    ledger = Ledger(settings.database_url)
    batch_name = name or spec.name
    existing = None if (schedule or fresh) else ledger.find_batch(batch_name, spec.spec_hash)
    if existing is not None:
        from tasks.batch_control import kick_batch

        console.print(
            f"batch {existing.id} ({batch_name}) already exists for this spec: {existing.state}; "
            "finished steps are reused, nothing is paid twice"
        )
        if existing.state == "running":
            kick_batch(existing.id)
        elif existing.state in ("paused", "stopped"):
            console.print(f"  resume it with `letzflow resume {existing.id}`")
        elif existing.state == "done" and existing.message != "retry":
            counts = ledger.item_counts(existing.id)
            if counts.get("failed") or counts.get("cancelled"):
                console.print(
                    f"  {counts.get('failed', 0)} items failed: `letzflow retry {existing.id}` re-runs them"
                )
        batch = existing
        early.close()
    else:

        def open_store() -> MediaStore:  # boto3 only for s3:// photos
            from storage.media import S3MediaStore

            return S3MediaStore.at(settings.s3_endpoint_url, settings.s3_bucket, settings.s3_prefix)

        photos = PhotoIdentities(open_store=open_store)
        _print_reuse(spec, fresh=fresh, photos=photos, ledger=ledger)
        early.result()  # a missing bucket is a clear error now, not a failed copy after paying
        batch = record_spec(
            ledger, spec, photos, name=batch_name, schedule=schedule, fresh=fresh, priority=priority
        )
        early.feed(batch.id)
        console.print(
            f"batch [bold]{batch.id}[/] ({batch_name}): {batch.items_total} items, "
            f"{spec.total_jobs()} LetzAI jobs planned"
        )
    print(batch.id, flush=True)
    if not wait:
        return EXIT_OK
    return wait_and_summarize(batch.id)


def wait_and_summarize(batch_id: str, live: bool | None = None) -> int:
    from workers.progress import failures, wait_for

    collector_on()  # the wait may last hours
    ledger = _ledger()
    batch = wait_for(ledger, batch_id, console, live=console.is_terminal if live is None else live)
    counts = ledger.item_counts(batch_id)
    if batch.state == "done" and not counts.get("failed") and not counts.get("cancelled"):
        console.print(
            f"[green]batch {batch_id} done:[/] {counts.get('done', 0)} items; manifest {batch.manifest_key}"
        )
        return EXIT_OK
    if batch.state in ("paused", "stopped", "cancelled"):
        err.print(f"batch {batch_id} {batch.message or batch.state}")
    failed = failures(ledger, batch_id)
    if failed:
        err.print(f"[red]{counts.get('failed', 0)} items failed[/] ({counts.get('done', 0)} done):")
        for key, reason in failed:
            err.print(f"  {key}: {reason}", highlight=False)
    return EXIT_FAILED
