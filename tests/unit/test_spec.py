"""Batch specs: every bad input named by item and field (all at once), good specs, request building, plans."""

from __future__ import annotations

import base64
import csv
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from letzflow.spec import BatchSpec, ItemSpec, SpecError, StepSpec, build_request, item_source_kind, load_spec
from letzflow.spec import load_spec_text as parse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = "name: t\nsteps:\n  - generate: {width: 512, height: 512}\nitems:\n  - {id: a, prompt: a red bag}\n"
FILES: dict[str, str] = {
    "items.csv": "id,prompt\np1,ok\np2,too,many\n",
    "noid.csv": "sku,prompt\np1,ok\n",
    "unclosed.csv": 'id,prompt\np1,ok\np2,"a bag, red\np3,never seen\np4,nor this\n',
    "photo.png": "not really a png",
    "photo.tiff": "tiff",
    "m.png": "mask",
}


def problems_of(text: str, tmp_path: Path, fmt: str = "yaml") -> SpecError:
    for name, content in FILES.items():
        (tmp_path / name).write_text(content)
    with pytest.raises(SpecError) as info:
        parse(text, fmt, tmp_path)
    return info.value


def spec(text: str, tmp_path: Path, fmt: str = "yaml") -> BatchSpec:
    return parse(text, fmt, tmp_path)


