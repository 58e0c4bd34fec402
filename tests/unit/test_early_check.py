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


class Send:
    """A fake feeder message: records which process sent it for which batch; may fail in the child."""

    def __init__(self, tmp_path: Path, *, fail_in_child: bool = False) -> None:
        self.dir, self.fail_in_child, self.parent = tmp_path, fail_in_child, os.getpid()

    def __call__(self, batch_id: str) -> None:
        if self.fail_in_child and os.getpid() != self.parent:
            raise ConnectionError("broker away")
        where = "here" if os.getpid() == self.parent else "child"
        (self.dir / f"sent-{where}-{batch_id}").touch()

    def sent(self) -> list[str]:
        return sorted(p.name for p in self.dir.glob("sent-*"))


def nothing() -> None:
    pass


@linux_only
def test_the_child_sends_the_recorded_batchs_feeder_message_once(tmp_path):
    send = Send(tmp_path)
    early = EarlyCheck(Check(tmp_path), send, prepare=nothing)
    early.result()
    early.feed("b1")
    assert send.sent() == ["sent-child-b1"]


@linux_only
def test_a_send_that_fails_in_the_child_is_made_here(tmp_path):
    send = Send(tmp_path, fail_in_child=True)
    early = EarlyCheck(Check(tmp_path), send, prepare=nothing)
    early.result()
    early.feed("b2")
    assert send.sent() == ["sent-here-b2"]


@linux_only
def test_after_a_child_died_the_message_is_sent_here(tmp_path):
    send = Send(tmp_path)
    early = EarlyCheck(Check(tmp_path, die_in_child=True), send, prepare=nothing)
    early.result()
    early.feed("b3")
    assert send.sent() == ["sent-here-b3"]


@linux_only
def test_a_child_told_of_no_batch_sends_nothing(tmp_path):
    send = Send(tmp_path)
    early = EarlyCheck(Check(tmp_path), send, prepare=nothing)
    early.result()
    early.close()
    assert not early.child.is_alive()
    assert send.sent() == []


def test_without_fork_the_message_is_sent_here(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    send = Send(tmp_path)
    early = EarlyCheck(Check(tmp_path), send, prepare=nothing)
    early.result()
    early.feed("b4")
    assert send.sent() == ["sent-here-b4"]
