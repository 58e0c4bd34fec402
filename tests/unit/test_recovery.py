"""What lost-answer recovery decides, given a list endpoint (a fake) and the ledger's answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from letzai.errors import NotFound, ServerError
from tasks.recovery import PAGE_SIZE, Found, find_created_job

SINCE = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
NEW = "2026-12-01T12:00:02.000Z"
OLD = "2026-11-30T12:00:00.000Z"
BODY = {"prompt": "red bag", "width": 1600}


class FakeList:
    """A list endpoint answering fixed pages, and GETs from a separate (fuller) table."""

    def __init__(
        self,
        objects: list[dict[str, Any]],
        full: dict[str, dict[str, Any]] | None = None,
        error: Exception | None = None,
    ) -> None:
        self.objects, self.full, self.error = objects, full or {}, error
        self.fetched: list[str] = []

    def list(self, **params: Any) -> list[dict[str, Any]]:
        if self.error:
            raise self.error
        start = (params["page"] - 1) * params["limit"]
        return self.objects[start : start + params["limit"]]

    def fetch(self, id: str) -> dict[str, Any]:
        self.fetched.append(id)
        if id not in self.full:
            raise NotFound(404, "gone")
        return self.full[id]


def decide(listing: FakeList, claimed: set[str] = frozenset(), twins: int = 0):  # type: ignore[assignment]
    return find_created_job(
        "images", BODY, SINCE, listing, claimed=lambda ids: set(ids) & set(claimed), twins=lambda: twins
    )


def test_the_one_fully_shown_unclaimed_job_is_adopted():
    found = decide(FakeList([{"id": "a", "prompt": "red bag", "createdAt": NEW}]))
    assert (found.found, found.remote_id) == (Found.ADOPT, "a")


def test_a_claimed_job_is_never_adopted_and_its_absence_is_proven():
    found = decide(FakeList([{"id": "a", "prompt": "red bag", "createdAt": NEW}]), claimed={"a"})
    assert found.found is Found.ABSENT


def test_nothing_is_adopted_while_an_indistinguishable_post_is_unsettled():
    found = decide(FakeList([{"id": "a", "prompt": "red bag", "createdAt": NEW}]), twins=1)
    assert found.found is Found.WAIT and found.remote_id is None


def test_a_thin_list_is_not_a_match_and_not_an_absence():
    found = decide(FakeList([{"id": "a", "createdAt": NEW}]))
    assert found.found is Found.UNPROVEN and "prompt" in found.why


def test_a_thinly_listed_job_is_fetched_and_adopted_on_what_the_get_shows():
    listing = FakeList([{"id": "a"}], full={"a": {"id": "a", "prompt": "red bag", "createdAt": NEW}})
    found = decide(listing)
    assert (found.found, found.remote_id, listing.fetched) == (Found.ADOPT, "a", ["a"])


def test_another_requests_job_proves_absence_when_the_list_reaches_back():
    found = decide(FakeList([{"id": "b", "prompt": "blue bag", "createdAt": NEW}]))
    assert found.found is Found.ABSENT


def test_a_full_list_that_does_not_reach_back_proves_nothing():
    page = [{"id": f"x{i}", "prompt": "other", "createdAt": NEW} for i in range(3 * PAGE_SIZE)]
    assert decide(FakeList(page)).found is Found.UNPROVEN


def test_an_older_job_ends_the_search_window():
    page = [{"id": f"x{i}", "prompt": "other", "createdAt": NEW} for i in range(PAGE_SIZE - 1)]
    page.append({"id": "old", "prompt": "red bag", "createdAt": OLD})
    page += [{"id": "older", "prompt": "red bag", "createdAt": OLD}] * PAGE_SIZE
    assert decide(FakeList(page)).found is Found.ABSENT


def test_a_list_endpoint_answering_404_cannot_prove_anything():
    found = decide(FakeList([], error=NotFound(404, "Cannot GET /upscale")))
    assert found.found is Found.UNPROVEN and "404" in found.why


def test_a_failing_list_raises_for_the_caller_to_count():
    with pytest.raises(ServerError):
        decide(FakeList([], error=ServerError(502, "bad gateway")))


def test_successive_looks_confirm_different_thin_objects_until_the_job_is_found():
    objects = [{"id": f"x{i}"} for i in range(60)]
    full = {f"x{i}": {"prompt": "other", "createdAt": NEW} for i in range(60)}
    full["x40"] = {"prompt": "red bag", "createdAt": NEW}
    listing = FakeList(objects, full)
    looks = [
        find_created_job("images", BODY, SINCE, listing, claimed=lambda ids: set(), twins=lambda: 0, look=n)
        for n in (1, 2)
    ]
    assert looks[0].found is Found.UNPROVEN
    assert (looks[1].found, looks[1].remote_id) == (Found.ADOPT, "x40")


def test_a_5xx_page_is_tried_again_within_the_look():
    class Flaky(FakeList):
        calls = 0

        def list(self, **params):
            self.calls += 1
            if self.calls == 1:
                raise ServerError(502, "bad gateway")
            return super().list(**params)

    found = decide(Flaky([{"id": "a", "prompt": "red bag", "createdAt": NEW}]))
    assert found.found is Found.ADOPT
