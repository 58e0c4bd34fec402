"""The documented-limits table: good and bad requests per endpoint, skips, and the public functions."""

from __future__ import annotations

import pytest

from letzai.errors import ValidationError
from letzai.limits import KNOWN_FIELDS, RULES, check_request, validate_request

SRC = {"imageUrl": "https://img.test/a.jpg"}
TRAIN = {"name": "my_bag.v2", "class": "object", "trainingDataUrls": ["https://img.test/1.jpg"]}

GOOD = [
    ("images", {"prompt": "a bag"}),
    (
        "images",
        {"prompt": "@me", "width": 480, "height": 2160, "quality": 6, "creativity": 1, "systemVersion": 3},
    ),
    ("images", {"prompt": "x", "mode": "cinematic", "hasWatermark": False, "hideFromUserProfile": True}),
    ("images", {"prompt": "x", "mode": "4k", "baseModel": "flux2"}),
    ("images", {"prompt": "x", "mode": "2k"}),
    ("images", {"prompt": "x", "mode": "ultra", "baseModel": "some-future-model"}),
    ("images", {"prompt": "x", "someFutureField": [1, 2, 3]}),
    ("image_edits", {"mode": "context", "prompt": "on a beach", "originalImageCompletionId": "id-1"}),
    (
        "image_edits",
        {"mode": "context", "prompt": "p", "inputImageUrls": [f"https://i/{i}" for i in range(9)]},
    ),
    (
        "image_edits",
        {"mode": "context", "prompt": "p", **SRC, "settings": {"resolution": "4k", "aspect_ratio": "21:9"}},
    ),
    ("image_edits", {"mode": "skin", **SRC}),
    ("image_edits", {"mode": "skin", **SRC, "settings": {"mouth": True, "nose": True, "intensity": 5}}),
    ("image_edits", {"mode": "skin", "originalImageCompletionIds": ["a", "b"], "settings": {"intensity": 1}}),
    ("image_edits", {"mode": "in", **SRC, "mask": "iVBORw0KGgo=", "imageCompletionsCount": 3}),
    (
        "image_edits",
        {"mode": "out", **SRC, "settings": {"panControls": {"up": True, "left": False}, "zoomSize": 1.5}},
    ),
    ("image_edits", {"mode": "context", "prompt": "p", **SRC, "imageCompletionsCount": 5}),
    ("upscale", {"imageId": "id-1"}),
    ("upscale", {"imageUrl": "https://i/a.jpg", "strength": 5, "size": 12, "mode": "sharp"}),
    ("upscale", {"imageId": "id-1", "strength": 1, "size": 2.5, "mode": "some-upscaler"}),
    ("videos", {"prompt": "orbit"}),
    (
        "videos",
        {
            "prompt": "orbit",
            "imageUrls": ["https://i/a", "https://i/b"],
            "settings": {"mode": "video-kling3"},
        },
    ),
    (
        "videos",
        {"prompt": "o", "originalImageCompletionId": "i", "settings": {"duration": 8, "resolution": "1080p"}},
    ),
    ("models", TRAIN),
    (
        "models",
        {**TRAIN, "class": "Person", "trainingMode": "slow", "settings": ["NO_VIOLENCE"], "type": "bag"},
    ),
    ("models", {**TRAIN, "name": "a" * 50, "trainingDataUrls": [f"https://i/{i}" for i in range(50)]}),
    ("user_assets", {"extension": "png"}),
    (
        "user_assets",
        {"extension": "MOV", "originalFilename": "a.MOV", "mimeType": "video/quicktime", "fileSize": 9},
    ),
]

