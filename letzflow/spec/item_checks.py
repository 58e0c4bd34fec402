"""The checks one item must pass: every step's request built with placeholder sources and run through
:func:`letzai.limits.validate_request`, so range problems surface before anything is submitted.

:class:`CachedValidator` keeps 100k items to a few distinct checks (it memoises on a body's shape).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from letzai.errors import ValidationError
from letzai.limits import ASSET_EXTENSIONS, validate_request
from letzflow.spec.problems import ProblemLog
from letzflow.spec.requests import (
    ITEM_PROMPT,
    NEEDS_SOURCE,
    TEMPLATED,
    ItemSpec,
    StepSpec,
    TemplateError,
    build_request,
)
from letzflow.spec.requests import item_source_kind as source_kind

PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"
PLACEHOLDER_URL = "https://example.invalid/source.png"


def source_problem(value: str) -> str | None:
    """What is wrong with an item's ``image_url`` (already resolved), or None."""
    kind = source_kind(value)
    if kind == "s3":
        bucket, _, key = value[len("s3://") :].partition("/")
        return None if bucket and key else f"{value!r} is not of the form s3://bucket/key"
    if kind == "path":
        path = Path(value)
        if not path.is_file():
            return f"local file {path} does not exist (relative paths are read from the spec's folder)"
        if path.suffix.lstrip(".").lower() not in ASSET_EXTENSIONS:
            return f"{path.name} cannot be uploaded to LetzAI: use one of {', '.join(ASSET_EXTENSIONS[:5])}"
    return None


class CachedValidator:
    """:func:`validate_request` memoised on a body's *shape*, so 100k items cost a few distinct checks.

    Only the prompt and the templated URL fields differ between items; the limits check those for
    presence, type and scheme only, so the shape keeps exactly that of them (and the type of long strings,
    such as a base64 mask) and everything else verbatim.
    """

    MAX_SHAPES = 1024

    def __init__(self) -> None:
        self._cache: dict[str, list[ValidationError]] = {}
        self._static_done: set[int] = set()

    def static_step_done(self, step: StepSpec) -> bool:
        """Whether ``step`` reads nothing from the item and was already checked (then skip it)."""
        if step.index in self._static_done:
            return True
        reads_item = "prompt" in step.params or any(k in step.params for k in TEMPLATED)
        if step.index > 0 and step.kind in ("upscale", "skin_fix") and not reads_item:
            self._static_done.add(step.index)
        return False

    @staticmethod
    def _shape(name: str, value: Any) -> Any:
        if name == "prompt" and isinstance(value, str):
            return bool(value.strip())
        if name in TEMPLATED:
            entries = value if isinstance(value, list) else [value]
            kinds = [source_kind(v) if isinstance(v, str) and v else repr(v) for v in entries]
            return kinds if isinstance(value, list) else kinds[0]
        if isinstance(value, str) and len(value) > 256:
            return "<long string>"
        return value

    def __call__(self, endpoint: str, body: dict[str, Any], skip: set[str]) -> list[ValidationError]:
        """The problems of ``body``, as :func:`validate_request` finds them."""
        shape = [(k, self._shape(k, v)) for k, v in body.items()]
        key = repr((endpoint, sorted(skip), shape))
        errors = self._cache.get(key)
        if errors is None:
            errors = validate_request(endpoint, body, skip)
            if len(self._cache) < self.MAX_SHAPES:
                self._cache[key] = errors
        return errors


def _needs_prompt(endpoint: str, body: dict[str, Any]) -> bool:
    return endpoint in ("images", "videos") or (endpoint == "image_edits" and body.get("mode") == "context")


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def check_item(
    steps: list[StepSpec],
    item: ItemSpec,
    label: str,
    line: int | None,
    log: ProblemLog,
    validate: CachedValidator | None = None,
) -> None:
    """Build every step's request for ``item`` with placeholder sources and record what is wrong."""
    source = _first_source(steps[0], item, label, line, log)
    if source is None:
        return
    image_id, url = source
    for step in steps:
        if validate is not None and validate.static_step_done(step):
            image_id, url = _next_source(step.endpoint)
            continue
        endpoint = _check_step(step, item, image_id, url, label, line, log, validate)
        if endpoint is None:
            return
        image_id, url = _next_source(endpoint)


