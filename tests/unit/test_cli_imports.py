"""`letzflow run` writes a batch without the LetzAI client's or the S3 client's libraries: importing requests
(~35 ms) or boto3 (~150 ms) is paid before a user's first POST (the bucket check builds its S3 client in a
forked child, ``workers.early_check``)."""

from __future__ import annotations

import subprocess
import sys

# what `letzflow run` imports on its way to recording a batch (workers/cli_run.py)
RUN_PATH = "workers.cli, workers.cli_run, tasks.runtime, tasks.batch, tasks.batch_control, tasks.catalog"


def test_the_run_commands_imports_leave_out_requests_and_boto3():
    code = f"import sys, {RUN_PATH}; print(sorted({{'requests', 'boto3', 'botocore'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