# (case, spec text, expected item label or None, expected field, fragment of the message)
BAD: list[tuple[str, str, str | None, str, str]] = [
    (
        "yaml syntax",
        "name: t\nsteps:\n  - generate: {width: 512\n",
        None,
        "(syntax)",
        "invalid YAML at line 4",
    ),
    ("not a mapping", "- a\n- b\n", None, "(top level)", "a spec is a mapping"),
    (
        "bad name",
        BASE.replace("name: t", "name: 'my batch/1'"),
        None,
        "name",
        "letters, digits, '-', '_' or '.'",
    ),
    (
        "unknown kind",
        BASE.replace("generate:", "sharpen:"),
        None,
        "steps[0]",
        "known kinds: generate, edit, skin_fix, upscale, animate",
    ),
    ("kind typo", BASE.replace("generate:", "generat:"), None, "steps[0]", "did you mean 'generate'?"),
    (
        "step shape",
        BASE.replace("- generate: {width: 512, height: 512}", "- {generate: {}, upscale: {}}"),
        None,
        "steps[0]",
        "one-key mapping",
    ),
    (
        "params not mapping",
        BASE.replace("{width: 512, height: 512}", "[1, 2]"),
        None,
        "steps[0].generate",
        "must be a mapping",
    ),
    ("no steps", "name: t\nsteps: []\nitems: [{id: a, prompt: x}]\n", None, "steps", "non-empty list"),
    ("missing csv", "name: t\nitems_csv: gone.csv\nsteps: [generate]\n", None, "items_csv", "gone.csv"),
    (
        "csv without id",
        "name: t\nitems_csv: noid.csv\nsteps: [generate]\n",
        None,
        "items_csv",
        "including id",
    ),
    (
        "csv columns",
        "name: t\nitems_csv: items.csv\nsteps: [generate]\n",
        "items.csv row 3",
        "columns",
        "wrong number of columns: 3, the header has 2",
    ),
    (
        "csv unclosed quote",
        "name: t\nitems_csv: unclosed.csv\nsteps: [generate]\n",
        None,
        "items_csv",
        "unclosed.csv row 3 (line 3): unexpected end of data: a value opened with a quote",
    ),
    ("items and csv", BASE + "items_csv: items.csv\n", None, "items", "either items or items_csv"),
    ("no items", "name: t\nsteps: [generate]\nitems: []\n", None, "items", "no items"),
    ("item not mapping", BASE + "  - just text\n", "items[1]", "item", "not a mapping"),
    ("missing id", BASE + "  - {prompt: x}\n", "items[1]", "id", "missing — every item needs a unique id"),
    ("duplicate id", BASE + "  - {id: a, prompt: y}\n", "items[1] (id a)", "id", "also at items[0] (id a)"),
    (
        "same storage folder",
        BASE + "  - {id: 'a b', prompt: x}\n  - {id: 'a/b', prompt: y}\n",
        "items[2] (id a/b)",
        "id",
        "also at items[1] (id a b)",
    ),
    (
        "width range",
        BASE.replace("width: 512", "width: 5000"),
        "items[0] (id a)",
        "steps[0].generate.width",
        "5000 is invalid: an integer, 480 to 2160",
    ),
    (
        "skip hint",
        BASE.replace("width: 512", "width: 5000"),
        "items[0] (id a)",
        "steps[0].generate.width",
        "skip_checks: [width]",
    ),
    (
        "skin range",
        BASE.replace("height: 512}", "height: 512}\n  - skin_fix: {intensity: 9}"),
        "items[0] (id a)",
        "steps[1].skin_fix.settings.intensity",
        "9 is invalid",
    ),
    (
        "missing prompt",
        BASE.replace("prompt: a red bag", "colour: red"),
        "items[0] (id a)",
        "prompt",
        "missing — every item needs a prompt (or give the generate step a prompt)",
    ),
    (
        "context prompt",
        BASE.replace("generate: {width: 512, height: 512}", "edit: {mode: context}").replace(
            "prompt: a red bag", "image_url: 'https://x.test/a.jpg'"
        ),
        "items[0] (id a)",
        "prompt",
        "give the edit step a prompt",
    ),
    (
        "no source",
        BASE.replace("generate: {width: 512, height: 512}", "upscale: {size: 4}"),
        "items[0] (id a)",
        "image_url",
        "step 1 (upscale) needs a source photo",
    ),
    (
        "local file gone",
        BASE.replace("generate: {width: 512, height: 512}", "skin_fix: {}").replace(
            "prompt: a red bag", "image_url: nope.jpg"
        ),
        "items[0] (id a)",
        "image_url",
        "nope.jpg does not exist",
    ),
    (
        "file type",
        BASE.replace("generate: {width: 512, height: 512}", "skin_fix: {}").replace(
            "prompt: a red bag", "image_url: photo.tiff"
        ),
        "items[0] (id a)",
        "image_url",
        "cannot be uploaded",
    ),
    (
        "bad s3",
        BASE.replace("generate: {width: 512, height: 512}", "skin_fix: {}").replace(
            "prompt: a red bag", "image_url: 's3://bucket-only'"
        ),
        "items[0] (id a)",
        "image_url",
        "s3://bucket/key",
    ),
    (
        "template field",
        BASE.replace("a red bag", "'a {colour} bag'"),
        "items[0] (id a)",
        "colour",
        "the item's prompt uses {colour} but the item has no field 'colour'",
    ),
    (
        "step template field",
        BASE.replace("{width: 512, height: 512}", "{prompt: '{prompt}, {mood}'}"),
        "items[0] (id a)",
        "mood",
        "steps[0].generate.prompt uses {mood}",
    ),
    (
        "frame not url",
        BASE.replace("height: 512}", "height: 512}\n  - animate: {imageUrls: ['{prompt}']}"),
        "items[0] (id a)",
        "steps[1].animate.imageUrls",
        "not a public http(s) URL",
    ),
    (
        "mask missing",
        BASE.replace("height: 512}", "height: 512}\n  - edit: {mode: in, mask: gone.png}"),
        None,
        "steps[1].edit.mask",
        "gone.png does not exist",
    ),
    (
        "mask wrong mode",
        BASE.replace("height: 512}", "height: 512}\n  - edit: {prompt: x, mask: m.png}"),
        None,
        "steps[1].edit.mask",
        "`mode: in`",
    ),
    (
        "variants high",
        BASE.replace("height: 512", "height: 512, variants: 11"),
        None,
        "steps[0].generate.variants",
        "11 is invalid: a whole number from 1 to 10",
    ),
    (
        "variants zero",
        BASE.replace("height: 512", "height: 512, variants: 0"),
        None,
        "steps[0].generate.variants",
        "from 1 to 10",
    ),
    (
        "variants elsewhere",
        BASE.replace("height: 512}", "height: 512}\n  - upscale: {variants: 2}"),
        None,
        "steps[1].upscale.variants",
        "only a generate step fans out",
    ),
    (
        "variants not first",
        BASE.replace(
            "- generate: {width: 512, height: 512}", "- edit: {prompt: x}\n  - generate: {variants: 2}"
        ).replace("prompt: a red bag", "prompt: p, image_url: 'https://x.test/a.jpg'"),
        None,
        "steps[1].generate.variants",
        "must be the first step",
    ),
    (
        "after animate",
        BASE.replace("height: 512}", "height: 512}\n  - animate: {}\n  - upscale: {}"),
        None,
        "steps[2].upscale",
        "put animate last",
    ),
    (
        "skip_checks type",
        BASE.replace("height: 512", "height: 512, skip_checks: {width: 1}"),
        None,
        "steps[0].generate.skip_checks",
        "a list of field names",
    ),
    ("max_jobs type", "max_jobs: -3\n" + BASE, None, "max_jobs", "a positive whole number"),
    (
        "max_jobs exceeded",
        "max_jobs: 5\n"
        + BASE.replace("height: 512", "height: 512, variants: 3")
        + "  - {id: b, prompt: x}\n",
        None,
        "max_jobs",
        "would create 6 LetzAI jobs, more than max_jobs 5",
    ),
    ("unknown top level", BASE + "itmes_csv: x.csv\n", None, "itmes_csv", "did you mean 'items_csv'?"),
    (
        "twice",
        BASE.replace("height: 512", "height: 512, has_watermark: false, hasWatermark: true"),
        None,
        "steps[0].generate.hasWatermark",
        "given twice",
    ),
]