BAD = [
    ("images", {}, "prompt"),
    ("images", {"prompt": "   "}, "prompt"),
    ("images", {"prompt": 42}, "prompt"),
    ("images", {"prompt": "x", "width": 479}, "width"),
    ("images", {"prompt": "x", "height": 2161}, "height"),
    ("images", {"prompt": "x", "width": "1600"}, "width"),
    ("images", {"prompt": "x", "quality": 7}, "quality"),
    ("images", {"prompt": "x", "quality": 0}, "quality"),
    ("images", {"prompt": "x", "creativity": 2.5}, "creativity"),
    ("images", {"prompt": "x", "systemVersion": 4}, "systemVersion"),
    ("images", {"prompt": "x", "hasWatermark": "no"}, "hasWatermark"),
    ("images", {"prompt": "x", "mode": "8k"}, "mode"),
    ("models", {**TRAIN, "trainingMode": "slow"}, "trainingMode"),
    ("images", {"prompt": "x", "webhookUrl": "ftp://x"}, "webhookUrl"),
    ("image_edits", {**SRC}, "mode"),
    ("image_edits", {"mode": "magic", **SRC}, "mode"),
    (
        "image_edits",
        {"mode": "skin"},
        "originalImageCompletionId|originalImageCompletionIds|imageUrl|inputImageUrls",
    ),
    (
        "image_edits",
        {"mode": "skin", "inputImageUrls": []},
        "originalImageCompletionId|originalImageCompletionIds|imageUrl|inputImageUrls",
    ),
    ("image_edits", {"mode": "context", **SRC}, "prompt"),
    (
        "image_edits",
        {"mode": "context", "prompt": "p", "inputImageUrls": [f"https://i/{i}" for i in range(10)]},
        "inputImageUrls",
    ),
    (
        "image_edits",
        {"mode": "context", "prompt": "p", **SRC, "settings": {"aspect_ratio": "5:4"}},
        "settings.aspect_ratio",
    ),
    (
        "image_edits",
        {"mode": "context", "prompt": "p", **SRC, "settings": {"resolution": "8k"}},
        "settings.resolution",
    ),
    (
        "image_edits",
        {"mode": "context", "prompt": "p", **SRC, "imageCompletionsCount": 6},
        "imageCompletionsCount",
    ),
    (
        "image_edits",
        {"mode": "context", "prompt": "p", **SRC, "imageCompletionsCount": 0},
        "imageCompletionsCount",
    ),
    ("image_edits", {"mode": "skin", **SRC, "settings": {"intensity": 6}}, "settings.intensity"),
    ("image_edits", {"mode": "skin", **SRC, "settings": {"intensity": 0}}, "settings.intensity"),
    ("image_edits", {"mode": "skin", **SRC, "settings": {"mouth": True, "face": False}}, "settings.mouth"),
    ("image_edits", {"mode": "skin", **SRC, "settings": {"nose": True, "face": False}}, "settings.nose"),
    ("image_edits", {"mode": "skin", **SRC, "settings": {"eyes": "yes"}}, "settings.eyes"),
    ("image_edits", {"mode": "skin", **SRC, "settings": "strong"}, "settings"),
    ("image_edits", {"mode": "in", **SRC}, "mask"),
    ("image_edits", {"mode": "out", **SRC}, "settings.panControls"),
    (
        "image_edits",
        {"mode": "out", **SRC, "settings": {"panControls": {"up": "yes"}}},
        "settings.panControls.up",
    ),
    (
        "image_edits",
        {"mode": "out", **SRC, "settings": {"panControls": {"up": True}, "zoomSize": 0.5}},
        "settings.zoomSize",
    ),
    ("upscale", {}, "imageId|imageUrl|imageUrls"),
    ("upscale", {"imageId": "i", "strength": 6}, "strength"),
    ("upscale", {"imageId": "i", "strength": 0}, "strength"),
    ("upscale", {"imageId": "i", "size": 1}, "size"),
    ("upscale", {"imageId": "i", "size": 13}, "size"),
    ("upscale", {"imageUrl": "not a url"}, "imageUrl"),
    ("videos", {}, "prompt"),
    ("videos", {"prompt": ""}, "prompt"),
    ("videos", {"prompt": "x", "imageUrls": ["https://a", "https://b", "https://c"]}, "imageUrls"),
    ("videos", {"prompt": "x", "settings": {"withSound": "loud"}}, "settings.withSound"),
    ("videos", {"prompt": "x", "settings": {"resolution": "8k"}}, "settings.resolution"),
    (
        "image_edits",
        {"mode": "context", "prompt": "p", **SRC, "settings": {"resolution": "4k"}, "mask": 1},
        "mask",
    ),
    ("videos", {"prompt": "x", "settings": {"duration": 0}}, "settings.duration"),
    ("models", {"class": "object", "trainingDataUrls": ["https://i"]}, "name"),
    ("models", {**TRAIN, "name": "my bag"}, "name"),
    ("models", {**TRAIN, "name": "a-b"}, "name"),
    ("models", {**TRAIN, "name": "a" * 51}, "name"),
    ("models", {**TRAIN, "class": "animal"}, "class"),
    ("models", {"name": "n", "trainingDataUrls": ["https://i"]}, "class"),
    ("models", {**TRAIN, "trainingDataUrls": []}, "trainingDataUrls"),
    ("models", {**TRAIN, "trainingDataUrls": [f"https://i/{i}" for i in range(51)]}, "trainingDataUrls"),
    ("models", {**TRAIN, "trainingMode": "fast"}, "trainingMode"),
    ("models", {**TRAIN, "type": ""}, "type"),
    ("user_assets", {}, "extension"),
    ("user_assets", {"extension": "exe"}, "extension"),
    ("user_assets", {"extension": "png", "fileSize": -1}, "fileSize"),
]


