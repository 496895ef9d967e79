"""The box finds the listener's music by itself: its own idle-priority scan in a child."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import soundfile as sf
from test_console_music import console_for
from test_music_run_e2e import TONES, run_box, steady_tracks, tone_prominence_db, write_tracks

from device.box.app import Box, RunOptions
from device.config import Config
from device.music.choice import TrackChooser
from device.music.index import MusicIndex, Track
from device.music.player import MusicPlayer
from device.music.scan import MusicScan, scan_command
from tests.support.console_doubles import answer

RATE = 48000


def tone_folder(folder: Path, *, broken: bool = False) -> Path:
    write_tracks(folder)
    if broken:
        (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return folder


def summary(bedside_cmd, cli_env, music: Path, state: Path) -> dict[str, int]:
    proc = subprocess.run(
        [*bedside_cmd, "music", "scan", str(music), "--state-dir", str(state), "--summary"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(proc.stdout.splitlines()) == 1, proc.stdout
    assert proc.stderr == ""
    return json.loads(proc.stdout)


def test_summary_counts_new_and_unreadable_and_a_rescan_measures_nothing(
    tmp_path, bedside_cmd, cli_env
):
    music, state = tone_folder(tmp_path / "music", broken=True), tmp_path / "state"
    assert summary(bedside_cmd, cli_env, music, state) == {"tracks": 3, "new": 3, "unreadable": 1}
    # keyed by path, size and mtime: an unchanged folder is not measured again ...
    assert summary(bedside_cmd, cli_env, music, state) == {"tracks": 3, "new": 0, "unreadable": 1}
    # ... and a changed file is
    low = music / "low.wav"
    os.utime(low, ns=(low.stat().st_atime_ns, low.stat().st_mtime_ns + 10**9))
    assert summary(bedside_cmd, cli_env, music, state) == {"tracks": 3, "new": 1, "unreadable": 1}


def test_the_scan_child_lowers_its_own_priority(tmp_path):
    code = (
        "import os; from device.cli.music import lower_priority; lower_priority(); "
        "print(os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    nice, policy = out.stdout.split()
    assert int(nice) == 19
    assert int(policy) == os.SCHED_IDLE
    assert scan_command("m", "s")[-3:] == ["--summary", "--progress", "--idle"]


def wait_for(scan: MusicScan, finished: int) -> None:
    """Poll as the loop does (bounded: the child decodes three short files)."""
    limit = time.monotonic() + 120.0
    while scan.finished < finished or scan.running:
        assert time.monotonic() < limit, "the scan child did not finish"
        scan.poll()
        time.sleep(0.02)


def test_music_scan_runs_in_a_child_and_hands_over_the_tracks(tmp_path, caplog):
    music, state = tone_folder(tmp_path / "music", broken=True), tmp_path / "state"
    got: list[list[Track]] = []
    scan = MusicScan(music, state, got.append, idle=False)
    caplog.set_level(logging.INFO, logger="device.music.scan")
    assert scan.start()
    assert not scan.start()  # one scan at a time
    wait_for(scan, 1)
    scan.close()
    assert [sorted(Path(t.path).name for t in got[0] if t.playable)] == [sorted(TONES)]
    assert scan.last == {"tracks": 3, "new": 3, "unreadable": 1}
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"music: scanning {music}", "music: 3 tracks indexed (3 new, 1 unreadable)"]
    with MusicIndex.in_state_dir(state) as index:
        assert len(index.tracks(music)) == 4


def test_a_failed_scan_is_logged_and_hands_over_nothing(tmp_path, caplog):
    got: list[list[Track]] = []
    scan = MusicScan(tmp_path / "absent", tmp_path / "state", got.append, idle=False)
    assert scan.start()
    wait_for(scan, 1)
    assert got == []
    assert "does not exist" in str(scan.last["error"])


def test_a_player_without_tracks_is_silent_until_tracks_arrive(tmp_path, caplog):
    music, state = tone_folder(tmp_path / "music"), tmp_path / "state"
    player = MusicPlayer.open(music, state, RATE, TrackChooser(seed=1))
    assert player.listing() == []
    assert player.describe()["track"] is None and player.describe()["tracks"] == 0
    assert player.status_fields() == {
        "track": None, "track_tempo_bpm": None, "music": None, "music_dropouts": 0
    }  # fmt: skip
    assert not player.feed.step()  # nothing to decode: silence
    caplog.set_level(logging.INFO, logger="device.music.player")
    player.start()
    player.start()
    player.close()
    told = [r.getMessage() for r in caplog.records if "no playable track" in r.getMessage()]
    assert len(told) == 1  # says why once
    subprocess.run(
        [sys.executable, "-m", "device", "music", "scan", str(music), "--state-dir", str(state)],
        capture_output=True,
        timeout=120,
        check=True,
    )
    with MusicIndex.in_state_dir(state) as index:
        assert player.set_tracks(index.tracks(music)) == 3
    assert len(player.listing()) == 3
    assert player.feed.step()  # the decoder picks a track now
    assert any(d.cue is not None for d in player.feed.decks)


def test_my_music_plays_a_folder_that_was_never_scanned(tmp_path, bedside_cmd, cli_env):
    music, state = tone_folder(tmp_path / "music"), tmp_path / "state"
    state.mkdir()
    cfg = tmp_path / "bedside.toml"
    cfg.write_text(f'[music]\ndir = "{music}"\n')
    out = tmp_path / "out.wav"
    proc = run_box(
        bedside_cmd, cli_env, out, "60", "--sim", "--program", "my-music",
        "--config", str(cfg), "--state-dir", str(state),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"music: scanning {music}" in proc.stderr
    assert "music: 3 tracks indexed (3 new, 0 unreadable)" in proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert {ln["track"] for ln in lines if ln.get("track")} <= set(TONES)
    names = steady_tracks(lines)
    assert names, lines
    with wave.open(str(out)) as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    mono = data[20 * rate : 60 * rate].astype(np.float64).mean(axis=1)
    heard = {name: tone_prominence_db(mono, rate, hz) for name, hz in TONES.items()}
    assert all(heard[name] > 20.0 for name in names), heard


def test_my_music_without_any_track_plays_its_sound_and_says_why(tmp_path, bedside_cmd, cli_env):
    music, state = tmp_path / "music", tmp_path / "state"
    music.mkdir()
    state.mkdir()
    sf.write(str(music / "notes.txt.wav"), np.zeros((0, 2)), 44100)  # decodes to nothing
    cfg = tmp_path / "bedside.toml"
    cfg.write_text(f'[music]\ndir = "{music}"\n')
    out = tmp_path / "out.wav"
    proc = run_box(
        bedside_cmd, cli_env, out, "30", "--sim", "--program", "my-music",
        "--config", str(cfg), "--state-dir", str(state),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("no playable track") == 1
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert lines and all(ln.get("track") is None for ln in lines)
    with wave.open(str(out)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert np.sqrt(np.mean(data[len(data) // 2 :].astype(np.float64) ** 2)) > 30.0  # it sounds


def test_music_scan_on_the_console_finds_tracks_copied_in_while_the_box_runs(tmp_path):
    music, state = tmp_path / "music", tmp_path / "state"
    music.mkdir()
    cfg = Config.defaults().with_value("service.auto_start", False)
    cfg = cfg.with_value("music.dir", str(music))
    opts = RunOptions(sim=True, audio="null", speed=None, status="none", state_dir=str(state))
    with Box(cfg, opts, status_out=io.StringIO()) as box:
        scan = box.parts.music_scan
        assert scan is not None
        limit = time.monotonic() + 120.0
        while scan.finished < 1 or scan.running:  # the start scan (empty folder), never waited for
            assert time.monotonic() < limit, "the start scan never finished"
            box.loop.turn()
        assert box.status()["music"] == "ready"
        console = console_for(box, tmp_path)
        assert list(answer(console, "MUSIC LIST").lines) == []
        music.rmdir()
        tone_folder(music)
        reply = answer(console, "MUSIC SCAN")
        assert reply.code == 0 and list(reply.lines) == [f"scanning={music}"]
        assert answer(console, "MUSIC SCAN").code == 4  # one at a time
        # the box's loop plays on; its store task polls the child and the tracks arrive
        limit = time.monotonic() + 120.0
        while scan.finished < 2 or scan.running:
            assert time.monotonic() < limit, "the scan's tracks never arrived"
            box.loop.turn()
            time.sleep(0.005)  # a real box waits on its sound card: the idle child runs then
        assert len(list(answer(console, "MUSIC LIST").lines)) == 3
        assert scan.last == {"tracks": 3, "new": 3, "unreadable": 0}


def test_only_a_box_with_real_time_audio_scans_at_idle_priority(tmp_path):
    """A virtual clock has no real-time audio to protect, and a busy machine would starve an
    idle child for as long as it stays busy: only a pacing (real-time) box scans idle."""
    assert "--idle" not in scan_command("m", "s", idle=False)
    assert MusicScan("m", "s", lambda tracks: None).idle
    assert not MusicScan("m", "s", lambda tracks: None, idle=False).idle
