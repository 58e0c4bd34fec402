"""Database engines for the ledger: SQLite by default (WAL), PostgreSQL through ``DATABASE_URL``."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel, create_engine

import storage.durations
import storage.models  # noqa: F401  (registers the tables)
from storage.errors import PersistenceError


class LedgerError(PersistenceError, RuntimeError):
    """The ledger cannot be opened or written; the message names the path or URL and the fix."""


_engines: dict[tuple[int, str], Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs (the driver letzflow installs)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _check_sqlite_path(url: str) -> None:
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database).expanduser().resolve()
    parent = path.parent
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"DATABASE_URL points at {path}, but its folder cannot be created ({exc.strerror}): "
                "choose a writable path, e.g. DATABASE_URL=sqlite:///letzflow.db"
            ) from exc
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK):
        raise LedgerError(
            f"the ledger {path} is not writable: fix its permissions or set DATABASE_URL to a writable path"
        )


def get_engine(url: str) -> Engine:
    """The engine for ``url`` in this process (one per process: safe after a prefork fork)."""
    url = normalize_url(url)
    key = (os.getpid(), url)
    with _lock:
        engine = _engines.get(key)
        if engine is not None:
            return engine
        if url.startswith("sqlite"):
            _check_sqlite_path(url)
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            try:
                engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
            except ModuleNotFoundError as exc:
                raise LedgerError(
                    f"DATABASE_URL is a PostgreSQL URL but its driver is not installed ({exc.name}): "
                    "pip install 'letzflow[postgres]'"
                ) from exc
        try:
            SQLModel.metadata.create_all(engine)
            _add_missing_columns(engine)
        except Exception as exc:
            raise LedgerError(f"cannot open the ledger at {engine.url!r}: {exc}") from exc
        _engines[key] = engine
        return engine


#: Columns added after the first release, created on ledgers written before them: (table, column, DDL).
ADDED_COLUMNS = (
    ("step", "branch", "VARCHAR(64) NOT NULL DEFAULT ''"),
    ("step", "adopted", "BOOLEAN NOT NULL DEFAULT FALSE"),
    ("step", "content_key", "VARCHAR(64)"),
    ("step", "submitting_by", "VARCHAR(200)"),
    ("batch", "reuse", "BOOLEAN NOT NULL DEFAULT TRUE"),
    ("batch", "priority", "INTEGER NOT NULL DEFAULT 5"),
    ("batch", "weight", "FLOAT NOT NULL DEFAULT 1.0"),
    ("batch", "max_inflight", "INTEGER"),
    ("step", "reused_from", "VARCHAR(120)"),
    ("step", "webhook_hash", "VARCHAR(64)"),
)


def _add_missing_columns(engine: Engine) -> None:
    """Bring an older ledger's tables up to date (``create_all`` only creates missing tables)."""
    inspector = inspect(engine)
    for table, column, ddl in ADDED_COLUMNS:
        if column not in {c["name"] for c in inspector.get_columns(table)}:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))


def reset_engines() -> None:
    """Forget cached engines (tests that switch databases)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
