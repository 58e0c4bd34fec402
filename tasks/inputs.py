"""What a step sends: its API body, built from the spec, the item and the previous step's output."""

from __future__ import annotations

from typing import Any

from letzflow.engine.resources import resource_of
from letzflow.spec import ItemSpec, StepSpec, build_request, item_source_kind
from storage import lanes
from storage.models import Batch, Item, Step
from tasks import runtime


def step_spec(batch: Batch, index: int) -> StepSpec:
    """The :class:`~letzflow.spec.StepSpec` of step ``index`` of a batch (stored as a dict in the ledger)."""
    return StepSpec.from_row(batch.steps[index])


def source_of(previous: Step | None, item: Item, output: int = 0) -> tuple[str | None, str | None]:
    """(LetzAI image id, URL) the step works on: output ``output`` of the previous step (its first unless the
    step starts a branch, see :mod:`storage.lanes`), else the item's photo."""
    if previous is not None:
        results = previous.results or []
        if output < len(results):
            chosen = results[output]
            return chosen.get("image_id"), chosen.get("url")
        return None, None
    value = item.fields.get("image_url")
    if not value:
        return None, None
    return None, resolve_item_image(item, str(value))


def resolve_item_image(item: Item, value: str) -> str:
    """A public URL for an item's input photo: a URL as is, a local file uploaded, an s3:// key presigned."""
    kind = item_source_kind(value)
    if kind == "url":
        return value
    cached = item.fields.get("_resolved_image_url")
    if cached:
        return str(cached)
    if kind == "path":
        url = runtime.client().user_assets.upload(value)
    else:
        bucket, _, key = value[len("s3://") :].partition("/")
        url = runtime.store().presign_object(bucket, key, runtime.settings().s3_presign_expiry)
    fields = dict(item.fields)
    fields["_resolved_image_url"] = url
    _save_fields(item, fields)
    return str(url)


def _save_fields(item: Item, fields: dict[str, Any]) -> None:
    assert item.id is not None
    runtime.ledger().save_item_fields(item.id, fields)
    item.fields = fields


def request_for(
    batch: Batch, item: Item, step: Step, previous: Step | None
) -> tuple[str, dict[str, Any], frozenset[str]]:
    """(endpoint, body, skip_checks) for submitting ``step``."""
    spec = step_spec(batch, step.index)
    output = lanes.source_output(step.branch, previous.branch) if previous is not None else 0
    image_id, url = source_of(previous, item, output)
    public_fields = {k: v for k, v in item.fields.items() if not k.startswith("_")}
    endpoint, body = build_request(spec, ItemSpec(id=item.key, fields=public_fields), image_id, url)
    return endpoint, body, spec.skip_checks


def resource(endpoint: str) -> Any:
    """This process's client's resource for ``endpoint`` (:func:`letzflow.engine.resources.resource_of`)."""
    return resource_of(runtime.client(), endpoint)