@pytest.mark.parametrize(("case", "text", "item", "field", "fragment"), BAD, ids=[c[0] for c in BAD])
def test_bad_input_names_the_item_field_and_fix(case, text, item, field, fragment, tmp_path):
    error = problems_of(text, tmp_path)
    matching = [p for p in error.problems if p.item == item and p.field == field]
    assert matching, f"{case}: no problem for ({item}, {field}) in:\n{error}"
    assert any(fragment in p.message for p in matching), f"{case}: {fragment!r} not in:\n{error}"
    rendered = str(error)
    assert field in rendered and (item is None or item in rendered)
    assert len(rendered.splitlines()) == len(error.problems)


def test_json_syntax_errors_give_line_and_column(tmp_path):
    error = problems_of('{"name": "t",\n "steps": [}', tmp_path, "json")
    assert error.problems[0].line == 2 and "invalid JSON at line 2 column" in str(error)


def test_every_problem_is_reported_at_once_with_lines(tmp_path):
    text = (
        "name: bad name\n"
        "steps:\n"
        "  - generate: {width: 9999, variants: 12}\n"
        "  - polish: {}\n"
        "items:\n"
        "  - {id: a, prompt: x}\n"
        "  - {id: b}\n"
        "  - {id: a, prompt: '{nope}'}\n"
    )
    error = problems_of(text, tmp_path)
    found = {(p.item, p.field): p for p in error.problems}
    assert found[(None, "name")].line == 1
    assert found[(None, "steps[0].generate.variants")].line == 3
    assert found[(None, "steps[1]")].line == 4
    assert found[("items[0] (id a)", "steps[0].generate.width")].line == 6
    assert found[("items[1] (id b)", "prompt")].line == 7
    assert found[("items[2] (id a)", "id")].line == 8
    assert "(line 7)" in str(error)


def test_a_problem_repeated_over_many_items_is_one_line_naming_the_first_ones(tmp_path):
    items = "".join(f"  - {{id: i{n}, prompt: x}}\n" for n in range(50))
    error = problems_of(
        BASE.replace("width: 512", "width: 9000").split("items:")[0] + "items:\n" + items, tmp_path
    )
    assert len(error.problems) == 1
    message = error.problems[0].message
    assert error.problems[0].item == "items[0] (id i0)"
    assert "same in items[1] (id i1), items[2] (id i2), items[3] (id i3) and 46 more" in message


def test_a_spec_wide_problem_is_reported_once_however_many_items(tmp_path):
    items = "".join(f"  - {{id: i{n}, prompt: x}}\n" for n in range(20))
    text = BASE.replace("height: 512}", "height: 512}\n  - edit: {mode: in, mask: gone.png}").split("items:")[
        0
    ]
    error = problems_of(text + "items:\n" + items, tmp_path)
    assert [p.field for p in error.problems] == ["steps[1].edit.mask"]


def test_csv_problems_name_the_spreadsheet_row_and_id(tmp_path):
    (tmp_path / "p.csv").write_text("id,prompt,width\nx1,ok,1\n\nx2,,1\nx1,dup,1\n")
    error = problems_of("name: c\nitems_csv: p.csv\nsteps: [generate]\n", tmp_path)
    labels = {(p.item, p.field) for p in error.problems}
    assert ("p.csv row 4 (id x2)", "prompt") in labels
    assert ("p.csv row 5 (id x1)", "id") in labels
    assert "also at p.csv row 2 (id x1)" in str(error)
    assert "(line" not in str(error)


