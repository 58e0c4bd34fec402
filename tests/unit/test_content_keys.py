"""Content keys: stable however a spec is written, changed by exactly what changes the output."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from letzflow.spec import load_spec_text
from letzflow.spec.content import item_keys
from storage import lanes
from tasks.catalog import PhotoIdentities

STEPS = [{"generate": {"width": 1024, "height": 1024, "quality": 3}}, {"upscale": {"strength": 1, "size": 4}}]
ITEMS = [{"id": "a", "prompt": "red bag", "color": "red"}, {"id": "b", "prompt": "blue bag", "color": "blue"}]


def keys(doc: dict, tmp: Path, fmt: str = "yaml") -> dict[str, dict]:
    text = yaml.safe_dump(doc) if fmt == "yaml" else json.dumps(doc)
    spec = load_spec_text(text, fmt, tmp)
    plan = lanes.plan(spec.step_dicts())
    photos = PhotoIdentities(None)
    out = {}
    for item in spec.iter_items():
        photo = photos(str(item.fields["image_url"])) if item.fields.get("image_url") else None
        out[item.id] = item_keys(spec.steps, item, plan, photo, parent=lanes.parent)
    return out


def doc(steps=STEPS, items=ITEMS, **extra) -> dict:
    return {"name": "cat", "steps": steps, "items": items, **extra}


def test_the_same_spec_written_two_ways_gives_the_same_keys(tmp_path):
    reordered = [
        {"generate": {"quality": 3, "height": 1024, "width": 1024, "creativity": 2, "hasWatermark": True}},
        {"upscale": {"size": 4, "strength": 1}},
    ]
    items = [
        {"prompt": "red bag", "color": "red", "id": "a"},
        {"color": "blue", "id": "b", "prompt": "blue bag"},
    ]
    assert keys(doc(), tmp_path) == keys(doc(reordered, items), tmp_path, "json")
    assert keys(doc(), tmp_path) == keys(doc(max_jobs=50, description="x"), tmp_path)


def test_a_changed_prompt_changes_that_item_from_its_first_step_on(tmp_path):
    before = keys(doc(), tmp_path)
    after = keys(doc(items=[{"id": "a", "prompt": "red leather bag"}, ITEMS[1]]), tmp_path)
    assert after["b"] == before["b"]
    assert all(after["a"][k] != before["a"][k] for k in before["a"])


def test_a_changed_upscale_parameter_changes_only_the_upscales(tmp_path):
    before = keys(doc(), tmp_path)
    after = keys(doc(steps=[STEPS[0], {"upscale": {"strength": 1, "size": 6}}]), tmp_path)
    for item in ("a", "b"):
        assert after[item][(0, 0, "")] == before[item][(0, 0, "")]
        assert after[item][(0, 1, "")] != before[item][(0, 1, "")]


def test_a_template_column_change_reaches_only_items_whose_column_changed(tmp_path):
    templated = [{"generate": {"prompt": "a {color} bag on white"}}]
    before = keys(doc(steps=templated), tmp_path)
    after = keys(doc(steps=templated, items=[{**ITEMS[0], "color": "green"}, ITEMS[1]]), tmp_path)
    assert after["a"] != before["a"] and after["b"] == before["b"]
    unused = keys(doc(steps=templated, items=[ITEMS[0], {**ITEMS[1], "unused": "x"}]), tmp_path)
    assert unused == before  # a column the template does not use changes nothing


def test_new_bytes_at_the_same_photo_path_change_the_key(tmp_path):
    photo = tmp_path / "bag.png"
    photo.write_bytes(b"\x89PNG first")
    edit = [{"edit": {"mode": "context", "prompt": "on a marble table"}}]
    items = [{"id": "a", "image_url": str(photo)}]
    before = keys(doc(steps=edit, items=items), tmp_path)
    assert keys(doc(steps=edit, items=items), tmp_path) == before
    photo.write_bytes(b"\x89PNG second")
    assert keys(doc(steps=edit, items=items), tmp_path) != before


def test_variants_and_branches_have_keys_of_their_own(tmp_path):
    fanned = [{"generate": {"variants": 2}}, {"upscale": {"size": 2}}]
    k = keys(doc(steps=fanned, items=[ITEMS[0]]), tmp_path)["a"]
    assert len(set(k.values())) == len(k) == 4


def test_the_store_is_built_only_for_the_first_s3_photo_and_read_for_its_etag(tmp_path):
    from storage.fake_media import InMemoryMediaStore

    local = tmp_path / "bag.png"
    local.write_bytes(b"\x89PNG bag")
    store = InMemoryMediaStore(bucket="photos")
    store.put_bytes("products/shoe.png", b"\x89PNG shoe", "image/png")
    built: list[InMemoryMediaStore] = []

    def open_store() -> InMemoryMediaStore:
        built.append(store)
        return store

    photos = PhotoIdentities(open_store=open_store)
    photos(str(local))
    photos(str(tmp_path / "bag.png"))
    assert built == []  # local photos need no store
    first = photos("s3://photos/products/shoe.png")
    missing = photos("s3://photos/products/none.png")
    assert len(built) == 1  # built once, at the first s3:// photo
    assert first == PhotoIdentities(store)("s3://photos/products/shoe.png")
    assert first != missing and first != PhotoIdentities(None)("s3://photos/products/shoe.png")
