"""`letzflow run`'s bucket check in a forked child (``workers.early_check``), with fake checks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from storage.media_base import StorageError
from workers.early_check import EarlyCheck

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="the check forks on Linux only")


class Check:
    """Records where it ran (a file per process) and does what it is told."""

    def __init__(self, tmp_path: Path, *, fail: str | None = None, die_in_child: bool = False) -> None:
        self.dir, self.fail, self.die_in_child = tmp_path, fail, die_in_child
        self.parent = os.getpid()

    def __call__(self) -> None:
        (self.dir / f"ran-{os.getpid()}").touch()
        if self.die_in_child and os.getpid() != self.parent:
            os._exit(3)
        if self.fail:
            raise StorageError(self.fail, code="NoSuchBucket")

    def ran_in(self) -> set[str]:
        return {"here" if p.name == f"ran-{self.parent}" else "child" for p in self.dir.glob("ran-*")}


@linux_only
def test_the_check_runs_in_a_child_and_its_success_is_answered(tmp_path):
    check = Check(tmp_path)
    EarlyCheck(check).result()
    assert check.ran_in() == {"child"}


@linux_only
def test_a_missing_bucket_found_by_the_child_is_raised_here_with_its_message(tmp_path):
    check = Check(tmp_path, fail="bucket 'nope' does not exist: create it or set S3_BUCKET")
    early = EarlyCheck(check)
    with pytest.raises(StorageError, match="bucket 'nope' does not exist") as raised:
        early.result()
    assert raised.value.code == "NoSuchBucket" and check.ran_in() == {"child"}


@linux_only
def test_a_child_that_dies_without_an_answer_leaves_the_check_to_this_process(tmp_path):
    check = Check(tmp_path, die_in_child=True)
    EarlyCheck(check).result()
    assert check.ran_in() == {"child", "here"}


def test_without_fork_the_check_runs_here_when_the_result_is_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    check = Check(tmp_path, fail="endpoint down")
    early = EarlyCheck(check)
    assert check.ran_in() == set()
    with pytest.raises(StorageError, match="endpoint down"):
        early.result()
    assert check.ran_in() == {"here"}
