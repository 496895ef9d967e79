"""Retention and erasure of the session store: old sessions pruned, user data erased."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from device.exc import StorageError
from device.store.queries import StoreReads
from device.store.schema import USER_TABLES
from device.store.writer import REPLY_TIMEOUT_S, Job

#: How long erase_userdata waits for the writer (below the 10 s watchdog), seconds.
ERASE_WAIT_S = 5.0
#: Default retention of sessions, days.
DEFAULT_RETENTION_DAYS = 30


class StoreRetention(StoreReads):
    """Pruning and erasing for :class:`~device.store.sessions.Store`."""

    _wall: Callable[[], float]
    _last_prune: float | None
    _prefs: dict[str, str]

    def _prune_job(self, retention_days: float) -> Job:
        if not retention_days > 0:
            raise ValueError(f"retention must be > 0 days, not {retention_days}")
        cutoff = self._wall() - retention_days * 86400.0

        def do(db: sqlite3.Connection) -> int:
            old = "SELECT id FROM sessions WHERE started_at < ?"
            for table in ("rows", "events", "ratings"):
                db.execute(f"DELETE FROM {table} WHERE session_id IN ({old})", (cutoff,))
            return db.execute("DELETE FROM sessions WHERE started_at < ?", (cutoff,)).rowcount

        return Job("prune old sessions", do)

    def prune(self, retention_days: float = DEFAULT_RETENTION_DAYS) -> int:
        """Delete sessions (with their rows, events, ratings) older than the retention.

        Waits for the writer and returns how many sessions went: for start-up and tools.
        From the loop use :meth:`prune_daily`, which never waits.
        """
        job = self._prune_job(retention_days)
        self._submit(job)
        if not job.done.wait(REPLY_TIMEOUT_S):
            raise StorageError(f"{self.path}: cannot prune: no answer within {REPLY_TIMEOUT_S:g} s")
        if job.error is not None:
            raise job.error
        self._last_prune = self._wall()
        return int(job.result)

    def prune_daily(self, retention_days: float = DEFAULT_RETENTION_DAYS) -> bool:
        """Queue a prune if a day has passed since the last one; True when one was queued.

        Never waits for the card: call it from the loop (say, with the 1 Hz hand-over).
        """
        if self._last_prune is not None and self._wall() - self._last_prune < 86400.0:
            return False
        self._last_prune = self._wall()
        self._submit(self._prune_job(retention_days))
        return True

    def erase_userdata(self) -> dict[str, int]:
        """Delete every session, row, event, rating and preference; leave nothing in the file.

        Deleted pages are zeroed (``secure_delete``), the file is rebuilt (``VACUUM``) and
        the write-ahead log is checkpointed and truncated, so no erased byte survives in
        ``sessions.db`` or ``sessions.db-wal``. Returns the count removed per table.
        """

        def do(db: sqlite3.Connection) -> dict[str, int]:
            db.execute("BEGIN IMMEDIATE")
            try:
                counts = {t: db.execute(f"DELETE FROM {t}").rowcount for t in USER_TABLES}
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return counts

        self._prefs.clear()
        job = Job("erase user data", do, transaction=False)
        self._submit(job)
        if not job.done.wait(ERASE_WAIT_S):
            raise StorageError(
                f"{self.path}: erasing is still running after {ERASE_WAIT_S:g} s (slow card); "
                "it completes in the background"
            )
        if job.error is not None:
            raise job.error
        return dict(job.result)