def test_a_missing_spec_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert info.value.problems[0].field == "(file)" and "cannot read" in str(info.value)


# -- good specs ------------------------------------------------------------------------------------


def test_yaml_and_json_specs_give_the_same_steps(tmp_path):
    yaml_spec = spec(BASE, tmp_path)
    json_spec = spec(
        '{"name": "t", "steps": [{"generate": {"width": 512, "height": 512}}],'
        ' "items": [{"id": "a", "prompt": "a red bag"}]}',
        tmp_path,
        "json",
    )
    assert yaml_spec.steps == json_spec.steps
    assert [i.fields for i in yaml_spec.iter_items()] == [i.fields for i in json_spec.iter_items()]
    assert yaml_spec.steps[0] == StepSpec(0, "generate", {"width": 512, "height": 512}, 1, frozenset())


def test_csv_items_are_templated_into_prompts_and_read_from_the_spec_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "p.csv").write_text(
        "id,product_name,color, material\ns1,mug,red,clay\ns2,lamp,blue,brass\n"
    )
    text = (
        "name: c\nitems_csv: sub/p.csv\nsteps: [{generate: {prompt: '{color} {product_name} in {material}'}}]"
    )
    batch = spec(text, tmp_path)
    items = list(batch.iter_items())
    assert batch.item_count == 2 and [i.id for i in items] == ["s1", "s2"]
    assert items[1].fields == {"id": "s2", "product_name": "lamp", "color": "blue", "material": "brass"}
    assert build_request(batch.steps[0], items[1], None, None) == ("images", {"prompt": "blue lamp in brass"})


def test_a_step_prompt_replaces_the_item_prompt_and_can_include_it(tmp_path):
    text = BASE.replace("{width: 512, height: 512}", "{}\n  - animate: {prompt: 'orbit: {prompt} {{slow}}'}")
    text = text.replace("a red bag", "'a {colour} bag', colour: red")
    batch = spec(text, tmp_path)
    item = next(batch.iter_items())
    assert build_request(batch.steps[0], item, None, None)[1]["prompt"] == "a red bag"
    assert build_request(batch.steps[1], item, "img", None)[1]["prompt"] == "orbit: a red bag {slow}"


def test_skip_checks_turns_off_exactly_the_named_checks(tmp_path):
    text = BASE.replace("width: 512, height: 512", "width: 3000, height: 99, skip_checks: [width]")
    error = problems_of(text, tmp_path)
    assert [p.field for p in error.problems] == ["steps[0].generate.height"]
    text = BASE.replace(
        "height: 512}", "height: 512}\n  - skin_fix: {intensity: 8, skip_checks: [intensity]}"
    )
    batch = spec(text, tmp_path)
    assert batch.steps[1].skip_checks == frozenset({"settings.intensity"})
    assert build_request(batch.steps[1], next(batch.iter_items()), "img", None)[1]["settings"] == {
        "intensity": 8
    }


def test_unknown_fields_pass_through_and_snake_case_becomes_camel_case(tmp_path):
    text = BASE.replace("height: 512", "height: 512, has_watermark: false, baseModel: flux2, futureKnob: 7")
    batch = spec(text, tmp_path)
    body = build_request(batch.steps[0], next(batch.iter_items()), None, None)[1]
    assert body == {
        "width": 512,
        "height": 512,
        "hasWatermark": False,
        "baseModel": "flux2",
        "futureKnob": 7,
        "prompt": "a red bag",
    }
    assert "variants" not in batch.steps[0].params and "skip_checks" not in batch.steps[0].params


def test_local_image_paths_become_absolute_and_all_source_kinds_pass(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(b"x")
    text = (
        "name: s\nsteps: [skin_fix]\nitems:\n"
        "  - {id: local, image_url: photos/a.png}\n"
        "  - {id: s3, image_url: 's3://bucket/products/b.jpg'}\n"
        "  - {id: web, image_url: 'https://cdn.test/c.jpg'}\n"
    )
    urls = [i.fields["image_url"] for i in spec(text, tmp_path).iter_items()]
    assert urls == [
        str(tmp_path / "photos" / "a.png"),
        "s3://bucket/products/b.jpg",
        "https://cdn.test/c.jpg",
    ]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("https://a/b.jpg", "url"),
        ("HTTP://a/b", "url"),
        ("s3://b/k.png", "s3"),
        ("photos/a.png", "path"),
        ("/abs/a.jpg", "path"),
    ],
)
def test_item_source_kind(value, kind):
    assert item_source_kind(value) == kind


