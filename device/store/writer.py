"""The store's writer thread: every write goes through one queue, in order, off the loop.

The loop only queues a :class:`Job`; the thread runs it in its own connection inside
``BEGIN IMMEDIATE ... COMMIT``. A write that fails is kept (bounded: the oldest rows go
first) and retried every second, so nothing is lost while the disk recovers; a call that
needs an answer waits with a time limit.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device.exc import StorageError

#: Rows kept in memory while the disk refuses them (one hour at 1 Hz).
MAX_PENDING_ROWS = 3600
#: Other writes (events, ratings, session ends, preferences) kept for retry.
MAX_RETRY_WRITES = 1000
#: How long a call that needs the writer's answer waits, seconds.
REPLY_TIMEOUT_S = 10.0
#: How long a read waits for queued writes to land first, seconds (then reads what is there).
READ_SETTLE_S = 0.25


@dataclass(eq=False)
class Job:
    """One unit of work for the writer thread: a transaction, or a bare statement."""

    what: str
    fn: Callable[[sqlite3.Connection], Any]
    #: Run inside BEGIN IMMEDIATE ... COMMIT (False for VACUUM and checkpoints).
    transaction: bool = True
    #: Keep and retry after a failure (fire-and-forget writes).
    retry: bool = False
    #: A success proves the disk takes writes again (not so for a no-op barrier).
    proves_health: bool = True
    #: May run while older writes wait for retry (reads, pragmas; never data writes).
    may_overtake: bool = False
    #: Called with ``fn``'s result once the transaction is committed.
    on_commit: Callable[[Any], None] | None = None
    #: The rows a row hand-over carries (trimmed from the front when memory runs out).
    rows: list[tuple[float | None, ...]] | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: StorageError | None = None


class QueuedWriter:
    """The writer-thread half of :class:`~device.store.sessions.Store` (health included).

    :param path: the database file.
    :param readonly: no writer thread; every write is refused.
    """

    def __init__(self, path: Path, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        #: False after a failed read or write, True again after the next success.
        self.healthy = True
        #: Text of the last failure, or ``None``.
        self.last_error: str | None = None
        #: Failures since the store was opened.
        self.errors = 0
        #: Rows dropped because the pending queue was full.
        self.dropped_rows = 0
        #: Other writes dropped because the retry queue was full.
        self.dropped_writes = 0
        self._lock = threading.Lock()
        #: Rows handed over and not yet committed.
        self._pending = 0
        self._jobs: queue.Queue[Job] = queue.Queue()
        self._stop = Job("stop", lambda db: None, transaction=False)
        self._writer: threading.Thread | None = None

    def _fail(self, what: str, exc: BaseException) -> StorageError:
        self.healthy = False
        self.errors += 1
        text = str(exc)
        if isinstance(exc, sqlite3.Error) and "full" in text:
            text += " (the disk is full)"
        self.last_error = f"{self.path}: cannot {what}: {text}"
        return StorageError(self.last_error)

    def _writer_main(self, ready: Job) -> None:
        """The writer thread: open the database, then run the queued jobs in order until
        the stop job, retrying failed writes every second."""
        db = self._open_db(ready)
        if db is None:
            return
        retry: deque[Job] = deque()
        try:
            while True:
                try:
                    # With work left over from a failure, wake every second to retry it.
                    job = self._jobs.get(timeout=1.0 if retry else None)
                except queue.Empty:
                    job = None
                if job is self._stop:
                    self._retry(db, retry)
                    job.done.set()
                    return
                ok = self._retry(db, retry)
                if job is None:
                    continue
                self._take(db, job, ok, retry)
                self._bound(retry)
        finally:
            db.close()

    def _open_db(self, ready: Job) -> sqlite3.Connection | None:
        """The writer's connection (foreign keys, full sync, secure delete); ``None`` with
        the error in ``ready`` when it cannot be opened. ``ready`` is done either way."""
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            db.execute("PRAGMA foreign_keys = ON")
            # Every commit reaches the card before the next hand-over.
            db.execute("PRAGMA synchronous = FULL")
            # Freed pages are overwritten with zeros: erased data stays erased.
            db.execute("PRAGMA secure_delete = ON")
        except sqlite3.Error as exc:
            ready.error = self._fail("open for writing", exc)
            ready.done.set()
            return None
        ready.done.set()
        return db

    def _take(self, db: sqlite3.Connection, job: Job, ok: bool, retry: deque[Job]) -> None:
        """Run ``job`` (``ok``: no older write is stuck), queue it for a retry, or fail it
        at once when it would overtake stuck writes it must not overtake."""
        if ok:
            if not self._run(db, job) and job.retry:
                retry.append(job)
        elif job.retry:
            retry.append(job)  # keep the order: it goes after the older failures
        elif job.may_overtake:
            self._run(db, job)
        else:
            # Older writes are stuck: this one would overtake them (a row before its
            # session, an erase before the data). Report the fault at once.
            job.error = StorageError(self.last_error or f"{self.path}: storage fault")
            job.done.set()

    def _bound(self, retry: deque[Job]) -> None:
        # Memory is bounded while the disk refuses writes: the oldest rows go first.
        for job in retry:
            if self._pending <= MAX_PENDING_ROWS:
                break
            if job.rows:
                n = min(len(job.rows), self._pending - MAX_PENDING_ROWS)
                del job.rows[:n]
                with self._lock:
                    self._pending -= n
                self.dropped_rows += n
        others = [j for j in retry if j.rows is None]
        for job in others[: max(0, len(others) - MAX_RETRY_WRITES)]:
            retry.remove(job)
            self.dropped_writes += 1

    def _retry(self, db: sqlite3.Connection, retry: deque[Job]) -> bool:
        while retry:
            if not self._run(db, retry[0]):
                return False
            retry.popleft()
        return True

    def _run(self, db: sqlite3.Connection, job: Job) -> bool:
        try:
            if job.transaction:
                db.execute("BEGIN IMMEDIATE")
                try:
                    job.result = job.fn(db)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                if job.on_commit is not None:
                    job.on_commit(job.result)
            else:
                job.result = job.fn(db)
        except sqlite3.Error as exc:
            job.error = self._fail(job.what, exc)
            job.done.set()
            return False
        except Exception as exc:  # a bug must not kill the writer thread
            job.error = self._fail(job.what, exc)
            job.done.set()
            return False
        job.error = None
        if job.proves_health:
            self.healthy = True
        job.done.set()
        return True

    def _submit(self, job: Job) -> None:
        if self.readonly:
            raise StorageError(f"{self.path}: opened read-only; cannot {job.what}")
        if self._writer is None or not self._writer.is_alive():
            raise StorageError(f"{self.path}: session store is closed")
        self._jobs.put(job)

    def _queue(self, what: str, fn: Callable[[sqlite3.Connection], Any]) -> None:
        """Queue a write for the writer; raise the recorded fault, if any, afterwards."""
        self._submit(Job(what, fn, retry=True))
        if not self.healthy:
            raise StorageError(self.last_error or f"{self.path}: storage fault")

    def _call(
        self,
        what: str,
        fn: Callable[[sqlite3.Connection], Any],
        *,
        transaction: bool = True,
        timeout: float = REPLY_TIMEOUT_S,
        may_overtake: bool = False,
    ) -> Any:
        """Run ``fn`` on the writer and wait for its result (StorageError on failure)."""
        job = Job(what, fn, transaction=transaction, may_overtake=may_overtake)
        self._submit(job)
        if not job.done.wait(timeout):
            self.healthy = False
            self.last_error = f"{self.path}: cannot {what}: no answer within {timeout:g} s"
            raise StorageError(self.last_error + " (is the card hanging?)")
        if job.error is not None:
            raise job.error
        return job.result

    def _settle(self) -> None:
        """Let queued writes land before a read (bounded wait: a read never hangs long)."""
        if self._writer is None or not self._writer.is_alive():
            return
        job = Job(
            "settle", lambda db: None, transaction=False, proves_health=False, may_overtake=True
        )
        self._jobs.put(job)
        job.done.wait(READ_SETTLE_S)

    def _written(self, n: int) -> None:
        with self._lock:
            self._pending -= n

    def flush(self, timeout: float = REPLY_TIMEOUT_S) -> None:
        """Wait until every queued write is on the card; StorageError if the disk refused."""
        self._call("write rows", lambda db: None, timeout=timeout)
        if self._pending or not self.healthy:
            raise StorageError(self.last_error or f"{self.path}: rows still pending")

    @property
    def pending_rows(self) -> int:
        """Rows waiting in memory for the disk."""
        return self._pending
