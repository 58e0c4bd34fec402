"""The ``letzflow`` verbs that run a process: ``demo``, ``sim``, ``worker``, ``beat``, ``flower`` and
``webhooks`` (the Celery ones exec ``celery -A workers.app …``, passing Celery's own options through)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from workers.cli_common import EXIT_OK, _fail


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


def cmd_webhooks(args: argparse.Namespace) -> int:
    from workers.webhooks import serve

    return serve(args.host, args.port)


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

    return run_demo(real=args.real, spec=args.spec, out=args.out, items=args.items, webhooks=args.webhooks)


def add_demo_command(sub: Any) -> None:
    """``letzflow demo``."""
    p = sub.add_parser(
        "demo", help="run the examples on an embedded local stack (redis, simulator, S3, worker)"
    )
    p.add_argument(
        "--real", action="store_true", help="use the real LetzAI API (needs LETZAI_API_KEY; costs credits)"
    )
    p.add_argument("--spec", default=None, help="spec to run (default: examples/catalog.yaml)")
    p.add_argument("--items", type=int, default=None, help="run only the first N items")
    p.add_argument(
        "--webhooks",
        action="store_true",
        help="also run the webhook receiver; the simulator calls it when each job ends",
    )
    p.add_argument(
        "--out", default="letzflow-demo-output", help="folder for the downloaded media and gallery"
    )
    p.set_defaults(func=cmd_demo)


def add_process_commands(sub: Any) -> None:
    """``letzflow sim``, ``worker``, ``beat``, ``flower`` and ``webhooks``."""
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

    p = sub.add_parser(
        "webhooks", help="the webhook receiver LetzAI calls when a job ends (see LETZFLOW_WEBHOOK_URL)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (behind a TLS reverse proxy)")
    p.add_argument("--port", type=int, default=8088)
    p.set_defaults(func=cmd_webhooks)
