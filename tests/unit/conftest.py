"""Fixtures of the unit tests that need a real ledger: SQLite, and PostgreSQL where CI provides one."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel

from storage.db import get_engine, normalize_url
from storage.ledger import Ledger

STEPS = [
    {"index": 0, "kind": "generate", "remote_kind": "image", "variants": 2},
    {"index": 1, "kind": "upscale", "remote_kind": "upscale", "variants": 1},
]


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path):
    """The same tests on SQLite and, where LETZFLOW_TEST_POSTGRES_URL is set (CI), on PostgreSQL."""
    if request.param == "sqlite":
        return Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    url = os.environ.get("LETZFLOW_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("LETZFLOW_TEST_POSTGRES_URL is not set (CI sets it to the machine's PostgreSQL)")
    engine = get_engine(_own_schema(url))
    SQLModel.metadata.drop_all(engine)
    SQLModel.metadata.create_all(engine)
    return Ledger(engine)


@pytest.fixture
def batch(ledger):
    return ledger.create_batch(
        name="t", spec_hash="h", steps=STEPS, items=[("a", {"prompt": "x"}), ("b", {})], max_jobs=3
    )


def _own_schema(url: str) -> str:
    """``url`` with this pytest-xdist worker's own schema first on the search path: each test drops and
    creates the tables, and two workers doing that in one schema break each other's tests."""
    schema = "lf_" + os.environ.get("PYTEST_XDIST_WORKER", "main")
    admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    admin.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
