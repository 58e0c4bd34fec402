"""The HTTP layer: parse a request, check auth, inject faults, dispatch, answer (keep-alive, HTTP/1.1).

Fault injection applies to API calls only (not to ``/_sim`` or media, which has its own
``media_error_rate``). Reads (GET) may be reset before any work; a write is done first and then may be
reset, have its answer lost although it succeeded (create POSTs: ``lost_answer_rate``, shaped by
``lost_answer_mode``: a 502, a dropped connection or the answer after ``slow_seconds``) or answered late.
Every roll is made per request under the state's lock; no lock is held while sleeping or sending. A create
whose answer was lost (or reset) is marked on its job (``lost_answer`` in ``GET /_sim/jobs``).
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from letzai.sim.admin import admin
from letzai.sim.replies import Reply, SimError, error_body, json_reply, retry_after_header
from letzai.sim.routes import Request, Route, find_route
from letzai.sim.routes_jobs import JOB_ROUTES
from letzai.sim.routes_media import media, upload
from letzai.sim.routes_models import MODEL_ROUTES

if TYPE_CHECKING:
    from letzai.sim.state import SimState

ROUTES: tuple[Route, ...] = JOB_ROUTES + MODEL_ROUTES
MAX_BODY = 64 * 1024 * 1024


class SimHandler(BaseHTTPRequestHandler):
    """Serves the simulated API; the server object carries the :class:`SimState` as ``sim``."""

    protocol_version = "HTTP/1.1"
    server_version = "letzai-sim/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300

    def version_string(self) -> str:
        return self.server_version

    @property
    def sim(self) -> SimState:
        return self.server.sim  # type: ignore[attr-defined, no-any-return]

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        if self.sim.config.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    # -- plumbing --------------------------------------------------------------------------------
    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if length > MAX_BODY or length < 0:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.body and self.command != "HEAD":
            self.wfile.write(reply.body)

    def _reset(self) -> None:
        """Drop the connection without an answer (an RST, as a crashed proxy would)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        if not host:
            address: Any = self.server.server_address
            host = f"{address[0]}:{address[1]}"
        return f"http://{host}"

    def _handle(self) -> None:
        data = self._read_body()
        if data is None:
            self.close_connection = True
            self._send(json_reply(413, error_body(413, "request body too large or unreadable")))
            return
        split = urlsplit(self.path)
        parts = [p for p in split.path.split("/") if p]
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        if parts[:1] == ["_sim"]:
            self._send(admin(self.sim, self.command, parts, query, _decode(data)))
        elif parts[:1] == ["media"] and self.command in ("GET", "HEAD"):
            self._send(self._media(parts))
        elif parts[:1] == ["_uploads"] and self.command == "PUT":
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._send(upload(self.sim, parts, query, headers, data))
        else:
            self._api(parts, query, data)

    def _media(self, parts: list[str]) -> Reply:
        sim = self.sim
        if sim.roll(sim.config.media_error_rate):
            with sim.lock:
                sim.counters.injected["media_error"] += 1
            return Reply(503, b"Service Unavailable", "text/plain; charset=utf-8")
        reply = media(sim, parts)
        if reply.status == 200 and self.command == "GET":
            with sim.lock:
                sim.counters.media_downloads += 1
                sim.counters.media_bytes += len(reply.body)
        return reply

    # -- the API ---------------------------------------------------------------------------------
    def _api(self, parts: list[str], query: dict[str, str], data: bytes) -> None:
        sim = self.sim
        config = sim.config
        route, ids, path_known = find_route(ROUTES, self.command, parts)
        with sim.lock:
            sim.counters.requests += 1
            if route is not None and route.create:
                sim.counters.posts_attempted["/" + parts[0]] += 1
        if route is None:
            status = 405 if path_known else 404
            message = f"Cannot {self.command} {urlsplit(self.path).path}"
            self._answer(json_reply(status, error_body(status, message)))
            return
        failure = self._auth_failure()
        if failure is not None:
            self._answer(failure)
            return
        writes = self.command != "GET"
        if not writes and sim.roll(config.reset_rate):
            self._count("reset")
            self._reset()
            return
        if sim.roll(config.rate_limit_rate):
            self._count("rate_limit")
            headers = retry_after_header(config.retry_after)
            self._answer(json_reply(429, error_body(429, "Too Many Requests"), headers))
            return
        if sim.roll(config.error_5xx_rate):
            self._count("error_5xx")
            with sim.lock:
                status = sim.fault_rng.choice((500, 502, 503))
            self._answer(json_reply(status, error_body(status, "Internal server error")))
            return
        if not writes and sim.roll(config.slow_rate):
            self._count("slow")
            time.sleep(config.slow_seconds)
        request = Request(
            self.command, urlsplit(self.path).path, parts, query, _decode(data), self._base_url()
        )
        try:
            reply = route.handler(sim, request, ids)
        except SimError as exc:
            reply = exc.reply()
        except Exception:
            traceback.print_exc(file=sys.stderr)
            reply = json_reply(500, error_body(500, "Internal server error (simulator bug)"))
        if writes:
            if sim.roll(config.reset_rate):
                self._count("reset")
                self._mark_lost(request, "reset")
                self._reset()
                return
            if route.create and reply.status < 300 and sim.roll(config.lost_answer_rate):
                mode = self._lost_mode(config.lost_answer_mode)
                self._count("lost")
                self._mark_lost(request, mode)
                if mode == "reset":
                    self._reset()
                    return
                if mode == "timeout":
                    time.sleep(config.slow_seconds)
                    self._answer(reply)
                    return
                reply = json_reply(502, error_body(502, "Bad Gateway"))
            if sim.roll(config.slow_rate):
                self._count("slow")
                time.sleep(config.slow_seconds)
        self._answer(reply)

    def _lost_mode(self, mode: str) -> str:
        """``502``, ``reset`` or ``timeout``: the configured mode, or one drawn for ``mixed``."""
        if mode != "mixed":
            return mode
        with self.sim.lock:
            return self.sim.fault_rng.choice(("502", "reset", "timeout"))

    def _mark_lost(self, request: Request, mode: str) -> None:
        """Note on the created job (if any) how its create answer was lost."""
        if request.created_id is None:
            return
        with self.sim.lock:
            job = self.sim.jobs.get(request.created_id)
            if job is not None:
                job.lost_answer = mode

    def _auth_failure(self) -> Reply | None:
        header = self.headers.get("Authorization") or ""
        scheme, _, key = header.partition(" ")
        key = key.strip()
        config = self.sim.config
        valid = scheme.lower() == "bearer" and bool(key) and key not in config.bad_keys
        if valid and config.valid_keys is not None:
            valid = key in config.valid_keys
        return None if valid else json_reply(401, error_body(401, "Unauthorized"))

    def _count(self, name: str) -> None:
        with self.sim.lock:
            self.sim.counters.injected[name] += 1

    def _answer(self, reply: Reply) -> None:
        with self.sim.lock:
            self.sim.counters.responses[str(reply.status)] += 1
        self._send(reply)


def _decode(data: bytes) -> Any:
    if not data.strip():
        return {}
    try:
        return json.loads(data)
    except ValueError:
        return None
