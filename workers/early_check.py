"""`letzflow run`'s bucket check, started in a forked child as the command starts.

The check (build an S3 client, ``HEAD`` the bucket) costs 0.2-0.3 s, mostly boto3 loading its service
model; the command meanwhile imports the ledger and Celery and validates the spec, which costs longer.
A child forked before either runs the check on another core: the batch is recorded only once the child
has answered that the bucket is there, so a missing bucket is still a clear error before anything is
written or paid. Where ``fork`` is not the platform's way (macOS, Windows), or the child dies without an
answer, the check runs here instead, as before.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

#: Seconds to wait for the child's answer before checking here instead (boto3's own timeouts are longer).
ANSWER_TIMEOUT = 30.0


def check_bucket() -> None:
    """The check itself: the media store of the ``S3_*`` settings, and its bucket. It imports only the
    settings and boto3, not the ledger and Celery (``tasks.runtime``): the command imports those meanwhile,
    and the batch waits for this answer.

    Raises:
        StorageError: naming the bucket and the fix.
    """
    from config.settings import get_settings
    from storage.media import S3MediaStore

    s = get_settings()
    S3MediaStore.at(s.s3_endpoint_url, s.s3_bucket, s.s3_prefix).check()


class EarlyCheck:
    """A check running in a forked child from construction; :meth:`result` waits for its answer."""

    def __init__(self, check: Callable[[], None] = check_bucket) -> None:
        self.check = check
        self.answer: Connection | None = None
        self.child: Any = None
        if sys.platform != "linux":
            return
        context = multiprocessing.get_context("fork")
        reader, writer = context.Pipe(duplex=False)
        self.child = context.Process(target=_child, args=(check, writer), daemon=True)
        self.child.start()
        writer.close()
        self.answer = reader

    def result(self) -> None:
        """Return once the bucket answered (here, or in the child).

        Raises:
            StorageError: the child's (or this process's own) check failed.
        """
        from storage.media_base import StorageError

        reply = self._reply()
        if reply is None:
            self.check()
            return
        ok, message, code = reply
        if not ok:
            raise StorageError(message, code=code)

    def _reply(self) -> tuple[bool, str, str | None] | None:
        if self.answer is None:
            return None
        try:
            if not self.answer.poll(ANSWER_TIMEOUT):
                return None
            reply: tuple[bool, str, str | None] | None = self.answer.recv()
            return reply
        except (EOFError, OSError):  # the child died without an answer
            return None
        finally:
            self.answer.close()
            self.answer = None
            self.child.join(1.0)


def _child(check: Callable[[], None], writer: Connection) -> None:
    from storage.media_base import StorageError

    try:
        check()
        writer.send((True, "", None))
    except StorageError as exc:
        writer.send((False, exc.message, exc.code))
    except Exception:  # e.g. a setting that does not parse: the command's own check says it, in its words
        writer.send(None)
    finally:
        writer.close()
