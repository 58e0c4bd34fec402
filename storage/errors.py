"""The one exception root of storage/, drawn here; boto3 and SQL errors are translated once, ``from exc``::

    PersistenceError          storage/ could not do what was asked; the message names the place and the fix
    ├── LedgerError           the ledger cannot be opened or written (path, URL, driver)   storage.db
    └── StorageError          the media store failed (bucket, key; ``retryable``, ``code``) storage.media_base

SQL errors of guarded writes (``sqlalchemy.exc``) stay SQLAlchemy's inside the ledger's callers, where a
task retries them (``OperationalError``) or a unique key decides a race (``IntegrityError``).
"""

from __future__ import annotations


class PersistenceError(Exception):
    """Root of every error storage/ raises on purpose."""
