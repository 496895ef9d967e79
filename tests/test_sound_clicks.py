"""Click detector: no sample-to-sample change larger than the sounding signal allows.

For a signal whose frequencies are all below ``f_max`` and whose amplitude is at most
``M``, Bernstein's inequality bounds the second difference by ``(2 pi f_max / fs)**2 * M``.
A click (a step, a phase jump, a gain jump) breaks that bound by a wide margin, so the
test flags every sample whose second difference exceeds it (with ``M`` the local peak in
the surrounding 20 ms). The noise bed is off in these runs: noise has no such bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy.ndimage import maximum_filter1d

from device.sound.engine import Engine
from device.sound.targets import OFF_DB, SoundTargets

RATE = 48000


def clicks(x: np.ndarray, f_max: float, margin: float = 1.25) -> np.ndarray:
    """Indices (per channel, flattened) where the second difference breaks the bound."""
    w = (2.0 * math.pi * f_max / RATE) ** 2 * margin
    found = []
    for ch in range(x.shape[1]):
        s = x[:, ch].astype(np.float64)
        e = np.abs(s[2:] - 2.0 * s[1:-1] + s[:-2])
        local = maximum_filter1d(np.abs(s), size=RATE // 50)[1:-1]
        bad = np.flatnonzero(e > w * local + 1e-7)
        found.extend(bad.tolist())
    return np.array(found)


def run(engine: Engine, steps: list[tuple[float, Callable[[Engine], None]]], total: float):
    """Render ``total`` seconds, calling each action at its time; return (n, 2) float64."""
    b = engine.block_frames
    out = []
    pending = sorted(steps, key=lambda s: s[0])
    for i in range(round(total * RATE / b)):
        t = i * b / RATE
        while pending and pending[0][0] <= t:
            pending.pop(0)[1](engine)
        out.append(engine.render().astype(np.float64))
    return np.concatenate(out)


QUIET_BED = {"noise_db": OFF_DB, "pacer_bpm": None}


def fresh(targets: SoundTargets, **kw: object) -> Engine:
    e = Engine(sample_rate=RATE, volume_db=-6.0, cap_dbfs=0.0, **kw)  # type: ignore[arg-type]
    e.set_targets(targets, immediate=True)
    return e


def test_detector_finds_a_small_step() -> None:
    t = np.arange(RATE) / RATE
    x = 0.5 * np.sin(2 * np.pi * 300 * t)
    assert clicks(np.stack([x, x], 1), 400).size == 0
    x[RATE // 2 + 40 :] *= 0.97  # a 3 % gain jump near a crest
    assert clicks(np.stack([x, x], 1), 400).size > 0
    y = 0.5 * np.sin(2 * np.pi * 300 * t + (t > 0.5) * 0.2)  # a 0.2 rad phase jump
    assert clicks(np.stack([y, y], 1), 400).size > 0


def test_glides_of_carrier_beat_and_form_are_smooth() -> None:
    base = SoundTargets(
        entrain_kind="binaural",
        carrier_hz=200.0,
        entrain_hz=4.0,
        pad_db=OFF_DB,
        tones_db=0.0,
        **QUIET_BED,
    )
    e = fresh(base, output="headphones")
    steps = [
        (0.0, lambda e: e.fade_in(0.05)),
        (0.5, lambda e: e.set_targets(base.with_changes(carrier_hz=240.0, entrain_hz=12.0))),
        (
            2.0,
            lambda e: e.set_targets(
                base.with_changes(entrain_kind="isochronic", carrier_hz=240.0, entrain_hz=12.0)
            ),
        ),
        (
            4.5,
            lambda e: e.set_targets(
                base.with_changes(entrain_kind="monaural", carrier_hz=180.0, entrain_hz=40.0)
            ),
        ),
        (7.0, lambda e: e.set_targets(base.with_changes(entrain_kind="none", carrier_hz=100.0))),
    ]
    x = run(e, steps, 9.5)
    assert np.abs(x).max() > 0.05
    # highest partial: 3 x carrier + beat/2, plus the envelope's bandwidth
    assert clicks(x, 3 * 240 + 30 + 300).size == 0


def test_chord_and_preset_changes_are_crossfaded() -> None:
    base = SoundTargets(pad_preset="warm", tones_db=OFF_DB, pad_db=0.0, **QUIET_BED)
    e = fresh(base)
    steps = [
        (0.0, lambda e: e.fade_in(0.05)),
        (1.0, lambda e: e.set_targets(base.with_changes(pad_preset="deep", pad_brightness=1.0))),
        (14.0, lambda e: e.set_targets(base.with_changes(pad_preset="choir", pad_brightness=0.0))),
    ]
    x = run(e, steps, 45.0)
    assert e.mixer.pad.changes >= 3  # two preset changes and the choir's own next chord
    # highest partial: choir root 196 Hz x 2 (ratio) x 2 (partial), detuned
    assert clicks(x, 196 * 2 * 2 * 1.01 + 50).size == 0


def test_layers_switching_on_and_off() -> None:
    base = SoundTargets(
        entrain_kind="isochronic",
        carrier_hz=300.0,
        entrain_hz=6.0,
        entrain_bed=True,
        tones_db=OFF_DB,
        pad_db=OFF_DB,
        **QUIET_BED,
    )
    e = fresh(base)
    steps = [
        (0.0, lambda e: e.fade_in(0.05)),
        (0.2, lambda e: e.set_targets(base.with_changes(tones_db=-3.0))),
        (2.0, lambda e: e.set_targets(base.with_changes(tones_db=-3.0, pad_db=0.0))),
        (
            6.0,
            lambda e: e.set_targets(
                base.with_changes(tones_db=OFF_DB, pad_db=0.0, entrain_bed=False)
            ),
        ),
        (9.0, lambda e: e.set_targets(base.with_changes(pad_db=OFF_DB))),
        (10.0, lambda e: e.set_targets(base.with_changes(pad_db=-6.0, program_db=-12.0))),
    ]
    x = run(e, steps, 14.0)
    assert clicks(x, 3 * 300 + 400).size == 0
    assert np.abs(x[-RATE:]).max() > 0.001


def test_fades_stop_and_restart() -> None:
    base = SoundTargets(
        entrain_kind="monaural",
        carrier_hz=220.0,
        entrain_hz=5.0,
        tones_db=-6.0,
        pad_db=-6.0,
        **QUIET_BED,
    )
    e = fresh(base)
    steps = [
        (0.0, lambda e: e.fade_in(0.0)),  # shortest possible fade
        (1.0, lambda e: e.fade_out(0.0)),  # mute
        (1.5, lambda e: e.fade_in(0.5)),
        (2.5, lambda e: e.chime("start")),
        (3.0, lambda e: e.fade_out(2.0)),
        (5.3, lambda e: e.fade_in(1.0)),
        (6.0, lambda e: e.set_volume_db(-30.0)),
    ]
    x = run(e, steps, 8.0)
    assert clicks(x, 3 * 225 + 400 + 1000).size == 0  # chime partials reach ~2.4 kHz
    # the mute went to exact silence and the 2 s fade finished in time
    mute = x[round(1.2 * RATE) : round(1.5 * RATE)]
    assert np.all(mute == 0.0)


@pytest.mark.parametrize("seconds", [0.0, 1.0, 2.0])
def test_fade_out_is_done_within_its_time(seconds: float) -> None:
    e = fresh(SoundTargets(**QUIET_BED))
    e.fade_in(0.05)
    for _ in range(20):
        e.render()
    e.fade_out(seconds)
    assert not e.faded_out
    n = 0
    while not e.faded_out:
        assert np.any(e.render() != 0.0) or n > 0
        n += 1
    assert n * e.block_frames / RATE <= max(seconds, 0.1)
    assert np.all(e.render() == 0.0)
    assert e.level_db == -math.inf