@pytest.mark.parametrize(("endpoint", "body"), GOOD)
def test_documented_good_requests_pass(endpoint, body):
    assert validate_request(endpoint, body) == []
    check_request(endpoint, body)


@pytest.mark.parametrize(("endpoint", "body", "field"), BAD)
def test_documented_bad_requests_fail_on_the_field(endpoint, body, field):
    problems = validate_request(endpoint, body)
    assert field in [p.field for p in problems]
    with pytest.raises(ValidationError):
        check_request(endpoint, body)


@pytest.mark.parametrize(("endpoint", "body", "field"), BAD)
def test_each_bad_field_can_be_skipped(endpoint, body, field):
    skip = field.split("|")[:1] if "|" in field else [field]
    assert field not in [p.field for p in validate_request(endpoint, body, skip=skip)]


def test_all_problems_are_returned_not_just_the_first():
    problems = validate_request("images", {"width": 100, "quality": 9, "systemVersion": 1})
    assert [p.field for p in problems] == ["prompt", "width", "quality", "systemVersion"]


def test_skipping_a_parent_skips_its_nested_checks():
    body = {"mode": "skin", **SRC, "settings": {"intensity": 9, "mouth": True, "face": False}}
    assert {p.field for p in validate_request("image_edits", body)} == {
        "settings.intensity",
        "settings.mouth",
    }
    assert validate_request("image_edits", body, skip=["settings"]) == []
    assert [p.field for p in validate_request("image_edits", body, skip={"settings.intensity"})] == [
        "settings.mouth"
    ]


def test_check_request_message_names_field_value_and_range():
    with pytest.raises(ValidationError) as info:
        check_request("images", {"prompt": "x", "width": 3000})
    err = info.value
    assert (err.field, err.value) == ("width", 3000)
    assert str(err) == "width=3000 is invalid: an integer, 480 to 2160"


def test_validate_request_never_raises_on_odd_input():
    for body in ({"settings": None}, {"settings": [1]}, {"mode": None}, {"prompt": None, "width": None}):
        for endpoint in RULES:
            assert isinstance(validate_request(endpoint, body), list)
    assert [p.field for p in validate_request("nope", {})] == ["endpoint"]


def test_none_values_count_as_absent():
    assert validate_request("images", {"prompt": "x", "width": None, "organizationId": None}) == []


def test_known_fields_cover_the_documented_top_level_fields():
    assert set(KNOWN_FIELDS) == {"images", "image_edits", "upscale", "videos", "models", "user_assets"}
    image_fields = {
        "prompt",
        "width",
        "height",
        "quality",
        "creativity",
        "hasWatermark",
        "systemVersion",
        "mode",
    }
    assert image_fields | {"baseModel", "organizationId", "webhookUrl"} <= KNOWN_FIELDS["images"]
    assert {"mode", "mask", "settings", "inputImageUrls", "imageCompletionsCount"} <= KNOWN_FIELDS[
        "image_edits"
    ]
    assert {"imageId", "imageUrl", "strength", "size", "mode", "prompt"} <= KNOWN_FIELDS["upscale"]
    assert {"prompt", "imageUrls", "settings", "resolution", "baseModel"} <= KNOWN_FIELDS["videos"]
    assert {"name", "class", "trainingDataUrls", "trainingMode", "settings"} <= KNOWN_FIELDS["models"]
    assert all("." not in f and "|" not in f for fields in KNOWN_FIELDS.values() for f in fields)
