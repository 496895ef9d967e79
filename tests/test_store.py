"""Session store: schema, round trips, retention, erasure to the last byte, full disk."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.exc import StorageError
from device.store.atomic import atomic_write_text
from device.store.recorder import Recorder
from device.store.sessions import MAX_PENDING_ROWS, ROW_FIELDS, SCHEMA_VERSION, Store, _Job
from tests.support.fs import tiny_tmpfs

DAY = 86400.0


class Wall:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def row(t: float, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "t": t,
        "hr": 62.5,
        "rmssd": 41.0,
        "coherence": 1.8,
        "quality": 0.93,
        "contact": True,
        "pacer": 6.0,
        "breathing": 6.4,
        "entrain_hz": 4.0,
        "volume_db": -22.0,
    }
    base.update(kw)
    return base


def writer_sql(store: Store, sql: str) -> object:
    """Run one statement on the store's writer connection (pragmas are per connection)."""
    return store._call(
        sql, lambda db: db.execute(sql).fetchone()[0], transaction=False, may_overtake=True
    )


def limit_growth(store: Store, pages: int | None = None) -> None:
    """Forbid the file to grow: sqlite then answers SQLITE_FULL, as on a full disk."""
    if pages is None:
        pages = int(writer_sql(store, "PRAGMA page_count"))  # type: ignore[arg-type]
    writer_sql(store, f"PRAGMA max_page_count = {pages}")


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def store(tmp_path: Path, wall: Wall):
    with Store(tmp_path / "sessions.db", wall=wall) as s:
        yield s


def test_schema_wal_and_durability(store: Store):
    db = sqlite3.connect(store.path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "rows", "events", "ratings", "preferences"} <= tables
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = [r[1] for r in db.execute("PRAGMA table_info(rows)")]
    assert cols == ["session_id", *ROW_FIELDS]
    db.close()
    assert writer_sql(store, "PRAGMA synchronous") == 2  # FULL: each commit on the card
    assert writer_sql(store, "PRAGMA secure_delete") == 1


def test_session_rows_round_trip(store: Store, wall: Wall):
    sid = store.start_session("wind-down", "anna")
    assert store.add_rows(sid, [row(0.0), row(1.0, hr=None, contact=False), row(2.0)]) == 3
    wall.t += 600
    store.end_session(sid, "program-end")
    rows = store.rows(sid)
    assert [r["t"] for r in rows] == [0.0, 1.0, 2.0]
    assert rows[1]["hr"] is None and rows[1]["contact"] is False
    assert rows[0] == row(0.0)
    (s,) = store.sessions()
    assert s["id"] == sid and s["program"] == "wind-down" and s["profile"] == "anna"
    assert s["rows"] == 3 and s["duration_s"] == 2.0
    assert s["mean_hr"] == pytest.approx(62.5)
    assert s["ended_at"] - s["started_at"] == 600
    assert s["end_reason"] == "program-end"


def test_non_finite_values_are_stored_as_null(store: Store):
    sid = store.start_session("p")
    store.add_rows(sid, [row(0.0, hr=math.nan, coherence=math.inf)])
    r = store.rows(sid)[0]
    assert r["hr"] is None and r["coherence"] is None


def test_bad_rows_are_refused_with_the_field_named(store: Store):
    sid = store.start_session("p")
    with pytest.raises(ValueError, match=r"unknown row field.*heart"):
        store.add_rows(sid, [{"t": 0.0, "heart": 60}])
    with pytest.raises(ValueError, match="'hr' must be a number"):
        store.add_rows(sid, [row(0.0, hr="sixty")])
    with pytest.raises(ValueError, match="session time 't'"):
        store.add_rows(sid, [{"hr": 60.0}])
    assert store.rows(sid) == []


