"""The PPG model: beats at the set rate, RSA on the breathing phase, pulse shape, causality."""

from __future__ import annotations

import numpy as np
import pytest

from device.sim.pulse import PulseModel

RATE = 100.0


def times(seconds: float, start: float = 0.0) -> np.ndarray:
    return start + np.arange(1, round(seconds * RATE) + 1) / RATE


def model(seed: int = 4, hr: float = 60.0, rsa: float = 0.0, breathing: float = 12.0):
    m = PulseModel(seed)
    m.set_heart(hr, rsa)
    m.set_breathing(breathing)
    return m


@pytest.mark.parametrize("hr", [40.0, 72.0, 150.0, 180.0])
def test_beat_times_match_the_set_heart_rate(hr):
    m = model(hr=hr)
    m.render(times(60.0))
    beats = np.array(m.beat_times)
    assert 60.0 / np.diff(beats).mean() == pytest.approx(hr, rel=0.03)
    assert beats[-1] <= 60.0  # only beats that have happened


def test_rsa_follows_the_breathing_phase():
    m = model(hr=60.0, rsa=10.0, breathing=6.0)
    m.render(times(120.0))
    beats = np.array(m.beat_times)
    hr = 60.0 / np.diff(beats)
    breath = np.sin(2 * np.pi * m.breathing_phase(beats[:-1]))
    assert np.corrcoef(hr, breath)[0, 1] > 0.9  # faster on the in-breath
    slope = np.polyfit(breath, hr, 1)[0]
    assert slope == pytest.approx(5.0, rel=0.2)  # half of the 10 bpm peak-to-trough swing


def test_without_rsa_the_heart_ignores_breathing():
    m = model(hr=60.0, rsa=0.0, breathing=6.0)
    m.render(times(120.0))
    beats = np.array(m.beat_times)
    breath = np.sin(2 * np.pi * m.breathing_phase(beats[:-1]))
    assert abs(np.corrcoef(60.0 / np.diff(beats), breath)[0, 1]) < 0.4


def test_breathing_rate_change_keeps_the_phase_continuous():
    m = model(breathing=12.0)
    m.render(times(10.0))
    before = m.breathing_phase(10.0)
    m.set_breathing(6.0)
    assert m.breathing_phase(10.0) == pytest.approx(before)
    assert m.breathing_phase(20.0) == pytest.approx(before + 1.0)


def test_systolic_peaks_are_dips_of_the_photocurrent_at_the_beat_times():
    m = model(hr=75.0)
    t = times(30.0)
    ir, red = m.render(t)
    beats = np.array(m.beat_times)
    for beat in beats[2:-2]:
        window = (t > beat - 0.2) & (t < beat + 0.2)
        assert abs(t[window][np.argmin(ir[window])] - beat) <= 0.02
        assert abs(t[window][np.argmin(red[window])] - beat) <= 0.03


@pytest.mark.parametrize("diastolic", [0.2, 0.4])
def test_pulse_has_a_dicrotic_notch(diastolic):
    m = model(hr=60.0)
    m.diastolic = diastolic
    m.set_perfusion(5.0)
    t = times(40.0)
    ir, _ = m.render(t)
    beats = np.array(m.beat_times)[2:-2]
    lags = np.arange(0, 0.6, 1 / RATE)
    # Average the inverted pulse over beats: systolic peak, notch, diastolic wave.
    pulse = np.mean([np.interp(b + lags, t, -ir) for b in beats], axis=0)
    notch = np.argmin(pulse[10:35]) + 10
    wave = np.argmax(pulse[notch:45]) + notch
    assert 0.1 < lags[notch] < 0.3 and pulse[wave] > pulse[notch]
    assert pulse[0] > pulse[wave]


def test_perfusion_sets_the_pulsatile_share():
    m = model(hr=60.0)
    m.set_perfusion(2.0)
    ir, _ = m.render(times(20.0))
    swing = (np.percentile(ir, 99) - np.percentile(ir, 1)) / np.median(ir)
    assert 0.015 < swing < 0.035


def test_finger_removal_drops_to_stray_light_and_the_pulse_goes():
    m = model()
    on, _ = m.render(times(5.0))
    m.set_contact(False)
    off, _ = m.render(times(5.0, start=5.0))
    assert np.median(off[100:]) < 0.03 * np.median(on)
    assert np.std(off[100:]) < 0.1 * np.std(on)
    beats_off = len(m.beat_times)
    m.set_contact(True)
    back, _ = m.render(times(5.0, start=10.0))
    assert np.median(back[100:]) == pytest.approx(np.median(on), rel=0.05)
    assert len(m.beat_times) > beats_off  # the heart kept beating


def test_motion_adds_artefacts():
    still, moving = model(seed=9), model(seed=9)
    moving.set_motion(1.0)
    a, _ = still.render(times(60.0))
    b, _ = moving.render(times(60.0))
    assert np.std(b) > 2.0 * np.std(a)


def test_output_is_causal_chunk_independent_and_seeded():
    t = times(30.0)
    whole = model(seed=11)
    whole.set_motion(0.5)
    ir, red = whole.render(t)
    pieces = model(seed=11)
    pieces.set_motion(0.5)
    parts = [pieces.render(chunk) for chunk in np.array_split(t, 293)]
    # Equal up to float rounding (motion artefacts are summed in a different order).
    np.testing.assert_allclose(np.concatenate([p[0] for p in parts]), ir, rtol=1e-12)
    np.testing.assert_allclose(np.concatenate([p[1] for p in parts]), red, rtol=1e-12)
    assert pieces.beat_times == whole.beat_times
    other, _ = model(seed=12).render(t)
    assert not np.allclose(other, ir)


def test_time_must_move_forward():
    m = model()
    m.render(times(1.0))
    with pytest.raises(ValueError, match="times must increase"):
        m.render(np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="times must increase"):
        m.render(np.array([2.0, 1.9]))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.set_heart(10, 0), "mean_bpm must be 25-220"),
        (lambda m: m.set_heart(60, 60), "rsa_bpm must be 0-48"),
        (lambda m: m.set_breathing(0.5), "breathing rate must be 1-60"),
        (lambda m: m.set_motion(1.5), "motion level must be 0-1"),
        (lambda m: m.set_perfusion(0), "perfusion index must be 0.01-20"),
    ],
)
def test_inputs_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call(PulseModel())
