"""Spec problems: what is wrong, where (item, field, line) and how to fix it, all reported at once."""

from __future__ import annotations

from dataclasses import dataclass

from letzflow.errors import LetzflowError

#: Distinct problems kept; past this only a count is reported (a 100k-row CSV may be wrong everywhere).
MAX_PROBLEMS = 500
#: Further items named when the same problem repeats over many items.
MAX_ALSO = 3


@dataclass
class Problem:
    """One problem: ``item`` labels the item (e.g. ``items[3] (id sku-004)``), None for spec-wide ones."""

    item: str | None
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.item} field {self.field}" if self.item else f"field {self.field}"
        text = f"{where}: {self.message}"
        if self.line is not None and f"line {self.line}" not in text and f"row {self.line} " not in text:
            text += f" (line {self.line})"
        return text


class SpecError(LetzflowError):
    """The spec is invalid; ``problems`` lists every problem found. Nothing was submitted."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ProblemLog:
    """Collects problems; the same problem over many items becomes one line naming the first few."""

    def __init__(self) -> None:
        self._problems: list[Problem] = []
        self._index: dict[tuple[str, str], int] = {}
        self._also: dict[int, list[str]] = {}
        self._repeats: dict[int, int] = {}
        self._last: dict[int, str | None] = {}
        self._spec_wide: set[tuple[str, str]] = set()
        self._dropped = 0

    def add(self, item: str | None, field: str, message: str, line: int | None = None) -> None:
        """Record a problem (a repeat of an earlier item's problem is folded into it)."""
        key = (field, message)
        if item is None:
            if key in self._spec_wide:
                return
            self._spec_wide.add(key)
        elif key in self._index:
            n = self._index[key]
            if self._last.get(n, self._problems[n].item) == item:
                return
            self._last[n] = item
            self._repeats[n] = self._repeats.get(n, 0) + 1
            also = self._also.setdefault(n, [])
            if len(also) < MAX_ALSO:
                also.append(item)
            return
        if len(self._problems) >= MAX_PROBLEMS:
            self._dropped += 1
            return
        if item is not None:
            self._index[key] = len(self._problems)
        self._problems.append(Problem(item, field, message, line))

    def __bool__(self) -> bool:
        return bool(self._problems)

    def problems(self) -> list[Problem]:
        """Every problem, repeats summarised in the message of the first occurrence."""
        result = []
        for n, problem in enumerate(self._problems):
            repeats = self._repeats.get(n, 0)
            if repeats:
                named = ", ".join(self._also[n])
                more = f" and {repeats - len(self._also[n])} more" if repeats > len(self._also[n]) else ""
                problem = Problem(
                    problem.item, problem.field, f"{problem.message} (same in {named}{more})", problem.line
                )
            result.append(problem)
        if self._dropped:
            result.append(
                Problem(None, "(more)", f"{self._dropped} more problems not listed: fix these first")
            )
        return result

    def raise_if_any(self) -> None:
        """Raise :class:`SpecError` with every problem, if there is one."""
        if self._problems:
            raise SpecError(self.problems())
