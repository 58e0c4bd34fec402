"""Batch spec validation: every bad input names the item and field, all problems at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from letzflow.spec import SpecError, build_request, load_spec, load_spec_text

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GOOD = """
name: t
steps:
  - generate: {width: 512, height: 512}
items:
  - {id: a, prompt: "a red bag"}
"""


def problems(text: str, tmp_path: Path, fmt: str = "yaml") -> str:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, fmt, tmp_path)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: t\nsteps: [\n", ["invalid YAML", "line"]),
        ("- just a list", ["a spec is a mapping"]),
        (GOOD.replace("name: t", "name: 'bad name/with slash'"), ["field name", "letters, digits"]),
        (GOOD.replace("generate:", "sharpen:"), ["unknown step kind 'sharpen'", "generate, edit, skin_fix"]),
        (GOOD.replace("width: 512", "width: 5000"), ["items[0] (id a)", "width", "5000", "skip_checks"]),
        (GOOD.replace("width: 512", "width: wide"), ["items[0] (id a)", "width", "'wide'"]),
        (GOOD.replace('prompt: "a red bag"', 'title: "no prompt"'), ["(id a) field prompt: missing"]),
        (GOOD + '  - {id: a, prompt: "again"}\n', ["(id a) field id: duplicate id, also at items[0]"]),
        (GOOD + "  - {prompt: no id}\n", ["items[1] field id: missing"]),
        (
            GOOD.replace("width: 512, height: 512", "width: 512, height: 512, variants: 40"),
            ["variants", "from 1 to 10"],
        ),
        (
            GOOD.replace("- generate: {width: 512, height: 512}", "- upscale: {size: 4}"),
            ["(id a) field image_url", "needs a source photo"],
        ),
        (GOOD.replace('prompt: "a red bag"', 'prompt: "a {colour} bag"'), ["{colour}", "no field 'colour'"]),
        (GOOD.replace("steps:", "max_jobs: 0\nsteps:"), ["field max_jobs"]),
        (GOOD + "colour: blue\n", ["colour", "unknown top-level field"]),
        ("name: t\nsteps: []\nitems: []\n", ["field steps: give a non-empty list", "the batch has no items"]),
        (GOOD.replace("steps:", "items_csv: nowhere.csv\nsteps:"), ["either items or items_csv"]),
    ],
)
def test_bad_specs_are_refused_with_item_and_field(text, expected, tmp_path):
    message = problems(text, tmp_path)
    for fragment in expected:
        assert fragment in message


def test_every_problem_is_reported_at_once(tmp_path):
    text = """
name: t
steps:
  - generate: {width: 9999}
items:
  - {id: a, prompt: x}
  - {id: b}
  - {id: a, prompt: y}
"""
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "yaml", tmp_path)
    fields = [(p.item, p.field) for p in info.value.problems]
    assert ("items[0] (id a)", "steps[0].generate.width") in fields
    assert ("items[1] (id b)", "prompt") in fields
    assert ("items[2] (id a)", "id") in fields
    assert info.value.problems[1].line == 7


def test_skip_checks_turns_one_range_off(tmp_path):
    spec = load_spec_text(GOOD.replace("width: 512,", "width: 3000, skip_checks: [width],"), "yaml", tmp_path)
    _, body = build_request(spec.steps[0], next(spec.iter_items()), None, None)
    assert body["width"] == 3000


def test_unknown_fields_pass_through_to_the_api(tmp_path):
    spec = load_spec_text(GOOD.replace("width: 512,", "width: 512, baseModel: flux2,"), "yaml", tmp_path)
    _, body = build_request(spec.steps[0], next(spec.iter_items()), None, None)
    assert body["baseModel"] == "flux2"


def test_json_specs_and_csv_items_with_templates(tmp_path):
    (tmp_path / "items.csv").write_text("id,product_name,color\np1,mug,red\np2,lamp,blue\n")
    text = (
        '{"name": "j", "items_csv": "items.csv",'
        ' "steps": [{"generate": {"prompt": "a {color} {product_name}"}}]}'
    )
    spec = load_spec_text(text, "json", tmp_path)
    items = list(spec.iter_items())
    assert [i.id for i in items] == ["p1", "p2"]
    assert build_request(spec.steps[0], items[1], None, None)[1]["prompt"] == "a blue lamp"


def test_csv_rows_with_wrong_column_count_name_the_row(tmp_path):
    (tmp_path / "items.csv").write_text("id,prompt\np1,ok\np2,too,many\np3\n")
    message = problems('{"name":"c","items_csv":"items.csv","steps":[{"generate":{}}]}', tmp_path, "json")
    assert "row 3" in message and "row 4" in message and "wrong number of columns" in message


def test_missing_csv_and_missing_mask_are_named(tmp_path):
    message = problems(
        "name: m\nitems_csv: gone.csv\nsteps:\n  - generate: {}\n  - edit: {mode: in, mask: nope.png}\n",
        tmp_path,
    )
    assert "cannot read" in message and "gone.csv" in message
    assert "nope.png does not exist" in message


def test_build_request_per_step_kind(tmp_path):
    (tmp_path / "m.png").write_bytes(b"\x89PNG fake")
    text = """
