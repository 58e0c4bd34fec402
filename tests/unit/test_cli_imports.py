"""`letzflow run` writes a batch without the LetzAI client's, the S3 client's or the wire's libraries:
importing requests (~35 ms), boto3 (~150 ms), or Celery, kombu and redis-py (~140 ms) is paid before a
user's first POST (a forked child checks the bucket and sends the feeder's message,
``workers.early_check``)."""

from __future__ import annotations

import subprocess
import sys

# what `letzflow run` imports on its way to recording a batch (workers/cli_run.py)
RUN_PATH = (
    "workers.cli, workers.cli_run, workers.early_check, tasks.batch_start, tasks.catalog, storage.ledger"
)
#: none of these may be imported by it
HEAVY = ("requests", "boto3", "botocore", "celery", "kombu", "redis")


def test_the_run_commands_imports_leave_out_the_clients_and_the_wire():
    code = f"import sys, {RUN_PATH}; print(sorted(set({HEAVY!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
