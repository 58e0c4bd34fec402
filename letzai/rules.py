"""Small, declarative field rules that :mod:`letzai.limits` builds its table from.

A rule looks at one request body and answers a :class:`~letzai.errors.ValidationError` or None. Rules on
absent fields pass (only :class:`Required` and :class:`AnyOf` care about absence). Field names are dotted
for nested objects (``settings.panControls.up``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from letzai.errors import ValidationError

MISSING: Any = object()

Condition = Callable[[Mapping[str, Any]], bool]


def lookup(body: Mapping[str, Any], field: str) -> Any:
    """The value at a dotted ``field`` of ``body``, or :data:`MISSING` (also if a parent is no object)."""
    value: Any = body
    for part in field.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def _absent(value: Any) -> bool:
    return value is MISSING or value is None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bounds(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo:g} to {hi:g}"
    if lo is not None:
        return f"at least {lo:g}"
    return f"at most {hi:g}" if hi is not None else "any"


@dataclass(frozen=True)
class Rule:
    """Base rule on one field; ``when`` limits it to bodies for which it returns True."""

    field: str
    when: Condition | None = dc_field(default=None, kw_only=True)

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field this rule reads (a skip of any of them turns it off)."""
        return (self.field,)

    def check(self, body: Mapping[str, Any]) -> ValidationError | None:
        """The problem with ``body``, or None."""
        value = lookup(body, self.field)
        return None if _absent(value) else self.check_value(value)

    def check_value(self, value: Any) -> ValidationError | None:
        """The problem with a present value, or None."""
        return None

    def fail(self, value: Any, allowed: str) -> ValidationError:
        return ValidationError(self.field, value, allowed)


@dataclass(frozen=True)
class Required(Rule):
    """The field must be present and not empty (blank strings and empty lists count as empty)."""

    def check(self, body: Mapping[str, Any]) -> ValidationError | None:
        value = lookup(body, self.field)
        if _absent(value) or (isinstance(value, str) and not value.strip()) or value in ([], {}):
            return self.fail(None if value is MISSING else value, "required and must not be empty")
        return None


@dataclass(frozen=True)
class IsString(Rule):
    """The field must be a string."""

    def check_value(self, value: Any) -> ValidationError | None:
        return None if isinstance(value, str) else self.fail(value, "must be a string")


@dataclass(frozen=True)
class Url(Rule):
    """The field must be an absolute http(s) URL."""

    def check_value(self, value: Any) -> ValidationError | None:
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return None
        return self.fail(value, "must be an http(s) URL")


@dataclass(frozen=True)
class IsBool(Rule):
    """The field must be true or false."""

    def check_value(self, value: Any) -> ValidationError | None:
        return None if isinstance(value, bool) else self.fail(value, "must be true or false")


@dataclass(frozen=True)
class IsDict(Rule):
    """The field must be an object."""

    def check_value(self, value: Any) -> ValidationError | None:
        return None if isinstance(value, Mapping) else self.fail(value, "must be an object")


@dataclass(frozen=True)
class Range(Rule):
    """The field must be an integer in ``[lo, hi]`` (either bound may be None)."""

    lo: float | None = None
    hi: float | None = None

    def check_value(self, value: Any) -> ValidationError | None:
        ok = (
            _is_int(value) and (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)
        )
        return None if ok else self.fail(value, f"an integer, {_bounds(self.lo, self.hi)}")


@dataclass(frozen=True)
class IsNumber(Range):
    """The field must be a number (int or float) in ``[lo, hi]``."""

    def check_value(self, value: Any) -> ValidationError | None:
        ok = (
            _is_number(value)
            and (self.lo is None or value >= self.lo)
            and (self.hi is None or value <= self.hi)
        )
        return None if ok else self.fail(value, f"a number, {_bounds(self.lo, self.hi)}")


@dataclass(frozen=True)
class OneOf(Rule):
    """The field must be one of ``choices`` (strings compared case-insensitively if ``ignore_case``)."""

    choices: tuple[Any, ...] = ()
    ignore_case: bool = False

    def check_value(self, value: Any) -> ValidationError | None:
        if isinstance(value, bool):
            ok = False
        elif self.ignore_case and isinstance(value, str):
            ok = value.lower() in {str(c).lower() for c in self.choices}
        else:
            ok = value in self.choices
        return None if ok else self.fail(value, "one of " + ", ".join(repr(c) for c in self.choices))


@dataclass(frozen=True)
class ListOf(Rule):
    """The field must be a list of non-empty strings, with ``lo`` to ``hi`` entries."""

    lo: int = 0
    hi: int | None = None

    def check_value(self, value: Any) -> ValidationError | None:
        allowed = f"a list of {_bounds(self.lo, self.hi)} non-empty strings"
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
            return self.fail(value, allowed)
        if len(value) < self.lo or (self.hi is not None and len(value) > self.hi):
            return self.fail(value, f"{allowed} (got {len(value)})")
        return None


@dataclass(frozen=True)
class Pattern(Rule):
    """The field must be a string fully matching ``regex``; ``meaning`` says it in words."""

    regex: str = ""
    meaning: str = ""

    def check_value(self, value: Any) -> ValidationError | None:
        if isinstance(value, str) and re.fullmatch(self.regex, value):
            return None
        return self.fail(value, self.meaning)


@dataclass(frozen=True)
class AnyOf(Rule):
    """At least one of several fields must be present and non-empty."""

    names: tuple[str, ...] = ()

    def __init__(self, names: Sequence[str], *, when: Condition | None = None) -> None:
        object.__setattr__(self, "field", "|".join(names))
        object.__setattr__(self, "when", when)
        object.__setattr__(self, "names", tuple(names))

    @property
    def fields(self) -> tuple[str, ...]:
        return self.names

    def check(self, body: Mapping[str, Any]) -> ValidationError | None:
        for name in self.names:
            value = lookup(body, name)
            if not _absent(value) and value not in ("", [], {}):
                return None
        return ValidationError(self.field, None, "at least one of " + ", ".join(self.names) + " is required")


@dataclass(frozen=True)
class NeedsTrue(Rule):
    """If ``field`` is true, ``other`` must be true as well (``default`` when ``other`` is absent)."""

    other: str = ""
    default: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.field, self.other)

    def check(self, body: Mapping[str, Any]) -> ValidationError | None:
        if lookup(body, self.field) is not True:
            return None
        other = lookup(body, self.other)
        if (self.default if _absent(other) else other) is True:
            return None
        return self.fail(True, f"needs {self.other} to be true")


@dataclass(frozen=True)
class Absent(Rule):
    """The field must not be given (``when`` picks the bodies); ``reason`` says why."""

    reason: str = "not allowed here"

    def check_value(self, value: Any) -> ValidationError | None:
        return self.fail(value, self.reason)
