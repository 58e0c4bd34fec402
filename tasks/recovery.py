"""Finding the job of a POST whose answer was lost: LetzAI has no idempotency key, so look in the list.

A POST that timed out, broke off or answered 5xx may still have created (and billed) the job. Before any
new POST the engine lists the account's newest jobs of that kind and decides, with
:func:`letzai.identity.judge` on every object, one of:

- ``ADOPT``: exactly this request's job is listed, unclaimed, and no other open request could share it;
- ``ABSENT``: the list reaches back past the first POST and every object in it is provably another
  request's (or claimed): sending again cannot pay twice;
- ``UNPROVEN``: an object may be it but lacks a field that would tell (a thin list), or the list does not
  reach back far enough, or cannot be read (404/405): the caller counts the attempt and, past its bound,
  shows the step as ``unconfirmed`` instead of guessing;
- ``WAIT``: another step's POST of an indistinguishable request is still unsettled: whichever job is
  listed may be that step's, so nothing is adopted until it settles.

Objects the list shows thinly are fetched one by one (a GET may show what a list leaves out), a bounded
number of them. :func:`find_created_job` is a plain function of its collaborators; nothing here sends a
message or writes the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from letzai.errors import LetzAIError, NotFound, ServerError, TransportError
from letzai.identity import CLOCK_SKEW, Judgement, Verdict, created_at, judge, missing_fields

log = logging.getLogger(__name__)

PAGES = 3
PAGE_SIZE = 50
#: Tries of one list page or one GET within a look, on 5xx and transport errors.
PAGE_TRIES = 3
#: Thinly listed objects fetched one by one per look (each a GET).
CONFIRM_GETS = 25


class Listing(Protocol):
    def list(self, **params: Any) -> list[dict[str, Any]]: ...

    def fetch(self, id: str) -> dict[str, Any]: ...


class Found(Enum):
    ADOPT = "adopt"
    ABSENT = "absent"
    UNPROVEN = "unproven"
    WAIT = "wait"


@dataclass(frozen=True)
class Recovery:
    """``final``: an ``UNPROVEN`` that no later look can change (the list endpoint does not exist)."""

    found: Found
    remote_id: str | None = None
    why: str = ""
    final: bool = False


def _listed(resource: Listing, since: datetime) -> tuple[list[dict[str, Any]], bool]:
    """The newest objects, and whether they reach back past ``since`` (or are all there is).

    Raises:
        LetzAIError: the list could not be read.
    """
    objects: list[dict[str, Any]] = []
    for page in range(1, PAGES + 1):
        batch = _page(resource, page)
        objects.extend(o for o in batch if isinstance(o, dict) and o.get("id"))
        if len(batch) < PAGE_SIZE:
            return objects, True
        stamps = [c for c in (created_at(o) for o in batch) if c is not None]
        if stamps and min(stamps) < since - CLOCK_SKEW:
            return objects, True
    return objects, False


def _page(resource: Listing, page: int) -> list[dict[str, Any]]:
    """One list page; a 5xx or a broken connection is tried again at once, up to ``PAGE_TRIES`` times
    (a GET changes nothing; a 429 is left to the caller, who comes back after Retry-After)."""
    for attempt in range(1, PAGE_TRIES + 1):
        try:
            return resource.list(sortBy="createdAt", sortOrder="DESC", page=page, limit=PAGE_SIZE)
        except (ServerError, TransportError):
            if attempt == PAGE_TRIES:
                raise
    raise AssertionError("unreachable")


def find_created_job(
    endpoint: str,
    body: dict[str, Any],
    since: datetime,
    resource: Listing,
    *,
    claimed: Callable[[Iterable[str]], set[str]],
    twins: Callable[[], int],
    look: int = 1,
    hook_hash: str | None = None,
) -> Recovery:
    """Decide what became of the lost POST of ``body`` (first sent at ``since``).

    ``claimed(ids)`` answers which of these remote ids a step of the ledger already holds; ``twins()`` how
    many other steps have an unsettled POST that an object could match as well. Both are asked after the
    list was read: a job listed was POSTed by a step that was ``submitting`` then, so it is either still
    a twin or has recorded its id by the time they are asked. ``look`` (1, 2, …) moves the window of
    thin objects fetched one by one, so successive looks confirm different ones. ``hook_hash``: the hash
    of the POST's webhook token; an object echoing that token is adopted at once (no other request can
    share it, so the twins guard does not apply).
    """
    listed = _read_list(resource, since)
    if isinstance(listed, Recovery):
        return listed
    objects, complete = listed
    judged = [(o, judge(endpoint, body, o, since, hook_hash=hook_hash)) for o in objects]
    exact = [str(o["id"]) for o, j in judged if j.exact]
    if exact and not claimed(exact[:1]):
        return Recovery(Found.ADOPT, exact[0], why="identified by its webhook token")
    open_ids = [str(o["id"]) for o, j in judged if j.verdict is not Verdict.DIFFERENT]
    if not open_ids:
        if complete:
            return Recovery(Found.ABSENT, why=f"none of {len(objects)} listed jobs is this request's")
        return Recovery(Found.UNPROVEN, why=f"the list does not reach back to the POST ({len(objects)} read)")
    if twins():
        return Recovery(Found.WAIT, why="another step's POST of an indistinguishable request is unsettled")
    taken = claimed(open_ids)
    judged = [(o, j) for o, j in judged if j.verdict is not Verdict.DIFFERENT and str(o["id"]) not in taken]
    judged = _confirm_thin(
        endpoint, body, since, resource, judged, skip=(look - 1) * CONFIRM_GETS, hook_hash=hook_hash
    )
    matches = [o for o, j in judged if j.verdict is Verdict.MATCH]
    unknown = [j for _o, j in judged if j.verdict is Verdict.UNKNOWN]
    if matches:
        if len(matches) > 1:
            log.warning(
                "%d unclaimed jobs match one lost %s POST; adopting the oldest", len(matches), endpoint
            )
        return Recovery(Found.ADOPT, str(matches[-1]["id"]), why="identified by every field")
    if unknown:
        return Recovery(
            Found.UNPROVEN, why=f"{len(unknown)} listed job(s) may be it but {missing_fields(unknown)}"
        )
    if complete:
        return Recovery(Found.ABSENT, why="every listed job is another request's or claimed")
    return Recovery(Found.UNPROVEN, why=f"the list does not reach back to the POST ({len(objects)} read)")


def _read_list(resource: Listing, since: datetime) -> tuple[list[dict[str, Any]], bool] | Recovery:
    """The listed objects and whether they reach back past ``since``; or a final ``UNPROVEN`` when the
    list endpoint does not exist (404/405).

    Raises:
        LetzAIError: the list could not be read now.
    """
    try:
        return _listed(resource, since)
    except NotFound as exc:
        return Recovery(
            Found.UNPROVEN, why=f"the list endpoint answered {exc.status}: cannot prove", final=True
        )
    except LetzAIError as exc:
        if getattr(exc, "status", None) == 405:
            return Recovery(Found.UNPROVEN, why="the list endpoint answered 405: cannot prove", final=True)
        raise


def _confirm_thin(
    endpoint: str,
    body: dict[str, Any],
    since: datetime,
    resource: Listing,
    judged: list[tuple[dict[str, Any], Judgement]],
    skip: int = 0,
    hook_hash: str | None = None,
) -> list[tuple[dict[str, Any], Judgement]]:
    """Fetch thinly listed objects (``CONFIRM_GETS`` of them, after the first ``skip``; the window wraps
    round) and judge them again on what the GET shows."""
    unknown = [i for i, (_o, j) in enumerate(judged) if j.verdict is Verdict.UNKNOWN]
    if unknown:
        start = skip % len(unknown)
        chosen = set((unknown[start:] + unknown[:start])[:CONFIRM_GETS])
    else:
        chosen = set()
    out = []
    for index, (obj, j) in enumerate(judged):
        if index in chosen:
            full = _fetch(resource, str(obj["id"]))
            if full is not None:
                obj = {**obj, **full}
                j = judge(endpoint, body, obj, since, hook_hash=hook_hash)
        if j.verdict is not Verdict.DIFFERENT:
            out.append((obj, j))
    return out


def _fetch(resource: Listing, remote_id: str) -> dict[str, Any] | None:
    """The full object, or None when it cannot be read now (it then stays unknown for this look)."""
    for _attempt in range(PAGE_TRIES):
        try:
            return resource.fetch(remote_id)
        except (ServerError, TransportError):
            continue
        except LetzAIError as exc:
            log.info("confirming listed job %s failed: %s", remote_id, exc.message)
            return None
    return None
