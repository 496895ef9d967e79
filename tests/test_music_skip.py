"""A skip moves to the next track with the crossfade (issue 14.5), through the engine.

The Box's parts as the Box wires them: a :class:`MusicPlayer` over an indexed folder, its
voice in an :class:`Engine`, ``player.skip()`` as the skip button calls it. The engine is
rendered block by block; before each block the decoder is run to idle by calling
``feed.step()`` (what its thread does in the box), so every run is the same whatever the
machine's load: no thread, no sleep, no wall clock. The skip starts the equal-power
crossfade (``music_crossfade_s``) at the next engine segment: the outgoing track follows
cos, the incoming sin, their powers sum to one; no gap, click or 50 ms level jump; the
status's ``track`` changes half-way through.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from device.music.choice import TrackChooser
from device.music.index import MusicIndex, scan
from device.music.player import MusicPlayer
from device.sound.engine import Engine
from device.sound.targets import OFF_DB, SoundTargets
from tests.support.music_tracks import noise_bed, write
from tests.test_music_voice import rms_db, sine
from tests.test_sound_clicks import clicks

RATE = 48000
BLOCK = 1024
XFADE_S = 6.0
SKIP_S = 5.0
TOTAL_S = SKIP_S + XFADE_S + 4.0


def music_only(lib: Path, state: Path, seed: int) -> tuple[MusicPlayer, Engine]:
    """``lib`` scanned, its player's voice alone in an engine, at full music level, faded in."""
    with MusicIndex.in_state_dir(state) as index:
        scan(index, lib)
    player = MusicPlayer.open(lib, state, RATE, TrackChooser(seed=seed))
    engine = Engine(sample_rate=RATE, block_frames=BLOCK, volume_db=-6.0, cap_dbfs=0.0)
    engine.add_voice(player.voice)
    engine.set_targets(
        SoundTargets(
            tones_db=OFF_DB, pad_db=OFF_DB, noise_db=OFF_DB, pacer_bpm=None,
            entrain_kind="none", music_db=0.0, music_crossfade_s=XFADE_S,
        ),
        immediate=True,
    )  # fmt: skip
    engine.fade_in(0.0)
    return player, engine


def skip_run(lib: Path, state: Path) -> tuple[np.ndarray, list[object], float, MusicPlayer]:
    """Play ``lib``'s music, skip at SKIP_S; return (output (n, 2), track per block, the
    time the crossfade starts (the first segment edge after the skip), the player)."""
    player, engine = music_only(lib, state, seed=3)
    out, tracks = [], []
    b, seg = engine.block_frames, engine.segment_frames
    skip_block = round(SKIP_S * RATE / b)
    changes = 0
    for i in range(round(TOTAL_S * RATE / b)):
        if i == skip_block:
            changes = player.voice.changes
            assert player.skip() is not None
        while player.feed.step():
            pass
        out.append(engine.render().astype(np.float64))
        tracks.append(player.status_fields()["track"])
    assert player.voice.changes == changes + 1 and player.voice.stalls == 0
    assert engine.limiter.active_segments == 0
    player.close()
    start = math.ceil(skip_block * b / seg) * seg / RATE
    return np.concatenate(out), tracks, start, player


def check_status(tracks: list[object], start: float, names: set[str]) -> None:
    """``track`` is the first one until half-way through the crossfade, then the other."""
    b = BLOCK
    first = tracks[round(1.0 * RATE / b)]
    assert first in names
    flip = next(i for i, t in enumerate(tracks) if t != first) * b / RATE
    assert all(t == first for t in tracks[round(1.0 * RATE / b) : round(flip * RATE / b)])
    assert tracks[-1] == (names - {first}).pop()
    assert all(t == tracks[-1] for t in tracks[round(flip * RATE / b) :])
    # half-way, as the voice (a segment ahead of the block heard) rendered it
    assert start + XFADE_S / 2 - 0.4 <= flip <= start + XFADE_S / 2 + 0.05


