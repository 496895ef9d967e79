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
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from device.exc import StorageError
from device.store.permissions import prepare_db_file, prepare_state_dir
from device.store.retention import DEFAULT_RETENTION_DAYS, ERASE_WAIT_S, StoreRetention
from device.store.schema import (
    READABLE_FROM,
    ROW_FIELDS,
    SCHEMA_VERSION,
    SESSION_HRV_FIELDS,
    migrate,
    num,
)
from device.store.writer import (
    MAX_PENDING_ROWS,
    MAX_RETRY_WRITES,
    READ_SETTLE_S,
    REPLY_TIMEOUT_S,
    Job,
    QueuedWriter,
)

#: The writer's unit of work (the old private name, kept for tools and tests).
_Job = Job

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "ERASE_WAIT_S",
    "MAX_PENDING_ROWS",
    "MAX_RETRY_WRITES",
    "READ_SETTLE_S",
    "REPLY_TIMEOUT_S",
    "ROW_FIELDS",
    "SCHEMA_VERSION",
    "QueuedWriter",
    "Store",
]


def readonly_uri(path: Path) -> str:
    """The URI that reads ``path`` without writing anything beside it.

    With no ``-wal`` file no writer has the store open (the last one to close folds the
    log in and removes it), so the file is read as immutable: sqlite then makes no
    ``-wal``/``-shm`` files, which ``mode=ro`` alone would leave behind in the state
    directory. While the box writes, ``mode=ro`` reads beside it through its log.
    """
    quoted = urllib.parse.quote(str(path.absolute()))
    if not path.with_name(path.name + "-wal").exists():
        return f"file:{quoted}?immutable=1"
    return f"file:{quoted}?mode=ro"


class Store(StoreRetention):
    """The box's sqlite session store.

    :param path: the database file; its directory is created 0700 (0750 for group
        ``bedside``) and the file 0600 (0640) (:mod:`device.store.permissions`).
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
        super().__init__(Path(path), readonly)
        self._wall = wall
        self._last_prune: float | None = None
        self._next_id = 1
        self._prefs: dict[str, str] = {}
        self._db: sqlite3.Connection | None = None
        try:
            if readonly:
                if not self.path.is_file():
                    raise StorageError(f"{self.path}: no session store here")
                uri = readonly_uri(self.path)
                db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5.0)
            else:
                prepare_state_dir(self.path.parent)
                prepare_db_file(self.path)
                db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            self._db = db
            db.execute("PRAGMA foreign_keys = ON")
            if readonly:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if not READABLE_FROM <= version <= SCHEMA_VERSION:
                    raise StorageError(
                        f"{self.path}: store schema version {version}, expected {SCHEMA_VERSION}"
                    )
            else:
                # WAL: a crash leaves the main file intact; the log replays on open.
                db.execute("PRAGMA journal_mode = WAL")
                migrate(db, self.path)
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
            ready = Job("open the writer", lambda db: None)
            self._writer = threading.Thread(
                target=self._writer_main, args=(ready,), name="bedside-store", daemon=True
            )
            self._writer.start()
            ready.done.wait(REPLY_TIMEOUT_S)
            if ready.error is not None:
                self.close()
                raise ready.error

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

        self._submit(Job("start a session", do, retry=True))
        return sid

    def end_session(
        self,
        session_id: int,
        reason: str = "stop",
        hrv: Mapping[str, float | None] | None = None,
    ) -> None:
        """Record the end of a session (queued behind its rows).

        ``hrv`` gives the session's summary in ms by :data:`SESSION_HRV_FIELDS` (missing or
        ``None``: not known).
        """
        at = self._wall()
        given = hrv or {}
        values = tuple(num(given.get(k), k) for k in SESSION_HRV_FIELDS)
        sets = ", ".join(f"{k} = ?" for k in SESSION_HRV_FIELDS)

        def do(db: sqlite3.Connection) -> None:
            db.execute(
                f"UPDATE sessions SET ended_at = ?, end_reason = ?, {sets} WHERE id = ?",
                (at, str(reason), *values, int(session_id)),
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
            batch.append(tuple(num(row.get(k), k) for k in ROW_FIELDS))
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
        self._submit(Job("write rows", insert, retry=True, rows=batch, on_commit=self._written))
        if not self.healthy:
            raise StorageError(self.last_error or f"{self.path}: storage fault")
        return n

    def add_beats(
        self, session_id: int | None, beats: Iterable[tuple[float, float | None, bool]]
    ) -> None:
        """Hand over a batch of beats ``(session seconds, interval ms or None, plausible)``;
        queued for the writer and retried while the disk refuses them, as rows are."""
        batch = [(num(t, "t"), num(rr, "rr_ms"), 1 if ok else 0) for t, rr, ok in beats]
        if session_id is None or not batch:
            return
        sid = int(session_id)

        def insert(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT INTO beats (session_id, t, rr_ms, ok) VALUES (?, ?, ?, ?)",
                [(sid, *b) for b in batch],
            )

        self._submit(Job("write beats", insert, retry=True))

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

    # --- reading off the loop -------------------------------------------------------------

    def reader(self) -> Store:
        """A read-only store on the same file for the calling thread (close it after use).

        For reads on a worker thread: a sqlite connection serves only the thread that
        opened it, and this store's own is the loop's. Writes queued before the call land
        first (a bounded wait, :data:`READ_SETTLE_S`); WAL lets the reader run beside the
        writer.

        :raises StorageError: the file cannot be opened.
        """
        self._settle()
        return Store(self.path, readonly=True, wall=self._wall)

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
