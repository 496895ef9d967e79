"""``bedside render`` runs the box's own session: the same runner, the same voices, music too."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from device.box.session_runner import SessionRunner
from device.cli.render import build, render_to
from device.config import load_config
from tests.support.music_tracks import beat_track, write


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2)
    return rate, data.astype(np.float64) / 32768.0


def music_config(tmp_path: Path, folder: Path):
    path = tmp_path / "config.toml"
    path.write_text(f'[music]\ndir = "{folder}"\n')
    return load_config(path)


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-12))


def test_my_music_plays_the_tracks_of_the_music_folder(tmp_path: Path) -> None:
    pytest.importorskip("soundfile")
    folder = tmp_path / "music"
    folder.mkdir()
    for bpm in (60, 66):
        write(folder / f"beat{bpm}.wav", beat_track(bpm, 70.0))  # crossfade + 1 min at least
    cfg = music_config(tmp_path, folder)
    render_to(cfg, str(tmp_path / "music.wav"), program="my-music", minutes=0.75, seed=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg_empty = music_config(tmp_path, empty)
    render_to(cfg_empty, str(tmp_path / "none.wav"), program="my-music", minutes=0.75, seed=1)
    rate, x = read_wav(tmp_path / "music.wav")
    _, y = read_wav(tmp_path / "none.wav")
    # after the start chime, the fade-in under way (before the stop fade at 45 s)
    music, stand_in = x[rate * 25 : rate * 45, 0], y[rate * 25 : rate * 45, 0]
    assert rms_db(music) > -60.0, "nothing plays after the start chime"
    # the tracks, not the pad that stands in for a folder with none: their pulse (a note a
    # second, or a kick at 66 BPM and a hi-hat between) shows in the envelope's spectrum,
    # and only with the tracks
    hz, strength, line = beat_of(music)
    assert min(abs(hz - 1.0), abs(hz - 1.1), abs(hz - 2.0), abs(hz - 2.2)) < 0.06
    assert strength > 3.0
    assert envelope_line(stand_in, hz) < line / 5


def envelope(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """The spectrum of the 10 ms peak envelope (relative to its mean) and its frequencies."""
    env = np.abs(x[: len(x) // (rate // 100) * (rate // 100)]).reshape(-1, rate // 100).max(1)
    return np.abs(np.fft.rfft(env / env.mean() - 1.0)), np.fft.rfftfreq(len(env), 0.01)


def beat_of(x: np.ndarray, rate: int = 48000) -> tuple[float, float, float]:
    """The strongest rate in 0.5-3 Hz of the envelope, its peak over median, its height."""
    spec, freqs = envelope(x, rate)
    band = (freqs > 0.5) & (freqs < 3.0)
    i = int(np.argmax(spec[band]))
    return float(freqs[band][i]), float(spec[band][i] / np.median(spec[band])), spec[band][i]


def envelope_line(x: np.ndarray, hz: float, rate: int = 48000) -> float:
    """The envelope spectrum's height at ``hz`` (the highest of the three nearest bins)."""
    spec, freqs = envelope(x, rate)
    i = int(np.argmin(np.abs(freqs - hz)))
    return float(spec[i - 1 : i + 2].max())


def test_render_starts_and_ends_its_session_through_the_box_runner(tmp_path: Path, mocker) -> None:
    begin = mocker.spy(SessionRunner, "begin")
    end = mocker.spy(SessionRunner, "end")
    tick = mocker.spy(SessionRunner, "tick")
    result = render_to(load_config(None), str(tmp_path / "a.wav"), program="relax", minutes=0.2)
    assert begin.call_count == 1 and end.call_count == 1
    assert end.call_args.args[1] == "time" and result.stop_reason == "time"
    # four control ticks a second of session, as on the box (12 s, then the stop fade)
    assert 12 * 4 <= tick.call_count <= 15 * 4


def test_render_records_the_session_events_the_box_records(tmp_path: Path) -> None:
    """The start sequence and the timeline's events are the box's: one runner writes them."""
    cfg = load_config(None)
    box = build(cfg, str(tmp_path / "a.wav"), None, 4)
    try:
        box.runner.start("wind-down", 3.0)
        box.loop.run(until=lambda: box.runner.session is None and box.engine.faded_out)
    finally:
        box.sink.close()
    events = [(e["kind"], e["detail"]) for e in box.runner.recorder.events(100)]
    kinds = [k for k, _ in events]
    assert events[0][0] == "start" and events[0][1].startswith("program=wind-down")
    assert "section" in kinds and kinds[-1] == "stop"
    assert box.runner.end_reason == "time"