def test_events_ratings_preferences(store: Store):
    sid = store.start_session("p")
    store.add_event(sid, 12.5, "section", "settle")
    store.add_event(None, None, "boot", "Bedside 0.1.0")
    store.add_rating(sid, "like")
    store.add_rating(sid, "skip")
    with pytest.raises(ValueError, match="like or skip"):
        store.add_rating(sid, "love")
    assert [(e["t"], e["kind"], e["detail"]) for e in store.events(sid)] == [
        (12.5, "section", "settle")
    ]
    assert len(store.events()) == 2
    assert [r["kind"] for r in store.ratings(sid)] == ["like", "skip"]
    assert store.sessions()[0]["ratings"] == "like,skip"
    assert store.get_preference("bandit:anna") is None
    assert store.get_preference("bandit:anna", {}) == {}
    store.set_preference("bandit:anna", {"arms": [1, 2.5], "n": 3})
    store.set_preference("bandit:anna", {"arms": [2, 2.5], "n": 4})
    assert store.get_preference("bandit:anna") == {"arms": [2, 2.5], "n": 4}
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        store.set_preference("x", {1, 2})


def test_data_survives_reopen_and_readonly_view(tmp_path: Path):
    path = tmp_path / "s.db"
    with Store(path) as s:
        sid = s.start_session("p")
        s.add_rows(sid, [row(0.0), row(1.0)])
    with Store(path, readonly=True) as ro:
        assert len(ro.rows(sid)) == 2
        with pytest.raises(StorageError, match="read-only"):
            ro.start_session("q")
    with pytest.raises(StorageError, match="no session store"):
        Store(tmp_path / "absent.db", readonly=True)


def test_session_lookup(store: Store):
    sid = store.start_session("p")
    assert store.session(sid)["program"] == "p"
    with pytest.raises(StorageError, match="no session 99"):
        store.session(99)


def test_foreign_file_and_closed_store(tmp_path: Path):
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE x (a)")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="not a Bedside session store"):
        Store(other)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match=r"junk\.db: cannot open"):
        Store(junk)
    s = Store(tmp_path / "ok.db")
    s.close()
    s.close()
    with pytest.raises(StorageError, match="closed"):
        s.sessions()
    assert "closed" in repr(s)


def test_check_reports_integrity(store: Store):
    store.start_session("p")
    assert store.check().startswith("integrity ok, 1 sessions")


# --- retention -----------------------------------------------------------------------------


def test_retention_prunes_old_sessions_with_everything_they_own(store: Store, wall: Wall):
    old = store.start_session("old")
    store.add_rows(old, [row(0.0)])
    store.add_event(old, 1.0, "start", "x")
    store.add_rating(old, "like")
    wall.t += 20 * DAY
    mid = store.start_session("mid")
    wall.t += 11 * DAY  # old is now 31 days old, mid 11
    assert store.prune(30) == 1
    assert [s["program"] for s in store.sessions()] == ["mid"]
    assert store.rows(old) == [] and store.events(old) == [] and store.ratings(old) == []
    assert store.prune(30) == 0
    wall.t += 20 * DAY
    assert store.prune(30) == 1
    assert store.sessions() == []
    assert mid  # ids are ints
    with pytest.raises(ValueError, match="retention"):
        store.prune(0)


def test_prune_daily_runs_once_a_day_without_waiting(store: Store, wall: Wall):
    store.start_session("a")
    wall.t += 40 * DAY
    assert store.prune_daily(30) is True
    store.flush()
    assert store.sessions() == []
    store.start_session("b")
    wall.t += 0.5 * DAY
    assert store.prune_daily(0.1) is False  # pruned less than a day ago: skipped
    store.flush()
    assert len(store.sessions()) == 1
    wall.t += 0.6 * DAY
    assert store.prune_daily(0.1) is True
    store.flush()
    assert store.sessions() == []


# --- erase leaves nothing ---------------------------------------------------------------------

SECRET = "ZEBRA-PROFILE-7731"
SECRET_HR = 71.123456789
SECRET_HR_BYTES = struct.pack(">d", SECRET_HR)  # sqlite stores REAL as big-endian doubles


def file_bytes(path: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(path) + suffix)
        if p.exists():
            data += p.read_bytes()
    return data


