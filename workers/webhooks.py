"""``letzflow webhooks``: the receiver LetzAI calls when a job ends, on Tornado's HTTP server.

Why Tornado: it is already installed (Flower runs on it), it is a production HTTP/1.1 server with
keep-alive, a body-size cap and non-blocking I/O, and one process answers thousands of calls a second.

A call is a hint, nothing more (LetzAI's webhooks are unsigned and their body is not settled, see
``letzai-api.md``): the receiver reads only the token at the end of the path, asks
:func:`tasks.hooks.on_webhook` to wake that step's poll, and answers at once. The body's status and media
URLs are never used (the woken poll looks with a ``GET``); the job id it names (a UUID, either shape) is
passed along, and kept only for a step whose POST answer was lost, as a candidate that step's recovery
confirms with a ``GET`` (an upscale object echoes nothing else that could identify it). An unknown
or expired token gets a bare 404: nothing is enqueued and nothing is written; ``/healthz`` counts the
calls for steps that had ended (``late``: the look saw the job done first) apart from tokens letzflow
never gave out (``unknown``). Tokens are never logged: the access log shows the path with the token cut
off.

Lookups run on a small thread pool; when :data:`MAX_PENDING` calls are waiting for it, further calls get
503 with ``Retry-After`` instead of queueing without bound. TLS is the reverse proxy's job (README).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

log = logging.getLogger("letzflow.webhooks")

#: Largest body accepted (bytes): a job object with a preview image fits; anything bigger is refused.
MAX_BODY = 2 * 1024 * 1024
#: Calls waiting for a lookup thread before new ones are answered 503.
MAX_PENDING = 256
LOOKUP_THREADS = 8


#: LetzAI's ids are UUIDs (letzai-api.md): a body's id of any other form is ignored.
JOB_ID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def job_id_of(body: bytes) -> str | None:
    """The job id a call's body names (either shape), or None. Used only for a step whose POST answer was
    lost, as a candidate its recovery confirms with a GET (:func:`tasks.hooks.on_webhook`)."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("data"), dict):
        data = data["data"]
    job_id = data.get("id") if isinstance(data, dict) else None
    return job_id if isinstance(job_id, str) and JOB_ID_RE.match(job_id) else None


