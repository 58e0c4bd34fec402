"""The simulator's knobs: one :class:`SimConfig`, settable from the command line and live over HTTP.

Rates are probabilities in [0, 1] rolled per request (faults) or per job (outcomes). Latencies are seconds
per job kind; each job's duration is its kind's latency times ``1 ± jitter`` (uniform, seeded).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from letzai.sim.thin import FIELD_PATHS, check_fields

JOB_KINDS = ("image", "image_edit", "upscale", "video", "model")

_RATES = (
    "fail_rate",
    "never_finish_rate",
    "rate_limit_rate",
    "error_5xx_rate",
    "lost_answer_rate",
    "slow_rate",
    "reset_rate",
    "media_error_rate",
    "thin_rate",
    "create_status_200_rate",
    "webhook_lost_rate",
    "webhook_duplicate_rate",
    "webhook_wrong_token_rate",
)

#: What a lost create answer looks like (``lost_answer_mode``).
LOST_ANSWER_MODES = ("502", "reset", "timeout", "mixed")
#: The shape of a webhook body (``webhook_body``): the job object, ``{event, data}``, or either per delivery.
WEBHOOK_BODIES = ("object", "event", "mixed")
_CHOICES = {"lost_answer_mode": LOST_ANSWER_MODES, "webhook_body": WEBHOOK_BODIES}

_LISTS = ("valid_keys", "bad_keys", "thin_list_fields", "thin_get_fields")
_THIN_NAMES = ", ".join(FIELD_PATHS)


_HELP = {
    "jitter": "each job's duration varies by ± this fraction",
    "fail_rate": "share of jobs ending 'failed' with a reason",
    "never_finish_rate": "share of jobs that stay working forever",
    "rate_limit_rate": "share of API calls answered 429 with Retry-After",
    "retry_after": "seconds sent in Retry-After",
    "error_5xx_rate": "share of API calls answered 500/502/503 (nothing done)",
    "lost_answer_rate": "share of create POSTs that create and bill the job but lose the answer "
    "(see --lost-answer-mode)",
    "lost_answer_mode": "what a lost answer looks like: 502 (a 502 answer), reset (the connection is "
    "dropped), timeout (the real answer, after --slow-seconds) or mixed (one of the three per answer)",
    "slow_rate": "share of API calls answered only after --slow-seconds",
    "reset_rate": "share of API calls whose connection is dropped (creates first)",
    "media_error_rate": "share of media downloads answered 503",
    "credits": "credits left, 1 per job, 402 when spent ('none' = unlimited)",
    "edit_images_max": "most images one edit yields, fewer than asked ('none' = as many as asked)",
    "max_concurrent_jobs": "unfinished jobs allowed at once, 429 beyond (alias --max-concurrent)",
    "valid_keys": "comma-separated accepted keys (default: any non-empty key)",
    "bad_keys": "comma-separated keys answered 401",
    "seed": "seed of every random choice (default: random)",
    "max_jobs": "jobs kept in memory (the oldest are forgotten beyond)",
    "thin_list_fields": "comma-separated fields GET /images, /image-edits, /upscale and /videos leave out "
    f"of listed objects; names: {_THIN_NAMES} (see letzai/sim/thin.py)",
    "thin_get_fields": "comma-separated fields GET /images/{id}, /image-edits/{id}, /upscale/{id} and "
    "/videos/{id} leave out (names as for --thin-list-fields; create answers stay whole)",
    "thin_rate": "share of jobs whose objects are thinned (rolled once per job)",
    "create_status_200_rate": "share of create POSTs (images, edits, upscales, videos) answered 200 "
    "instead of 201 (models: always 200)",
    "upscale_list_404": "GET /upscale (the list) answers 404 (give 'true' or 'false'; alone: true)",
    "webhook_lost_rate": "share of webhook deliveries dropped (never sent)",
    "webhook_delay": "seconds after a job ends before its webhook is sent",
    "webhook_delay_jitter": "up to this many seconds more, uniform, per delivery",
    "webhook_duplicate_rate": "share of webhook deliveries sent twice (the copy 0.2 s later)",
    "webhook_body": "webhook body: object (the job as GET shows it), event ({event, data}) or mixed "
    "(one of the two per delivery)",
    "webhook_wrong_token_rate": "share of webhook deliveries sent to the webhookUrl with its last path "
    "segment replaced by a random token of the same length (the right URL gets nothing)",
}


@dataclass
class SimConfig:
    """Every knob of the simulator.

    Attributes:
        latency_image, latency_image_edit, latency_upscale, latency_video, latency_model: seconds a job of
            that kind takes from creation to its final status.
        jitter: each duration varies by ± this fraction (0.3 = ±30 %).
        fail_rate: share of jobs that end ``failed`` with a reason.
        never_finish_rate: share of jobs that stay working forever.
        rate_limit_rate: share of API calls answered 429 with ``Retry-After: retry_after``.
        retry_after: seconds sent in ``Retry-After`` (429s of both kinds).
        error_5xx_rate: share of API calls answered 500/502/503 without doing anything.
        lost_answer_rate: share of create POSTs that create (and bill) the job but lose the answer.
        lost_answer_mode: what a lost answer looks like: ``502`` (a 502 error answer), ``reset`` (the
            connection is dropped without an answer), ``timeout`` (the real answer, sent only after
            ``slow_seconds``) or ``mixed`` (one of those three per lost answer).
        slow_rate, slow_seconds: share of API calls answered only after ``slow_seconds`` (a create still
            creates its job first).
        reset_rate: share of API calls whose connection is closed without an answer (after creating the job
            for a create POST).
        media_error_rate: share of media downloads answered 503.
        credits: credits left (each created job costs 1; 402 when spent); None = unlimited.
        edit_images_max: the most images one edit yields, even when it asked for more (the docs and the
            guide disagree on the counts); None = as many as asked.
        max_concurrent_jobs: unfinished jobs allowed at once (429 beyond); None = no cap.
        valid_keys: the only accepted API keys; None = any non-empty key not in ``bad_keys``.
        bad_keys: keys answered 401.
        seed: seeds every random choice (per job: seed + job counter); None = random.
        max_jobs: jobs kept in memory; the oldest finished ones are forgotten beyond (then 404).
        thin_list_fields: fields the list endpoints (``GET /images``, ``/image-edits``, ``/upscale``,
            ``/videos``) leave out of the objects they return; names: ``createdAt``, ``prompt``,
            ``originalImageCompletion``, ``source``, ``mode``, ``settings``, ``webhookUrl``,
            ``generationSettings``, ``width``, ``height`` (what each removes: :mod:`letzai.sim.thin`).
            Create answers are never thinned.
        thin_get_fields: the same for ``GET /{resource}/{id}`` of images, edits, upscales and videos.
        thin_rate: share of jobs whose objects are thinned (one seeded roll per job, so a job is thin in
            every answer or in none; an edit's result images follow their edit).
        create_status_200_rate: share of create POSTs of images, edits, upscales and videos answered 200
            instead of 201 (rolled per job; models always answer 200).
        upscale_list_404: ``GET /upscale`` (the list, named by the guide only) answers 404.
        webhook_lost_rate: share of webhook deliveries dropped (a job with a ``webhookUrl`` is POSTed to
            it when it ends: ready, failed or interrupted; see :mod:`letzai.sim.webhooks`).
        webhook_delay, webhook_delay_jitter: seconds from a job's end to its webhook, plus a uniform extra
            of up to ``webhook_delay_jitter``.
        webhook_duplicate_rate: share of deliveries sent twice, the copy 0.2 s after the first.
        webhook_body: ``object`` (the body is what ``GET`` of the job answers), ``event``
            (``{"event": "<kind>.<status>", "data": <that object>}``) or ``mixed`` (one per delivery).
        webhook_wrong_token_rate: share of deliveries sent to the ``webhookUrl`` with its last path segment
            (the receiver's token) replaced by a random one of the same length, and not to the right URL.
        Every webhook fault is rolled from the seeded fault randomness when the job is created (or
        interrupted), so knobs set later apply to later jobs.
        verbose: log every request to stderr.
    """

    latency_image: float = 2.0
    latency_image_edit: float = 2.5
    latency_upscale: float = 2.0
    latency_video: float = 5.0
    latency_model: float = 10.0
    jitter: float = 0.3
    fail_rate: float = 0.0
    never_finish_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0
    error_5xx_rate: float = 0.0
    lost_answer_rate: float = 0.0
    lost_answer_mode: str = "502"
    slow_rate: float = 0.0
    slow_seconds: float = 35.0
    reset_rate: float = 0.0
    media_error_rate: float = 0.0
    credits: int | None = None
    edit_images_max: int | None = None
    max_concurrent_jobs: int | None = None
    valid_keys: list[str] | None = None
    bad_keys: list[str] = field(default_factory=lambda: ["invalid", "bad-key", "revoked"])
    seed: int | None = None
    max_jobs: int = 200_000
    thin_list_fields: list[str] = field(default_factory=list)
    thin_get_fields: list[str] = field(default_factory=list)
    thin_rate: float = 1.0
    create_status_200_rate: float = 0.5
    upscale_list_404: bool = False
    webhook_lost_rate: float = 0.0
    webhook_delay: float = 0.0
    webhook_delay_jitter: float = 0.0
    webhook_duplicate_rate: float = 0.0
    webhook_body: str = "mixed"
    webhook_wrong_token_rate: float = 0.0
    verbose: bool = False

    def latency(self, kind: str) -> float:
        """The configured latency of a job kind, in seconds."""
        return float(getattr(self, f"latency_{kind}"))

    def to_dict(self) -> dict[str, Any]:
        """The knobs as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def updated(self, knobs: dict[str, Any]) -> SimConfig:
        """A copy with ``knobs`` applied, each checked and coerced.

        Raises:
            ValueError: an unknown knob or a value of the wrong type or range.
        """
        values = self.to_dict()
        fields = {f.name: f for f in dataclasses.fields(self)}
        for name, raw in knobs.items():
            if name not in fields:
                raise ValueError(f"unknown knob {name!r}")
            values[name] = _coerce(name, raw)
        return SimConfig(**values)


def _coerce(name: str, raw: Any) -> Any:
    if name in _LISTS:
        if raw is None and name == "valid_keys":
            return None
        if raw is None and name.startswith("thin_"):
            return []
        if isinstance(raw, str):
            raw = [k for k in raw.split(",") if k]
        if not isinstance(raw, list | tuple | set) or not all(isinstance(k, str) for k in raw):
            raise ValueError(f"{name} must be a list of strings")
        if name.startswith("thin_"):
            return check_fields(k.strip() for k in raw if k.strip())
        return list(raw)
    if name == "verbose":
        if not isinstance(raw, bool):
            raise ValueError("verbose must be a boolean")
        return raw
    if name == "upscale_list_404":
        return _boolean(name, raw)
    if name in _CHOICES:
        choice = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
        if choice not in _CHOICES[name]:
            raise ValueError(f"{name} must be one of {', '.join(_CHOICES[name])}")
        return choice
    if name in ("credits", "edit_images_max", "max_concurrent_jobs", "seed", "max_jobs"):
        if raw is None and name != "max_jobs":
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise ValueError(f"{name} must be an integer")
        value = int(raw)
        if value < (1 if name == "max_jobs" else 0):
            raise ValueError(f"{name} must not be negative")
        return value
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"{name} must be a number")
    number = float(raw)
    if number < 0:
        raise ValueError(f"{name} must not be negative")
    if name in _RATES and number > 1:
        raise ValueError(f"{name} is a probability (0-1)")
    return number


def _boolean(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if raw is None:
        return False
    if isinstance(raw, str) and raw.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(raw, str) and raw.strip().lower() in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"{name} must be a boolean")


def add_cli_args(parser: argparse.ArgumentParser) -> None:
    """Add one ``--knob-name`` option per knob (defaults left to :class:`SimConfig`)."""
    for f in dataclasses.fields(SimConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "verbose":
            parser.add_argument(flag, action="store_true", default=None, help="log every request")
            continue
        if f.name == "upscale_list_404":
            help_text = f"{_HELP[f.name]} (default: false)"
            parser.add_argument(flag, dest=f.name, nargs="?", const="true", default=None, help=help_text)
            continue
        what = _HELP.get(f.name) or f"seconds one {f.name.removeprefix('latency_')} job takes"
        help_text = f"{what} (default: {_default_text(f)})"
        parser.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper(), help=help_text)
    parser.add_argument("--max-concurrent", dest="max_concurrent_jobs", default=None, help=argparse.SUPPRESS)


def config_from_args(namespace: argparse.Namespace) -> SimConfig:
    """A :class:`SimConfig` from parsed CLI options (only those given).

    Raises:
        ValueError: a bad value.
    """
    knobs: dict[str, Any] = {}
    for f in dataclasses.fields(SimConfig):
        value = getattr(namespace, f.name, None)
        if value is None:
            continue
        if isinstance(value, str) and value.lower() in ("none", "null", "unlimited"):
            value = None
        knobs[f.name] = value
    return SimConfig().updated(knobs)


def _default_text(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        return str(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return ",".join(f.default_factory()) or "none"
    return ""
