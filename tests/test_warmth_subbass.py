"""Warmth on the pad (issue 14.4): a soft sub-bass below 120 Hz, on the pad's tuning.

Measured on what the engine plays: warmth 1 minus warmth 0 is one pure sine at the chord's
sub-bass, at the level the docs give, and nothing else; at warmth 0 the sub-bass is not
rendered; no two strong lines beat 0.5-20 Hz apart with it; a warmth change and the chord
changes under it are click-free; the true peak stays under the cap; the render path
allocates nothing.
"""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest
from scipy import signal

from device.sound.engine import Engine
from device.sound.targets import OFF_DB, PAD_PRESETS, SoundTargets
from device.sound.tuning import PRESETS, carrier_grid, twin_offset_hz, voicing_for
from device.sound.voices.pad import REF_RMS, Pad
from device.sound.voices.pad_sub import CLEAR_HZ, SUB_DB, SUB_RANGE, WARMTH_RATE, sub_bass_for
from tests.test_sound_clicks import clicks, run
from tests.test_sound_tuning import lines

RATE = 48000
#: Pad -14 dB under a -6 dB volume: the layer's gain is -20 dB, far under the limiter.
PAD_GAIN = 10 ** (-20 / 20)


def pad_targets(preset: str, warmth: float, **kw: object) -> SoundTargets:
    t = SoundTargets(
        pad_preset=preset, noise_db=OFF_DB, tones_db=-24.0, carrier_hz=200.0, pacer_bpm=None,
        entrain_kind="none", warmth=warmth,
    )  # fmt: skip
    return t.with_changes(**kw)


def render(targets: SoundTargets, seconds: float) -> tuple[np.ndarray, Engine]:
    e = Engine(sample_rate=RATE, volume_db=-6.0, cap_dbfs=0.0)
    e.set_targets(targets, immediate=True)
    e.fade_in(0.05)
    x = np.concatenate(
        [e.render().astype(np.float64) for _ in range(round(seconds * RATE / e.block_frames))]
    )
    return x, e


def pad_of(e: Engine) -> Pad:
    pad = e.mixer.pad
    assert pad is not None
    return pad


def partials_of(preset: str, chord: int, carrier: float | None) -> tuple[list[float], float]:
    p = PRESETS[preset]
    v = voicing_for(preset, chord, carrier)
    out = []
    for r in v:
        f = p.root_hz * r
        out += [f, f * p.partial, f + twin_offset_hz(f)]
    return out, p.root_hz * min(v)


@pytest.mark.parametrize("preset", PAD_PRESETS)
def test_every_chord_has_a_sub_bass_on_the_tuning_clear_of_every_partial(preset: str) -> None:
    p = PRESETS[preset]
    for carrier in (None, *carrier_grid(preset)):
        for chord in range(len(p.chords)):
            hz, doubled = sub_bass_for(p, voicing_for(preset, chord, carrier), carrier)
            assert SUB_RANGE[0] <= hz <= SUB_RANGE[1], (preset, chord, carrier, hz)
            # a note of the preset's scale: a 5-limit ratio of the root, octaves apart
            r = hz / p.root_hz
            assert any(
                abs(r * 2.0**k - (3**b) * (5**q)) < 1e-9
                for k in range(-8, 9)
                for b in range(-2, 3)
                for q in range(-1, 2)
            )
            partials, lowest = partials_of(preset, chord, carrier)
            if doubled >= 0:
                assert hz == lowest  # the chord's own bass, doubled in phase
            else:
                assert min(abs(hz - f) for f in partials) >= CLEAR_HZ
                assert carrier is None or hz <= carrier - CLEAR_HZ


@pytest.mark.parametrize("preset", PAD_PRESETS)
def test_warmth_adds_one_sine_below_120_hz_and_nothing_else(preset: str) -> None:
    cold, e0 = render(pad_targets(preset, 0.0), 16.0)
    warm, e1 = render(pad_targets(preset, 1.0), 16.0)
    assert e0.limiter.active_segments == 0 and e1.limiter.active_segments == 0
    hz = pad_of(e1).sub_hz
    assert SUB_RANGE[0] <= hz <= SUB_RANGE[1] and pad_of(e0).sub_hz == hz
    d = (warm - cold)[2 * RATE :]  # the first chord, past the fade-in
    t = np.arange(len(d)) / RATE
    basis = np.stack([np.sin(2 * np.pi * hz * t), np.cos(2 * np.pi * hz * t)], 1)
    # expected: the sub's RMS per channel is SUB_DB under the pad's reference RMS
    expected = REF_RMS * PAD_GAIN * 10 ** (SUB_DB / 20) * np.sqrt(2.0)
    for ch in range(2):
        coef, *_ = np.linalg.lstsq(basis, d[:, ch], rcond=None)
        residual = d[:, ch] - basis @ coef
        assert np.hypot(*coef) == pytest.approx(expected, rel=1e-3)
        assert np.sqrt(np.mean(residual**2)) < 1e-4 * expected  # nothing else changed
    # against the pad alone as measured: about 10 dB under it (pan and chorus move it a little)
    pad, _ = render(pad_targets(preset, 0.0, tones_db=OFF_DB), 8.0)
    rel_db = 20 * np.log10(np.sqrt(np.mean(d**2, 0)) / np.sqrt(np.mean(pad[2 * RATE :] ** 2, 0)))
    assert np.all(np.abs(rel_db - SUB_DB) < 1.5), rel_db
    spec = np.abs(np.fft.rfft(d[:, 0] * np.hanning(len(d))))
    f = np.fft.rfftfreq(len(d), 1 / RATE)
    assert abs(f[np.argmax(spec)] - hz) < 0.2


