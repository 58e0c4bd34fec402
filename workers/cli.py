"""The ``letzflow`` command line.

Exit codes: 0 success; 1 the batch ended with failed items (or paused/stopped/cancelled); 2 invalid input
or configuration (nothing was submitted).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from workers.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    _batch,
    _fail,
    _ledger,
    collector_off,
    collector_on,
    console,
    err,
)
from workers.cli_processes import add_demo_command, add_process_commands
from workers.cli_run import cmd_run, start_batch, wait_and_summarize
from workers.errors import WorkersError

__all__ = ["main", "start_batch"]


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

    collector_on()  # a report reads (and may download) every output of the batch: long for a big one
    batch = _batch(args.batch)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = set(formats) - {"json", "csv", "html"}
    if unknown:
        return _fail(f"--format {','.join(sorted(unknown))} is unknown: use json, csv and/or html")
    paths = write_reports(batch.id, formats, args.out)
    for path in paths:
        console.print(f"{path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="letzflow", description="Reliable LetzAI batches on Celery and Redis."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    add_demo_command(sub)
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

    add_process_commands(sub)
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
    if args.command == "webhooks":  # a server, in this process for as long as it is left running
        return _run(args)
    with collector_off():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run a parsed command; each layer's errors become a clear message and exit code 2."""
    from config.settings import ConfigError
    from letzflow.errors import LetzflowError
    from storage.errors import PersistenceError
    from storage.media_base import StorageError

    try:
        return int(args.func(args))
    except StorageError as exc:
        return _fail(f"storage: {exc}")
    except (ConfigError, PersistenceError, LetzflowError, WorkersError) as exc:  # each layer's one root
        return _fail(str(exc))


if __name__ == "__main__":
    raise SystemExit(main())
