"""Each session's beat intervals are stored with their flags and exported as a plain RR file
Kubios imports, from the command line and the console alike (#23.17)."""

from __future__ import annotations

import io
import sqlite3
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.box.app import Box, RunOptions
from device.cli import main
from device.config import Config
from device.console.commands import Console
from device.store.rr import rr_lines
from device.store.schema import SCHEMA_VERSION
from device.store.sessions import Store
from tests.support.console_doubles import answer


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Box, Console]]:
    """A simulated box that played a 1-minute session, with its console (still open)."""
    state = tmp_path_factory.mktemp("beats") / "state"
    cfg = Config.defaults().with_value("service.auto_start", False)
    opts = RunOptions(sim=True, audio="null", speed=None, status="none", state_dir=str(state))
    with Box(cfg, opts, status_out=io.StringIO()) as box:
        for _ in range(20):
            box.loop.turn()
        box.start_session("relax", 1)
        for _ in range(20000):
            box.loop.turn()
            if box.state == "idle":
                break
        assert box.state == "idle"
        yield state, box, Console(box, None, serial="T")


def stored(state: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    with Store(state / "sessions.db", readonly=True) as store:
        (session,) = store.sessions()
        return store.beats(int(session["id"])), store.rows(int(session["id"]))


def test_a_session_stores_its_beats_with_their_flags(played: tuple[Path, Box, Console]) -> None:
    state, box, _ = played
    box.recorder.require().flush()
    beats, rows = stored(state)
    assert len(beats) > 40, "a minute of a ~60-80 bpm heart"
    times = [float(str(b["t"])) for b in beats]
    assert times == sorted(times) and times[0] >= 0.0 and times[-1] <= 62.0
    good = [float(str(b["rr_ms"])) for b in beats if b["ok"] and b["rr_ms"] is not None]
    assert len(good) > 0.8 * len(beats)
    # The intervals are the heart the 1 Hz rows show: 60000 / HR.
    hr = statistics.mean(float(str(r["hr"])) for r in rows if r["hr"] is not None)
    assert statistics.mean(good) == pytest.approx(60000.0 / hr, rel=0.08)


def test_bedside_export_rr_writes_one_interval_in_ms_per_line(
    played: tuple[Path, Box, Console], tmp_path: Path
) -> None:
    state, box, _ = played
    box.recorder.require().flush()
    out = tmp_path / "session.rr.txt"
    assert main(["export", "last", "--rr", "--state-dir", str(state), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    beats, _ = stored(state)
    assert lines == list(rr_lines(beats))
    assert lines and all(line.isdigit() and 300 <= int(line) <= 2000 for line in lines)


def test_the_consoles_export_rr_is_the_same_file(played: tuple[Path, Box, Console]) -> None:
    state, box, console = played
    box.recorder.require().flush()
    reply = answer(console, "EXPORT 1 RR")
    assert reply.code == 0, reply.message
    beats, _ = stored(state)
    assert list(reply.lines) == list(rr_lines(beats))
    bad = answer(console, "EXPORT 1 BEATS")
    assert bad.code == 2 and "RR" in bad.message


def test_rr_lines_leave_out_flagged_intervals_and_gaps() -> None:
    beats = [
        {"t": 1.0, "rr_ms": None, "ok": False},
        {"t": 1.8, "rr_ms": 801.4, "ok": True},
        {"t": 2.1, "rr_ms": 300.0, "ok": False},
        {"t": 3.0, "rr_ms": 899.6, "ok": True},
    ]
    assert list(rr_lines(beats)) == ["801", "900"]


def test_a_version_2_store_is_read_then_migrated(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    with Store(path) as store:
        store.start_session("relax")
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE beats; PRAGMA user_version = 2;")
    db.close()
    with Store(path, readonly=True) as old:  # the CLI before the box has migrated it
        assert old.beats(1) == []
    with Store(path) as store:
        store.add_beats(1, [(0.8, 812.0, True), (1.6, None, False)])
        store.flush()
        assert store.beats(1) == [
            {"t": 0.8, "rr_ms": 812.0, "ok": True},
            {"t": 1.6, "rr_ms": None, "ok": False},
        ]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    db.close()


def test_ctl_json_of_export_rr_is_one_object_per_interval() -> None:
    from device.cli.ctl import Result, to_json

    result = Result("EXPORT 3 RR", ["812", "798"], "OK")
    assert to_json(result) == [{"rr_ms": 812}, {"rr_ms": 798}]
