"""The ``letzflow`` command line.

Exit codes: 0 success; 1 the batch ended with failed items (or paused/stopped/cancelled); 2 invalid input
or configuration (nothing was submitted).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rich.console import Console

from workers.errors import BatchNotFound, WorkersError

console = Console(stderr=False)
err = Console(stderr=True)

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _fail(message: str, code: int = EXIT_INVALID) -> int:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return code


def _ledger():  # type: ignore[no-untyped-def]
    from tasks import runtime

    return runtime.ledger()


def _batch(ref: str):  # type: ignore[no-untyped-def]
    """A batch by id or unique id prefix; a clear error otherwise."""
    ledger = _ledger()
    batch = ledger.batch(ref)
    if batch is not None:
        return batch
    matches = ledger.find_batch_prefix(ref) if len(ref) >= 4 else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise BatchNotFound(f"batch id {ref!r} is ambiguous: {', '.join(b.id for b in matches[:5])}")
    raise BatchNotFound(
        f"no batch {ref!r} in the ledger {os.environ.get('DATABASE_URL', 'sqlite:///letzflow.db')}: "
        "check the id (`letzflow run` printed it) and that DATABASE_URL points at the same ledger"
    )


def cmd_run(args: argparse.Namespace) -> int:
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
        from letzflow.spec.document import parse_priority

        raw = int(args.priority) if str(args.priority).isdigit() else args.priority
        priority = parse_priority(raw)
        if priority is None:
            return _fail(f"--priority {args.priority!r} is invalid: low, normal, high or a whole number 0-9")
    return start_batch(spec, wait=args.wait, schedule=None, fresh=args.fresh, priority=priority)


def _print_reuse(spec, *, fresh: bool, photos) -> None:  # type: ignore[no-untyped-def]
    """Per step: reused, changed since the catalog's last run, new; the jobs to pay; vanished items."""
    from config.settings import ConfigError
    from tasks import runtime
    from tasks.catalog import PhotoIdentities, summarize

    try:
        ledger, store = runtime.ledger(), runtime.store()
    except ConfigError as exc:
        console.print(f"  reuse of earlier outputs not looked up ({exc})", highlight=False)
        return
    fresh = fresh or not spec.reuse
    plan = summarize(ledger, spec, photos or PhotoIdentities(store), fresh=fresh)
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
) -> int:  # type: ignore[no-untyped-def]
    """Record a validated spec as a batch (or find the same one from an earlier run) and enqueue it."""
    from tasks import runtime
    from tasks.batch import start_spec
    from tasks.batch_control import kick_batch

    ledger = runtime.ledger()
    batch_name = name or spec.name
    existing = None if (schedule or fresh) else ledger.find_batch(batch_name, spec.spec_hash)
    if existing is not None:
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
    else:
        from tasks.catalog import PhotoIdentities

        photos = PhotoIdentities(runtime.store())
        _print_reuse(spec, fresh=fresh, photos=photos)
        batch = start_spec(
            spec, name=batch_name, schedule=schedule, fresh=fresh, photos=photos, priority=priority
        )
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


def cmd_status(args: argparse.Namespace) -> int:
    from workers.progress import failures, status_table

    batch = _batch(args.batch)
    ledger = _ledger()
    console.print(status_table(ledger, batch))
    from tasks import runtime
    from workers.progress import lanes_table

    lanes = lanes_table(ledger, runtime.settings().letzai_max_inflight)
    if lanes is not None:
        console.print(lanes)
    if batch.message:
        console.print(batch.message, highlight=False)
    for key, reason in failures(ledger, batch.id):
        console.print(f"  [red]{key}[/]: {reason}", highlight=False)
    unconfirmed = ledger.claims.unconfirmed(batch.id)
    if unconfirmed:
        console.print(
            f"[yellow]{len(unconfirmed)} step(s) unconfirmed[/]: their POST's answer was lost and no "
            "listed job could be proven to be theirs (they may have been billed). "
            f"`letzflow retry {batch.id}` looks again; `letzflow retry --unconfirmed {batch.id}` "
            "re-sends them (may pay twice).",
            highlight=False,
        )
        for st in unconfirmed[:50]:
            console.print(
                f"  step {st.id} ({st.kind}, item {st.item_id}): {st.error_message}", highlight=False
            )
    if batch.manifest_key:
        console.print(f"manifest: {batch.manifest_key}")
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    from tasks.batch_control import cancel_batch

    batch = _batch(args.batch)
    counts = cancel_batch(batch.id)
    console.print(
        f"batch {batch.id} cancelled: {counts['cancelled']} steps cancelled, "
        f"{counts['interrupted']} image jobs interrupted; no new jobs will be submitted"
    )
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    from tasks.batch_control import retry_batch

    batch = _batch(args.batch)
    if args.unconfirmed:
        err.print(
            "[yellow]--unconfirmed[/]: steps whose lost answer could not be matched are POSTed again; "
            "if the first POST did create its job, that job is paid for twice",
            highlight=False,
        )
    count = retry_batch(batch.id, unconfirmed=args.unconfirmed)
    if not count:
        console.print(f"batch {batch.id}: no failed items to retry")
        return EXIT_OK
    console.print(f"batch {batch.id}: retrying {count} failed items (finished steps are reused)")
    return wait_and_summarize(batch.id) if args.wait else EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    from tasks.batch_control import resume_batch

    batch = _batch(args.batch)
    if not resume_batch(batch.id):
        return _fail(
            f"batch {batch.id} is {batch.state}: only a paused or stopped batch can be resumed", EXIT_FAILED
        )
    console.print(f"batch {batch.id} resumed")
    return wait_and_summarize(batch.id) if args.wait else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from workers.report import write_reports

    batch = _batch(args.batch)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = set(formats) - {"json", "csv", "html"}
    if unknown:
        return _fail(f"--format {','.join(sorted(unknown))} is unknown: use json, csv and/or html")
    paths = write_reports(batch.id, formats, args.out)
    for path in paths:
        console.print(f"{path}")
    return EXIT_OK


