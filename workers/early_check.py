"""`letzflow run`'s bucket check and feeder message, in a child forked as the command starts.

The check (build an S3 client, ``HEAD`` the bucket) costs 0.2-0.3 s, mostly boto3 loading its service
model; sending the feeder's message means importing Celery, kombu and redis-py (0.14 s) first. The command
meanwhile imports the ledger and validates the spec, which costs longer. A child forked before either
does both on another core:

1. it checks the bucket and answers; the batch is recorded only once the answer says the bucket is there,
   so a missing bucket is still a clear error before anything is written or paid;
2. it imports the wire, then waits for the recorded batch's id, sends ``letzflow.feed_batch`` for it and
   answers that it did.

Where ``fork`` is not the platform's way (macOS, Windows), or the child dies or says nothing, the command
does the step itself, as before. A feeder message sent twice (the child's answer lost after it sent) is
harmless: the feeder claims each item once.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

#: Seconds to wait for each of the child's answers before doing the step here instead (boto3's own
#: timeouts are longer).
ANSWER_TIMEOUT = 30.0


def check_bucket() -> None:
    """The check itself: the media store of the ``S3_*`` settings, and its bucket. It imports only the
    settings and boto3, not the ledger and Celery (``tasks.runtime``): the command imports the ledger
    meanwhile, and the batch waits for this answer.

    Raises:
        StorageError: naming the bucket and the fix.
    """
    from config.settings import get_settings
    from storage.media import S3MediaStore

    s = get_settings()
    S3MediaStore.at(s.s3_endpoint_url, s.s3_bucket, s.s3_prefix).check()


def prepare_feed() -> None:
    """Import what sending the feeder's message needs (Celery's app, kombu, redis-py)."""
    import tasks.messages  # noqa: F401


def send_feed(batch_id: str) -> None:
    """Start the batch's feeder: one ``letzflow.feed_batch`` message."""
    from tasks import messages

    messages.send(messages.FEED_BATCH, batch_id)


class EarlyCheck:
    """A child forked at construction: :meth:`result` waits for its bucket check, :meth:`feed` has it
    start a recorded batch's feeder."""

    def __init__(
        self,
        check: Callable[[], None] = check_bucket,
        send: Callable[[str], None] = send_feed,
        prepare: Callable[[], None] = prepare_feed,
    ) -> None:
        self.check, self.send = check, send
        self.conn: Connection | None = None
        self.child: Any = None
        self.checked = False
        if sys.platform != "linux":
            return
        context = multiprocessing.get_context("fork")
        here, there = context.Pipe(duplex=True)
        self.child = context.Process(target=_child, args=(check, send, prepare, there, here), daemon=True)
        self.child.start()
        there.close()
        self.conn = here

    def result(self) -> None:
        """Return once the bucket answered (here, or in the child).

        Raises:
            StorageError: the child's (or this process's own) check failed.
        """
        from storage.media_base import StorageError

        reply = self._answer()
        if reply is None:
            self._close()
            self.check()
            return
        ok, message, code = reply
        if not ok:
            self._close()
            raise StorageError(message, code=code)
        self.checked = True

    def feed(self, batch_id: str) -> None:
        """Start the batch's feeder: sent by the child once it says so, else from here."""
        sent = False
        if self.conn is not None and self.checked:
            try:
                self.conn.send(batch_id)
                sent = self._answer() is True
            except OSError:  # the child is gone
                sent = False
        self._close()
        if not sent:
            self.send(batch_id)

    def close(self) -> None:
        """No batch to start (the same one exists already): the child ends."""
        self._close()

    def _answer(self) -> Any:
        if self.conn is None:
            return None
        try:
            if not self.conn.poll(ANSWER_TIMEOUT):
                return None
            return self.conn.recv()
        except (EOFError, OSError):  # the child died without an answer
            return None

    def _close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
            self.child.join(1.0)


def _child(
    check: Callable[[], None],
    send: Callable[[str], None],
    prepare: Callable[[], None],
    conn: Connection,
    parents_end: Connection,
) -> None:
    from storage.media_base import StorageError

    parents_end.close()  # forked with it open: the parent closing its own must read as the end here

    try:
        try:
            check()
        except StorageError as exc:
            conn.send((False, exc.message, exc.code))
            return
        except Exception:  # e.g. a setting that does not parse: the command's own check says it, in its words
            conn.send(None)
            return
        conn.send((True, "", None))
        try:
            prepare()
            batch_id = conn.recv()
        except EOFError:  # the command ended without recording a batch (invalid spec, dry run, an error)
            return
        except Exception:  # the wire cannot be imported here: the command sends the message itself
            return
        try:
            send(batch_id)
        except Exception:
            conn.send(False)
            return
        conn.send(True)
    finally:
        conn.close()
