"""The session store's sqlite schema (version in ``PRAGMA user_version``) and its migration."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

from device.exc import StorageError

#: Schema version kept in ``PRAGMA user_version``.
SCHEMA_VERSION = 3
#: The oldest version a read-only reader takes (the box migrates a store when it opens it;
#: ``bedside sessions`` may read an older one before that: it then has no beats).
READABLE_FROM = 2
#: Session HRV summary columns (ms), as the field computes them: over the whole session and over
#: its last 5 minutes (the standard short-term window); added in version 2.
SESSION_HRV_FIELDS = ("rmssd_ms", "sdnn_ms", "rmssd_5min_ms", "sdnn_5min_ms")
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

#: Version 3: each session's beats as the heart analysis corrected and flagged them.
#: ``t`` session seconds of the beat; ``rr_ms`` the interval from the beat before (NULL for
#: the first beat after a start or a gap); ``ok`` 1 when the interval is plausible (it counts
#: in the HRV figures), 0 when the analysis flagged it.
BEATS_SQL = """
CREATE TABLE IF NOT EXISTS beats (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    t REAL NOT NULL,
    rr_ms REAL,
    ok INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS beats_by_session ON beats(session_id, t);
"""

SCHEMA_SQL = (
    """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    ended_at REAL,
    program TEXT NOT NULL,
    profile TEXT NOT NULL DEFAULT 'default',
    end_reason TEXT,
    rmssd_ms REAL,
    sdnn_ms REAL,
    rmssd_5min_ms REAL,
    sdnn_5min_ms REAL
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
    + BEATS_SQL
)

#: Tables erase_userdata empties, in an order the foreign keys allow.
USER_TABLES = ("beats", "rows", "events", "ratings", "sessions", "preferences")


def num(value: object, key: str) -> float | None:
    """A row value as stored: a finite float, or ``None`` for unknown (NaN, inf, None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float):
        raise ValueError(f"row field {key!r} must be a number or None, not {value!r}")
    value = float(value)
    # NaN/inf mean "not known": store NULL so exports and reports stay clean.
    return value if math.isfinite(value) else None


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create the tables in a new file; refuse a newer schema or a file that is not a store."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"{path}: store schema version {version} is newer than this software ({SCHEMA_VERSION})"
        )
    if version == 0:
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables:
            raise StorageError(f"{path}: not a Bedside session store")
        db.executescript("BEGIN;" + SCHEMA_SQL + f"PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")
    elif version < SCHEMA_VERSION:
        steps = ""
        if version < 2:
            steps += "".join(
                f"ALTER TABLE sessions ADD COLUMN {c} REAL;" for c in SESSION_HRV_FIELDS
            )
        if version < 3:
            steps += BEATS_SQL
        db.executescript("BEGIN;" + steps + f"PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")
