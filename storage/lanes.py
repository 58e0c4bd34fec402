"""Which image each planned step works on: variants and branches.

An item's steps run once per *lane*. ``variants: N`` on the first (generate) step starts N variants. A step
whose one job yields several images (an edit with ``imageCompletionsCount`` > 1) and is not the last step
splits its lane: the rest of the pipeline runs once per image, each such run a *branch*. A branch is written
as the path of 0-based image numbers, one per splitting step, joined with ``.`` (``""`` before any split):
``"2"`` is the third completion of the first split, ``"2.0"`` the first completion of a second split on it.

Everything is known from the spec before anything is submitted, so the plan (and the job count a dry run
prints and ``max_jobs`` checks) is exact. Stored step dicts carry ``completions``; batches recorded without
it never split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def splits(step: dict[str, Any], index: int, total: int) -> int:
    """How many branches the steps after ``step`` run in (1: no split; the last step never splits)."""
    if index >= total - 1:
        return 1
    return max(1, int(step.get("completions") or 1))


def branches_by_step(steps: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The branches each step (by index) runs on, in order."""
    current = [""]
    result = []
    for index, step in enumerate(steps):
        result.append(current)
        n = splits(step, index, len(steps))
        if n > 1:
            current = [child(b, k) for b in current for k in range(n)]
    return result


def variants(steps: Sequence[dict[str, Any]]) -> int:
    total = 1
    for step in steps:
        total *= int(step.get("variants") or 1)
    return total


def plan(steps: Sequence[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """Every planned step of one item as ``(variant, index, branch)``, in run order per lane."""
    by_step = branches_by_step(steps)
    return [
        (variant, index, branch)
        for variant in range(variants(steps))
        for index in range(len(steps))
        for branch in by_step[index]
    ]


def jobs_per_item(steps: Sequence[dict[str, Any]]) -> list[int]:
    """LetzAI jobs each step creates for one item."""
    v = variants(steps)
    return [v * len(branches) for branches in branches_by_step(steps)]


def child(branch: str, k: int) -> str:
    return f"{branch}.{k}" if branch else str(k)


def parent(branch: str) -> str:
    return branch.rpartition(".")[0]


def last_output(branch: str) -> int:
    """The image number of the split that started ``branch`` (0 for the trunk)."""
    return int(branch.rpartition(".")[2]) if branch else 0


def is_under(branch: str, ancestor: str) -> bool:
    """Whether ``branch`` was split from ``ancestor`` (directly or further down)."""
    return branch.startswith(ancestor + ".") if ancestor else bool(branch)


def within(branch: str, top: str) -> bool:
    """``top`` itself or a branch split from it."""
    return branch == top or is_under(branch, top)


def depth(branch: str) -> int:
    return branch.count(".") + 1 if branch else 0


def source_output(step_branch: str, previous_branch: str) -> int:
    """Which output of the previous step a step takes: its branch's image number where it starts a branch."""
    return last_output(step_branch) if step_branch != previous_branch else 0


def label(branch: str) -> str:
    """``"2.1"`` → ``"3.2"`` (1-based, as in storage keys and reports); ``""`` → ``""``."""
    return ".".join(str(int(part) + 1) for part in branch.split(".")) if branch else ""


def describe(variant: int, branch: str, fanned_out: bool) -> str:
    """``variant 2, image 3`` for reports and errors; ``""`` for an item's only lane."""
    parts = []
    if fanned_out:
        parts.append(f"variant {variant + 1}")
    if branch:
        parts.append(f"image {label(branch)}")
    return ", ".join(parts)
