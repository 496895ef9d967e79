"""Engine-level checks of the music voice (the voices engine of issue 13 with ``add_voice``).

What it proves through the real engine: the music plays at ``music_db`` under the
engine's master stage; with ``entrain_bed`` the engine's isochronic envelope pulses the
music at the entrainment rate (and without it, it does not); a track change through the
engine and its limiter has no click; rendering allocates nothing.
"""

from __future__ import annotations

import itertools
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from device.music.analysis import analyse
from device.music.feed import Cue, MusicFeed
from device.music.voice import MusicVoice
from device.music.voice import pulse_depth as gate_depth
from device.sound.engine import Engine
from device.sound.targets import OFF_DB, SoundTargets
from tests.support.music_tracks import noise_bed, write
from tests.test_music_voice import sine
from tests.test_sound_clicks import clicks

RATE = 48000
ONLY_MUSIC = {
    "tones_db": OFF_DB,
    "pad_db": OFF_DB,
    "noise_db": OFF_DB,
    "pacer_bpm": None,
    "music_db": 0.0,
}


def engine_with_music(paths: list[Path], targets: SoundTargets) -> tuple[Engine, MusicFeed]:
    cues = itertools.cycle([Cue(str(p), p.name, analyse(p).lufs) for p in paths])
    feed = MusicFeed(RATE, lambda: next(cues), capacity_s=3.0)
    engine = Engine(sample_rate=RATE, volume_db=-6.0, cap_dbfs=0.0)
    engine.add_voice(MusicVoice(feed))
    engine.set_targets(targets, immediate=True)
    engine.fade_in(0.0)
    return engine, feed


def play(engine: Engine, feed: MusicFeed, seconds: float) -> np.ndarray:
    out = []
    for _ in range(round(seconds * RATE / engine.block_frames)):
        while feed.step():
            pass
        out.append(engine.render().astype(np.float64))
    return np.concatenate(out)


def pulse_peak_hz(x: np.ndarray) -> float:
    power = np.convolve(x[:, 0] ** 2, np.ones(480) / 480, mode="valid")[::480]
    spec = np.abs(np.fft.rfft(power - power.mean()))
    return float(np.fft.rfftfreq(len(power), 0.01)[np.argmax(spec[1:]) + 1])


def pulse_depth(x: np.ndarray, hz: float) -> float:
    power = np.convolve(x[:, 0] ** 2, np.ones(480) / 480, mode="valid")[::480]
    spec = np.abs(np.fft.rfft(power - power.mean())) / len(power)
    freqs = np.fft.rfftfreq(len(power), 0.01)
    return float(spec[np.argmin(np.abs(freqs - hz))] / power.mean())


def test_entrain_bed_pulses_the_music_through_the_engine(tmp_path) -> None:
    path = write(tmp_path / "bed.flac", noise_bed(20.0, level=0.1))
    base = SoundTargets(entrain_kind="isochronic", entrain_hz=4.0, **ONLY_MUSIC)  # type: ignore[arg-type]
    on, feed_on = engine_with_music([path], base.with_changes(entrain_bed=True))
    off, feed_off = engine_with_music([path], base.with_changes(entrain_bed=False))
    x_on = play(on, feed_on, 10.0)[4 * RATE :]
    x_off = play(off, feed_off, 10.0)[4 * RATE :]
    assert np.sqrt(np.mean(x_off**2)) > 0.01  # the music sounds
    assert abs(pulse_peak_hz(x_on) - 4.0) < 0.1
    assert pulse_depth(x_on, 4.0) > 5 * pulse_depth(x_off, 4.0)


def test_track_change_through_the_engine_is_click_free(tmp_path) -> None:
    a = write(tmp_path / "a.flac", sine(300.0, 5.0))
    b = write(tmp_path / "b.flac", sine(450.0, 5.0, level=0.1))
    t = SoundTargets(entrain_kind="none", music_crossfade_s=1.5, **ONLY_MUSIC)  # type: ignore[arg-type]
    engine, feed = engine_with_music([a, b], t)
    x = play(engine, feed, 14.0)
    voice = next(v for v in engine.voices if v.name == "music")
    assert isinstance(voice, MusicVoice) and voice.changes >= 3
    assert clicks(x, 450.0).size == 0


def test_engine_with_music_allocates_nothing(tmp_path) -> None:
    a = write(tmp_path / "a.ogg", noise_bed(3.0, seed=1))
    b = write(tmp_path / "b.mp3", noise_bed(3.0, seed=2))
    t = SoundTargets(entrain_bed=True, music_crossfade_s=0.5, **ONLY_MUSIC)  # type: ignore[arg-type]
    engine, feed = engine_with_music([a, b], t)
    play(engine, feed, 8.0)
    worst = 0
    tracemalloc.start()
    try:
        for i in range(400):
            if i % 4 == 0:
                while feed.step():
                    pass
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            engine.render()
            worst = max(worst, tracemalloc.get_traced_memory()[1] - start)
    finally:
        tracemalloc.stop()
    assert worst < 4096
    assert engine.render_errors == 0


def modulation_index(on: np.ndarray, off: np.ndarray) -> tuple[float, float]:
    """The envelope the engine laid on the music, read as the ratio of two renders of the
    same music (with and without the pulse) over 2 ms windows: its modulation index
    ``(max - min) / (max + min)`` (5th-95th percentiles) and its largest step per window."""
    win = RATE // 500
    n = (min(len(on), len(off)) // win) * win
    a = np.sqrt(np.mean(on[:n, 0].reshape(-1, win) ** 2, axis=1))
    b = np.sqrt(np.mean(off[:n, 0].reshape(-1, win) ** 2, axis=1))
    keep = b > 1e-4
    gain = a[keep] / b[keep]
    hi, lo = np.percentile(gain, 95), np.percentile(gain, 5)
    return float((hi - lo) / (hi + lo)), float(np.abs(np.diff(gain)).max() / hi)


def test_the_pulse_on_music_is_subtle_at_its_stated_index(tmp_path: Path) -> None:
    from tests.support.music_tracks import calm_piece

    path = write(tmp_path / "calm.flac", calm_piece(20.0))
    base = SoundTargets(**ONLY_MUSIC, entrain_kind="isochronic", entrain_hz=10.0)  # type: ignore[arg-type]
    for index in (0.2, 0.1):
        runs = []
        for bed in (True, False):
            t = base.with_changes(entrain_bed=bed, music_pulse_index=index)
            engine, feed = engine_with_music([path], t)
            runs.append(play(engine, feed, 8.0)[3 * RATE :])
        m, step = modulation_index(*runs)
        assert m == pytest.approx(index, abs=0.02), (index, m)
        # raised-cosine edges (9 ms at 10 Hz): a hard gate would move the whole depth in 2 ms
        assert step < 0.6 * gate_depth(index), (index, step)
    untouched = base.with_changes(entrain_bed=True, music_pulse_index=0.0)
    on, on_feed = engine_with_music([path], untouched)
    off, off_feed = engine_with_music([path], base)
    m0, _ = modulation_index(
        play(on, on_feed, 6.0)[3 * RATE :], play(off, off_feed, 6.0)[3 * RATE :]
    )
    assert m0 < 0.01  # index 0: the music plays untouched (tones may go under it instead)
