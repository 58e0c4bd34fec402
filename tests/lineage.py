"""Lineage: every LetzAI job a step holds was created by that step's own item's request.

The simulator records each job's request body (``GET /_sim/jobs``). For every step holding a remote id,
:func:`check_lineage` rebuilds the request that step should have sent (its item's prompt and fields, the
previous step's output of the same item and branch) and compares its identifying fields with what the
simulator received for that job; the step's results must be outputs of that very job, and no job may be
held by two steps. A count that matches can hide a swapped image: this cannot.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from letzai.identity import identifying
from letzflow.spec import ItemSpec, build_request
from storage import lanes
from storage.ledger import Ledger
from storage.models import Item, Step
from tasks.inputs import step_spec

#: Request fields that are per deployment, not per item.
NOISE = ("webhookUrl", "organizationId")


@dataclass
class Lineage:
    checked: int = 0
    wrong: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.wrong, (
            f"{len(self.wrong)} of {self.checked} jobs with wrong lineage: {self.wrong[:5]}"
        )


def sim_jobs(sim_url: str) -> dict[str, dict[str, Any]]:
    rows = requests.get(f"{sim_url}/_sim/jobs", timeout=30).json()
    return {row["id"]: row for row in rows}


def _expected(led: Ledger, batch: Any, item: Item, step: Step) -> tuple[str, dict[str, Any]]:
    previous = led.previous_step(step)
    image_id = url = None
    if previous is not None:
        chosen = lanes.source_output(step.branch, previous.branch)
        results = previous.results or []
        if chosen < len(results):
            image_id, url = results[chosen].get("image_id"), results[chosen].get("url")
    elif item.fields.get("image_url"):
        url = str(item.fields.get("_resolved_image_url") or item.fields["image_url"])
    public = {k: v for k, v in item.fields.items() if not k.startswith("_")}
    return build_request(step_spec(batch, step.index), ItemSpec(id=item.key, fields=public), image_id, url)


def _ids(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in identifying(endpoint, body).items() if k not in NOISE}


def check_lineage(led: Ledger, batch_id: str, sim_url: str) -> Lineage:
    """Check every step of the batch that holds a LetzAI job (see the module docstring)."""
    batch = led.batch(batch_id)
    assert batch is not None
    jobs = sim_jobs(sim_url)
    result = Lineage()
    holders: Counter[str] = Counter()
    for item, steps in led.iter_items_with_steps(batch_id):
        for st in steps:
            origin = next((o["reused_from"] for o in st.outputs or [] if o.get("reused_from")), None)
            remote_id = st.remote_id or (origin or {}).get("letzai_id")
            if not remote_id:
                continue
            if st.remote_id:
                holders[st.remote_id] += 1
            # a reused step is checked through the job that rendered its content in the earlier batch
            st = st.model_copy(update={"remote_id": remote_id})
            result.checked += 1
            where = f"item {item.key} step {st.index + 1} {st.kind} v{st.variant}"
            where += f" b{st.branch!r} job {st.remote_id}"
            job = jobs.get(st.remote_id)
            if job is None:
                result.wrong.append(f"{where}: no such job in the simulator")
                continue
            endpoint, body = _expected(led, batch, item, st)
            sent = dict(job.get("request") or {})
            if _ids(endpoint, body) != _ids(endpoint, sent):
                result.wrong.append(
                    f"{where}: sent {_ids(endpoint, sent)} but its item asks {_ids(endpoint, body)}"
                )
                continue
            outputs = set(job.get("outputs") or [st.remote_id])
            strays = [
                r["image_id"] for r in st.results or [] if r.get("image_id") and r["image_id"] not in outputs
            ]
            if strays:
                result.wrong.append(f"{where}: results {strays} are not outputs of its job")
    twice = [rid for rid, n in holders.items() if n > 1]
    if twice:
        result.wrong.append(f"jobs held by two steps: {twice}")
    return result
