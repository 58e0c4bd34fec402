"""A spec's ``steps:`` list: each entry a one-key mapping ``- kind: {params}`` turned into a StepSpec.

Parameters keep the API's field names; a snake_case spelling of a documented field (``has_watermark``)
becomes its camelCase name. ``variants`` (generate only, 1-10) and ``skip_checks`` are letzflow's own and
never sent. ``skin_fix`` takes its settings flat (``intensity: 3``). A ``mask`` path is resolved against the
spec's folder.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from letzai.limits import KNOWN_FIELDS
from letzflow.spec.problems import ProblemLog
from letzflow.spec.requests import ENDPOINTS, SKIN_SETTINGS, StepSpec

MAX_VARIANTS = 10
_SNAKE = re.compile(r"_([a-z])")


def camel_name(name: str, endpoint: str) -> str:
    """``name`` in the API's camelCase when that is a documented field of ``endpoint``, else unchanged."""
    camel = _SNAKE.sub(lambda m: m.group(1).upper(), name)
    return camel if camel != name and camel in KNOWN_FIELDS.get(endpoint, ()) else name


def _skip_names(kind: str, endpoint: str, names: list[str]) -> frozenset[str]:
    result = set()
    for name in names:
        if kind == "skin_fix" and name in SKIN_SETTINGS:
            result.add(f"settings.{name}")
        else:
            head, dot, rest = name.partition(".")
            result.add(camel_name(head, endpoint) + dot + rest)
    return frozenset(result)


def _variants(
    kind: str, params: dict[str, Any], where: str, position: int, log: ProblemLog, line: int | None
) -> int:
    if "variants" not in params:
        return 1
    value = params.pop("variants")
    if kind != "generate":
        log.add(
            None, f"{where}.variants", f"only a generate step fans out: remove variants from {kind}", line
        )
        return 1
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_VARIANTS:
        log.add(
            None, f"{where}.variants", f"{value!r} is invalid: a whole number from 1 to {MAX_VARIANTS}", line
        )
        return 1
    if value > 1 and position != 0:
        log.add(
            None,
            f"{where}.variants",
            "a generate step that fans out must be the first step (the steps "
            "before it would run once per variant)",
            line,
        )
    return value


def _mask(
    kind: str, params: dict[str, Any], base_dir: Path, where: str, log: ProblemLog, line: int | None
) -> None:
    mask = params.get("mask")
    if mask is None:
        return
    if kind != "edit" or params.get("mode") != "in":
        log.add(
            None, f"{where}.mask", "a mask is used only by inpainting: use an edit step with `mode: in`", line
        )
    if not isinstance(mask, str) or not mask.strip():
        log.add(
            None, f"{where}.mask", f"{mask!r} is invalid: give the path of a black/white image file", line
        )
        return
    if mask.startswith("data:"):
        return
    path = (base_dir / Path(mask).expanduser()).resolve()
    if not path.is_file():
        log.add(
            None,
            f"{where}.mask",
            f"mask file {path} does not exist (relative paths are read from the spec's folder)",
            line,
        )
    params["mask"] = str(path)


def _parse_step(
    entry: Any, position: int, base_dir: Path, log: ProblemLog, line: int | None
) -> StepSpec | None:
    where = f"steps[{position}]"
    if isinstance(entry, str):
        entry = {entry: {}}
    if not isinstance(entry, dict) or len(entry) != 1:
        log.add(None, where, "each step is a one-key mapping such as `- upscale: {size: 4}`", line)
        return None
    kind, raw = next(iter(entry.items()))
    if kind not in ENDPOINTS:
        close = difflib.get_close_matches(str(kind), list(ENDPOINTS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        log.add(None, where, f"unknown step kind {kind!r}: {hint}known kinds: {', '.join(ENDPOINTS)}", line)
        return None
    where = f"{where}.{kind}"
    if raw is not None and not isinstance(raw, dict):
        log.add(None, where, f"the parameters must be a mapping such as `{{size: 4}}`, not {raw!r}", line)
        return None
    endpoint = ENDPOINTS[kind]
    params: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        name = camel_name(str(key), endpoint)
        if name in params:
            log.add(None, f"{where}.{name}", f"given twice (as {name} and {key}): keep one", line)
        params[name] = value
    variants = _variants(kind, params, where, position, log, line)
    skip = params.pop("skip_checks", [])
    if isinstance(skip, str):
        skip = [skip]
    if not isinstance(skip, list) or not all(isinstance(s, str) for s in skip):
        log.add(
            None, f"{where}.skip_checks", f"{skip!r} is invalid: a list of field names, e.g. [width]", line
        )
        skip = []
    if "prompt" in params and not isinstance(params["prompt"], str):
        log.add(None, f"{where}.prompt", f"{params['prompt']!r} is invalid: a text template", line)
    _mask(kind, params, base_dir, where, log, line)
    return StepSpec(
        index=position,
        kind=kind,
        params=params,
        variants=variants,
        skip_checks=_skip_names(kind, endpoint, skip),
    )


def parse_steps(
    raw: Any, base_dir: Path, lines: dict[str, Any], log: ProblemLog
) -> tuple[list[StepSpec], bool]:
    """The spec's steps, and whether every one of them is valid (problems go to ``log``)."""
    step_lines: tuple[int, ...] = lines.get("steps[]", ())
    if not isinstance(raw, list) or not raw:
        log.add(
            None,
            "steps",
            "give a non-empty list of steps, e.g. `steps: [{generate: {width: 1024}}]`",
            lines.get("steps"),
        )
        return [], False
    steps: list[StepSpec] = []
    ok = True
    for position, entry in enumerate(raw):
        line = step_lines[position] if position < len(step_lines) else None
        step = _parse_step(entry, position, base_dir, log, line)
        if step is None:
            ok = False
            continue
        previous = steps[-1] if steps else None
        if previous is not None and previous.kind == "animate" and step.kind != "generate":
            log.add(
                None,
                f"steps[{position}].{step.kind}",
                "comes after animate, whose output is a video: put animate last",
                line,
            )
            ok = False
        steps.append(step)
    return steps, ok
