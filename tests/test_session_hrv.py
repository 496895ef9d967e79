"""A session's HRV summary as the field computes it, stored with the session (issue 12 item 6)."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from device.box.app import Box, RunOptions
from device.config import Config
from device.store.schema import SESSION_HRV_FIELDS
from device.store.sessions import Store


def test_the_summary_is_stored_and_listed(tmp_path: Path) -> None:
    with Store(tmp_path / "sessions.db") as store:
        sid = store.start_session("nap", "default")
        store.end_session(sid, "stop", {"rmssd_ms": 41.5, "sdnn_ms": 52.0, "rmssd_5min_ms": None})
        (s,) = store.sessions()
    assert s["rmssd_ms"] == 41.5 and s["sdnn_ms"] == 52.0
    assert s["rmssd_5min_ms"] is None and s["sdnn_5min_ms"] is None


def test_a_version_1_store_gains_the_columns_and_keeps_its_sessions(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    with Store(path) as store:
        store.start_session("nap", "default")
    db = sqlite3.connect(path)
    for column in SESSION_HRV_FIELDS:  # back to the version 1 layout
        db.execute(f"ALTER TABLE sessions DROP COLUMN {column}")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Store(path) as store:
        (s,) = store.sessions()
    assert s["program"] == "nap" and s["rmssd_ms"] is None


@pytest.mark.slow
def test_a_box_session_records_its_session_and_5_minute_hrv(tmp_path: Path) -> None:
    state = tmp_path / "state"
    opts = RunOptions(
        sim=True, audio="null", speed=None, status="none", program="wind-down",
        listener="compliant", seed=2, state_dir=str(state), duration_s=400.0, minutes=6.0,
    )  # fmt: skip
    with Box(Config.defaults(), opts, status_out=io.StringIO()) as box:
        assert box.run() == 0
    with Store(state / "sessions.db") as store:
        (s,) = store.sessions()
    for key in SESSION_HRV_FIELDS:
        assert isinstance(s[key], float) and 2.0 < s[key] < 200.0, (key, s)
