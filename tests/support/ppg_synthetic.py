"""Synthetic PPG with known beats, for the heart-analysis tests.

A pulse per beat: a fast systolic rise and slower fall, then a dicrotic wave, on a breathing
wander, with white noise. Systolic peaks point up (as a monitor's plethysmogram).
"""

from __future__ import annotations

import numpy as np

#: Seconds from a beat's systolic peak back to its steepest upstroke at 60 bpm: the rise is
#: exp(-(tau / RISE_S) ** 2), whose slope is steepest at tau = -RISE_S / sqrt(2).
RISE_S = 0.08


def beat_times(
    duration_s: float, bpm: float, *, rsa_bpm: float = 0.0, breath_hz: float = 0.25, seed: int = 0
) -> np.ndarray:
    """Peak times (s) of a heart at ``bpm`` mean, swinging +-``rsa_bpm`` with breathing."""
    rng = np.random.default_rng(seed)
    t = 0.5 * rng.uniform(0.2, 1.0)
    out = []
    while t < duration_s:
        out.append(t)
        rate = bpm + rsa_bpm * np.sin(2 * np.pi * breath_hz * t)
        t += 60.0 / rate
    return np.array(out)


def ppg(
    beats: np.ndarray,
    rate_hz: float,
    duration_s: float,
    *,
    noise: float = 0.02,
    wander: float = 0.3,
    seed: int = 1,
) -> np.ndarray:
    """Samples at ``rate_hz`` of pulses (height 1) peaking at ``beats`` (s)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * rate_hz)) / rate_hz
    ibi = float(np.median(np.diff(beats))) if len(beats) > 1 else 1.0
    scale = min(1.0, ibi / 0.9)
    rise, fall = RISE_S * scale, 0.2 * scale
    x = wander * np.sin(2 * np.pi * 0.22 * t) + 0.1 * np.sin(2 * np.pi * 0.03 * t)
    for b in beats:
        lo, hi = np.searchsorted(t, [b - 4 * rise, b + 1.2 * scale + 0.3])
        tau = t[lo:hi] - b
        x[lo:hi] += np.where(tau < 0, np.exp(-((tau / rise) ** 2)), np.exp(-((tau / fall) ** 2)))
        x[lo:hi] += 0.35 * np.exp(-(((tau - 0.35 * scale) / (0.08 * scale)) ** 2))
    return x + noise * rng.standard_normal(len(t))


def fiducials(beats: np.ndarray) -> np.ndarray:
    """Where the detector should put each beat: its steepest upstroke (s)."""
    ibi = float(np.median(np.diff(beats))) if len(beats) > 1 else 1.0
    return beats - RISE_S * min(1.0, ibi / 0.9) / np.sqrt(2.0)


def match_count(truth: np.ndarray, found: np.ndarray, tol: float) -> int:
    """Beats of ``truth`` with a distinct beat of ``found`` within ``tol`` s."""
    used = np.zeros(len(found), dtype=bool)
    n = 0
    for t in truth:
        if len(found) == 0:
            break
        d = np.abs(found - t)
        d[used] = np.inf
        k = int(np.argmin(d))
        if d[k] <= tol:
            used[k] = True
            n += 1
    return n
