"""What every ``letzflow`` command shares: the consoles, the exit codes, the ledger and a batch by id."""

from __future__ import annotations

import os

from rich.console import Console

from workers.errors import BatchNotFound

console = Console(stderr=False)
err = Console(stderr=True)

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


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
