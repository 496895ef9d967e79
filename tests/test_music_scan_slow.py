"""The box never waits for its music scan (issue #23.4): a scan child that makes no progress
leaves the box playing and answering, and its status says ``music=scanning n/N``."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

import pytest
from test_console_music import console_for

import device.music.scan as music_scan
from device.box.app import Box, RunOptions
from device.config import Config
from tests.support.console_doubles import answer

#: A scan child stuck after its first file (as an idle-priority child on a busy CPU is).
STUCK = "import json, time; print(json.dumps({'done': 1, 'total': 3}), flush=True); time.sleep(600)"


def test_a_stuck_scan_never_blocks_the_start_the_sound_or_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    music = tmp_path / "music"
    music.mkdir()
    monkeypatch.setattr(music_scan, "scan_command", lambda *a: [sys.executable, "-c", STUCK])
    cfg = Config.defaults().with_value("music.dir", str(music))
    opts = RunOptions(
        sim=True, audio="null", speed=None, status="none", state_dir=str(tmp_path / "state"),
        program="my-music", duration_s=600.0,
    )  # fmt: skip
    built: list[Box] = []
    t = threading.Thread(target=lambda: built.append(Box(cfg, opts, status_out=io.StringIO())))
    t.start()
    t.join(60.0)  # bounded only so that a box that waits for its scan fails, not hangs
    assert built, "the box waited for its music scan"
    with built[0] as box:
        played, shown = 0.0, set()
        limit = time.monotonic() + 120.0  # the idle child may wait for a busy CPU to print
        while time.monotonic() < limit:  # the loop turns; the store task paces with the child
            box.loop.turn()
            shown.add(box.status()["music"])
            if box.status()["state"] == "playing":
                played = max(played, box.engine.level_db)
                if box.clock.now() > 8.0 and "scanning 1/3" in shown:
                    break
        assert shown <= {"scanning 0/?", "scanning 1/3"}, shown
        status = box.status()
        assert status["music"] == "scanning 1/3"
        assert status["state"] == "playing" and played > -60.0  # the pad stands in
        reply = answer(console_for(box, tmp_path), "STATUS?")
        assert reply.code == 0 and 'music="scanning 1/3"' in reply.lines[0]
