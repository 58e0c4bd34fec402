"""Run the LetzAI simulator: in a background thread (:func:`start_simulator`) or in front (:func:`main`).

Example::

    sim = start_simulator(SimConfig(latency_image=0.2, seed=7))
    requests.post(f"{sim.url}/images", json={"prompt": "a cat"}, headers={"Authorization": "Bearer x"})
    sim.configure(rate_limit_rate=0.5)
    print(sim.counters()["jobs_created"])
    sim.stop()
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from letzai.sim.admin import jobs_listing, webhooks_listing
from letzai.sim.config import SimConfig, add_cli_args, config_from_args
from letzai.sim.handlers import SimHandler
from letzai.sim.state import SimState
from letzai.sim.webhook_sender import WebhookSender

DEFAULT_PORT = 8765


class SimServer(ThreadingHTTPServer):
    """A threading HTTP server (one thread per keep-alive connection) holding the simulator's state."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], sim: SimState) -> None:
        self.sim = sim
        super().__init__(address, SimHandler)


@dataclass
class RunningSim:
    """A simulator serving in a background thread.

    Attributes:
        url: ``http://host:port`` (the API root and the media host).
        port: the bound port.
        state: the shared state (tests may inspect it under ``state.lock``).
        sender: the threads delivering its webhooks.
    """

    server: SimServer
    thread: threading.Thread
    state: SimState
    url: str
    port: int
    sender: WebhookSender

    def stop(self) -> None:
        """Stop serving and delivering webhooks, and close the listening socket."""
        self.server.shutdown()
        self.sender.stop()
        self.server.server_close()
        self.thread.join(timeout=5)

    def counters(self, by_job: bool = True) -> dict[str, Any]:
        """The counters (see :mod:`letzai.sim.counters`)."""
        return self.state.counters_snapshot(by_job=by_job)

    def configure(self, **knobs: Any) -> SimConfig:
        """Change knobs live (e.g. ``fail_rate=0.2``); returns the new config.

        Raises:
            ValueError: an unknown knob or a bad value.
        """
        return self.state.configure(knobs)

    def reset(self) -> None:
        """Forget all jobs and counters."""
        self.state.reset()

    def jobs(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every job with its current status (like ``GET /_sim/jobs``)."""
        return jobs_listing(self.state, kind)

    def webhooks(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """Every webhook POST and lost delivery so far (like ``GET /_sim/webhooks``)."""
        return webhooks_listing(self.state, job_id)

    def __enter__(self) -> RunningSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulator(config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> RunningSim:
    """Start a simulator on ``host:port`` (0 = a free port) in a daemon thread and return at once."""
    state = SimState(config or SimConfig())
    server = SimServer((host, port), state)
    bound_port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name=f"letzai-sim:{bound_port}", daemon=True)
    sender = WebhookSender(state, name=f"letzai-sim:{bound_port}")
    sender.start()
    thread.start()
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
    return RunningSim(server, thread, state, f"http://{shown}:{bound_port}", bound_port, sender)


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``--host``, ``--port`` and one option per :class:`SimConfig` knob."""
    parser = argparse.ArgumentParser(
        prog="letzflow sim",
        description="Serve a simulated LetzAI API (jobs, media, uploads) with latency, failure and "
        "rate-limit knobs. Knobs can also be changed live: POST /_sim/config with a JSON object.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    add_cli_args(parser)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, print the URL and serve until Ctrl-C; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        state = SimState(config)
        server = SimServer((args.host, args.port), state)
    except OSError as exc:
        print(f"letzai-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(
        f"LetzAI simulator on http://{args.host}:{server.server_address[1]}  (seed {state.seed})", flush=True
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
    sender = WebhookSender(state)
    sender.start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sender.stop()
        server.server_close()
    return 0
