"""The reply the console is writing, and the worker thread that runs its deferred work.

A command whose work touches the disk (``Reply.deferred``) must not run in the box's loop:
its work runs on one worker thread, and the loop only asks, each poll, whether it is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from device.console.commands import code_for, message_for
from device.console.protocol import Deferred, Reply


class PendingReply:
    """The reply being written: its remaining data lines, final line and deferred work."""

    __slots__ = ("code", "finish", "future", "lines", "message", "tag")

    def __init__(self, reply: Reply, tag: str | None) -> None:
        self.tag = tag
        self.future: Future[object] | None = None
        self.finish: Callable[[object, float], Reply] | None = None
        self.set(reply)

    def set(self, reply: Reply) -> None:
        """Make ``reply`` the one to write (its lines from the first)."""
        self.lines: Iterator[str] = iter(reply.lines)
        self.code = reply.code
        self.message = reply.message

    def cancel(self) -> None:
        """Cancel the deferred work if it has not started yet."""
        if self.future is not None:
            self.future.cancel()


class DeferredRunner:
    """Runs deferred work one job at a time on a worker thread started on first use."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None

    def start(self, pending: PendingReply, deferred: Deferred) -> None:
        """Submit ``deferred.work``; :meth:`settle` later turns its result into the reply."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="console-work")
        pending.finish = deferred.finish
        pending.future = self._executor.submit(deferred.work)

    @staticmethod
    def settle(pending: PendingReply, now: float) -> bool:
        """Whether ``pending`` can be written now: it has no deferred work, or it has
        finished and its reply (or the error it raised, as an error reply) is in place."""
        if pending.future is None:
            return True
        if not pending.future.done():
            return False
        try:
            assert pending.finish is not None
            pending.set(pending.finish(pending.future.result(), now))
        except Exception as exc:
            pending.set(Reply.error(code_for(exc), message_for(exc)))
        pending.future = None
        return True

    def shutdown(self) -> None:
        """Stop the worker, cancelling work not yet started. Idempotent."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