def test_at_warmth_0_the_sub_bass_is_not_rendered() -> None:
    _, e = render(pad_targets("warm", 0.0), 3.0)
    assert pad_of(e).sub.hi == pad_of(e).sub.lo  # no rows planned, none computed
    _, e = render(pad_targets("warm", 0.3), 3.0)
    assert pad_of(e).sub.hi > pad_of(e).sub.lo


@pytest.mark.parametrize("preset", PAD_PRESETS)
def test_the_sub_bass_brings_no_new_beat(preset: str) -> None:
    # the pad at full brightness over a 200 Hz carrier, in the first and the second chord
    p = PRESETS[preset]
    second = p.chord_s + p.xfade_s + 1.0
    length = min(16.0, p.chord_s - p.xfade_s - 2.0)
    x, e = render(pad_targets(preset, 1.0, pad_brightness=1.0), second + length)
    assert pad_of(e).changes >= 1
    for start in (2.0, second):
        seg = x[round(start * RATE) : round((start + length) * RATE)]
        found = lines(seg[:, 0] + seg[:, 1])
        lows = [(f, a) for f, a in found if f < SUB_RANGE[1] + 1]
        assert lows, found  # the sub-bass sounds
        for (f1, a1), (f2, a2) in itertools.combinations(found, 2):
            if 0.5 <= abs(f1 - f2) <= 20.0:
                assert min(a1, a2) < max(a1, a2) / 3.0, (preset, start, f1, a1, f2, a2)


def test_warmth_changes_and_chord_changes_are_click_free() -> None:
    base = pad_targets("choir", 0.0, pad_db=0.0, tones_db=OFF_DB)
    e = Engine(sample_rate=RATE, volume_db=-6.0, cap_dbfs=0.0)
    e.set_targets(base, immediate=True)
    steps = [
        (0.0, lambda e: e.fade_in(0.05)),
        (2.0, lambda e: e.set_targets(base.with_changes(warmth=1.0))),
        (9.0, lambda e: e.set_targets(base.with_changes(warmth=0.2))),
        (12.0, lambda e: e.set_targets(base.with_changes(warmth=1.0, pad_preset="deep"))),
    ]
    x = run(e, steps, 60.0)  # choir's chord change at 28 s, then deep's first chord at ~38 s
    assert pad_of(e).changes >= 2 and pad_of(e).preset_name == "deep"
    f_max = 196 * 2 * 2 * 1.01 + 50  # the highest pad partial (as the pad's own click test)
    assert clicks(x, f_max).size == 0
    # the warmth ramps: the sub's own band (98 Hz +- 4 Hz) rises at WARMTH_RATE, no step
    hz = 98.0
    spec = np.fft.rfft(x[:, 0])
    spec[np.abs(np.fft.rfftfreq(len(x), 1 / RATE) - hz) > 4.0] = 0.0
    env = np.abs(signal.hilbert(np.fft.irfft(spec, len(x))))[:: RATE // 100]  # 10 ms steps
    full = np.median(env[round(7.0 * 100) : round(8.5 * 100)])
    assert np.median(env[round(1.0 * 100) : round(1.8 * 100)]) < 0.02 * full
    rise = env[round(2.0 * 100) : round(7.0 * 100)] / full
    t10, t90 = np.argmax(rise > 0.1) / 100, np.argmax(rise > 0.9) / 100
    assert t90 - t10 == pytest.approx(0.8 / WARMTH_RATE, abs=0.5)  # 3.2 s from 10 % to 90 %
    assert np.max(np.diff(rise)) < 1.5 * WARMTH_RATE / 100  # never faster than the ramp
    # the detector does find the same warmth step made at once
    cold, _ = render(base.with_changes(warmth=0.0), 4.0)
    warm, _ = render(base.with_changes(warmth=1.0), 4.0)
    k = 3 * RATE + int(np.argmax(np.abs(warm - cold)[3 * RATE : 3 * RATE + RATE // 40, 0]))
    cut = np.concatenate([cold[:k], warm[k:]])
    assert clicks(cut, f_max).size > 0


def test_true_peak_stays_under_the_cap_with_warmth() -> None:
    e = Engine(volume_db=0.0, cap_dbfs=-6.0)
    e.set_targets(
        SoundTargets(tones_db=0.0, pad_db=0.0, noise_db=0.0, pad_preset="deep", warmth=1.0),
        immediate=True,
    )
    e.fade_in(0.0)
    x = np.concatenate([e.render().astype(np.float64) for _ in range(round(8 * RATE / 1024))])
    assert e.limiter.active_segments > 0
    true_peak_db = 20 * np.log10(np.abs(signal.resample_poly(x, 4, 1, axis=0)).max())
    assert true_peak_db <= -6.0, true_peak_db


def test_render_with_warmth_allocates_nothing() -> None:
    engine = Engine(block_frames=1024, volume_db=-20.0)
    base = SoundTargets(pad_preset="glass", entrain_bed=True, pacer_bpm=8.0, warmth=0.5)
    engine.set_targets(base, immediate=True)
    engine.fade_in(0.05)

    def step(i: int) -> None:
        if i % 4 == 0:
            engine.set_targets(
                base.with_changes(warmth=(i % 40) / 40.0, pad_brightness=(i % 10) / 10.0)
            )
        engine.render()

    for i in range(400):
        step(i)
    tracemalloc.start()
    try:
        for i in range(400, 420):
            step(i)
        before = tracemalloc.get_traced_memory()[0]
        worst = 0
        for i in range(420, 1620):  # glass changes chord at 24 s: ~9-35 s is measured
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            step(i)
            worst = max(worst, tracemalloc.get_traced_memory()[1] - start)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert pad_of(engine).changes >= 1 and pad_of(engine).sub.hi > pad_of(engine).sub.lo
    assert after - before < 256
    assert worst < 4096