def fill_personal_data(store: Store) -> None:
    for _ in range(30):
        sid = store.start_session("wind-down", SECRET)
        store.add_rows(sid, [row(float(t), hr=SECRET_HR) for t in range(60)])
        store.add_event(sid, 3.0, "note", f"listener {SECRET} fell asleep")
        store.add_rating(sid, "like")
        store.end_session(sid, "stop")
    store.set_preference(f"bandit:{SECRET}", {"who": SECRET})
    store.flush()


def test_erase_userdata_leaves_nothing_in_the_file(store: Store):
    fill_personal_data(store)
    before = file_bytes(store.path)
    assert SECRET.encode() in before and SECRET_HR_BYTES in before  # the check can fail
    counts = store.erase_userdata()
    assert counts == {
        "beats": 0,
        "rows": 1800,
        "events": 30,
        "ratings": 30,
        "sessions": 30,
        "preferences": 1,
    }
    assert store.sessions() == [] and store.get_preference(f"bandit:{SECRET}") is None
    after = file_bytes(store.path)
    assert SECRET.encode() not in after
    assert SECRET_HR_BYTES not in after
    assert store.check().startswith("integrity ok, 0 sessions")
    # The store keeps working after the erase.
    sid = store.start_session("next")
    store.add_rows(sid, [row(0.0)])
    assert len(store.rows(sid)) == 1


def test_erase_after_reopen_also_clean(tmp_path: Path):
    path = tmp_path / "s.db"
    with Store(path) as s:
        fill_personal_data(s)
    with Store(path) as s:
        s.erase_userdata()
    assert SECRET.encode() not in file_bytes(path)


# --- storage faults ----------------------------------------------------------------------------


def test_full_database_raises_storage_error_keeps_rows_and_recovers(store: Store):
    sid = store.start_session("p")
    store.add_rows(sid, [row(0.0)])
    limit_growth(store)
    big = [row(float(t)) for t in range(1, 2000)]
    store.add_rows(sid, big)  # handed over: the loop never waits for the disk
    with pytest.raises(StorageError, match="full"):
        store.flush()
    assert not store.healthy
    assert "(the disk is full)" in (store.last_error or "")
    assert store.pending_rows == 1999  # nothing lost yet
    with pytest.raises(StorageError, match="full"):
        store.add_rows(sid, [row(2000.0)])  # queued, and the fault is reported
    with pytest.raises(StorageError, match="full"):
        store.add_event(sid, 1.0, "note", "kept for later")
    assert store.pending_rows == 2000
    limit_growth(store, 1073741823)  # space again
    store.flush()
    assert store.healthy
    assert len(store.rows(sid)) == 2001
    assert store.pending_rows == 0
    assert [e["detail"] for e in store.events(sid)] == ["kept for later"]  # retried


def test_writes_retry_by_themselves_once_space_returns(store: Store):
    sid = store.start_session("p")
    limit_growth(store)
    store.add_rows(sid, [row(float(t)) for t in range(500)])
    with pytest.raises(StorageError):
        store.flush()
    limit_growth(store, 1073741823)
    deadline = time.monotonic() + 5
    while store.pending_rows and time.monotonic() < deadline:
        time.sleep(0.05)  # no new hand-over: the writer retries every second on its own
    assert store.pending_rows == 0 and store.healthy
    assert len(store.rows(sid)) == 500


def test_pending_rows_are_bounded(store: Store):
    sid = store.start_session("p")
    limit_growth(store)
    for batch in range(3):
        with contextlib.suppress(StorageError):
            store.add_rows(sid, [row(float(batch * 2000 + i)) for i in range(2000)])
        with pytest.raises(StorageError):
            store.flush()
    assert store.pending_rows == MAX_PENDING_ROWS
    assert store.dropped_rows == 6000 - MAX_PENDING_ROWS


