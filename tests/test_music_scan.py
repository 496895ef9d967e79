"""Music analysis and the index: BS.1770 loudness against pyloudnorm, tempo, scan, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from device.exc import InputFileError
from device.music.analysis import analyse, estimate_tempo
from device.music.index import MusicIndex, scan
from tests.support.music_tracks import FORMATS, beat_track, noise_bed, write

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("ext", "fmt", "subtype"), FORMATS)
def test_every_format_decodes_and_measures_like_pyloudnorm(tmp_path, ext, fmt, subtype) -> None:
    x = beat_track(90.0, 20.0)
    path = write(tmp_path / f"t.{ext}", x)
    a = analyse(path)
    import soundfile as sf

    decoded, rate = sf.read(str(path), dtype="float64", always_2d=True)
    ref = pyloudnorm.Meter(rate).integrated_loudness(decoded)
    assert abs(a.lufs - ref) < 0.5
    assert abs(a.duration_s - 20.0) < 0.1
    assert a.tempo_bpm is not None and abs(a.tempo_bpm - 90.0) < 2.0


@pytest.mark.parametrize("rate", [22050, 32000, 44100, 48000, 96000])
def test_loudness_matches_pyloudnorm_at_every_rate(rate) -> None:
    from device.music.analysis import LoudnessMeter

    x = np.concatenate([noise_bed(3.0, rate, 0.2, seed=1), noise_bed(3.0, rate, 0.01, seed=2)])
    meter = LoudnessMeter(rate, 2)
    for i in range(0, len(x), 7777):  # chunks that do not fall on the 100 ms steps
        meter.feed(x[i : i + 7777])
    ref = pyloudnorm.Meter(rate).integrated_loudness(x.astype(np.float64))
    assert abs(meter.integrated() - ref) < 0.5


@pytest.mark.parametrize(
    "bpm", [52.0, 60.0, 66.0, 72.0, 80.0, 95.0, 120.0, 121.8, 126.1, 133.1, 137.4, 140.0]
)
def test_tempo_of_a_steady_beat_is_within_2_bpm_octave_folded(tmp_path, bpm) -> None:
    a = analyse(write(tmp_path / "b.flac", beat_track(bpm, 30.0)))
    assert a.tempo_bpm is not None and a.tempo_confidence > 0.5
    folded = min(abs(a.tempo_bpm * m - bpm) for m in (0.5, 1.0, 2.0))
    assert folded < 2.0


def test_a_track_without_a_beat_says_so(tmp_path) -> None:
    a = analyse(write(tmp_path / "n.wav", noise_bed(30.0)))
    assert a.tempo_bpm is None and a.tempo_confidence < 0.2
    assert estimate_tempo(np.zeros(50), 100.0) == (None, 0.0)


def test_undecodable_file_is_an_input_error(tmp_path) -> None:
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"\0" * 1000)
    with pytest.raises(InputFileError, match="cannot decode"):
        analyse(bad)


def test_scan_measures_once_per_path_size_mtime(tmp_path, monkeypatch) -> None:
    lib = tmp_path / "music"
    (lib / "sub").mkdir(parents=True)
    write(lib / "a.flac", beat_track(70.0, 8.0))
    write(lib / "sub" / "b.ogg", noise_bed(8.0))
    (lib / "broken.wav").write_bytes(b"RIFF....WAVEfmt nothing")
    (lib / "notes.txt").write_text("not music")
    index = MusicIndex(tmp_path / "music.db")
    first = scan(index, lib)
    assert [Path(t.path).name for t in first] == ["a.flac", "broken.wav", "b.ogg"]
    assert first[1].error and not first[1].playable and first[0].playable
    import device.music.index as mi

    calls: list[Path] = []
    real = mi.measure
    monkeypatch.setattr(mi, "measure", lambda p, st: calls.append(p) or real(p, st))
    assert [t.lufs for t in scan(index, lib)] == [t.lufs for t in first]
    assert calls == []
    write(lib / "a.flac", beat_track(70.0, 6.0))  # changed size: measured again
    os.utime(lib / "a.flac", ns=(1, 1))
    (lib / "sub" / "b.ogg").unlink()
    again = scan(index, lib)
    assert [p.name for p in calls] == ["a.flac"]
    assert abs(again[0].duration_s - 6.0) < 0.01 and len(index.tracks()) == 2
    index.close()
    index.close()


def test_cli_scan_json_lists_errors_and_skips_them(tmp_path) -> None:
    lib = tmp_path / "music"
    lib.mkdir()
    write(lib / "a.mp3", beat_track(75.0, 10.0))
    (lib / "z.flac").write_bytes(b"fLaC garbage")
    cmd = [sys.executable, "-m", "device", "music", "scan", str(lib), "--json"]
    cmd += ["--state-dir", str(tmp_path / "state")]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [Path(o["path"]).name for o in rows] == ["a.mp3", "z.flac"]
    good, bad = rows
    for key in ("path", "duration_s", "lufs", "tempo_bpm", "tempo_confidence"):
        assert key in good
    assert abs(good["tempo_bpm"] - 75.0) < 2.0 and good["lufs"] < -10
    assert "error" in bad and "z.flac" in r.stderr
    assert (tmp_path / "state" / "music.db").exists()


def test_cli_scan_takes_the_configured_folder_and_shows_progress_on_a_terminal(tmp_path) -> None:
    import pty

    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(3):
        write(lib / f"t{i}.wav", noise_bed(2.0, seed=i))
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[music]\ndir = "{lib}"\n\n[store]\nstate_dir = "{tmp_path / "st"}"\n')
    master, slave = pty.openpty()
    try:
        r = subprocess.run(
            [sys.executable, "-m", "device", "music", "scan", "--config", str(cfg)],
            stdout=subprocess.PIPE, stderr=slave, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip
        os.close(slave)
        slave = -1
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert r.returncode == 0
    assert "3 tracks, 0 skipped" in r.stdout and "no clear beat" in r.stdout
    assert b"scanning 3/3 t2.wav" in shown and b"\r" in shown
    assert (tmp_path / "st" / "music.db").exists()


def test_music_config_section(tmp_path) -> None:
    from device.config import Config, load_config
    from device.exc import ConfigError

    assert Config.defaults().music.dir == "/var/lib/bedside/music"
    assert Config.defaults().music.crossfade_s == 6.0
    bad = tmp_path / "bad.toml"
    bad.write_text("[music]\ncrossfade_s = 40.0\n")
    with pytest.raises(ConfigError, match=r"music\.crossfade_s"):
        load_config(bad)
