"""Branch planning (storage.lanes), branch keys, and the canvas a split item gets."""

from __future__ import annotations

import pytest
from celery.canvas import _chain, _chord

from letzflow.spec.requests import StepSpec
from storage import lanes
from storage.layout import media_key
from storage.models import Step
from tasks.pipelines import item_canvas


def _step(kind: str, completions: int = 1, variants: int = 1) -> dict:
    return {"kind": kind, "completions": completions, "variants": variants}


PIPELINE = [_step("generate", variants=2), _step("edit", 3), _step("upscale"), _step("animate")]


def test_a_pipeline_without_split_plans_one_step_per_variant_and_index():
    steps = [_step("generate", variants=2), _step("skin_fix"), _step("upscale")]
    assert lanes.plan(steps) == [(v, i, "") for v in range(2) for i in range(3)]
    assert lanes.jobs_per_item(steps) == [2, 2, 2]


def test_an_edit_with_three_images_runs_every_later_step_once_per_image():
    assert lanes.branches_by_step(PIPELINE) == [[""], [""], ["0", "1", "2"], ["0", "1", "2"]]
    assert lanes.jobs_per_item(PIPELINE) == [2, 2, 6, 6]
    assert len(lanes.plan(PIPELINE)) == 16


def test_the_last_step_never_splits_and_old_batches_without_completions_never_do():
    assert lanes.jobs_per_item([_step("generate"), _step("edit", 3)]) == [1, 1]
    assert lanes.jobs_per_item([{"kind": "edit"}, {"kind": "upscale"}]) == [1, 1]


def test_splits_nest():
    steps = [_step("edit", 2), _step("edit", 3), _step("upscale")]
    assert lanes.branches_by_step(steps)[2] == ["0.0", "0.1", "0.2", "1.0", "1.1", "1.2"]
    assert lanes.jobs_per_item(steps) == [1, 2, 6]
    assert lanes.parent("1.2") == "1" and lanes.last_output("1.2") == 2 and lanes.label("1.2") == "2.3"
    assert lanes.is_under("1.2", "1") and lanes.is_under("1", "") and not lanes.is_under("10", "1")
    assert lanes.source_output("1.2", "1") == 2 and lanes.source_output("1.2", "1.2") == 0


def test_branch_descriptions_and_keys():
    assert lanes.describe(1, "2", True) == "variant 2, image 3"
    assert lanes.describe(0, "", False) == ""
    key = media_key("b", "id", "sku", 3, "animate", "mp4", variant=1, fanned_out=True, branch="2")
    assert key == "b/id/sku/04-animate-2.3.mp4"
    assert media_key("b", "id", "sku", 2, "upscale", "png", branch="0") == "b/id/sku/03-upscale-1.png"


@pytest.mark.parametrize(
    ("kind", "params", "count"),
    [
        ("edit", {"mode": "context"}, 1),
        ("edit", {"mode": "context", "imageCompletionsCount": 4}, 4),
        ("edit", {"mode": "in"}, 3),  # the API's default for inpainting and outpainting
        ("edit", {"mode": "out", "imageCompletionsCount": 1}, 1),
        ("skin_fix", {}, 1),
        ("generate", {}, 1),
    ],
)
def test_completions_per_step_kind(kind, params, count):
    assert StepSpec(index=0, kind=kind, params=params).completions == count


@pytest.fixture
def simulator_settings(monkeypatch):
    """Building canvases imports the Celery app, which reads the settings (no real key in unit tests)."""
    from config.settings import get_settings

    monkeypatch.setenv("LETZAI_SIMULATOR", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _planned(states: dict[tuple[int, str], str] | None = None) -> list[Step]:
    states = states or {}
    steps = []
    for n, (variant, index, branch) in enumerate(lanes.plan([_step("generate"), *PIPELINE[1:]])):
        steps.append(
            Step(
                id=n + 1,
                batch_id="b",
                item_id=1,
                idempotency_key=str(n),
                index=index,
                kind="k",
                variant=variant,
                branch=branch,
                remote_kind="image",
                state=states.get((index, branch), "planned"),
            )
        )
    return steps


def _task_names(sig) -> list[str]:
    return [t.task.rsplit(".", 1)[-1] for t in sig.tasks]


def test_a_split_items_canvas_is_a_chain_ending_in_a_chord_per_image(simulator_settings):
    canvas = item_canvas(1, _planned())
    assert isinstance(canvas, _chord) and canvas.body.task.endswith("finish_item")
    (trunk,) = canvas.tasks
    assert isinstance(trunk, _chain)
    assert _task_names(trunk)[:6] == ["submit_step", "poll_step", "copy_outputs"] * 2
    split = trunk.tasks[-1]
    assert isinstance(split, _chord) and split.body.task.endswith("gather_branches")
    assert split.body.args == (2,)  # the edit step's id
    assert len(split.tasks) == 3
    assert all(_task_names(b) == ["submit_step", "poll_step", "copy_outputs"] * 2 for b in split.tasks)


def test_an_item_with_one_plain_chain_is_that_chain_then_its_fan_in(simulator_settings):
    steps = [s for s in _planned() if s.index < 2]  # generate → edit, no later step: no split
    canvas = item_canvas(1, steps)
    assert isinstance(canvas, _chain)
    # the item's fan-in is folded into the last copy (one task execution less per item)
    assert _task_names(canvas) == ["submit_step", "poll_step", "copy_outputs"] * 2
    assert canvas.tasks[-1].args == (steps[1].id,) and canvas.tasks[-1].kwargs == {"then_finish": 1}
    assert canvas.tasks[2].kwargs == {}  # the first step's copy only copies
    assert canvas.options["link_error"][0]["task"].endswith("item_failed")  # applied to each task on send


def test_a_plain_chain_whose_last_step_needs_no_copy_ends_in_finish_item(simulator_settings):
    done = {(0, ""): "done", (1, ""): "failed"}
    steps = [s for s in _planned(done) if s.index < 2]
    canvas = item_canvas(1, steps)
    # nothing is left to run but the fan-in itself
    assert canvas.task.endswith("finish_item") and canvas.args == (1,)


def test_once_the_split_is_done_its_open_branches_join_the_items_chord_directly(simulator_settings):
    done = {(0, ""): "done", (1, ""): "done", (2, "0"): "done", (3, "0"): "done", (2, "1"): "done"}
    canvas = item_canvas(1, _planned(done))
    assert isinstance(canvas, _chord)
    assert [_task_names(c) for c in canvas.tasks] == [
        ["submit_step", "poll_step", "copy_outputs"],  # branch 1: its animate is left
        ["submit_step", "poll_step", "copy_outputs"] * 2,  # branch 2: upscale and animate
    ]