def test_a_hung_disk_never_blocks_the_hand_over(store: Store):
    """fsync on a dying SD card can take seconds: the loop must not wait for it."""
    sid = store.start_session("p")
    release = threading.Event()
    store._submit(_Job("hang", lambda db: release.wait(10), transaction=False))
    t0 = time.perf_counter()
    for i in range(5):
        store.add_rows(sid, [row(float(i))])
        store.add_event(sid, float(i), "tick")
    second = store.start_session("q")
    store.set_preference("bandit:x", {"n": 1})
    assert store.get_preference("bandit:x") == {"n": 1}  # read back without the disk
    assert time.perf_counter() - t0 < 0.05
    with pytest.raises(StorageError, match=r"no answer within 0\.2 s"):
        store._call("start a session", lambda db: None, timeout=0.2)
    release.set()
    store.flush()
    assert len(store.rows(sid)) == 5 and len(store.events(sid)) == 5
    assert [x["id"] for x in store.sessions()] == [sid, second]


def test_session_started_on_a_full_disk_arrives_with_its_rows(store: Store):
    first = store.start_session("p")
    store.flush()
    limit_growth(store)
    sid = store.start_session("during the fault")  # an id at once, no exception
    assert sid == first + 1
    store.add_rows(sid, [row(float(t)) for t in range(3000)])
    with pytest.raises(StorageError, match="full"):
        store.flush()
    with pytest.raises(StorageError, match="full"):
        store.end_session(sid, "stop")  # queued behind the rows, and the fault reported
    with pytest.raises(StorageError, match="full"):
        store.erase_userdata()  # refused while older writes wait: it would come before them
    limit_growth(store, 1073741823)
    store.flush()
    s = store.session(sid)
    assert s["rows"] == 3000 and s["end_reason"] == "stop"
    assert store.erase_userdata()["rows"] == 3000


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 300k filesystem (tmpfs), so the kernel itself says ENOSPC."""
    with tiny_tmpfs(tmp_path / "tiny", "300k") as mnt:
        yield mnt


def test_real_full_disk(tiny_disk: Path):
    s = Store(tiny_disk / "sessions.db")
    sid = s.start_session("p")
    filler = tiny_disk / "filler"
    with pytest.raises(StorageError, match=r"full|disk"):
        for i in range(200):
            s.add_rows(sid, [row(float(i * 100 + k)) for k in range(100)])
            s.flush()
            if i == 2:
                fill_disk(filler)  # as a runaway log file would
    assert not s.healthy
    kept = len(s.rows(sid))
    pending = s.pending_rows
    assert kept >= 300 and pending >= 100  # written before the disk filled / waiting
    filler.unlink()
    s.flush()  # the queued rows go out as soon as there is room: none lost
    assert s.healthy and s.pending_rows == 0
    assert len(s.rows(sid)) == kept + pending
    s.add_rows(sid, [row(99999.0)])
    s.flush()
    assert len(s.rows(sid)) == kept + pending + 1
    s.close()


def fill_disk(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


# --- atomic saves -----------------------------------------------------------------------------


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path):
    target = tmp_path / "config.toml"
    atomic_write_text(target, "a = 1\n")
    atomic_write_text(target, "a = 2\n", mode=0o600)
    assert target.read_text() == "a = 2\n"
    assert (target.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_atomic_write_failure_keeps_old_file(tmp_path: Path, mocker):
    target = tmp_path / "pin"
    atomic_write_text(target, "old")
    mocker.patch("device.store.atomic.os.fsync", side_effect=OSError(5, "Input/output error"))
    with pytest.raises(StorageError, match="pin: cannot save: Input/output error"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pin"]


def test_atomic_write_into_missing_directory(tmp_path: Path):
    with pytest.raises(StorageError, match="cannot save"):
        atomic_write_text(tmp_path / "no" / "such" / "file", "x")


def test_the_recorder_hands_each_row_over_at_once(store: Store, wall: Wall):
    # A power cut loses at most the row interval: no row waits in memory for the next tick.
    rec = Recorder(store, clock=lambda: wall.t, emit=lambda line: None)
    sid = rec.start_session("wind-down", "anna")
    rec.add_row(row(0.0))
    rec.add_row(row(1.0))
    assert [r["t"] for r in store.rows(sid)] == [0.0, 1.0]
