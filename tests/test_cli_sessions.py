"""``bedside sessions``, ``bedside export`` and ``bedside report`` on a real store file."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path

import pytest

from device.cli import main
from device.store.sessions import ROW_FIELDS, Store


@pytest.fixture
def state(tmp_path: Path) -> Path:
    with Store(tmp_path / "sessions.db") as s:
        a = s.start_session("wind-down", "anna")
        s.add_rows(
            a,
            [
                {
                    "t": float(t),
                    "hr": 70.0 - t / 60,
                    "pacer": 6.0,
                    "breathing": 6.5,
                    "coherence": 1.0 + t / 600,
                    "volume_db": -20.0,
                    "contact": t != 3,
                    "quality": 0.9,
                }
                for t in range(0, 600)
            ],
        )
        s.add_event(a, 120.0, "section", "settle")
        s.add_rating(a, "like")
        s.end_session(a, "program-end")
        b = s.start_session("nap")
        s.add_rows(b, [{"t": 0.0, "hr": None}])
    return tmp_path


def test_sessions_lists_table(state: Path, capsys):
    assert main(["sessions", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["ID", "STARTED", "LENGTH"]
    assert "wind-down (program-end) [like]" in out[1]
    assert out[1].split()[0] == "1" and "10.0m" in out[1] and " 65.0 " in out[1]
    assert "nap (running or cut)" in out[2]


def test_sessions_json(state: Path, capsys):
    assert main(["sessions", "--state-dir", str(state), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["program"] for x in lines] == ["wind-down", "nap"]
    assert lines[0]["rows"] == 600


def test_sessions_empty(tmp_path: Path, capsys):
    Store(tmp_path / "sessions.db").close()
    assert main(["sessions", "--state-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "no sessions stored\n"


def test_no_store_is_a_clear_error(tmp_path: Path, capsys):
    assert main(["sessions", "--state-dir", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "nowhere/sessions.db: no session store here" in err


def test_unreadable_state_dir_says_use_sudo(state: Path, capsys, mocker):
    real = os.access
    mocker.patch(
        "device.cli.sessions.os.access",
        side_effect=lambda p, mode: False if Path(p) == state else real(p, mode),
    )
    assert main(["sessions", "--state-dir", str(state)]) == 1
    assert "permission denied" in capsys.readouterr().err


def test_export_csv_to_stdout(state: Path, capsys):
    assert main(["export", "1", "--csv", "--state-dir", str(state)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert tuple(rows[0]) == ROW_FIELDS
    assert len(rows) == 601
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["t"] == "0" and first["hr"] == "70" and first["contact"] == "true"
    assert first["rmssd"] == ""  # unknown stays empty
    assert dict(zip(rows[0], rows[4], strict=True))["contact"] == "false"


def test_export_last_to_file_json(state: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.delenv("SUDO_UID", raising=False)
    out = tmp_path / "last.jsonl"
    old = os.umask(0o027)
    try:
        assert main(["export", "last", "--json", "--out", str(out), "--state-dir", str(state)]) == 0
    finally:
        os.umask(old)
    assert json.loads(out.read_text().splitlines()[0])["hr"] is None
    assert "session 2: 1 rows written" in capsys.readouterr().err
    # The asking user's file, with their umask's mode (0640 under umask 027).
    assert (out.stat().st_mode & 0o777) == 0o640 and out.stat().st_uid == os.getuid()


def test_export_under_sudo_belongs_to_the_user_who_asked(state: Path, tmp_path: Path, monkeypatch):
    # Run as root (CI and the lab are): sudo's SUDO_UID/SUDO_GID name the person.
    assert os.geteuid() == 0, "this test gives a file away, which needs root"
    monkeypatch.setenv("SUDO_UID", "65534")
    monkeypatch.setenv("SUDO_GID", "65534")
    out = tmp_path / "mine.csv"
    old = os.umask(0o022)
    try:
        assert main(["export", "last", "--out", str(out), "--state-dir", str(state)]) == 0
    finally:
        os.umask(old)
    st = out.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o644)


def test_export_unknown_session(state: Path, capsys):
    assert main(["export", "9", "--state-dir", str(state)]) == 1
    assert "no session 9" in capsys.readouterr().err


def test_export_bad_session_argument_is_usage_error(state: Path, capsys):
    assert main(["export", "yesterday", "--state-dir", str(state)]) == 2
    assert "SESSION must be a session id" in capsys.readouterr().err


def test_report_png(state: Path, tmp_path: Path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "r.png"
    assert main(["report", "1", "--out", str(out), "--state-dir", str(state)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # four panels of lines, not an empty canvas
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_report_rejects_non_png_and_missing_dir(state: Path, tmp_path: Path, capsys):
    assert main(["report", "1", "--out", str(tmp_path / "r.pdf"), "--state-dir", str(state)]) == 2
    assert ".png" in capsys.readouterr().err
    assert (
        main(["report", "1", "--out", str(tmp_path / "x" / "r.png"), "--state-dir", str(state)])
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_report_without_matplotlib_says_what_to_install(state, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["report", "1", "--out", str(tmp_path / "r.png"), "--state-dir", str(state)]) == 2
    assert "pip install 'bedside[report]'" in capsys.readouterr().err


def test_report_of_session_without_rows(tmp_path: Path, capsys):
    with Store(tmp_path / "sessions.db") as s:
        s.start_session("empty")
    assert (
        main(["report", "1", "--out", str(tmp_path / "r.png"), "--state-dir", str(tmp_path)]) == 1
    )
    assert "no rows to draw" in capsys.readouterr().err
