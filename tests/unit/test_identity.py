"""Positive identification of a lost answer's job: a missing field proves nothing (table-tested)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from letzai.identity import Verdict, could_share_job, identifying, judge

SINCE = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
LATER = "2026-12-01T12:00:01.000Z"
EARLIER = "2026-12-01T11:50:00.000Z"
SRC = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"

GEN = {"prompt": "red bag", "width": 1600, "height": 1600, "quality": 3}
SKIN = {"mode": "skin", "originalImageCompletionId": SRC, "settings": {"intensity": 3}}
UPSCALE = {"imageId": SRC, "strength": 1, "size": 4}
VIDEO = {"prompt": "orbit", "originalImageCompletionId": SRC, "settings": {"mode": "default", "duration": 4}}

CASES = [
    # (endpoint, request, object, verdict)
    ("images", GEN, {"prompt": "red bag", "createdAt": LATER}, Verdict.MATCH),
    ("images", GEN, {"prompt": "blue bag", "createdAt": LATER}, Verdict.DIFFERENT),
    ("images", GEN, {"createdAt": LATER}, Verdict.UNKNOWN),  # no prompt echo: proves nothing
    ("images", GEN, {"prompt": "red bag"}, Verdict.UNKNOWN),  # no createdAt: could be an older job
    ("images", GEN, {"prompt": "red bag", "createdAt": EARLIER}, Verdict.DIFFERENT),
    ("images", GEN, {"prompt": "red bag", "createdAt": LATER, "width": 520}, Verdict.DIFFERENT),
    (
        "images",
        GEN,
        {"prompt": "red bag", "createdAt": LATER, "generationSettings": {"width": 1600, "quality": 3}},
        Verdict.MATCH,
    ),
    ("images", GEN, {"prompt": "red bag", "createdAt": LATER, "imageEdit": {"id": "x"}}, Verdict.DIFFERENT),
    (
        "images",
        {**GEN, "webhookUrl": "https://h/t1"},
        {"prompt": "red bag", "createdAt": LATER, "webhookUrl": "https://h/t2"},
        Verdict.DIFFERENT,
    ),
    (
        "images",
        GEN,
        {"prompt": "red bag", "createdAt": LATER, "webhookUrl": "https://h/t"},
        Verdict.DIFFERENT,
    ),
    (
        "image_edits",
        SKIN,
        {
            "mode": "skin",
            "originalImageCompletion": {"id": SRC},
            "settings": {"intensity": 3, "face": True},
            "createdAt": LATER,
        },
        Verdict.MATCH,
    ),
    (
        "image_edits",
        SKIN,
        {"mode": "skin", "settings": {"intensity": 3}, "createdAt": LATER},
        Verdict.UNKNOWN,
    ),
    (
        "image_edits",
        SKIN,
        {
            "mode": "skin",
            "originalImageCompletion": {"id": OTHER},
            "settings": {"intensity": 3},
            "createdAt": LATER,
        },
        Verdict.DIFFERENT,
    ),
    (
        "image_edits",
        SKIN,
        {"mode": "context", "originalImageCompletion": {"id": SRC}, "createdAt": LATER},
        Verdict.DIFFERENT,
    ),
    ("upscale", UPSCALE, {"id": "u", "status": "ready", "createdAt": LATER}, Verdict.UNKNOWN),
    ("upscale", UPSCALE, {"imageId": SRC, "createdAt": LATER, "size": 4}, Verdict.MATCH),
    ("upscale", UPSCALE, {"imageId": OTHER, "createdAt": LATER}, Verdict.DIFFERENT),
    ("upscale", UPSCALE, {"imageId": SRC, "createdAt": LATER, "size": 2}, Verdict.DIFFERENT),
    (
        "videos",
        VIDEO,
        {
            "prompt": "orbit",
            "originalImageCompletion": {"id": SRC},
            "createdAt": LATER,
            "settings": {"mode": "default", "duration": 4, "withSound": False},
        },
        Verdict.MATCH,
    ),
    (
        "videos",
        VIDEO,
        {"prompt": "orbit", "originalImageCompletion": {"id": SRC}, "createdAt": LATER},
        Verdict.UNKNOWN,
    ),
    (
        "videos",
        {"prompt": "orbit", "imageUrl": "https://x/a.png"},
        {"prompt": "orbit", "imageUrls": ["https://x/a.png"], "createdAt": LATER},
        Verdict.MATCH,
    ),
]


@pytest.mark.parametrize(("endpoint", "body", "obj", "verdict"), CASES)
def test_judge_adopts_only_what_every_present_field_proves(endpoint, body, obj, verdict):
    assert judge(endpoint, body, obj, SINCE).verdict is verdict


def test_an_unknown_verdict_names_the_missing_fields():
    why = judge("upscale", UPSCALE, {"id": "u"}, SINCE).why
    assert "imageId" in why and "createdAt" in why


def test_clock_skew_is_allowed_but_an_old_job_is_not_adopted():
    slightly_before = (SINCE - timedelta(seconds=30)).isoformat()
    assert (
        judge("images", GEN, {"prompt": "red bag", "createdAt": slightly_before}, SINCE).verdict
        is Verdict.MATCH
    )


TWINS = [
    ("images", GEN, GEN, True),
    ("images", GEN, {**GEN, "width": 520}, True),  # width is not shown by image objects: no help
    ("images", GEN, {**GEN, "prompt": "blue"}, False),
    ("upscale", UPSCALE, {**UPSCALE, "imageId": OTHER}, False),
    ("upscale", UPSCALE, {**UPSCALE, "size": 2}, True),
    ("image_edits", SKIN, {**SKIN, "settings": {"intensity": 4}}, False),
    (
        "image_edits",
        SKIN,
        {"mode": "skin", "originalImageCompletionId": SRC},
        True,
    ),  # API may default settings
    ("image_edits", {"mode": "skin", "originalImageCompletionId": SRC}, {**SKIN, "prompt": "x"}, True),
    ("images", {**GEN, "webhookUrl": "https://h/1"}, {**GEN, "webhookUrl": "https://h/2"}, False),
]


@pytest.mark.parametrize(("endpoint", "ours", "theirs", "twin"), TWINS)
def test_two_requests_are_twins_unless_a_shown_field_tells_them_apart(endpoint, ours, theirs, twin):
    assert could_share_job(endpoint, ours, theirs) is twin


def test_identifying_keeps_only_the_compared_fields():
    assert identifying("upscale", {**UPSCALE, "organizationId": "org"}) == UPSCALE
