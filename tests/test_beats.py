"""Tests of the streaming beat detector and the biquad filters under it."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly, sosfilt

from device.dsp.biquad import Biquad, SosFilter, butterworth_highpass, butterworth_lowpass
from device.heart.beats import BeatDetector
from tests.support.ppg_synthetic import beat_times, fiducials, match_count, ppg

REPO = Path(__file__).resolve().parent.parent
PPG_DATA = REPO / "tests" / "data" / "ppg"  # recordings in the repo (README there)


def run(det: BeatDetector, x: np.ndarray, chunk: int = 32) -> np.ndarray:
    out: list[float] = []
    for i in range(0, len(x), chunk):
        out += det.process(x[i : i + chunk])
    return np.array(out)


def score(truth: np.ndarray, found: np.ndarray, tol: float) -> tuple[int, int, int]:
    """(matched, missed, extra) beats."""
    m = match_count(truth, found, tol)
    return m, len(truth) - m, len(found) - m


# --- biquad ------------------------------------------------------------------------------


def test_sos_filter_matches_scipy_and_ignores_chunking() -> None:
    fs = 125.0
    sections = butterworth_highpass(2, 0.3, fs) + butterworth_lowpass(4, 6.0, fs)
    sos = np.array([[s.b0, s.b1, s.b2, 1.0, s.a1, s.a2] for s in sections])
    x = np.random.default_rng(3).standard_normal(1000)
    whole = SosFilter(sections).process(x)
    np.testing.assert_allclose(whole, sosfilt(sos, x), atol=1e-10)
    f = SosFilter(sections, block=16)
    parts = [f.process(x[a:b]) for a, b in ((0, 1), (1, 9), (9, 700), (700, 1000))]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-10)


def test_butterworth_cutoff_is_minus_3_db() -> None:
    f = SosFilter(butterworth_lowpass(4, 6.0, 50.0))
    assert abs(f.response(6.0, 50.0)) == pytest.approx(np.sqrt(0.5), rel=1e-9)
    assert abs(f.response(0.0, 50.0)) == pytest.approx(1.0)
    hp = SosFilter(butterworth_highpass(2, 0.3, 50.0))
    assert abs(hp.response(0.3, 50.0)) == pytest.approx(np.sqrt(0.5), rel=1e-9)


def test_reset_starts_in_steady_state() -> None:
    f = SosFilter(butterworth_lowpass(2, 5.0, 100.0))
    f.reset(7.0)
    np.testing.assert_allclose(f.process(np.full(10, 7.0)), 7.0, rtol=1e-12)


@pytest.mark.parametrize(("cutoff", "rate"), [(0.0, 100.0), (50.0, 100.0), (60.0, 100.0)])
def test_biquad_rejects_cutoff_outside_band(cutoff: float, rate: float) -> None:
    with pytest.raises(ValueError, match="cut-off"):
        Biquad.lowpass(cutoff, rate)


def test_butterworth_rejects_odd_order() -> None:
    with pytest.raises(ValueError, match="even"):
        butterworth_lowpass(3, 5.0, 100.0)


# --- synthetic pulses --------------------------------------------------------------------


@pytest.mark.parametrize("rate", [25.0, 100.0, 400.0])
@pytest.mark.parametrize("bpm", [40.0, 75.0, 120.0, 180.0])
def test_finds_every_beat_at_the_steepest_upstroke(rate: float, bpm: float) -> None:
    duration = 40.0
    beats = beat_times(duration, bpm, rsa_bpm=0.06 * bpm, seed=int(bpm))
    det = BeatDetector(rate)
    streamed = run(det, ppg(beats, rate, duration, noise=0.03))
    quality = det.quality  # before the end of stream decides a last, cut-off pulse
    found = np.concatenate([streamed, det.flush()])
    truth = fiducials(beats)
    truth = truth[(truth > 1.0) & (truth < duration - 0.5)]
    found = found[(found > 1.0 - 0.05) & (found < duration - 0.5 + 0.05)]
    # Constant offset (filter delay taken out at one frequency) and timing jitter, s.
    err = np.array([found[np.argmin(np.abs(found - t))] - t for t in truth])
    lag = float(np.median(err))
    assert abs(lag) < 0.035
    assert np.std(err) < 0.008
    _matched, missed, extra = score(truth + lag, found, 0.04)
    assert missed == 0
    assert extra == 0
    assert quality == pytest.approx(1.0)


def test_noise_does_not_hide_beats() -> None:
    rate, duration = 50.0, 60.0
    beats = beat_times(duration, 70.0, rsa_bpm=4.0)
    det = BeatDetector(rate)
    found = np.concatenate([run(det, ppg(beats, rate, duration, noise=0.15)), det.flush()])
    truth = fiducials(beats)
    truth = truth[(truth > 1.0) & (truth < duration - 0.5)]
    found = found[(found > 0.9) & (found < duration - 0.4)]
    _matched, missed, extra = score(truth, found, 0.12)
    assert missed == 0
    assert extra == 0


def test_quality_is_low_on_noise_and_high_on_pulses() -> None:
    rate = 50.0
    det = BeatDetector(rate)
    run(det, np.random.default_rng(5).standard_normal(int(60 * rate)))
    assert det.quality < 0.5
    clean = BeatDetector(rate)
    beats = beat_times(30.0, 65.0)
    run(clean, ppg(beats, rate, 30.0))
    assert clean.quality > 0.9
    # A flat line after the pulses: beats stop, quality falls to 0.
    run(clean, np.zeros(int(6 * rate)))
    assert clean.quality == 0.0


def test_chunking_does_not_change_the_beats() -> None:
    rate, duration = 100.0, 60.0
    x = ppg(beat_times(duration, 80.0, rsa_bpm=6.0), rate, duration, noise=0.05)
    whole = BeatDetector(rate)
    reference = np.array(whole.process(x) + whole.flush())
    rng = np.random.default_rng(11)
    det = BeatDetector(rate)
    found: list[float] = []
    i = 0
    while i < len(x):
        n = int(rng.integers(1, 90))
        found += det.process(x[i : i + n])
        i += n
    found += det.flush()
    assert len(found) == len(reference) > 60
    np.testing.assert_allclose(found, reference, atol=1e-9)


_CHUNK_SIGNAL = ppg(beat_times(25.0, 95.0, rsa_bpm=8.0, seed=9), 50.0, 25.0, noise=0.08)
_CHUNK_REFERENCE = BeatDetector(50.0).process_beats(_CHUNK_SIGNAL)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=60))
def test_any_chunking_gives_the_same_beats_and_intervals(sizes: list[int]) -> None:
    det = BeatDetector(50.0)
    found = []
    i = 0
    k = 0
    while i < len(_CHUNK_SIGNAL):
        n = sizes[k % len(sizes)]
        found += det.process_beats(_CHUNK_SIGNAL[i : i + n])
        i += n
        k += 1
    assert [b.valid for b in found] == [b.valid for b in _CHUNK_REFERENCE]
    np.testing.assert_allclose([b.t for b in found], [b.t for b in _CHUNK_REFERENCE], atol=1e-9)


@pytest.mark.parametrize("rate", [20.0, 25.0, 30.0, 62.5, 125.0, 400.0, 1000.0])
def test_latency_is_at_most_one_second_at_every_rate(rate: float) -> None:
    det = BeatDetector(rate)
    assert 0.5 < det.latency_s <= 1.0


def test_causal_first_half_does_not_change_when_more_follows() -> None:
    rate, duration = 50.0, 60.0
    x = ppg(beat_times(duration, 72.0, rsa_bpm=5.0, seed=4), rate, duration, noise=0.05)
    half = len(x) // 2
    first = run(BeatDetector(rate), x[:half])
    full = run(BeatDetector(rate), x)
    assert len(first) > 20
    np.testing.assert_allclose(full[: len(first)], first, atol=1e-9)
    # Nothing that the first half could have decided is missing from it.
    assert not np.any(full[len(first) :] < half / rate - BeatDetector(rate).latency_s)


@pytest.mark.parametrize("rate", [25.0, 100.0, 400.0])
def test_each_beat_is_reported_within_latency_of_its_peak(rate: float) -> None:
    duration = 20.0
    beats = beat_times(duration, 90.0)
    x = ppg(beats, rate, duration, noise=0.0)
    det = BeatDetector(rate)
    assert det.latency_s <= 1.0
    chunk = max(1, int(rate // 25))
    for i in range(0, len(x), chunk):
        now = (i + chunk - 1) / rate
        for t in det.process(x[i : i + chunk]):
            peak = beats[np.argmin(np.abs(beats - t))]
            assert now - peak <= 1.0
            assert now - t <= det.latency_s + chunk / rate + 1e-9


def test_gap_restarts_and_no_interval_spans_it() -> None:
    rate, duration = 50.0, 40.0
    beats = beat_times(duration, 60.0)
    x = ppg(beats, rate, duration)
    det = BeatDetector(rate)
    cut, resume = int(15 * rate), int(20.3 * rate)
    before = det.process_beats(x[:cut])
    after = det.process_beats(x[resume:], gap=True, index=resume)
    assert before and after
    first_after = next(b for b in after if b.t > 20.3)
    assert first_after.ibi is None
    assert all(b.t < 15.0 or b.t > 20.3 for b in before + after)
    intervals = [b.ibi for b in after if b.ibi is not None]
    assert intervals and max(intervals) < 1.3
    truth = fiducials(beats)
    later = np.array([b.t for b in after if b.t > 21.5])
    expect = truth[(truth > 21.5) & (truth < duration - det.latency_s)]
    assert score(expect, later, 0.05)[1] == 0


def test_an_index_jump_is_a_gap() -> None:
    rate = 50.0
    x = ppg(beat_times(30.0, 70.0), rate, 30.0)
    det = BeatDetector(rate)
    det.process_beats(x[:500], index=0)
    after = det.process_beats(x[700:], index=700)
    assert next(b for b in after if b.t > 14.0).ibi is None


def test_implausible_intervals_are_flagged() -> None:
    rate = 100.0
    # Steady 60 bpm, then one beat 40 % early (an ectopic beat).
    beats = np.concatenate([np.arange(0.5, 20.0, 1.0), [20.1], np.arange(21.5, 30.0, 1.0)])
    det = BeatDetector(rate)
    found = det.process_beats(ppg(beats, rate, 30.0, noise=0.0))
    early = min(found, key=lambda b: abs(b.t - 20.05))
    assert early.ibi is not None and not early.valid
    steady = [b for b in found if 3.0 < b.t < 19.0]
    assert steady and all(b.valid for b in steady)


@pytest.mark.parametrize("rate", [10.0, 2000.0])
def test_rejects_rates_outside_range(rate: float) -> None:
    with pytest.raises(ValueError, match="20-1000 Hz"):
        BeatDetector(rate)


def test_repr_names_rate_and_latency() -> None:
    assert "rate=50 Hz" in repr(BeatDetector(50.0))


# --- real recordings ---------------------------------------------------------------------


def _bidmc(n: int) -> tuple[np.ndarray, np.ndarray]:
    root = PPG_DATA / "bidmc"
    assert root.is_dir(), f"PPG dev data missing: {root}"
    with (root / f"bidmc_{n:02d}_Signals.csv").open() as f:
        rows = list(csv.reader(f))
    col = [h.strip() for h in rows[0]].index("PLETH")
    x = np.array([float(r[col]) for r in rows[1:]])
    ref = np.loadtxt(root / f"bidmc_{n:02d}_ref_beats.csv", delimiter=",", skiprows=1)
    return x, ref


@pytest.mark.parametrize("rate", [125.0, 25.0])
def test_real_icu_recording_regression(rate: float) -> None:
    x, ref = _bidmc(1)
    if rate != 125.0:
        x = resample_poly(x, 1, 5)
    det = BeatDetector(rate)
    found = np.concatenate([run(det, x), det.flush()])
    # Pulse arrival time: PPG beats follow the ECG R-peaks by a constant lag.
    lags = np.arange(0.0, 0.6, 0.005)
    lag = lags[int(np.argmax([match_count(ref + g, found, 0.05) for g in lags[::8]]) * 8)]
    lags = np.arange(lag - 0.05, lag + 0.05, 0.005)
    best = max(match_count(ref + g, found, 0.1) for g in lags)
    f1 = 2 * best / (len(ref) + len(found))
    assert f1 >= 0.98  # benchmark: 0.99
    ibi = np.diff(found)
    hr = 60.0 / np.median(ibi)
    assert hr == pytest.approx(60.0 / np.median(np.diff(ref)), abs=0.7)


def test_real_camera_recording_regression() -> None:
    sub = PPG_DATA / "welltory" / "subject_05"
    assert sub.is_dir(), f"PPG dev data missing: {sub}"
    data = np.loadtxt(sub / "PPG.csv", delimiter=",", skiprows=1)
    t = data[:, 0] / 1000.0
    rate = 30.0
    x = np.interp(np.arange(0.0, t[-1], 1.0 / rate), t, -data[:, 1])  # camera red falls
    rr = np.loadtxt(sub / "RR.txt").ravel() / 1000.0
    det = BeatDetector(rate)
    beats = det.process_beats(x)
    ibi = np.array([b.ibi for b in beats if b.valid])
    assert len(ibi) >= 0.9 * len(rr)
    assert 60.0 / ibi.mean() == pytest.approx(60.0 / rr.mean(), abs=1.0)
    rmssd = np.sqrt(np.mean(np.diff(ibi) ** 2)) * 1000.0
    assert rmssd == pytest.approx(np.sqrt(np.mean(np.diff(rr) ** 2)) * 1000.0, abs=15.0)


@pytest.mark.parametrize("cut_s", [7.3, 61.0, 200.5])
def test_causal_on_a_real_recording_beats_intervals_and_flags(cut_s: float) -> None:
    # Appending data never changes an earlier beat, its interval or its validity (the
    # start-up check against the rhythm included), on real ICU data with ectopic beats.
    x, _ = _bidmc(3)
    rate = 125.0
    cut = int(cut_s * rate)

    def beats(sig: np.ndarray) -> list:
        det = BeatDetector(rate)
        return [b for i in range(0, len(sig), 32) for b in det.process_beats(sig[i : i + 32])]

    first = beats(x[:cut])
    full = beats(x[: cut + int(60 * rate)])
    assert len(first) >= 3
    assert full[: len(first)] == first
