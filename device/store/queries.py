"""Reading the session store: sessions with their summaries, rows, events, ratings."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from device.exc import StorageError
from device.store.schema import ROW_FIELDS
from device.store.writer import QueuedWriter


class StoreReads(QueuedWriter):
    """The reading half of :class:`~device.store.sessions.Store` (reads wait briefly for writes)."""

    _db: sqlite3.Connection | None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StorageError(f"{self.path}: session store is closed")
        return self._db

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

    def sessions(self) -> list[dict[str, Any]]:
        """Every session, oldest first, with its row count and length in seconds."""
        return self._read(
            "list sessions",
            "SELECT s.id, s.started_at, s.ended_at, s.program, s.profile, s.end_reason, "
            "count(r.t) AS rows, max(r.t) AS duration_s, avg(r.hr) AS mean_hr, "
            "avg(r.rmssd) AS mean_rmssd, avg(r.coherence) AS mean_coherence, "
            "s.rmssd_ms, s.sdnn_ms, s.rmssd_5min_ms, s.sdnn_5min_ms, "
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

    def beats(self, session_id: int) -> list[dict[str, Any]]:
        """A session's beats in time order: ``t`` (session s), ``rr_ms`` (the interval ending
        at the beat, ``None`` after a gap) and ``ok`` (plausible). None in an older store."""
        has = self._read(
            "read beats", "SELECT count(*) AS n FROM sqlite_master WHERE name = 'beats'"
        )
        if not has[0]["n"]:
            return []
        out = self._read(
            "read beats",
            "SELECT t, rr_ms, ok FROM beats WHERE session_id = ? ORDER BY t",
            (int(session_id),),
        )
        for beat in out:
            beat["ok"] = bool(beat["ok"])
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

    def profiles(self) -> list[str]:
        """The listener profiles the store knows, sorted: those its sessions played for and
        those it learnt preferences of (keys ``kind:PROFILE``)."""
        found = {
            str(r["profile"])
            for r in self._read("list profiles", "SELECT DISTINCT profile FROM sessions")
        }
        for r in self._read("list profiles", "SELECT key FROM preferences"):
            _kind, sep, name = str(r["key"]).partition(":")
            if sep and name:
                found.add(name)
        return sorted(found)

    def check(self) -> str:
        """Run sqlite's integrity check; a one-line summary, StorageError if damaged."""
        found = self._read("check the store", "PRAGMA integrity_check")
        result = next(iter(found[0].values())) if found else "no answer"
        if result != "ok":
            raise self._fail("check the store", sqlite3.DatabaseError(str(result)))
        n = self._read("check the store", "SELECT count(*) AS n FROM sessions")[0]["n"]
        size = self.path.stat().st_size if self.path.exists() else 0
        return f"integrity ok, {n} sessions, {size // 1024} KiB"