def body_shape(body: bytes) -> str:
    """``event`` (``{event, data}``), ``object`` (the job as ``GET`` shows it), or ``unreadable``."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return "unreadable"
    if isinstance(data, dict) and "event" in data and isinstance(data.get("data"), dict):
        return "event"
    if isinstance(data, dict) and data.get("id"):
        return "object"
    return "unreadable"


class Receiver:
    """What the handlers share: the lookup pool, the count of waiting calls, and what was answered."""

    def __init__(self, wake: Any = None, late: Any = None) -> None:
        if wake is None:
            from tasks.hooks import came_late, on_webhook

            wake, late = on_webhook, came_late
        self.wake = wake
        self.late = late or (lambda token: False)
        self.pool = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="webhook")
        self.pending = 0
        self.counts: Counter[str] = Counter()


class HookHandler(tornado.web.RequestHandler):
    def initialize(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def post(self, token: str) -> None:
        r = self.receiver
        if r.pending >= MAX_PENDING:
            r.counts["busy"] += 1
            self.set_status(503)
            self.set_header("Retry-After", "1")
            return
        r.pending += 1
        try:
            body = self.request.body
            woke = await asyncio.get_running_loop().run_in_executor(r.pool, lambda: self._answer(token, body))
        except Exception:
            log.exception("webhook: the lookup failed")
            r.counts["error"] += 1
            self.set_status(503)
            self.set_header("Retry-After", "5")
            return
        finally:
            r.pending -= 1
        if woke != "accepted":
            r.counts[woke] += 1
            self.set_status(404)
            return
        r.counts["accepted"] += 1
        if log.isEnabledFor(logging.DEBUG):  # parsing a body of up to 2 MiB only to log its shape
            log.debug("webhook accepted (%s body)", body_shape(self.request.body))
        self.set_status(202)

    def _answer(self, token: str, body: bytes) -> str:
        """``accepted`` (a poll woken, or a lost answer's job kept), ``late`` or ``unknown`` (both 404)."""
        r = self.receiver
        if r.wake(token, job_id_of(body)):
            return "accepted"
        return "late" if r.late(token) else "unknown"


class HealthHandler(tornado.web.RequestHandler):
    def initialize(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def get(self) -> None:
        self.write({"ok": True, "pending": self.receiver.pending, **self.receiver.counts})


def _access_log(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log, with the path's last segment (the token) cut off."""
    request = handler.request
    path = request.path.rsplit("/", 1)[0] + "/…" if request.method == "POST" else request.path
    log.info(
        "%d %s %s %.1fms",
        handler.get_status(),
        request.method,
        path,
        1000.0 * request.request_time(),
    )


def make_app(receiver: Receiver) -> tornado.web.Application:
    """Routes: ``POST <any prefix>/<token>`` and ``GET /healthz`` (counts, no tokens)."""
    return tornado.web.Application(
        [
            (r"/healthz", HealthHandler, {"receiver": receiver}),
            (r"/(?:.*/)?([^/]+)/?", HookHandler, {"receiver": receiver}),
        ],
        log_function=_access_log,
    )


@dataclass
class RunningReceiver:
    """A receiver serving in a background thread (tests)."""

    port: int
    receiver: Receiver
    loop: asyncio.AbstractEventLoop
    stopping: asyncio.Event
    thread: threading.Thread

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(10)
        self.receiver.pool.shutdown(wait=False)


def _listen(receiver: Receiver, host: str, port: int) -> tuple[tornado.httpserver.HTTPServer, int]:
    """Bind and serve on the running event loop; the port bound (``port`` 0: a free one)."""
    server = tornado.httpserver.HTTPServer(make_app(receiver), max_body_size=MAX_BODY, xheaders=True)
    sockets = tornado.netutil.bind_sockets(port, host)
    server.add_sockets(sockets)
    return server, int(sockets[0].getsockname()[1])


async def _serve_until(receiver: Receiver, host: str, port: int, stopping: asyncio.Event, box: dict) -> None:
    server, box["port"] = _listen(receiver, host, port)
    log.info("letzflow webhooks listening on %s:%d", host, box["port"])
    box["ready"].set()
    await stopping.wait()
    server.stop()
    await server.close_all_connections()


def start_receiver(
    host: str = "127.0.0.1", port: int = 0, wake: Any = None, late: Any = None
) -> RunningReceiver:
    """Serve in a background thread; ``wake`` and ``late`` replace :func:`tasks.hooks.on_webhook` and
    :func:`tasks.hooks.came_late` (tests)."""
    receiver = Receiver(wake, late)
    loop = asyncio.new_event_loop()
    stopping = asyncio.Event()
    box: dict[str, Any] = {"ready": threading.Event()}

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(_serve_until(receiver, host, port, stopping, box))

    thread = threading.Thread(target=run, name="webhook-receiver", daemon=True)
    thread.start()
    if not box["ready"].wait(10):
        raise RuntimeError("the webhook receiver did not start")
    return RunningReceiver(box["port"], receiver, loop, stopping, thread)


def serve(host: str, port: int) -> int:
    """Serve in front until SIGTERM or SIGINT (``letzflow webhooks``)."""
    from config.settings import get_settings

    settings = get_settings()
    logging.basicConfig(level=settings.letzflow_log_level, format="%(asctime)s %(name)s %(message)s")
    if not settings.letzflow_webhook_url:
        log.warning("LETZFLOW_WEBHOOK_URL is not set: workers send no webhook URL, so nothing will call this")

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await _serve_until(Receiver(), host, port, stopping, {"ready": threading.Event()})

    asyncio.run(main())
    return 0
