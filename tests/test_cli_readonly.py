"""Read-only commands leave the state directory as it was and speak one vocabulary (#23.12)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from device.cli import main
from device.cli.sessions import format_sessions, rows_csv
from device.store.sessions import Store


@pytest.fixture
def state(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    with Store(d / "sessions.db") as store:
        sid = store.start_session("relax", "anna")
        store.add_rows(sid, [{"t": 1.0, "hr": 60.0, "contact": True}])
        store.end_session(sid, "stop")
    return d


def test_bedside_sessions_leaves_no_wal_or_shm_files(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(os.listdir(state))
    assert main(["sessions", "--state-dir", str(state)]) == 0
    assert "relax" in capsys.readouterr().out
    assert main(["export", "1", "--state-dir", str(state)]) == 0
    assert main(["profile", "--state-dir", str(state), "--profile", "anna"]) == 0
    assert sorted(os.listdir(state)) == before


def test_a_store_the_box_has_open_is_still_read_beside_it(state: Path) -> None:
    with Store(state / "sessions.db") as writer:
        sid = writer.start_session("nap", "anna")
        with writer.reader() as reader:
            assert [s["id"] for s in reader.sessions()] == [1, sid]


def test_profile_that_does_not_exist_is_named_and_exit_2(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["profile", "--state-dir", str(state), "--profile", "nobody"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bedside profile: error: no profile 'nobody'")
    assert "anna" in err


def test_the_sessions_table_stays_aligned_without_hr_or_rmssd() -> None:
    rows = [
        {"id": 1, "started_at": 0.0, "duration_s": 600.0, "mean_hr": 61.2, "rmssd_ms": 42.0,
         "program": "relax", "end_reason": "stop"},
        {"id": 2, "started_at": 0.0, "duration_s": 60.0, "mean_hr": None, "rmssd_ms": None,
         "mean_rmssd": None, "program": "relax", "end_reason": "stop"},
        {"id": 3, "started_at": 0.0, "duration_s": 60.0, "mean_hr": 70.0, "rmssd_ms": None,
         "mean_rmssd": None, "program": "relax", "end_reason": "stop"},
    ]  # fmt: skip
    lines = format_sessions(rows).splitlines()
    starts = {line.index("relax") for line in lines[1:]}
    assert len(starts) == 1, "\n".join(lines)
    assert lines[0].index("PROGRAM") in starts


def test_the_csv_export_writes_contact_as_the_console_does() -> None:
    text = rows_csv([{"t": 1.0, "contact": True}, {"t": 2.0, "contact": False}])
    got = [r["contact"] for r in csv.DictReader(io.StringIO(text))]
    assert got == ["true", "false"]