def _check_step(
    step: StepSpec,
    item: ItemSpec,
    image_id: str | None,
    url: str | None,
    label: str,
    line: int | None,
    log: ProblemLog,
    validate: CachedValidator | None,
) -> str | None:
    """Record what is wrong with one step's request for ``item``; its endpoint (None: stop checking)."""
    where = f"steps[{step.index}].{step.kind}"
    try:
        endpoint, body = build_request(step, item, image_id, url)
    except TemplateError as exc:
        owner = "the item's prompt" if exc.where == ITEM_PROMPT else f"{where}.{exc.where}"
        log.add(
            label,
            exc.name,
            f"missing — {owner} uses {{{exc.name}}} but the item has no field {exc.name!r}: add it "
            "(write {{ and }} for literal braces)",
            line,
        )
        return step.endpoint
    except OSError as exc:
        if exc.filename and Path(exc.filename).exists():
            log.add(None, f"{where}.mask", f"cannot read {exc.filename}: {exc.strerror}")
        return None
    skip = set(step.skip_checks)
    if _needs_prompt(endpoint, body) and not str(body.get("prompt") or "").strip():
        log.add(
            label,
            "prompt",
            f"missing — every item needs a prompt (or give the {step.kind} step a prompt)",
            line,
        )
        skip.add("prompt")
    skip |= _check_urls(body, where, label, line, log)
    for error in (validate or CachedValidator())(endpoint, body, skip):
        log.add(
            label,
            f"{where}.{error.field}",
            f"{_short(error.value)} is invalid: {error.allowed} — fix it, "
            f"or add `skip_checks: [{error.field}]` to the step if LetzAI changed the range",
            line,
        )
    return endpoint


def _check_urls(body: dict[str, Any], where: str, label: str, line: int | None, log: ProblemLog) -> set[str]:
    """Record templated URL fields that are not public http(s) URLs; their names (skipped by the limits)."""
    bad: set[str] = set()
    for name in TEMPLATED:
        values = body.get(name)
        for entry in values if isinstance(values, list) else [values] if values else []:
            if isinstance(entry, str) and source_kind(entry) != "url":
                log.add(
                    label,
                    f"{where}.{name}",
                    f"{_short(entry)} is not a public http(s) URL (only the "
                    "item's image_url may be a local file or s3:// key)",
                    line,
                )
                bad.add(name)
    return bad


def _first_source(
    first: StepSpec, item: ItemSpec, label: str, line: int | None, log: ProblemLog
) -> tuple[str | None, str | None] | None:
    """The placeholder source of the first step, or None when the item's own source is wrong (recorded)."""
    value = item.fields.get("image_url")
    if first.index != 0:
        return PLACEHOLDER_ID, PLACEHOLDER_URL
    if first.kind != "generate" and value not in (None, ""):
        problem = source_problem(str(value))
        if problem:
            log.add(label, "image_url", problem, line)
            return None
        return None, PLACEHOLDER_URL
    if first.kind in NEEDS_SOURCE and not first.names_own_source():
        log.add(
            label,
            "image_url",
            f"missing — step 1 ({first.kind}) needs a source photo: give the item an image_url "
            "(an https URL, a local file or s3://bucket/key)",
            line,
        )
        return None
    return None, None


def _next_source(endpoint: str) -> tuple[str | None, str]:
    """Placeholder output of a step: an upscale yields a URL only, other steps a LetzAI image."""
    return (None, PLACEHOLDER_URL) if endpoint == "upscale" else (PLACEHOLDER_ID, PLACEHOLDER_URL)