def _exec_celery(argv: list[str]) -> int:
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.app", *argv])
    return EXIT_OK  # pragma: no cover


def cmd_worker(args: argparse.Namespace) -> int:
    return _exec_celery(
        [
            "worker",
            "-Q",
            args.queues,
            "-c",
            str(args.concurrency),
            "--loglevel",
            args.loglevel,
            *args.celery_args,
        ]
    )


def cmd_beat(args: argparse.Namespace) -> int:
    if args.schedules:
        os.environ["LETZFLOW_SCHEDULES"] = os.path.abspath(args.schedules)
    return _exec_celery(["beat", "--loglevel", args.loglevel, *args.celery_args])


def cmd_flower(args: argparse.Namespace) -> int:
    return _exec_celery(["flower", f"--port={args.port}", f"--address={args.address}", *args.celery_args])


def cmd_sim(args: argparse.Namespace) -> int:
    from letzai.sim.server import main as sim_main

    return sim_main(args.sim_args)


def cmd_demo(args: argparse.Namespace) -> int:
    from importlib.util import find_spec

    if find_spec("moto") is None:
        return _fail(
            "letzflow demo runs a local S3 endpoint (moto's server), which is not installed: "
            "pip install -e '.[demo]' (or pip install 'letzflow[demo]')"
        )
    from workers.demo import run_demo

    return run_demo(real=args.real, spec=args.spec, out=args.out, items=args.items)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="letzflow", description="Reliable LetzAI batches on Celery and Redis."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "demo", help="run the examples on an embedded local stack (redis, simulator, S3, worker)"
    )
    p.add_argument(
        "--real", action="store_true", help="use the real LetzAI API (needs LETZAI_API_KEY; costs credits)"
    )
    p.add_argument("--spec", default=None, help="spec to run (default: examples/catalog.yaml)")
    p.add_argument("--items", type=int, default=None, help="run only the first N items")
    p.add_argument(
        "--out", default="letzflow-demo-output", help="folder for the downloaded media and gallery"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="validate and submit a batch spec; prints its id")
    p.add_argument("spec")
    p.add_argument("--wait", action="store_true", help="show progress; exit 0 only if every item succeeded")
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan and the jobs it would create; submit nothing"
    )
    p.add_argument(
        "--priority",
        default=None,
        help="the batch's lane for free in-flight slots: low, normal, high or 0-9 (default: the spec's)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="render every step anew instead of reusing done outputs of earlier batches (same content)",
    )
    p.set_defaults(func=cmd_run)

    for name, func, text in (
        ("status", cmd_status, "counts by state, failures with reasons, ETA"),
        ("cancel", cmd_cancel, "stop a batch: no new jobs, interrupt jobs in flight"),
        ("retry", cmd_retry, "re-run failed items only; finished steps are reused"),
        ("resume", cmd_resume, "continue a batch paused by a 402 or stopped by a 401/403"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("batch", help="batch id (or a unique prefix)")
        if name in ("retry", "resume"):
            p.add_argument("--wait", action="store_true")
        if name == "retry":
            p.add_argument(
                "--unconfirmed",
                action="store_true",
                help="also re-send steps whose lost answer could not be matched to a job (may pay twice)",
            )
        p.set_defaults(func=func)

    p = sub.add_parser("report", help="manifest, CSV and HTML gallery of a batch")
    p.add_argument("batch")
    p.add_argument("--format", default="json,csv,html")
    p.add_argument("--out", default=None, help="folder (default: letzflow-reports/<batch id>)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("sim", help="run the LetzAI simulator", add_help=False)
    p.add_argument("sim_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("worker", help="celery worker consuming every letzflow queue")
    p.add_argument("-Q", "--queues", default="submit,poll,media,batch")
    p.add_argument("-c", "--concurrency", type=int, default=8)
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("celery_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("beat", help="celery beat: the reconciler and scheduled pipelines")
    p.add_argument(
        "--schedules", default=None, help="schedule file (cron → spec), e.g. examples/schedules.yaml"
    )
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("celery_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_beat)

    p = sub.add_parser("flower", help="Flower monitoring UI on the letzflow app")
    p.add_argument("--port", type=int, default=5555)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("celery_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_flower)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sim"]:
        from letzai.sim.server import main as sim_main

        return sim_main(argv[1:])
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if args.command not in ("worker", "beat", "flower"):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.celery_args = [*unknown, *args.celery_args]  # Celery's own options pass through
    if args.command in ("demo", "sim"):
        return int(args.func(args))
    from config.settings import ConfigError
    from letzflow.errors import LetzflowError
    from storage.errors import PersistenceError
    from storage.media import StorageError

    try:
        return int(args.func(args))
    except StorageError as exc:
        return _fail(f"storage: {exc}")
    except (ConfigError, PersistenceError, LetzflowError, WorkersError) as exc:  # each layer's one root
        return _fail(str(exc))


if __name__ == "__main__":
    raise SystemExit(main())
