"""``letzflow demo``: the example catalog through the whole pipeline on an embedded local stack.

The demo starts a redis-server, moto's S3 server, the LetzAI simulator and one Celery worker as child
processes (:class:`workers.stack.EmbeddedStack`), points this process at them, runs the spec with a live
progress table, writes the manifest, CSV and HTML gallery (media downloaded beside them) and stops every
child on the way out, also on Ctrl-C and SIGTERM. ``--real`` does the same against the real LetzAI API
(no simulator; a small batch, after a credits warning).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from workers.demo_real import EXIT_FAILED, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_USAGE, DemoError
from workers.demo_real import confirm_real as _confirm_real
from workers.demo_real import real_api as _real_api
from workers.demo_stack import ApiStack, Terminated, kill_now, raise_terminated, signals
from workers.stack import REPO_ROOT, EmbeddedStack, StackError

DEFAULT_SPEC = REPO_ROOT / "examples" / "catalog.yaml"

#: Simulator knobs: realistic-looking latencies that still end the whole demo within a minute.
DEMO_SIM: dict[str, Any] = {
    "latency_image": 1.5,
    "latency_image_edit": 1.5,
    "latency_upscale": 1.5,
    "latency_video": 3.0,
    "latency_model": 3.0,
    "jitter": 0.2,
    "seed": 2024,
}
#: One worker; the tasks wait on HTTP and S3, so threads beat processes on a small machine.
DEMO_WORKER: dict[str, Any] = {"pool": "threads", "concurrency": 16, "loglevel": "WARNING"}
REAL_ITEMS = 2
SIM_TIMEOUT = 600.0
REAL_TIMEOUT = 3600.0


def run_demo(
    real: bool = False,
    spec: str | None = None,
    out: str = "letzflow-demo-output",
    items: int | None = None,
    webhooks: bool = False,
) -> int:
    """Run the demo and return the exit status: 0 only if every item succeeded.

    1 = some item failed (or the real run was declined), 2 = bad input (spec, missing key), 130 = Ctrl-C,
    143 = SIGTERM. Every child process is stopped before this returns.
    """
    console = Console()
    err = Console(stderr=True)
    try:
        with signals(raise_terminated, signal.SIGTERM):
            return _run(console, real=real, spec_path=spec, out=Path(out), items=items, webhooks=webhooks)
    except DemoError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        return exc.code
    except KeyboardInterrupt:
        err.print("interrupted: every local service was stopped")
        return EXIT_SIGINT
    except Terminated:
        err.print("terminated: every local service was stopped")
        return EXIT_SIGTERM
    except StackError as exc:
        err.print(f"[bold red]error:[/] the local stack could not start: {exc}", highlight=False)
        return EXIT_FAILED


def _run(
    console: Console, *, real: bool, spec_path: str | None, out: Path, items: int | None, webhooks: bool
) -> int:
    if items is not None and items < 1:
        raise DemoError("--items must be at least 1", EXIT_USAGE)
    if real and webhooks:
        raise DemoError(
            "--webhooks runs the receiver on this machine, which the real LetzAI API cannot reach: run "
            "`letzflow webhooks` behind a public HTTPS address and set LETZFLOW_WEBHOOK_URL to it instead",
            EXIT_USAGE,
        )
    api = _real_api() if real else None
    spec = _load_spec(
        Path(spec_path) if spec_path else DEFAULT_SPEC, REAL_ITEMS if real and not items else items
    )
    if api is not None:
        _confirm_real(console, spec, api["base_url"])
    stack: EmbeddedStack = (
        ApiStack(api) if api is not None else EmbeddedStack(sim_knobs=DEMO_SIM, webhooks=webhooks)
    )
    saved_env = dict(os.environ)
    started = time.monotonic()
    ok = False
    try:
        with console.status(
            "starting redis-server, S3 endpoint, " + ("" if api else "simulator, ") + "worker…"
        ):
            stack.start()
            stack.start_worker(**DEMO_WORKER)
        _use_env(stack.env)
        _print_stack(console, stack, time.monotonic() - started)
        ok = _run_batch(console, stack, spec, out, timeout=REAL_TIMEOUT if api else SIM_TIMEOUT)
        if stack.webhooks is not None:
            seen = stack.webhooks.health()
            console.print(
                f"webhooks: {seen.get('accepted', 0)} calls woke a poll, "
                f"{seen.get('late', 0)} came after a look had seen their job done, "
                f"{seen.get('unknown', 0)} carried an unknown token",
                highlight=False,
            )
        return EXIT_OK if ok else EXIT_FAILED
    finally:
        if not ok:
            _keep_logs(stack, out)
        with signals(lambda *_: kill_now(stack), signal.SIGTERM, signal.SIGINT):
            stack.stop()
        _use_env(saved_env, restore=True)


def _run_batch(console: Console, stack: EmbeddedStack, spec: Any, out: Path, *, timeout: float) -> bool:
    from storage.layout import batch_root
    from tasks import runtime
    from tasks.batch import start_spec
    from workers.progress import failures
    from workers.report import write_reports

    begun = time.monotonic()
    batch = start_spec(spec)
    console.print(
        f"batch [bold]{batch.id}[/] ({batch.name}): {batch.items_total} items x {len(spec.steps)} "
        f"steps ({' → '.join(s.kind for s in spec.steps)})"
    )
    ledger = runtime.ledger()
    batch = _watch(console, ledger, batch.id, stack, timeout)
    counts = ledger.item_counts(batch.id)
    elapsed = time.monotonic() - begun
    paths = write_reports(batch.id, ["json", "csv", "html"], out)
    manifest, report, gallery = (p.resolve() for p in paths)
    bucket, prefix = stack.bucket, f"{stack.prefix.strip('/')}/" if stack.prefix.strip("/") else ""
    media = (out / "media" / prefix / batch_root(batch.name, batch.id)).resolve()
    files = sum(1 for p in media.rglob("*") if p.is_file()) if media.is_dir() else 0
    ok = batch.state == "done" and counts.get("done", 0) == batch.items_total
    colour = "green" if ok else "red"
    console.print(
        f"[bold {colour}]{counts.get('done', 0)} of {batch.items_total} items done[/] in {elapsed:.1f}s "
        f"(batch {batch.state})"
    )
    for reason_key, reason in failures(ledger, batch.id):
        console.print(f"  [red]{reason_key}[/]: {reason}", highlight=False)
    console.print(f"gallery:  {gallery}", highlight=False, soft_wrap=True)
    console.print(f"manifest: {manifest}", highlight=False, soft_wrap=True)
    console.print(f"report:   {report}", highlight=False, soft_wrap=True)
    console.print(f"media:    {media}{os.sep} ({files} files)", highlight=False, soft_wrap=True)
    console.print(
        f"S3:       s3://{bucket}/{prefix}{batch_root(batch.name, batch.id)}/ "
        f"(manifest s3://{bucket}/{batch.manifest_key or '-'}) on {stack.env['S3_ENDPOINT_URL']}, "
        "an in-memory endpoint discarded on exit: the copies above are kept",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"open the gallery: file://{gallery}", highlight=False, soft_wrap=True)
    return ok


def _print_stack(console: Console, stack: EmbeddedStack, took: float) -> None:
    env = stack.env
    simulated = stack.sim is not None and stack.sim.alive
    console.print(
        f"local stack up in {took:.1f}s: redis {env['REDIS_URL']}, S3 {env['S3_ENDPOINT_URL']}, "
        + (f"simulator {env['LETZAI_BASE_URL']}" if simulated else f"LetzAI API {env['LETZAI_BASE_URL']}")
        + (f", webhook receiver {env['LETZFLOW_WEBHOOK_URL']}" if stack.webhooks else "")
        + f", worker {stack.workers[0].nodename}; logs in {stack.dir}",
        highlight=False,
        soft_wrap=True,
    )


def _watch(console: Console, ledger: Any, batch_id: str, stack: EmbeddedStack, timeout: float) -> Any:
    """The live progress table until the batch ends. Raises DemoError if the worker dies or time runs out."""
    from workers.progress import FINAL_BATCH, status_table

    deadline = time.monotonic() + timeout
    batch = ledger.batch(batch_id)
    with Live(status_table(ledger, batch), console=console, refresh_per_second=4) as view:
        while True:
            batch = ledger.batch(batch_id)
            view.update(status_table(ledger, batch))
            if batch.state in FINAL_BATCH:
                break
            dead = [w for w in stack.workers if not w.alive]
            if dead:
                log = dead[0].process.log_text(2000) if dead[0].process else ""
                raise DemoError(
                    f"the worker exited with status {dead[0].process and dead[0].process.returncode}:\n{log}"
                )
            if time.monotonic() > deadline:
                raise DemoError(f"the batch did not finish within {timeout:.0f}s (state {batch.state})")
            time.sleep(0.5)
    if not console.is_terminal:
        console.line()
    return batch


def _load_spec(path: Path, items: int | None) -> Any:
    from letzflow.spec import SpecError, load_spec

    if not path.is_file():
        raise DemoError(f"spec {path} not found: pass --spec PATH", EXIT_USAGE)
    try:
        spec = load_spec(path)
    except SpecError as exc:
        raise DemoError(f"{path} is not a valid batch spec:\n{exc}", EXIT_USAGE) from exc
    return spec if items is None else first_items(spec, items)


def first_items(spec: Any, count: int) -> Any:
    """A copy of ``spec`` with only its first ``count`` items (its job counts follow)."""
    if count >= spec.item_count:
        return spec
    limited = copy.copy(spec)
    limited.item_count = count
    limited.spec_hash = f"{spec.spec_hash}:first-{count}"
    every_item = spec.iter_items
    limited.iter_items = lambda: itertools.islice(every_item(), count)
    return limited


def _use_env(env: Mapping[str, str], *, restore: bool = False) -> None:
    """Point this process (settings, runtime singletons, the Celery app) at ``env``; ``restore`` puts
    back the environment the demo started with, as far as it is valid.

    Raises:
        ConfigError: ``env`` is not a valid letzflow configuration (never when restoring).
    """
    from config.settings import ConfigError, get_settings

    if restore:
        os.environ.clear()
    os.environ.update(env)
    get_settings.cache_clear()
    if "tasks.runtime" in sys.modules:
        sys.modules["tasks.runtime"].reset()
    if restore and "workers.app" not in sys.modules:
        return
    from workers.app import app, celery_config

    try:
        app.conf.update(celery_config(get_settings()))
    except ConfigError:
        if not restore:
            raise


def _keep_logs(stack: EmbeddedStack, out: Path) -> None:
    """Copy the services' logs into ``out/logs`` (the stack's temp dir is removed on stop)."""
    logs = sorted(stack.dir.rglob("*.log")) if stack.dir.is_dir() else []
    if not logs:
        return
    target = out / "logs"
    with contextlib.suppress(OSError):
        target.mkdir(parents=True, exist_ok=True)
        for log in logs:
            shutil.copy(log, target / log.name)
        print(f"service logs kept in {target.resolve()}", file=sys.stderr)
