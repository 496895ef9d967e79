"""The session store: sessions, 1 Hz rows, events, ratings and preferences in sqlite (WAL).

One file in the state directory (``/var/lib/bedside/sessions.db``). The Box hands over its
1 Hz rows once per second (:meth:`Store.add_rows`), and each hand-over is one transaction,
so a crash or a power cut loses at most the last second. ``synchronous=FULL`` makes every
commit durable on the card; WAL keeps readers (``bedside sessions``) off the writer's back.

Data minimisation: only what the session report needs is stored (no raw PPG). Sessions
older than the retention are pruned; :meth:`Store.erase_userdata` deletes everything
personal and VACUUMs with ``secure_delete`` on, so nothing is left in the file's bytes.

Any sqlite failure (a full disk, a read-only card, a corrupt file) is raised as
:class:`~device.exc.StorageError` and remembered in :attr:`Store.healthy` /
:attr:`Store.last_error`; rows that could not be written are kept in memory (bounded) and
retried with the next hand-over. The Box catches the error and keeps playing.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
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
        #: Rows waiting to be written (after a failure), as tuples in ROW_FIELDS order.
        self._pending: list[tuple[int, tuple[float | None, ...]]] = []
        #: Rows dropped because the pending queue was full.
        self.dropped_rows = 0
        self._last_prune: float | None = None
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
            if not readonly:
                # WAL: a crash leaves the main file intact; the log replays on open.
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = FULL")
                # Freed pages are overwritten with zeros: erased data stays erased.
                db.execute("PRAGMA secure_delete = ON")
                self._migrate()
            else:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    raise StorageError(
                        f"{self.path}: store schema version {version}, expected {SCHEMA_VERSION}"
                    )
        except sqlite3.Error as exc:
            self.close()
            raise self._fail("open", exc) from exc
        except StorageError:
            self.close()
            raise

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

    def _ok(self) -> None:
        self.healthy = True

    def _write(self, what: str, statements: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``statements`` in one transaction; StorageError (rolled back) on failure."""
        if self.readonly:
            raise StorageError(f"{self.path}: opened read-only; cannot {what}")
        db = self._conn()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = statements(db)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._fail(what, exc) from exc
        self._ok()
        return result

    def _read(self, what: str, sql: str, args: Iterable[object] = ()) -> list[dict[str, Any]]:
        db = self._conn()
        try:
            cur = db.execute(sql, tuple(args))
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        except sqlite3.Error as exc:
            raise self._fail(what, exc) from exc
        return rows

    # --- sessions --------------------------------------------------------------------------

    def start_session(self, program: str, profile: str = "default") -> int:
        """Record a session start now; return its id (committed at once)."""
        at = self._wall()

        def do(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "INSERT INTO sessions (started_at, program, profile) VALUES (?, ?, ?)",
                (at, str(program), str(profile)),
            )
            return int(cur.lastrowid or 0)

        return int(self._write("start a session", do))

    def end_session(self, session_id: int, reason: str = "stop") -> None:
        """Record the end of a session (and write any rows still pending)."""
        at = self._wall()

        def do(db: sqlite3.Connection) -> None:
            self._insert_pending(db)
            db.execute(
                "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ?",
                (at, str(reason), int(session_id)),
            )

        self._write("end a session", do)
        self._pending.clear()

    def add_rows(self, session_id: int | None, rows: Iterable[Mapping[str, object]]) -> int:
        """Write a batch of 1 Hz rows (one transaction); return how many were written.

        Keys are those of :data:`ROW_FIELDS` (missing ones are stored as NULL). When the
        write fails the rows stay queued (up to :data:`MAX_PENDING_ROWS`, oldest dropped
        first) and go out with the next successful batch.

        :raises ValueError: a row has an unknown key or a value that is not a number.
        :raises StorageError: the database refused the write.
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
        if session_id is None:
            return 0
        self._pending.extend((int(session_id), values) for values in batch)
        overflow = len(self._pending) - MAX_PENDING_ROWS
        if overflow > 0:
            del self._pending[:overflow]
            self.dropped_rows += overflow
        n = len(self._pending)
        self._write("write rows", self._insert_pending)
        self._pending.clear()
        return n

    def _insert_pending(self, db: sqlite3.Connection) -> None:
        if self._pending:
            db.executemany(
                f"INSERT INTO rows (session_id, {', '.join(ROW_FIELDS)}) "
                f"VALUES (?, {', '.join('?' * len(ROW_FIELDS))})",
                [(sid, *values) for sid, values in self._pending],
            )

    def flush(self) -> None:
        """Write rows left pending by an earlier failure (no-op when there are none)."""
        if self._pending:
            self._write("write rows", self._insert_pending)
            self._pending.clear()

    @property
    def pending_rows(self) -> int:
        """Rows waiting in memory for the disk."""
        return len(self._pending)

    def add_event(
        self, session_id: int | None, t: float | None, kind: str, detail: str = ""
    ) -> None:
        """Record an event (``kind`` and ``detail`` text) at session time ``t`` seconds."""
        if not kind:
            raise ValueError("an event needs a kind")
        at = self._wall()
        self._write(
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
        self._write(
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
        self._write(
            "save a preference",
            lambda db: db.execute(
                "INSERT INTO preferences (key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (str(key), text, at),
            ),
        )

    def get_preference(self, key: str, default: object = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        found = self._read(
            "read a preference", "SELECT value FROM preferences WHERE key = ?", (key,)
        )
        if not found:
            return default
        try:
            return json.loads(found[0]["value"])
        except ValueError as exc:
            raise self._fail("read a preference", exc) from exc

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

    def prune(self, retention_days: float = DEFAULT_RETENTION_DAYS) -> int:
        """Delete sessions (with their rows, events, ratings) older than the retention.

        Returns how many sessions went. Cheap to call often; the Box calls it at start and
        :meth:`prune_daily` once a day.
        """
        if not retention_days > 0:
            raise ValueError(f"retention must be > 0 days, not {retention_days}")
        cutoff = self._wall() - retention_days * 86400.0

        def do(db: sqlite3.Connection) -> int:
            old = "SELECT id FROM sessions WHERE started_at < ?"
            for table in ("rows", "events", "ratings"):
                db.execute(f"DELETE FROM {table} WHERE session_id IN ({old})", (cutoff,))
            return db.execute("DELETE FROM sessions WHERE started_at < ?", (cutoff,)).rowcount

        n = int(self._write("prune old sessions", do))
        self._last_prune = self._wall()
        return n

    def prune_daily(self, retention_days: float = DEFAULT_RETENTION_DAYS) -> int:
        """:meth:`prune` if a day has passed since the last prune; else do nothing (0)."""
        if self._last_prune is not None and self._wall() - self._last_prune < 86400.0:
            return 0
        return self.prune(retention_days)

    def erase_userdata(self) -> dict[str, int]:
        """Delete every session, row, event, rating and preference; leave nothing in the file.

        Deleted pages are zeroed (``secure_delete``), the file is rebuilt (``VACUUM``) and
        the write-ahead log is checkpointed and truncated, so no erased byte survives in
        ``sessions.db`` or ``sessions.db-wal``. Returns the count removed per table.
        """

        def do(db: sqlite3.Connection) -> dict[str, int]:
            counts = {}
            for table in _USER_TABLES:
                counts[table] = db.execute(f"DELETE FROM {table}").rowcount
            return counts

        counts = self._write("erase user data", do)
        self._pending.clear()
        db = self._conn()
        try:
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise self._fail("vacuum after erasing", exc) from exc
        return counts

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

    def close(self) -> None:
        """Write pending rows if possible, then close the file. Idempotent."""
        if self._db is None:
            return
        if self._pending and not self.readonly:
            with contextlib.suppress(StorageError):  # already recorded; closing must not fail
                self.flush()
        try:
            self._db.close()
        finally:
            self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._db is None else ("ok" if self.healthy else "FAULT")
        return f"<Store {self.path} {state}>"
