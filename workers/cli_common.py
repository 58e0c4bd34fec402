"""What every ``letzflow`` command shares: the consoles, the exit codes, the ledger and a batch by id."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

from rich.console import Console

from workers.errors import BatchNotFound

console = Console(stderr=False)
err = Console(stderr=True)

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """Run a command with Python's cyclic garbage collector off, and its heap frozen at the end.

    A command starts by importing the ledger (SQLAlchemy, SQLModel), Celery and the spec: several hundred
    thousand objects that live until exit, and next to no garbage. The collector walks them again and
    again as they load (0.1-0.2 s of ``letzflow run`` measured), and once more at interpreter exit (0.3 s).
    It is off while the command runs (a long wait turns it back on with :func:`collector_on`); at the end
    the heap is frozen (``gc.freeze``), so the last collection skips it. Nothing is kept alive longer than
    the command: only cyclic garbage waits, and a command makes little.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def collector_on() -> None:
    """Turn the collector back on for a long-running part of a command (a progress loop), leaving what
    start-up built frozen: its collections walk only what the loop makes."""
    gc.freeze()
    gc.enable()


def _fail(message: str, code: int = EXIT_INVALID) -> int:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return code


def _ledger():  # type: ignore[no-untyped-def]
    from tasks import runtime

    return runtime.ledger()


def _batch(ref: str):  # type: ignore[no-untyped-def]
    """A batch by id or unique id prefix; a clear error otherwise."""
    ledger = _ledger()
    batch = ledger.batch(ref)
    if batch is not None:
        return batch
    matches = ledger.find_batch_prefix(ref) if len(ref) >= 4 else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise BatchNotFound(f"batch id {ref!r} is ambiguous: {', '.join(b.id for b in matches[:5])}")
    raise BatchNotFound(
        f"no batch {ref!r} in the ledger {os.environ.get('DATABASE_URL', 'sqlite:///letzflow.db')}: "
        "check the id (`letzflow run` printed it) and that DATABASE_URL points at the same ledger"
    )
