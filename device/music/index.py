"""The music index: one row per file of the listener's music folder, in its own sqlite file.

``music.db`` in the state directory (``/var/lib/bedside/music.db``), apart from the session
store so a long scan never holds that store's writer. A row is keyed by the file's path and
remembers the size and mtime it was measured at: a scan measures only new or changed files
(:func:`scan`), and files that could not be decoded keep their error so they are listed,
not retried, until they change. Measuring happens here and in ``bedside music scan``, never
in the audio loop.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from device.exc import InputFileError, StorageError
from device.store.permissions import prepare_db_file

#: File name of the index inside the state directory.
INDEX_FILE = "music.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    duration_s REAL,
    sample_rate INTEGER,
    channels INTEGER,
    lufs REAL,
    peak REAL,
    tempo_bpm REAL,
    tempo_confidence REAL,
    error TEXT,
    scanned_at REAL NOT NULL
)
"""
#: Columns added since the first index (an older ``music.db`` gains them; its rows are
#: measured again because their ``analysis`` is older than :data:`ANALYSIS_VERSION`).
_ADDED = (
    ("onsets_per_min", "REAL"), ("surge_lu", "REAL"), ("centroid_hz", "REAL"),
    ("audible_start_s", "REAL"), ("audible_end_s", "REAL"), ("analysis", "INTEGER"),
)  # fmt: skip
#: Version of the measures in a row: rows of an older analysis are measured again.
ANALYSIS_VERSION = 2
_COLUMNS = (
    "path", "size", "mtime_ns", "duration_s", "sample_rate", "channels", "lufs", "peak",
    "tempo_bpm", "tempo_confidence", "error", "scanned_at",
    *(name for name, _ in _ADDED),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Track:
    """One indexed file. ``error`` is set (and the measures are ``None``) when undecodable."""

    path: str
    size: int
    mtime_ns: int
    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    lufs: float | None
    peak: float | None
    tempo_bpm: float | None
    tempo_confidence: float | None
    error: str | None
    scanned_at: float
    #: Onsets a minute, loudest 3-s surge above ``lufs`` (LU), spectral centroid (Hz).
    onsets_per_min: float | None = None
    surge_lu: float | None = None
    centroid_hz: float | None = None
    #: The audible part (s): the music crossfades between these, not over silence.
    audible_start_s: float | None = None
    audible_end_s: float | None = None
    #: :data:`ANALYSIS_VERSION` of the measures (``None``: the first index's).
    analysis: int | None = None

    @property
    def playable(self) -> bool:
        """True when the file decoded and has audio."""
        return self.error is None and bool(self.duration_s)

    @property
    def name(self) -> str:
        """File name without its folder, for listings."""
        return os.path.basename(self.path)

    def to_json(self) -> dict[str, object]:
        """The ``bedside music scan --json`` object of this track."""
        out: dict[str, object] = {
            "path": self.path,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "lufs": None if self.lufs is None else round(self.lufs, 2),
            "tempo_bpm": None if self.tempo_bpm is None else round(self.tempo_bpm, 2),
            "tempo_confidence": (
                None if self.tempo_confidence is None else round(self.tempo_confidence, 3)
            ),
            "clear_beat": self.tempo_bpm is not None,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "peak": None if self.peak is None else round(self.peak, 4),
            "tempo_level": "beat",
            "onsets_per_min": _round(self.onsets_per_min, 1),
            "surge_lu": _round(self.surge_lu, 2),
            "centroid_hz": _round(self.centroid_hz, 0),
            "audible_start_s": _round(self.audible_start_s, 2),
            "audible_end_s": _round(self.audible_end_s, 2),
        }
        if self.error is not None:
            out["error"] = self.error
        return out


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


class MusicIndex:
    """The tracks table. Not thread-safe: one owner (the scanner or the library) at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # 0600 (0640 in a group-bedside state directory), as the session store: the
            # index lists the listener's own files.
            prepare_db_file(Path(self.path))
            self._db = sqlite3.connect(self.path, timeout=5.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(tracks)")}
            for name, kind in _ADDED:
                if name not in have:
                    self._db.execute(f"ALTER TABLE tracks ADD COLUMN {name} {kind}")
            self._db.commit()
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"music index {self.path}: {exc}") from exc

    @classmethod
    def in_state_dir(cls, state_dir: str | Path) -> MusicIndex:
        """The index file of a state directory."""
        return cls(Path(state_dir) / INDEX_FILE)

    def get(self, path: str) -> Track | None:
        """The row of ``path``, or ``None``."""
        row = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM tracks WHERE path = ?", (path,)
        ).fetchone()
        return None if row is None else Track(*row)

    def put(self, track: Track) -> None:
        """Insert or replace the row of ``track.path`` (committed)."""
        marks = ", ".join("?" for _ in _COLUMNS)
        try:
            with self._db:
                self._db.execute(
                    f"INSERT OR REPLACE INTO tracks ({', '.join(_COLUMNS)}) VALUES ({marks})",
                    tuple(getattr(track, c) for c in _COLUMNS),
                )
        except sqlite3.Error as exc:
            raise StorageError(f"music index {self.path}: {exc}") from exc

    def tracks(self, under: str | Path | None = None) -> list[Track]:
        """Every row (under folder ``under`` when given), sorted by path."""
        rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM tracks ORDER BY path")
        prefix = None if under is None else os.path.join(os.path.abspath(under), "")
        return [Track(*r) for r in rows if prefix is None or str(r[0]).startswith(prefix)]

    def forget(self, paths: list[str]) -> None:
        """Delete the rows of ``paths``."""
        with self._db:
            self._db.executemany("DELETE FROM tracks WHERE path = ?", [(p,) for p in paths])

    def close(self) -> None:
        """Close the file (idempotent)."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def __enter__(self) -> MusicIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def music_files(folder: str | Path) -> Iterator[Path]:
    """Audio files under ``folder`` (recursive, hidden entries skipped), sorted by path."""
    from device.music.analysis import EXTENSIONS

    root = Path(folder)
    if not root.is_dir():
        raise InputFileError(f"music folder {folder} does not exist or is not a folder")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(EXTENSIONS):
                found.append(Path(dirpath, name).absolute())
    return iter(sorted(found))


def measure(path: Path, st: os.stat_result) -> Track:
    """Measure one file into a :class:`Track` (its error recorded when it cannot decode)."""
    from device.music.analysis import analyse

    now = time.time()
    try:
        a = analyse(path)
    except InputFileError as exc:
        return Track(
            str(path), st.st_size, st.st_mtime_ns, None, None, None, None, None, None, None,
            str(exc), now, analysis=ANALYSIS_VERSION,
        )  # fmt: skip
    return Track(
        str(path), st.st_size, st.st_mtime_ns, a.duration_s, a.sample_rate, a.channels, a.lufs,
        a.peak, a.tempo_bpm, a.tempo_confidence, None, now,
        onsets_per_min=a.onsets_per_min, surge_lu=a.surge_lu, centroid_hz=a.centroid_hz,
        audible_start_s=a.audible_start_s, audible_end_s=a.audible_end_s,
        analysis=ANALYSIS_VERSION,
    )  # fmt: skip


def scan(
    index: MusicIndex,
    folder: str | Path,
    progress: Callable[[int, int, Path, bool], None] | None = None,
) -> list[Track]:
    """Index every audio file under ``folder``; return their rows, sorted by path.

    A file whose path, size and mtime match its row is not measured again. Rows of files
    that are gone are deleted. ``progress(done, total, path, measured)`` is called after each
    file.
    """
    files = list(music_files(folder))
    out: list[Track] = []
    for i, path in enumerate(files, 1):
        try:
            st = path.stat()
        except OSError:
            continue
        row = index.get(str(path))
        measured = _stale(row, st)
        if measured:
            row = measure(path, st)
            index.put(row)
        assert row is not None
        out.append(row)
        if progress is not None:
            progress(i, len(files), path, measured)
    present = {t.path for t in out}
    index.forget([t.path for t in index.tracks(folder) if t.path not in present])
    return out


def _stale(row: Track | None, st: os.stat_result) -> bool:
    """Whether a file must be measured (again): no row, another size or mtime, or a row
    from an older analysis."""
    return (
        row is None
        or row.size != st.st_size
        or row.mtime_ns != st.st_mtime_ns
        or row.analysis != ANALYSIS_VERSION
    )
