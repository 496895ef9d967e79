"""Tests of the heart analysis: HR, HRV, coherence, breathing, and what it withholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device.heart.analysis import HeartAnalyzer, breathing_rate, coherence_spectrum
from device.heart.hrv import HrvWindow, hrv_ms
from device.heart.samples import SampleBlock
from tests.support.ppg_synthetic import beat_times, ppg

RATE = 100.0
PPG_DATA = Path(__file__).resolve().parent / "data" / "ppg"  # recordings in the repo


def counts(x: np.ndarray) -> np.ndarray:
    """Raw sensor counts for a plethysmogram ``x``: the light falls as blood arrives."""
    return 120000.0 - 3000.0 * x


def feed_all(
    an: HeartAnalyzer,
    ir: np.ndarray,
    *,
    start: int = 0,
    chunk: int = 10,
    contact: bool = True,
    gap_at: int | None = None,
    led_step: np.ndarray | None = None,
) -> None:
    for i in range(0, len(ir), chunk):
        part = ir[i : i + chunk]
        mask = None if led_step is None else led_step[i : i + chunk]
        an.feed(
            SampleBlock(
                start + i, RATE, part, part, gap_before=gap_at == i, led_step=mask, contact=contact
            )
        )


def beats_from_intervals(pattern: list[float], duration: float, first: float = 0.4) -> np.ndarray:
    out = [first]
    k = 0
    while out[-1] < duration:
        out.append(out[-1] + pattern[k % len(pattern)])
        k += 1
    return np.array(out)


def test_hrv_matches_hand_computed_values() -> None:
    # Intervals 0.8, 0.9, 1.0, 0.9 s: successive differences are all +-100 ms, so RMSSD is
    # 100 ms; SDNN = sqrt((100^2 + 0 + 100^2 + 0) / (n - 1)) -> 70.71 ms for many intervals.
    duration = 120.0
    beats = beats_from_intervals([0.8, 0.9, 1.0, 0.9], duration)
    an = HeartAnalyzer(RATE)
    feed_all(an, counts(ppg(beats, RATE, duration, noise=0.005, wander=0.1)))
    s = an.snapshot()
    assert s.rmssd_ms == pytest.approx(100.0, abs=3.0)
    assert s.sdnn_ms == pytest.approx(70.71, abs=3.0)
    assert s.rmssd_session_ms == pytest.approx(100.0, abs=3.0)
    assert s.sdnn_session_ms == pytest.approx(70.71, abs=3.0)
    assert s.hr_bpm == pytest.approx(66.67, abs=0.5)
    assert s.hr_beat_bpm is not None and 55.0 < s.hr_beat_bpm < 80.0
    assert s.quality == pytest.approx(1.0)
    assert s.contact is True
    assert s.beats == pytest.approx(duration / 0.9, abs=3)
    assert s.t == pytest.approx((int(duration * RATE) - 1) / RATE)


def test_coherence_is_high_for_a_slow_sinusoidal_rhythm() -> None:
    t = [0.0]
    while t[-1] < 100.0:
        t.append(t[-1] + 1.0 + 0.08 * np.sin(2 * np.pi * 0.1 * t[-1]))
    beat_t = np.array(t[1:])
    coherence, breathing = coherence_spectrum(beat_t, np.diff(t), 100.0)
    assert coherence > 10.0
    assert breathing == pytest.approx(6.0, abs=0.3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coherence_is_low_for_random_intervals(seed: int) -> None:
    ibi = 1.0 + 0.05 * np.random.default_rng(seed).standard_normal(120)
    t = np.cumsum(ibi)
    coherence, _ = coherence_spectrum(t, ibi, float(t[-1]))
    assert coherence < 0.5


def test_coherence_and_breathing_from_a_pulse_with_slow_breathing() -> None:
    duration = 90.0
    beats = beat_times(duration, 62.0, rsa_bpm=8.0, breath_hz=0.1)
    an = HeartAnalyzer(RATE)
    ir = counts(ppg(beats, RATE, duration, noise=0.01))
    feed_all(an, ir[: int(50 * RATE)])
    assert an.snapshot().coherence is None  # less than 64 s of intervals
    feed_all(an, ir[int(50 * RATE) :], start=int(50 * RATE))
    s = an.snapshot()
    assert s.coherence is not None and s.coherence > 3.0
    assert s.breathing_bpm == pytest.approx(6.0, abs=0.5)


def test_breathing_rate_follows_faster_breathing() -> None:
    duration = 80.0
    beats = beat_times(duration, 70.0, rsa_bpm=5.0, breath_hz=0.25)
    an = HeartAnalyzer(RATE)
    feed_all(an, counts(ppg(beats, RATE, duration, noise=0.01)))
    assert an.snapshot().breathing_bpm == pytest.approx(15.0, abs=1.0)


def test_figures_are_withheld_until_there_is_enough_data() -> None:
    beats = beat_times(30.0, 70.0)
    an = HeartAnalyzer(RATE)
    ir = counts(ppg(beats, RATE, 30.0))
    feed_all(an, ir[:200])
    s = an.snapshot()
    assert s.hr_bpm is None and s.hr_beat_bpm is None
    feed_all(an, ir[200:], start=200)
    s = an.snapshot()
    assert s.hr_bpm == pytest.approx(70.0, abs=1.0)
    assert s.rmssd_ms is None and s.sdnn_ms is None  # 30 s < 45 s of intervals
    assert s.rmssd_session_ms is not None  # 30 differences reached
    assert s.coherence is None and s.breathing_bpm is None


def test_everything_is_withheld_on_noise() -> None:
    an = HeartAnalyzer(RATE)
    feed_all(an, counts(np.random.default_rng(2).standard_normal(int(90 * RATE))))
    s = an.snapshot()
    assert s.quality < 0.6
    assert s.hr_bpm is None and s.rmssd_ms is None and s.sdnn_ms is None
    assert s.coherence is None and s.breathing_bpm is None


def test_without_contact_nothing_is_shown_and_analysis_restarts() -> None:
    beats = beat_times(60.0, 66.0)
    ir = counts(ppg(beats, RATE, 60.0))
    an = HeartAnalyzer(RATE)
    feed_all(an, ir[:2000])
    assert an.snapshot().hr_bpm is not None
    feed_all(an, ir[2000:3000], start=2000, contact=False)
    s = an.snapshot()
    assert s.contact is False and s.quality == 0.0 and s.hr_bpm is None
    assert s.t == pytest.approx(29.99)
    before = an.detector.beats
    feed_all(an, ir[3000:], start=3000)
    s = an.snapshot()
    assert s.hr_bpm == pytest.approx(66.0, abs=1.0)
    assert an.detector.beats > before
    # No interval spans the time without contact: all plausible, none near 10 s.
    assert max(b.ibi for b in an._beats if b.ibi is not None) < 1.2


def test_gap_before_a_block_breaks_the_interval_chain() -> None:
    beats = beat_times(40.0, 60.0)
    ir = counts(ppg(beats, RATE, 40.0))
    an = HeartAnalyzer(RATE)
    feed_all(an, ir[:1500])
    n_before = an._n
    new = an.feed(SampleBlock(1800, RATE, ir[1800:2500], ir[1800:2500], gap_before=True))
    # Beats pending before the gap are decided on what came before it.
    old = [b for b in new if b.t < 15.0]
    after = [b for b in new if b.t > 18.0]
    assert after and after[0].ibi is None
    assert all(b.ibi is not None and b.ibi < 1.2 for b in after[1:])
    assert an._n - n_before == len(old) + len(after) - 1


def test_led_current_step_is_not_a_beat() -> None:
    duration = 40.0
    beats = beat_times(duration, 72.0, seed=3)
    ir = counts(ppg(beats, RATE, duration, noise=0.005))
    # The LED current steps up at 20 s between beats: the DC level jumps by 30 000 counts
    # and the pulse grows with it; the driver marks the samples around the step.
    k = int(20.0 * RATE)
    between = (beats[np.searchsorted(beats, 20.0) - 1] + 0.45) - 20.0
    k += int(between * RATE)
    ir[k:] = ir[k:] * 1.25
    mask = np.zeros(len(ir), dtype=bool)
    mask[k - 3 : k + 4] = True
    an = HeartAnalyzer(RATE)
    feed_all(an, ir, chunk=8, led_step=mask)
    around = [b for b in an._beats if k / RATE - 5.0 < b.t < k / RATE + 5.0]
    assert len(around) == pytest.approx(10 * 72 / 60, abs=1)
    assert all(b.valid for b in around)
    assert an.detector.artefacts == 0


def test_led_step_marked_up_to_the_end_of_a_block_is_joined_in_the_next() -> None:
    rate_beats = beat_times(30.0, 60.0, seed=5)
    ir = counts(ppg(rate_beats, RATE, 30.0, noise=0.005))
    k = int((rate_beats[np.searchsorted(rate_beats, 15.0)] + 0.5) * RATE)
    k -= k % 10  # the step lands on a block boundary
    ir[k:] += 40000.0
    an = HeartAnalyzer(RATE)
    for i in range(0, len(ir), 10):
        part = ir[i : i + 10]
        # The block before the step ends marked; the next block carries no mask at all.
        mask = np.ones(10, dtype=bool) if i == k - 10 else None
        an.feed(SampleBlock(i, RATE, part, part, led_step=mask))
    assert an.detector.artefacts == 0
    around = [b for b in an._beats if k / RATE - 4.0 < b.t < k / RATE + 4.0]
    assert len(around) >= 7 and all(b.valid for b in around)


def test_rejects_a_block_at_another_rate() -> None:
    an = HeartAnalyzer(RATE)
    with pytest.raises(ValueError, match="50 Hz"):
        an.feed(SampleBlock(0, 50.0, np.zeros(4), np.zeros(4)))


def test_repr_and_latency() -> None:
    an = HeartAnalyzer(RATE)
    assert an.latency_s <= 1.0
    assert "HeartAnalyzer rate=100 Hz" in repr(an)


def test_unreadable_samples_are_a_gap_not_a_poison() -> None:
    beats = beat_times(40.0, 70.0)
    ir = counts(ppg(beats, RATE, 40.0))
    ir[1500:1520] = np.nan
    ir[1525] = np.inf
    an = HeartAnalyzer(RATE)
    feed_all(an, ir)
    s = an.snapshot()
    assert an.bad_samples == 21
    assert s.hr_bpm == pytest.approx(70.0, abs=1.0)
    assert all(b.ibi is None or b.ibi < 1.2 for b in an._beats)


def test_detector_names_a_non_finite_sample() -> None:
    from device.heart.beats import BeatDetector

    with pytest.raises(ValueError, match="sample 2 of the block is nan"):
        BeatDetector(50.0).process(np.array([1.0, 2.0, np.nan]))


@pytest.mark.parametrize("cycle_hz", [0.022, 0.054, 0.058, 0.06])
def test_breathing_is_withheld_when_the_peak_lies_below_the_band(cycle_hz: float) -> None:
    # A slow swing (1.3-3.6 cycles/min) peaks at or below the band's low edge; a parabola
    # through the rising edge once extrapolated it to 1.5-3.4 breaths/min.
    t = np.cumsum(np.full(100, 0.85))
    ibi = 0.85 + 0.05 * np.sin(2 * np.pi * cycle_hz * t)
    _, breathing = coherence_spectrum(np.cumsum(ibi), ibi, float(np.cumsum(ibi)[-1]))
    assert breathing is None or 3.6 <= breathing <= 30.0


def test_breathing_rate_is_inside_the_band_or_none_for_any_spectrum() -> None:
    freq = np.fft.rfftfreq(512, 0.5)
    rng = np.random.default_rng(3)
    for _ in range(300):
        power = rng.exponential(1.0, len(freq)) * np.exp(-rng.uniform(0, 40) * freq)
        b = breathing_rate(freq, power)
        assert b is None or 3.6 <= b <= 30.0


def test_sdnn_divides_by_n_minus_1_as_the_task_force_and_neurokit2() -> None:
    ibi = np.array([0.8, 0.9, 1.0, 0.9])
    rmssd, sdnn = hrv_ms(ibi, np.diff(ibi))
    assert rmssd == pytest.approx(100.0)
    assert sdnn == pytest.approx(np.sqrt(20000.0 / 3.0))  # 81.65, not 70.71 (n)


def test_last_five_minutes_are_reported_beside_the_session() -> None:
    # Two minutes of a strongly varying rhythm, then five of a steady one: the 5-minute
    # figures see only the steady part, the session figures both.
    first = beats_from_intervals([0.85, 0.95], 120.0)
    rest = first[-1] + np.cumsum(np.tile([0.88, 0.9, 0.92, 0.9], 85))
    beats = np.concatenate([first, rest])
    duration = float(beats[-1]) + 1.0
    an = HeartAnalyzer(RATE)
    feed_all(an, counts(ppg(beats, RATE, duration, noise=0.005, wander=0.1)))
    s = an.snapshot()
    assert s.rmssd_5min_ms == pytest.approx(20.0, abs=3.0)
    assert s.sdnn_5min_ms == pytest.approx(14.1, abs=3.0)
    assert an.short_term_hrv() == (s.rmssd_5min_ms, s.sdnn_5min_ms)
    session_rmssd, _ = an.session_hrv()
    assert session_rmssd is not None and session_rmssd > 40.0  # about 56 ms


def test_start_up_intervals_are_checked_like_the_rest() -> None:
    # Welltory subject 12: the first beats (a settling finger) gave intervals of 1.29 and
    # 0.34 s that were taken unchecked, and session RMSSD read 124.8 ms against the chest
    # strap's 25.4 ms.
    sub = PPG_DATA / "welltory" / "subject_12"
    data = np.loadtxt(sub / "PPG.csv", delimiter=",", skiprows=1)
    t = data[:, 0] / 1000.0
    rate = 30.0
    red = np.interp(np.arange(0.0, t[-1], 1.0 / rate), t, data[:, 1])  # falls at systole
    an = HeartAnalyzer(rate)
    beats = []
    for i in range(0, len(red), 32):
        beats += an.feed(SampleBlock(i, rate, red[i : i + 32], red[i : i + 32]))
    rr = np.loadtxt(sub / "RR.txt").ravel()
    ref_rmssd = float(np.sqrt(np.mean(np.diff(rr) ** 2)))
    rmssd, _ = an.session_hrv()
    assert rmssd is not None and abs(rmssd - ref_rmssd) < 15.0
    early = [b for b in beats if b.ibi is not None][:3]
    assert not any(b.valid and not 0.6 < b.ibi < 1.0 for b in early if b.ibi is not None)


def test_hrv_window_running_sums_match_a_recomputation() -> None:
    rng = np.random.default_rng(9)
    ibi = 800.0 + 40.0 * rng.standard_normal(2000)
    t = np.cumsum(ibi) / 1000.0
    win = HrvWindow(60.0)
    for k in range(len(ibi)):
        win.add(float(t[k]), float(ibi[k]), None if k % 50 == 0 else float(ibi[k] - ibi[k - 1]))
    sel = t >= t[-1] - 60.0
    idx = np.flatnonzero(sel)
    diffs = [ibi[k] - ibi[k - 1] for k in idx if k % 50 != 0]
    rmssd, sdnn = win.figures(float(t[-1]), 20)
    assert rmssd == pytest.approx(np.sqrt(np.mean(np.square(diffs))), rel=1e-9)
    assert sdnn == pytest.approx(np.std(ibi[sel], ddof=1), rel=1e-9)
    assert win.figures(float(t[-1]) + 61.0, 20) == (None, None)  # all expired
    assert len(win) == 0
