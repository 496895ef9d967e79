"""The heart analysis at resonance breathing: a large, slow breathing swing of the rate (issue 15).

At resonance the heart's swing over a breath reaches 15-30 bpm peak to trough (Lehrer &
Gevirtz 2014: 4-10x the swing at rest), at 4.5-7 breaths/min. The 20 % rule against the
median of five intervals flagged such a swing (the median lags it by two or three beats),
the quality fell and the rate and breathing estimate were withheld beyond about 18 bpm,
exactly when the therapy works best. Intervals on the local trend of the last valid ones are
valid now; premature and missed beats, which are abrupt, still are not.
"""

from __future__ import annotations

import numpy as np
import pytest

from device.heart.analysis import HeartAnalyzer
from device.heart.beats import Beat
from device.heart.samples import SampleBlock
from tests.support.ppg_synthetic import beat_times, fiducials, match_count, ppg

RATE = 50.0
DURATION = 150.0


def counts(x: np.ndarray) -> np.ndarray:
    """Raw sensor counts: the light falls as blood arrives."""
    return 120000.0 - 3000.0 * x


def analyse(peaks: np.ndarray, seed: int):
    """Feed the PPG of ``peaks`` in 0.1 s reads; return the beats and, after 20 s, each read's
    state with the time of the latest beat found by then."""
    x = counts(ppg(peaks, RATE, DURATION, noise=0.02, seed=seed))
    an = HeartAnalyzer(RATE)
    found: list[Beat] = []
    states = []
    for i in range(0, len(x), 5):
        found += an.feed(SampleBlock(i, RATE, x[i : i + 5], x[i : i + 5]))
        s = an.snapshot()
        if s.t >= 20.0:
            states.append((s, found[-1].t))
    return found, states


def ten_second_hr(peaks: np.ndarray, last: float) -> float | None:
    """The 10-s reference: 60 / mean of the true intervals lying within the 10 s that end at
    the true beat found at ``last``; ``None`` when a beat sits within 20 ms of the window's
    start (which side of it the detector's beat falls on is then a matter of jitter)."""
    every = fiducials(peaks)
    end = every[int(np.argmin(np.abs(every - last)))]
    if np.any(np.abs(every - (end - 10.0)) < 0.02):
        return None
    inside = every[(every >= end - 10.0) & (every <= end)]
    return 60.0 / float(np.mean(np.diff(inside)))


def true_intervals_flagged(found: list[Beat], truth: np.ndarray, tol: float = 0.1) -> float:
    """Share of detected intervals between two successive true beats that were flagged."""
    n = flagged = 0
    for b in found:
        if b.ibi is None or b.t < 10.0:
            continue
        k1 = int(np.argmin(np.abs(truth - b.t)))
        k0 = int(np.argmin(np.abs(truth - (b.t - b.ibi))))
        if k1 == k0 + 1 and abs(truth[k1] - b.t) <= tol and abs(truth[k0] - b.t + b.ibi) <= tol:
            n += 1
            flagged += not b.valid
    assert n > 0
    return flagged / n


@pytest.mark.parametrize("swing", [10.0, 20.0, 30.0])
@pytest.mark.parametrize(("bpm", "breaths"), [(60.0, 4.5), (65.0, 5.5), (70.0, 7.0)])
def test_a_resonance_swing_keeps_beats_intervals_rate_and_breathing(swing, bpm, breaths) -> None:
    peaks = beat_times(DURATION, bpm, rsa_bpm=swing / 2, breath_hz=breaths / 60.0, seed=3)
    ibi = np.diff(peaks)
    assert 60.0 / ibi.min() - 60.0 / ibi.max() == pytest.approx(swing, abs=2.5)
    found, states = analyse(peaks, seed=4)
    every = fiducials(peaks)
    truth = every[(every > 10.0) & (every < DURATION - 2.0)]
    detected = np.array([b.t for b in found])
    detected = detected[(detected > 9.9) & (detected < DURATION - 1.9)]
    f1 = 2 * match_count(truth, detected, 0.1) / (len(truth) + len(detected))
    assert f1 >= 0.98
    assert true_intervals_flagged(found, truth) <= 0.03
    assert min(s.quality for s, _ in states) >= 0.85
    # The shown rate: always there and the 10-s rate of the true beats it saw.
    for s, last in states:
        assert s.hr_bpm is not None
        ref = ten_second_hr(peaks, last)
        assert ref is None or s.hr_bpm == pytest.approx(ref, abs=0.5)
    late = [s.breathing_bpm for s, _ in states if s.t >= 90.0]
    assert all(b is not None and abs(b - breaths) <= 0.5 for b in late), late[:3]


@pytest.mark.parametrize("swing", [20.0, 30.0])
def test_premature_and_missed_beats_in_a_resonance_swing_are_still_flagged(swing) -> None:
    # Every 17th beat comes at 0.55 of its interval (a premature beat, with a compensatory
    # pause), every 29th makes no pulse (a missed beat): abrupt, unlike the breath's swing.
    peaks = beat_times(DURATION, 65.0, rsa_bpm=swing / 2, breath_hz=5.5 / 60.0, seed=5)
    ibi = np.diff(peaks)
    for k in range(8, len(peaks) - 1, 17):
        peaks[k] = peaks[k - 1] + 0.55 * ibi[k - 1]
    shown = np.array([p for k, p in enumerate(peaks) if k % 29 != 20])
    found, _ = analyse(shown, seed=6)
    odd = {k for k in range(8, len(peaks) - 1, 17)} | {k + 1 for k in range(8, len(peaks), 17)}
    faults = odd | {k + 1 for k in range(len(peaks)) if k % 29 == 20}
    truth = fiducials(peaks)
    accepted_faults = flagged_far = far = 0
    for b in found:
        if b.ibi is None or b.t < 10.0:
            continue
        k = int(np.argmin(np.abs(truth - b.t)))
        if k in faults:
            accepted_faults += b.valid
        elif not any(k - j in faults for j in range(1, 5)):
            far += 1
            flagged_far += not b.valid
    assert accepted_faults == 0
    # Four beats after a fault the swing is followed again (the median of five alone took
    # until the swing's turning point: 10-20 of these 77 were flagged at a 30 bpm swing).
    assert far > 60 and flagged_far == 0


@pytest.mark.parametrize("seed", [3, 7, 11])
@pytest.mark.parametrize(("bpm", "swing"), [(63.0, 10.0), (68.5, 20.0), (74.5, 25.0)])
def test_the_shown_rate_does_not_swing_with_a_breath_at_6_per_minute(seed, bpm, swing) -> None:
    # Issue 23.3: the shown rate was the mean of the last 8 intervals (about 7 s): with the
    # breath's swing at 6/min, what the box paces towards, it drifted 0.5-3 bpm from a 10-s
    # rate. Over the last 10 s of beats (one whole breath) it stays within 0.3 bpm.
    peaks = beat_times(DURATION, bpm, rsa_bpm=swing / 2, breath_hz=6.0 / 60.0, seed=seed)
    _, states = analyse(peaks, seed=seed + 1)
    errors = []
    for s, last in states:
        ref = ten_second_hr(peaks, last)
        if ref is not None:
            assert s.hr_bpm is not None
            errors.append(abs(s.hr_bpm - ref))
    assert len(errors) > 0.9 * len(states)
    assert max(errors) <= 0.3
    # And it is steady: over a breath it moves far less than the heart does.
    shown = np.array([s.hr_bpm for s, _ in states if s.t > 40.0])
    assert np.ptp(shown) < 0.25 * swing
