"""The session store: sessions, 1 Hz rows, events, ratings and preferences in sqlite (WAL).

One file in the state directory (``/var/lib/bedside/sessions.db``). The Box hands over its
1 Hz rows once per second (:meth:`Store.add_rows`) and each hand-over is committed at once
as one transaction, so a crash or a power cut loses at most the last second.
``synchronous=FULL`` makes every commit durable on the card; WAL keeps readers
(``bedside sessions``) off the writer's back.

The writes run on a writer thread with its own connection, in the order they were made:
the loop only queues them, so an SD card that takes 200 ms (or hangs) on ``fsync`` never
stalls the sound or starves the watchdog. Session ids are handed out at once; only
:meth:`Store.erase_userdata`, :meth:`Store.prune` and :meth:`Store.flush` wait for the
writer, with a time limit, and reads wait at most a quarter second for queued writes.

Data minimisation: only what the session report needs is stored (no raw PPG). Sessions
older than the retention are pruned; :meth:`Store.erase_userdata` deletes everything
personal and VACUUMs with ``secure_delete`` on, so nothing is left in the file's bytes.

Any sqlite failure (a full disk, a read-only card, a corrupt file) is recorded in
:attr:`Store.healthy` / :attr:`Store.last_error` and raised as
:class:`~device.exc.StorageError` by the next call; writes that failed are kept in memory
(bounded) and retried every second, so nothing is lost while the disk recovers. The Box
catches the error and keeps playing.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device.exc import StorageError

#: Schema version kept in ``PRAGMA user_version``.
SCHEMA_VERSION = 1
#: Columns of a 1 Hz row, in order: session seconds, heart rate (BPM), RMSSD (ms),
#: coherence ratio, signal quality (0..1), finger contact, pacer (breaths/min), breathing
#: estimate (breaths/min), entrainment rate (Hz), output volume (dB).
ROW_FIELDS = (
    "t",
    "hr",
    "rmssd",
    "coherence",
    "quality",
    "contact",
    "pacer",
    "breathing",
    "entrain_hz",
    "volume_db",
)
#: Rows kept in memory while the disk refuses them (one hour at 1 Hz).
MAX_PENDING_ROWS = 3600
#: Other writes (events, ratings, session ends, preferences) kept for retry.
MAX_RETRY_WRITES = 1000
#: How long a call that needs the writer's answer waits, seconds.
REPLY_TIMEOUT_S = 10.0
#: How long a read waits for queued writes to land first, seconds (then reads what is there).
READ_SETTLE_S = 0.25
#: How long erase_userdata waits for the writer (below the 10 s watchdog), seconds.
ERASE_WAIT_S = 5.0
#: Default retention of sessions, days.
DEFAULT_RETENTION_DAYS = 30

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    ended_at REAL,
    program TEXT NOT NULL,
    profile TEXT NOT NULL DEFAULT 'default',
    end_reason TEXT
);
CREATE TABLE IF NOT EXISTS rows (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    t REAL NOT NULL,
    hr REAL, rmssd REAL, coherence REAL, quality REAL, contact INTEGER,
    pacer REAL, breathing REAL, entrain_hz REAL, volume_db REAL
);
CREATE INDEX IF NOT EXISTS rows_by_session ON rows(session_id, t);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    at REAL NOT NULL,
    t REAL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_by_session ON events(session_id, t);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    at REAL NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS preferences (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""

#: Tables erase_userdata empties, in an order the foreign keys allow.
_USER_TABLES = ("rows", "events", "ratings", "sessions", "preferences")


def _num(value: object, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float):
        raise ValueError(f"row field {key!r} must be a number or None, not {value!r}")
    value = float(value)
    # NaN/inf mean "not known": store NULL so exports and reports stay clean.
    return value if math.isfinite(value) else None


@dataclass(eq=False)
class _Job:
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


class Store:
    """The box's sqlite session store.

    :param path: the database file (created with its directory's permissions).
    :param readonly: open for reading only (the CLI while the service runs).
    :param wall: wall clock, seconds since the epoch (for ``started_at`` and retention).
    :raises StorageError: the file cannot be opened or is not a Bedside store.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._wall = wall
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
        self._jobs: queue.Queue[_Job] = queue.Queue()
        self._stop = _Job("stop", lambda db: None, transaction=False)
        self._writer: threading.Thread | None = None
        self._last_prune: float | None = None
        self._next_id = 1
        self._prefs: dict[str, str] = {}
        self._db: sqlite3.Connection | None = None
        try:
            if readonly:
                if not self.path.is_file():
                    raise StorageError(f"{self.path}: no session store here")
                uri = f"file:{self.path}?mode=ro"
                db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5.0)
            else:
                db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            self._db = db
            db.execute("PRAGMA foreign_keys = ON")
            if readonly:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    raise StorageError(
                        f"{self.path}: store schema version {version}, expected {SCHEMA_VERSION}"
                    )
            else:
                # WAL: a crash leaves the main file intact; the log replays on open.
                db.execute("PRAGMA journal_mode = WAL")
                self._migrate()
                # Session ids are handed out here, so starting a session never waits.
                self._next_id = (
                    db.execute("SELECT coalesce(max(id), 0) FROM sessions").fetchone()[0] + 1
                )
        except sqlite3.Error as exc:
            self.close()
            raise self._fail("open", exc) from exc
        except StorageError:
            self.close()
            raise
        if not readonly:
            ready = _Job("open the writer", lambda db: None)
            self._writer = threading.Thread(
                target=self._writer_main, args=(ready,), name="bedside-store", daemon=True
            )
            self._writer.start()
            ready.done.wait(REPLY_TIMEOUT_S)
            if ready.error is not None:
                self.close()
                raise ready.error

    # --- internals -------------------------------------------------------------------------

    def _migrate(self) -> None:
        db = self._conn()
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"{self.path}: store schema version {version} is newer than this software "
                f"({SCHEMA_VERSION})"
            )
        if version == 0:
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise StorageError(f"{self.path}: not a Bedside session store")
            db.executescript("BEGIN;" + _SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StorageError(f"{self.path}: session store is closed")
        return self._db

    def _fail(self, what: str, exc: BaseException) -> StorageError:
        self.healthy = False
        self.errors += 1
        text = str(exc)
        if isinstance(exc, sqlite3.Error) and "full" in text:
            text += " (the disk is full)"
        self.last_error = f"{self.path}: cannot {what}: {text}"
        return StorageError(self.last_error)

    # --- the writer thread -------------------------------------------------------------------

    def _writer_main(self, ready: _Job) -> None:
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
            return
        ready.done.set()
        retry: deque[_Job] = deque()
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
                self._bound(retry)
        finally:
            db.close()

    def _bound(self, retry: deque[_Job]) -> None:
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

    def _retry(self, db: sqlite3.Connection, retry: deque[_Job]) -> bool:
        while retry:
            if not self._run(db, retry[0]):
                return False
            retry.popleft()
        return True

    def _run(self, db: sqlite3.Connection, job: _Job) -> bool:
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

    def _submit(self, job: _Job) -> None:
        if self.readonly:
            raise StorageError(f"{self.path}: opened read-only; cannot {job.what}")
        if self._writer is None or not self._writer.is_alive():
            raise StorageError(f"{self.path}: session store is closed")
        self._jobs.put(job)

    def _queue(self, what: str, fn: Callable[[sqlite3.Connection], Any]) -> None:
        """Queue a write for the writer; raise the recorded fault, if any, afterwards."""
        self._submit(_Job(what, fn, retry=True))
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
        job = _Job(what, fn, transaction=transaction, may_overtake=may_overtake)
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
        job = _Job(
            "settle", lambda db: None, transaction=False, proves_health=False, may_overtake=True
        )
        self._jobs.put(job)
        job.done.wait(READ_SETTLE_S)

    def _read(self, what: str, sql: str, args: Iterable[object] = ()) -> list[dict[str, Any]]:
        db = self._conn()
        self._settle()
        try:
            cur = db.execute(sql, tuple(args))
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        except sqlite3.Error as exc:
            raise self._fail(what, exc) from exc
        return rows

    # --- sessions --------------------------------------------------------------------------

    def start_session(self, program: str, profile: str = "default") -> int:
        """Record a session start now and return its id at once (the write is queued).

        Never waits for the card and never raises for a storage fault: the session and its
        rows are written when the disk takes them (faults show in :attr:`healthy`).
        """
        if self.readonly:
            raise StorageError(f"{self.path}: opened read-only; cannot start a session")
        at = self._wall()
        sid = self._next_id
        self._next_id += 1

        def do(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO sessions (id, started_at, program, profile) VALUES (?, ?, ?, ?)",
                (sid, at, str(program), str(profile)),
            )

        self._submit(_Job("start a session", do, retry=True))
        return sid

    def end_session(self, session_id: int, reason: str = "stop") -> None:
        """Record the end of a session (queued behind its rows)."""
        at = self._wall()

        def do(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ?",
                (at, str(reason), int(session_id)),
            )

        self._queue("end a session", do)

    def add_rows(self, session_id: int | None, rows: Iterable[Mapping[str, object]]) -> int:
        """Hand over a batch of 1 Hz rows; the writer commits them at once, as one transaction.

        Keys are those of :data:`ROW_FIELDS` (missing ones are stored as NULL). Returns how
        many rows wait for the writer. While the disk refuses them they stay queued (up to
        :data:`MAX_PENDING_ROWS`, oldest dropped first) and are retried every second.

        :raises ValueError: a row has an unknown key or a value that is not a number.
        :raises StorageError: the store has a fault (the rows are queued all the same).
        """
        batch = []
        for row in rows:
            unknown = set(row) - set(ROW_FIELDS)
            if unknown:
                raise ValueError(
                    f"unknown row field(s) {', '.join(sorted(unknown))}; "
                    f"known: {', '.join(ROW_FIELDS)}"
                )
            if row.get("t") is None:
                raise ValueError("a row needs its session time 't' (seconds)")
            batch.append(tuple(_num(row.get(k), k) for k in ROW_FIELDS))
        if session_id is None or not batch:
            return 0
        sid = int(session_id)

        def insert(db: sqlite3.Connection) -> int:
            db.executemany(
                f"INSERT INTO rows (session_id, {', '.join(ROW_FIELDS)}) "
                f"VALUES (?, {', '.join('?' * len(ROW_FIELDS))})",
                [(sid, *values) for values in batch],
            )
            return len(batch)

        with self._lock:
            self._pending += len(batch)
            n = self._pending
        self._submit(_Job("write rows", insert, retry=True, rows=batch, on_commit=self._written))
        if not self.healthy:
            raise StorageError(self.last_error or f"{self.path}: storage fault")
        return n

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

    def add_event(
        self, session_id: int | None, t: float | None, kind: str, detail: str = ""
    ) -> None:
        """Record an event (``kind`` and ``detail`` text) at session time ``t`` seconds."""
        if not kind:
            raise ValueError("an event needs a kind")
        at = self._wall()
        self._queue(
            "write an event",
            lambda db: db.execute(
                "INSERT INTO events (session_id, at, t, kind, detail) VALUES (?, ?, ?, ?, ?)",
                (session_id, at, t, str(kind), str(detail)),
            ),
        )

    def add_rating(self, session_id: int | None, kind: str) -> None:
        """Record a listener rating (``"like"`` or ``"skip"``) of a session."""
        if kind not in ("like", "skip"):
            raise ValueError(f"rating must be like or skip, not {kind!r}")
        at = self._wall()
        self._queue(
            "write a rating",
            lambda db: db.execute(
                "INSERT INTO ratings (session_id, at, kind) VALUES (?, ?, ?)",
                (session_id, at, kind),
            ),
        )

    # --- preferences ------------------------------------------------------------------------

    def set_preference(self, key: str, value: object) -> None:
        """Store a JSON-serialisable value (for example a profile's bandit state)."""
        try:
            text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"preference {key!r} is not JSON-serialisable: {exc}") from None
        at = self._wall()
        self._prefs[str(key)] = text
        self._queue(
            "save a preference",
            lambda db: db.execute(
                "INSERT INTO preferences (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (str(key), text, at),
            ),
        )

    def get_preference(self, key: str, default: object = None) -> Any:
        """The value stored under ``key``, or ``default`` (saved values are read back at once)."""
        text = self._prefs.get(key)
        if text is None:
            found = self._read(
                "read a preference", "SELECT value FROM preferences WHERE key = ?", (key,)
            )
            if not found:
                return default
            text = str(found[0]["value"])
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise self._fail("read a preference", exc) from exc
        self._prefs[key] = text
        return value

    # --- reading ----------------------------------------------------------------------------

    def sessions(self) -> list[dict[str, Any]]:
        """Every session, oldest first, with its row count and length in seconds."""
        return self._read(
            "list sessions",
            "SELECT s.id, s.started_at, s.ended_at, s.program, s.profile, s.end_reason, "
            "count(r.t) AS rows, max(r.t) AS duration_s, avg(r.hr) AS mean_hr, "
            "avg(r.rmssd) AS mean_rmssd, avg(r.coherence) AS mean_coherence, "
            "(SELECT group_concat(kind, ',') FROM ratings g WHERE g.session_id = s.id) "
            "AS ratings "
            "FROM sessions s LEFT JOIN rows r ON r.session_id = s.id "
            "GROUP BY s.id ORDER BY s.id",
        )

    def session(self, session_id: int) -> dict[str, Any]:
        """One session's summary; StorageError naming the id when there is none."""
        for s in self.sessions():
            if s["id"] == session_id:
                return s
        raise StorageError(f"{self.path}: no session {session_id}")

    def rows(self, session_id: int) -> list[dict[str, Any]]:
        """The 1 Hz rows of a session in time order (keys: :data:`ROW_FIELDS`)."""
        out = self._read(
            "read rows",
            f"SELECT {', '.join(ROW_FIELDS)} FROM rows WHERE session_id = ? ORDER BY t",
            (int(session_id),),
        )
        for row in out:
            if row["contact"] is not None:
                row["contact"] = bool(row["contact"])
        return out

    def events(self, session_id: int | None = None) -> list[dict[str, Any]]:
        """Events of one session (or all), in order: ``at``, ``t``, ``kind``, ``detail``."""
        if session_id is None:
            return self._read(
                "read events", "SELECT session_id, at, t, kind, detail FROM events ORDER BY id"
            )
        return self._read(
            "read events",
            "SELECT session_id, at, t, kind, detail FROM events WHERE session_id = ? ORDER BY id",
            (int(session_id),),
        )

    def ratings(self, session_id: int | None = None) -> list[dict[str, Any]]:
        """Ratings, oldest first."""
        sql = "SELECT session_id, at, kind FROM ratings"
        args: tuple[object, ...] = ()
        if session_id is not None:
            sql += " WHERE session_id = ?"
            args = (int(session_id),)
        return self._read("read ratings", sql + " ORDER BY id", args)

    # --- retention and erasure --------------------------------------------------------------

    def _prune_job(self, retention_days: float) -> _Job:
        if not retention_days > 0:
            raise ValueError(f"retention must be > 0 days, not {retention_days}")
        cutoff = self._wall() - retention_days * 86400.0

        def do(db: sqlite3.Connection) -> int:
            old = "SELECT id FROM sessions WHERE started_at < ?"
            for table in ("rows", "events", "ratings"):
                db.execute(f"DELETE FROM {table} WHERE session_id IN ({old})", (cutoff,))
            return db.execute("DELETE FROM sessions WHERE started_at < ?", (cutoff,)).rowcount

        return _Job("prune old sessions", do)

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
                counts = {t: db.execute(f"DELETE FROM {t}").rowcount for t in _USER_TABLES}
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return counts

        self._prefs.clear()
        job = _Job("erase user data", do, transaction=False)
        self._submit(job)
        if not job.done.wait(ERASE_WAIT_S):
            raise StorageError(
                f"{self.path}: erasing is still running after {ERASE_WAIT_S:g} s (slow card); "
                "it completes in the background"
            )
        if job.error is not None:
            raise job.error
        return dict(job.result)

    def check(self) -> str:
        """Run sqlite's integrity check; a one-line summary, StorageError if damaged."""
        found = self._read("check the store", "PRAGMA integrity_check")
        result = next(iter(found[0].values())) if found else "no answer"
        if result != "ok":
            raise self._fail("check the store", sqlite3.DatabaseError(str(result)))
        n = self._read("check the store", "SELECT count(*) AS n FROM sessions")[0]["n"]
        size = self.path.stat().st_size if self.path.exists() else 0
        return f"integrity ok, {n} sessions, {size // 1024} KiB"

    # --- life cycle -------------------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting at most ``timeout`` s), then close. Idempotent."""
        writer, self._writer = self._writer, None
        if writer is not None and writer.is_alive():
            self._jobs.put(self._stop)
            # A hung card must not hang the shutdown: the thread is a daemon.
            writer.join(timeout)
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._db is None else ("ok" if self.healthy else "FAULT")
        return f"<Store {self.path} {state}>"
