"""Parsing LetzAI job objects: status vocabularies, media URL rules, edits' results, reasons."""

from __future__ import annotations

import logging

import pytest

from letzai.responses import classify_status, image_url, parse_job, video_url

IMG = {"original": "https://m/orig.jpg", "1920x1920": "https://m/1920.jpg", "640x640": "https://m/640.jpg"}

STATUS_TABLE = [
    ("image", "new", "working"),
    ("image", "generating", "working"),
    ("image", "in progress", "working"),
    ("image", "ready", "success"),
    ("image", "failed", "failure"),
    ("image", "interrupted", "failure"),
    ("image", "not_allowed", "failure"),
    ("image", "hidden", "failure"),
    ("image_edit", "new", "working"),
    ("image_edit", "generating", "working"),
    ("image_edit", "ready", "success"),
    ("image_edit", "saved", "success"),
    ("image_edit", "failed", "failure"),
    ("image_edit", "interrupted", "failure"),
    ("upscale", "new", "working"),
    ("upscale", "generating", "working"),
    ("upscale", "ready", "success"),
    ("upscale", "failed", "failure"),
    ("video", "new", "working"),
    ("video", "generating", "working"),
    ("video", "ready", "success"),
    ("video", "saved", "success"),
    ("video", "failed", "failure"),
    ("video", "interrupted", "failure"),
    ("model", "new", "working"),
    ("model", "pending", "working"),
    ("model", "training", "working"),
    ("model", "finished", "working"),
    ("model", "available", "success"),
    ("model", "failed", "failure"),
    ("image", "READY", "success"),
    ("image", "queued-somewhere", "unknown"),
    ("video", "", "unknown"),
    ("upscale", "saved", "unknown"),
]


@pytest.mark.parametrize(("kind", "status", "phase"), STATUS_TABLE)
def test_status_vocabulary(kind, status, phase):
    assert classify_status(kind, status) == phase


def test_unknown_status_is_logged_once(caplog):
    with caplog.at_level(logging.WARNING, logger="letzai.responses"):
        for _ in range(3):
            classify_status("image", "brand-new-state-xyz")
    assert sum("brand-new-state-xyz" in r.getMessage() for r in caplog.records) == 1


def test_image_takes_the_original_version():
    job = parse_job("image", {"id": "i1", "status": "ready", "imageVersions": IMG})
    assert job.done and [(o.url, o.image_id) for o in job.outputs] == [("https://m/orig.jpg", "i1")]


def test_image_without_original_takes_the_largest_version():
    versions = {
        "240x240": "https://m/240.jpg",
        "1920x1080": "https://m/big.jpg",
        "640x640": "https://m/640.jpg",
    }
    assert image_url({"imageVersions": versions}) == "https://m/big.jpg"


def test_ready_image_without_media_is_not_done():
    job = parse_job("image", {"id": "i1", "status": "ready", "imageVersions": {}})
    assert job.phase == "success" and not job.done


def test_progress_100_alone_is_not_success():
    job = parse_job("image", {"id": "i1", "status": "generating", "progress": 100, "imageVersions": IMG})
    assert not job.done and job.progress == 100.0


def test_failed_job_has_reason_from_both_fields_and_no_outputs():
    obj = {
        "id": "i1",
        "status": "failed",
        "statusDetail": "NSFW",
        "progressMessage": "blocked",
        "imageVersions": IMG,
    }
    job = parse_job("image", obj)
    assert job.failed and job.outputs == [] and job.reason == "NSFW / blocked"


def test_preview_image_is_never_kept():
    job = parse_job("image", {"id": "i1", "status": "generating", "previewImage": "A" * 10_000})
    assert "previewImage" not in job.keys and "A" * 100 not in repr(job)


def test_edit_result_is_generated_image_completion():
    obj = {
        "id": "e1", "status": "ready", "mode": "skin",
        "originalImageCompletion": {"id": "src", "imageVersions": {"original": "https://m/src.jpg"}},
        "generatedImageCompletion": {"id": "g1", "status": "ready", "imageVersions": IMG},
    }  # fmt: skip
    job = parse_job("image_edit", obj)
    assert job.done and [(o.url, o.image_id) for o in job.outputs] == [("https://m/orig.jpg", "g1")]


def test_edit_choices_as_ids_and_objects():
    obj = {
        "id": "e1", "status": "ready",
        "generatedImageCompletion": {"id": "g1", "imageVersions": IMG},
        "imageCompletionChoices": [
            "g1",
            "c2",
            {"id": "c3", "imageVersions": {"original": "https://m/c3.jpg"}},
            {"id": "c4", "status": "generating"},
            {"id": "g1", "imageVersions": IMG},
        ],
    }  # fmt: skip
    job = parse_job("image_edit", obj)
    assert [(o.url, o.image_id) for o in job.outputs] == [
        ("https://m/orig.jpg", "g1"),
        ("https://m/c3.jpg", "c3"),
    ]
    assert job.choices == ["c2", "c4"]


def test_edit_with_choices_only_is_success_but_needs_the_choice_images():
    job = parse_job("image_edit", {"id": "e1", "status": "saved", "imageCompletionChoices": ["a", "b"]})
    assert job.phase == "success" and not job.done and job.choices == ["a", "b"]


def test_edit_failure_reason_may_live_on_the_generated_image():
    obj = {
        "id": "e1",
        "status": "failed",
        "generatedImageCompletion": {"id": "g", "statusDetail": "no face found"},
    }
    assert parse_job("image_edit", obj).reason == "no face found"


@pytest.mark.parametrize(
    ("obj", "url"),
    [
        ({"videoVersions": {"original": "https://v/a.mp4"}}, "https://v/a.mp4"),
        ({"videoPaths": {"mp4": "https://v/b.mp4", "webm": "https://v/b.webm"}}, "https://v/b.mp4"),
        ({"videoPaths": {"hls": "https://v/c.m3u8"}}, "https://v/c.m3u8"),
        ({"videoVersions": ["https://v/d.mp4", "https://v/d2.mp4"]}, "https://v/d.mp4"),
        ({"videoVersions": [{"url": "https://v/e.mp4"}]}, "https://v/e.mp4"),
        (
            {
                "videoVersions": {"original": "https://v/first.mp4"},
                "videoPaths": {"mp4": "https://v/second.mp4"},
            },
            "https://v/first.mp4",
        ),
    ],
)
def test_video_url_shapes_in_order(obj, url):
    assert video_url(obj) == url
    job = parse_job("video", {"id": "v1", "status": "ready", **obj})
    assert job.done and job.outputs[0].url == url and job.outputs[0].image_id is None


def test_ready_video_without_url_is_not_done_and_keeps_its_keys():
    job = parse_job(
        "video", {"id": "v1", "status": "ready", "videoPaths": {}, "previewImage": "x", "width": 720}
    )
    assert job.phase == "success" and not job.done
    assert job.keys == ["id", "status", "videoPaths", "width"]


def test_upscale_output_has_no_image_id():
    job = parse_job(
        "upscale", {"id": "u1", "status": "ready", "imageVersions": {"original": "https://m/up.jpg"}}
    )
    assert job.done and job.outputs[0].image_id is None


def test_model_is_done_when_available():
    assert parse_job("model", {"id": "m", "status": "available"}).done
    assert not parse_job("model", {"id": "m", "status": "finished"}).done


def test_missing_fields_are_tolerated():
    job = parse_job("image", {})
    assert (job.id, job.status, job.phase, job.progress) == ("", "", "unknown", 0.0)
