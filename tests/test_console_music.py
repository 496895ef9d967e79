"""``MUSIC?``, ``MUSIC LIST`` and ``MUSIC PLAY n`` on a real box with an indexed music folder,
and on the shared fake box (console parsing and error codes)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_music_run_e2e import TONES, indexed_library

from device.box.app import Box, RunOptions
from device.config import Config
from device.console.auth import PinAuth
from device.console.commands import Console
from tests.support.console_doubles import FakeBox, answer


def console_for(box: object, tmp_path: Path) -> Console:
    auth = PinAuth(tmp_path, clock=time.monotonic, identity="m:1", scrypt_n=2**10)
    return Console(box, auth, serial="T")  # type: ignore[arg-type]


@pytest.fixture
def music_box(tmp_path: Path, bedside_cmd: list[str], cli_env: dict[str, str]) -> Iterator[Box]:
    music, state = indexed_library(tmp_path, bedside_cmd, cli_env)
    cfg = Config.defaults().with_value("service.auto_start", False)
    cfg = cfg.with_value("music.dir", str(music))
    opts = RunOptions(sim=True, audio="null", speed=None, status="none", state_dir=str(state))
    with Box(cfg, opts, status_out=io.StringIO()) as b:
        yield b


def test_music_list_play_and_describe_on_the_real_box(music_box: Box, tmp_path: Path) -> None:
    console = console_for(music_box, tmp_path)
    listing = answer(console, "MUSIC LIST")
    assert listing.code == 0, listing.message
    lines = list(listing.lines)
    assert len(lines) == len(TONES)
    assert [ln.split()[0] for ln in lines] == ["n=1", "n=2", "n=3"]
    assert {n for n in TONES if any(f"name={n}" in ln for ln in lines)} == set(TONES)
    idle = answer(console, "MUSIC?")
    assert idle.code == 0 and "tracks=3" in " ".join(idle.lines)
    played = answer(console, "MUSIC PLAY 2")
    assert played.code == 0, played.message
    assert next(iter(played.lines)).startswith("n=2 ")
    bad = answer(console, "MUSIC PLAY 9")
    assert bad.code == 2 and "no track 9" in bad.message
    assert answer(console, "MUSIC PLAY two").code == 2
    assert answer(console, "MUSIC PLAY").code == 2
    assert music_box.status()["track"] is None  # nothing plays before a session


def test_a_box_with_no_track_yet_says_none_and_refuses_to_play(tmp_path: Path) -> None:
    cfg = Config.defaults().with_value("service.auto_start", False)
    cfg = cfg.with_value("music.dir", str(tmp_path / "none"))
    opts = RunOptions(sim=True, audio="null", speed=None, status="none")
    with Box(cfg, opts, status_out=io.StringIO()) as box:
        console = console_for(box, tmp_path)
        idle = answer(console, "MUSIC?")
        assert idle.code == 0 and "track=none" in " ".join(idle.lines)
        assert "tracks=0" in " ".join(idle.lines)
        listing = answer(console, "MUSIC LIST")
        assert listing.code == 0 and list(listing.lines) == []
        assert answer(console, "MUSIC PLAY 1").code == 4
        assert box.status()["track"] is None


def test_music_commands_on_the_fake_box(tmp_path: Path) -> None:
    box = FakeBox()
    console = console_for(box, tmp_path)
    assert list(answer(console, "MUSIC LIST").lines) == [
        "n=1 name=rain.flac",
        "n=2 name=harbour.ogg",
    ]
    assert answer(console, "MUSIC PLAY 2").code == 0
    assert "track=harbour.ogg" in " ".join(answer(console, "MUSIC?").lines)
    assert answer(console, "MUSIC PLAY 3").code == 2
    assert any("MUSIC PLAY" in ln for ln in answer(console, "HELP MUSIC").lines)
    assert list(answer(console, "MUSIC SCAN").lines) == ["scanning=/music"]
    assert answer(console, "MUSIC SCAN").code == 4  # one scan at a time
    box.has_music = False
    assert answer(console, "MUSIC SCAN").code == 4
