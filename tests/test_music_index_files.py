"""The music index is private as the session store is, and a missing music folder leaves no
index behind (#23.11)."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from device.box.app import Box, RunOptions
from device.cli import main
from device.config import Config
from device.music.index import INDEX_FILE, MusicIndex


def test_the_music_index_is_0600_like_the_session_store(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    with MusicIndex.in_state_dir(state):
        pass
    assert stat.S_IMODE((state / INDEX_FILE).stat().st_mode) == 0o600


def test_a_box_whose_music_folder_is_missing_creates_no_index(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cfg = (
        Config.defaults()
        .with_value("service.auto_start", False)
        .with_value("music.dir", str(tmp_path / "no-music-here"))
    )
    opts = RunOptions(sim=True, audio="null", speed=None, status="none", state_dir=str(state))
    with Box(cfg, opts, status_out=io.StringIO()) as box:
        for _ in range(10):
            box.loop.turn()
        assert box.music_describe()["tracks"] == 0
    assert (state / "sessions.db").exists()
    assert not (state / INDEX_FILE).exists()


def test_music_scan_of_a_missing_folder_is_exit_2_and_creates_no_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    status = main(["music", "scan", str(tmp_path / "nope"), "--state-dir", str(state)])
    assert status == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (state / INDEX_FILE).exists()