name: p
steps:
  - generate: {variants: 2}
  - skin_fix: {intensity: 4, eyes: true}
  - edit: {mode: in, prompt: tulips, mask: m.png}
  - upscale: {size: 4, strength: 2}
  - animate: {prompt: "orbit {prompt}", settings: {duration: 4}}
items:
  - {id: a, prompt: vase}
"""
    spec = load_spec_text(text, "yaml", tmp_path)
    item = next(spec.iter_items())
    gen, skin, edit, up, video = (build_request(s, item, "img-1", "https://x/y.png")[1] for s in spec.steps)
    assert gen == {"prompt": "vase"}
    assert skin == {
        "mode": "skin",
        "settings": {"intensity": 4, "eyes": True},
        "originalImageCompletionId": "img-1",
    }
    assert edit["mask"] and edit["prompt"] == "tulips" and edit["originalImageCompletionId"] == "img-1"
    assert up == {"size": 4, "strength": 2, "imageId": "img-1"}
    assert video["prompt"] == "orbit vase" and video["originalImageCompletionId"] == "img-1"
    assert build_request(spec.steps[3], item, None, "https://x/y.png")[1]["imageUrl"] == "https://x/y.png"
    # inpainting yields 3 images by default (the API's default count): upscale and animate run per image
    assert spec.planned_jobs() == {"images": 2, "image_edits": 4, "upscale": 6, "videos": 6}


def test_max_jobs_refuses_a_batch_that_would_exceed_it(tmp_path):
    message = problems(
        GOOD.replace("steps:", "max_jobs: 1\nsteps:").replace("width: 512,", "variants: 3, width: 512,"),
        tmp_path,
    )
    assert "would create 3 LetzAI jobs, more than max_jobs 1" in message


def test_spec_hash_is_stable_and_content_sensitive(tmp_path):
    a = load_spec_text(GOOD, "yaml", tmp_path).spec_hash
    assert a == load_spec_text(GOOD, "yaml", tmp_path).spec_hash
    assert a != load_spec_text(GOOD.replace("red", "blue"), "yaml", tmp_path).spec_hash


def test_unicode_and_long_prompts_are_kept(tmp_path):
    prompt = "Ein rotes Täschchen 👜 — " + "détaillé " * 200
    spec = load_spec_text(GOOD.replace('"a red bag"', repr(prompt).replace("'", '"')), "yaml", tmp_path)
    assert build_request(spec.steps[0], next(spec.iter_items()), None, None)[1]["prompt"] == prompt


@pytest.mark.parametrize("name", ["catalog.yaml", "product-photos.yaml", "inpaint.yaml"])
def test_examples_load(name):
    spec = load_spec(EXAMPLES / name)
    assert spec.item_count > 0 and spec.total_jobs() > 0


def test_catalog_example_has_twenty_products_through_four_steps():
    spec = load_spec(EXAMPLES / "catalog.yaml")
    assert spec.item_count >= 20
    assert [s.kind for s in spec.steps] == ["generate", "skin_fix", "upscale", "animate"]