# -- build_request per step kind and source kind ------------------------------------------------------

ITEM = ItemSpec(
    "a", {"id": "a", "prompt": "a vase", "first": "https://f.test/1.jpg", "last": "https://f.test/2.jpg"}
)


def step(kind: str, **params: Any) -> StepSpec:
    return StepSpec(index=1, kind=kind, params=params)


@pytest.mark.parametrize(
    ("the_step", "image_id", "url", "endpoint", "body"),
    [
        (step("generate", width=512), "img", "https://s/x.jpg", "images", {"width": 512, "prompt": "a vase"}),
        (
            step("edit", prompt="on a beach"),
            "img",
            None,
            "image_edits",
            {"mode": "context", "prompt": "on a beach", "originalImageCompletionId": "img"},
        ),
        (
            step("edit", prompt="on a beach"),
            None,
            "https://s/x.jpg",
            "image_edits",
            {"mode": "context", "prompt": "on a beach", "imageUrl": "https://s/x.jpg"},
        ),
        (
            step("edit", mode="context", inputImageUrls=["{first}"]),
            None,
            "https://s/x.jpg",
            "image_edits",
            {
                "mode": "context",
                "inputImageUrls": ["https://f.test/1.jpg"],
                "prompt": "a vase",
                "imageUrl": "https://s/x.jpg",
            },
        ),
        (
            step("edit", mode="out", settings={"zoomSize": 1.5}),
            "img",
            None,
            "image_edits",
            {
                "mode": "out",
                "settings": {"zoomSize": 1.5},
                "prompt": "a vase",
                "originalImageCompletionId": "img",
            },
        ),
        (
            step("skin_fix", intensity=3, face=True, settings={"eyes": True}),
            "img",
            None,
            "image_edits",
            {
                "mode": "skin",
                "settings": {"eyes": True, "intensity": 3, "face": True},
                "originalImageCompletionId": "img",
            },
        ),
        (
            step("upscale", strength=1, size=4),
            "img",
            "https://s/x.jpg",
            "upscale",
            {"strength": 1, "size": 4, "imageId": "img"},
        ),
        (
            step("upscale", size=4, prompt="crisp {prompt}"),
            None,
            "https://s/x.jpg",
            "upscale",
            {"size": 4, "prompt": "crisp a vase", "imageUrl": "https://s/x.jpg"},
        ),
        (
            step("animate", settings={"duration": 4}),
            "img",
            None,
            "videos",
            {"settings": {"duration": 4}, "prompt": "a vase", "originalImageCompletionId": "img"},
        ),
        (
            step("animate", prompt="orbit"),
            None,
            "https://s/x.jpg",
            "videos",
            {"prompt": "orbit", "imageUrl": "https://s/x.jpg"},
        ),
        (
            step("animate", imageUrls=["{first}", "{last}"]),
            "img",
            None,
            "videos",
            {"imageUrls": ["https://f.test/1.jpg", "https://f.test/2.jpg"], "prompt": "a vase"},
        ),
        (step("animate"), None, None, "videos", {"prompt": "a vase"}),
    ],
)
def test_build_request_per_step_and_source_kind(the_step, image_id, url, endpoint, body):
    assert build_request(the_step, ITEM, image_id, url) == (endpoint, body)


def test_a_mask_is_read_and_base64_encoded_at_request_time(tmp_path):
    mask = tmp_path / "m.png"
    mask.write_bytes(b"first")
    batch = spec(BASE.replace("height: 512}", "height: 512}\n  - edit: {mode: in, mask: m.png}"), tmp_path)
    item = next(batch.iter_items())
    body = build_request(batch.steps[1], item, "img", None)[1]
    assert base64.b64decode(body["mask"]) == b"first" and body["mode"] == "in"
    mask.write_bytes(b"second, longer")
    assert base64.b64decode(build_request(batch.steps[1], item, "img", None)[1]["mask"]) == b"second, longer"


@pytest.mark.parametrize(
    ("kind", "endpoint", "remote"),
    [
        ("generate", "images", "image"),
        ("edit", "image_edits", "image_edit"),
        ("skin_fix", "image_edits", "image_edit"),
        ("upscale", "upscale", "upscale"),
        ("animate", "videos", "video"),
    ],
)
def test_step_endpoint_and_remote_kind(kind, endpoint, remote):
    assert (StepSpec(0, kind).endpoint, StepSpec(0, kind).remote_kind) == (endpoint, remote)


