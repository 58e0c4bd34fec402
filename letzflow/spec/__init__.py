"""The batch spec: what a user writes, checked in full before anything is spent.

- :mod:`letzflow.spec.document`: the YAML/JSON document and :class:`BatchSpec` (``load_spec``);
- :mod:`letzflow.spec.top_level`: ``name``, ``max_jobs``, ``reuse`` and the lane (``priority``, …);
- :mod:`letzflow.spec.steps`: the ``steps:`` list, each step kind and its parameters;
- :mod:`letzflow.spec.items`: the items, inline or from CSV, read without holding 100k rows;
- :mod:`letzflow.spec.item_checks`: what one item must pass (each step's request, its ranges);
- :mod:`letzflow.spec.requests`: :class:`StepSpec` (to and from the ledger row) and :func:`build_request`,
  the one kind → endpoint table;
- :mod:`letzflow.spec.problems`: every problem at once, with line, item and field (:class:`SpecError`).
"""

from __future__ import annotations

from letzflow.spec.document import BatchSpec, load_spec, load_spec_text
from letzflow.spec.problems import Problem, SpecError
from letzflow.spec.requests import ItemSpec, StepSpec, build_request, item_source_kind

__all__ = [
    "BatchSpec",
    "ItemSpec",
    "Problem",
    "SpecError",
    "StepSpec",
    "build_request",
    "item_source_kind",
    "load_spec",
    "load_spec_text",
]