def band_envelope(x: np.ndarray, hz: float) -> np.ndarray:
    """Amplitude of the ``hz`` +- 20 Hz band of the left channel, every 10 ms."""
    spec = np.fft.rfft(x[:, 0])
    spec[np.abs(np.fft.rfftfreq(len(x), 1 / RATE) - hz) > 20.0] = 0.0
    return np.abs(signal.hilbert(np.fft.irfft(spec, len(x))))[:: RATE // 100]


def test_skip_crossfades_two_tones_with_equal_power_and_no_click(tmp_path: Path) -> None:
    lib = tmp_path / "music"
    lib.mkdir()
    write(lib / "low.flac", sine(300.0, 70.0))
    write(lib / "high.flac", sine(450.0, 70.0))
    x, tracks, start, _ = skip_run(lib, tmp_path / "state")
    check_status(tracks, start, {"low.flac", "high.flac"})
    first_hz = 300.0 if tracks[RATE // BLOCK] == "low.flac" else 450.0
    second_hz = 750.0 - first_hz
    out_env, in_env = band_envelope(x, first_hz), band_envelope(x, second_hz)
    out_level = np.median(out_env[200 : round(SKIP_S * 100) - 50])
    in_level = np.median(in_env[round((start + XFADE_S + 1) * 100) : -50])
    assert 0.5 < out_level / in_level < 2.0  # both loudness-normalised
    t = np.arange(len(out_env)) / 100
    p = np.clip((t - start) / XFADE_S, 0.0, 1.0)
    span = slice(round((SKIP_S - 1.0) * 100), round((start + XFADE_S + 1.0) * 100))
    g_out, g_in = out_env[span] / out_level, in_env[span] / in_level
    # the crossfade starts at the first segment edge after the skip, cos out and sin in
    assert np.max(np.abs(g_out - np.cos(0.5 * np.pi * p[span]))) < 0.03
    assert np.max(np.abs(g_in - np.sin(0.5 * np.pi * p[span]))) < 0.03
    assert np.max(np.abs(g_out**2 + g_in**2 - 1.0)) < 0.06  # equal power: within 0.25 dB
    assert clicks(x, 450.0 * 1.1).size == 0
    # the detector does find the same skip made as a cut
    k = round(start * RATE)
    cut = np.concatenate([x[:k], x[k + round(XFADE_S * RATE) :]])
    assert clicks(cut, 450.0 * 1.1).size > 0


def test_skip_between_noise_beds_has_no_gap_and_no_level_jump(tmp_path: Path) -> None:
    lib = tmp_path / "music"
    lib.mkdir()
    write(lib / "rain.wav", noise_bed(70.0, level=0.1, seed=21))
    write(lib / "surf.ogg", noise_bed(70.0, level=0.1, seed=22))
    x, tracks, start, player = skip_run(lib, tmp_path / "state")
    check_status(tracks, start, {"rain.wav", "surf.ogg"})
    env = rms_db(x.T)  # 50 ms windows, 25 ms apart
    around = env[round((SKIP_S - 2.0) / 0.025) : round((start + XFADE_S + 2.0) / 0.025)]
    steady = np.median(env[round(1.5 / 0.025) : round((SKIP_S - 0.5) / 0.025)])
    assert around.min() > steady - 1.5 and around.max() < steady + 1.5  # no gap, no bump
    assert np.abs(np.diff(around)).max() < 1.5  # no jump between neighbouring windows
    skipped = str(lib / str(tracks[round(1.0 * RATE / BLOCK)]))
    mean, n = player.chooser.taste(skipped)
    assert mean < 0.0 and n == 1  # and the skip rated it down


@pytest.mark.parametrize("when_s", [0.5, 12.0])
def test_a_skip_during_a_crossfade_waits_for_it_then_crossfades_again(
    tmp_path: Path, when_s: float
) -> None:
    # skips right after the start (the fade-in) and a second skip during the crossfade of
    # the first: each still ends in a crossfade, never a cut
    lib = tmp_path / "music"
    lib.mkdir()
    for i, name in enumerate(("a.flac", "b.flac", "c.flac")):
        write(lib / name, sine(300.0 + 75.0 * i, 70.0))
    player, engine = music_only(lib, tmp_path / "state", seed=4)
    presses = {round(when_s * RATE / BLOCK), round((when_s + 2.0) * RATE / BLOCK)}
    out = []
    for i in range(round((when_s + 3 * XFADE_S) * RATE / BLOCK)):
        if i in presses:
            player.skip()
        while player.feed.step():
            pass
        out.append(engine.render().astype(np.float64))
    player.close()
    x = np.concatenate(out)
    assert player.voice.changes >= 3 and player.voice.stalls == 0
    assert clicks(x, 450.0 * 1.1).size == 0
    env = rms_db(x.T)[round(1.5 / 0.025) :]
    assert env.min() > np.median(env) - 3.0  # never a gap