# -- plans, hashes, streaming ----------------------------------------------------------------------


def test_planned_jobs_multiply_items_by_variants_for_every_step(tmp_path):
    text = BASE.replace("height: 512", "height: 512, variants: 3") + "  - {id: b, prompt: x}\n"
    text = text.replace("items:", "  - upscale: {size: 4}\n  - animate: {}\nitems:")
    batch = spec(text, tmp_path)
    assert batch.variants() == 3 and batch.item_count == 2
    assert batch.planned_jobs() == {"images": 6, "upscale": 6, "videos": 6}
    assert batch.total_jobs() == 18
    assert spec("max_jobs: 18\n" + text, tmp_path).max_jobs == 18


def test_spec_hash_is_stable_and_follows_csv_and_mask_content(tmp_path):
    (tmp_path / "p.csv").write_text("id,prompt\na,x\n")
    (tmp_path / "m.png").write_bytes(b"1")
    text = "name: h\nitems_csv: p.csv\nsteps:\n  - generate: {}\n  - edit: {mode: in, mask: m.png}\n"
    first = spec(text, tmp_path).spec_hash
    assert first == spec(text, tmp_path).spec_hash and len(first) == 64
    (tmp_path / "p.csv").write_text("id,prompt\na,y\n")
    second = spec(text, tmp_path).spec_hash
    (tmp_path / "m.png").write_bytes(b"2")
    assert len({first, second, spec(text, tmp_path).spec_hash}) == 3


def test_csv_items_are_read_again_on_every_pass(tmp_path):
    (tmp_path / "p.csv").write_text("id,prompt\na,x\n")
    batch = spec("name: r\nitems_csv: p.csv\nsteps: [generate]\n", tmp_path)
    assert [i.id for i in batch.iter_items()] == ["a"]
    (tmp_path / "p.csv").write_text("id,prompt\nb,x\n")
    assert [i.id for i in batch.iter_items()] == ["b"]


def test_100k_row_csv_loads_in_bounded_memory_and_time(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "product_name", "color"])
        writer.writerows([f"sku-{n:06d}", f"product {n}", "red"] for n in range(100_000))
    (tmp_path / "big.yaml").write_text(
        "name: big\nitems_csv: big.csv\nsteps:\n"
        "  - generate: {prompt: '{color} {product_name}', width: 1024}\n"
        "  - upscale: {size: 4}\n"
    )
    started = time.perf_counter()
    untraced = load_spec(tmp_path / "big.yaml")
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    try:
        batch = load_spec(tmp_path / "big.yaml")
        count = sum(1 for _ in batch.iter_items())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert untraced.item_count == batch.item_count == count == 100_000
    assert batch.total_jobs() == 200_000
    assert peak < 30 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert elapsed < 60, f"{elapsed:.1f} s"


# -- the shipped examples --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["catalog.yaml", "product-photos.yaml", "inpaint.yaml"])
def test_examples_load_cleanly(name):
    batch = load_spec(EXAMPLES / name)
    assert batch.item_count > 0 and batch.total_jobs() > 0
    assert batch.max_jobs is None or batch.total_jobs() <= batch.max_jobs


def test_catalog_example_runs_twenty_products_through_the_four_steps():
    batch = load_spec(EXAMPLES / "catalog.yaml")
    assert batch.item_count >= 20
    assert [s.kind for s in batch.steps] == ["generate", "skin_fix", "upscale", "animate"]
    first = next(batch.iter_items())
    assert {"id", "product_name", "color", "material"} <= set(first.fields)
    prompt = build_request(batch.steps[0], first, None, None)[1]["prompt"]
    assert first.fields["product_name"] in prompt and "{" not in prompt


def test_inpaint_mask_is_black_and_white_at_the_generated_size():
    batch = load_spec(EXAMPLES / "inpaint.yaml")
    mask = Image.open(EXAMPLES / "masks" / "center.png")
    assert mask.size == (batch.steps[0].params["width"], batch.steps[0].params["height"])
    assert {value for _, value in mask.convert("L").getcolors()} == {0, 255}


def test_schedules_example_names_valid_specs():
    from workers.schedules import load_schedules

    schedules = load_schedules(EXAMPLES / "schedules.yaml")
    assert (schedules[0].name, schedules[0].cron) == ("nightly-catalog", "0 2 * * *")
    assert all(s.spec.is_file() for s in schedules)
