"""What a listener hears of a track, beyond loudness and tempo: the scan's calm measures.

Built from the series :mod:`device.music.analysis` collects in its one decoding pass:

* :func:`audible_span`: where the track becomes audible and where it stops being so (its
  100 ms K-weighted levels against its own integrated loudness), so a crossfade lies on
  what can be heard, not on a silent head or tail;
* :func:`onset_times`: events (note and drum onsets) picked from the spectral-flux envelope
  the way librosa's ``onset_detect`` picks them (normalised envelope, local maximum, above
  the local mean by a margin, a refractory wait), for the event density;
* :func:`surge_lu`: how far the loudest 3-s stretch rises above the integrated loudness
  (EBU R 128 short-term loudness): a battle cue's hits, a sudden tutti.
"""

from __future__ import annotations

import math

import numpy as np

#: A 100 ms step is audible when within this many LU of the track's integrated loudness.
AUDIBLE_BELOW_LU = 24.0
#: Onset picking (seconds): local maximum before, mean window either side, refractory wait.
PRE_MAX_S = 0.03
AVG_S = 0.1
WAIT_S = 0.03
#: Margin above the local mean, in units of the envelope's maximum.
DELTA = 0.07
#: An onset also stands this many times above the envelope's mean over +-1 s: a steady
#: texture (rain, a noise bed, a held chord) has a flux that only flickers, and no events.
RISE = 2.0
_STEP_S = 0.1


def step_levels(steps: np.ndarray, step_frames: int) -> np.ndarray:
    """Loudness (LUFS) of each 100 ms step from its summed K-weighted energies."""
    with np.errstate(divide="ignore"):
        return -0.691 + 10.0 * np.log10(np.maximum(steps / step_frames, 1e-20))


def audible_span(levels: np.ndarray, lufs: float, duration_s: float) -> tuple[float, float]:
    """``(start_s, end_s)`` of the audible part: the first and the end of the last 100 ms
    step within :data:`AUDIBLE_BELOW_LU` of ``lufs`` (the whole track if none is)."""
    loud = np.flatnonzero(levels >= lufs - AUDIBLE_BELOW_LU)
    if loud.size == 0:
        return 0.0, duration_s
    start = float(loud[0]) * _STEP_S
    end = min(duration_s, float(loud[-1] + 1) * _STEP_S)
    return start, max(start, end)


def surge_lu(levels: np.ndarray, lufs: float) -> float:
    """Loudest 3-s short-term loudness above ``lufs``, LU (0 for a track under 3 s)."""
    n = round(3.0 / _STEP_S)
    if len(levels) < n:
        return 0.0
    power = 10.0 ** ((levels + 0.691) / 10.0)
    short = np.convolve(power, np.ones(n) / n, mode="valid")
    return max(0.0, -0.691 + 10.0 * math.log10(max(float(short.max()), 1e-20)) - lufs)


def onset_times(env: np.ndarray, fps: float) -> np.ndarray:
    """Onset times (s) picked from an onset-strength envelope at ``fps`` frames/s."""
    if len(env) < 3:
        return np.zeros(0)
    x = env - env.min()
    top = float(x.max())
    if top <= 0.0:
        return np.zeros(0)
    x = x / top
    pre = max(1, round(PRE_MAX_S * fps))
    avg = max(1, round(AVG_S * fps))
    padded = np.concatenate([np.full(pre, -np.inf), x])
    local_max = np.lib.stride_tricks.sliding_window_view(padded, pre + 1).max(axis=1)
    mean = _moving_mean(x, avg)
    base = _moving_mean(x, max(1, round(fps)))
    cand = np.flatnonzero((x >= local_max) & (x >= mean + DELTA) & (x >= RISE * base))
    wait = max(1, round(WAIT_S * fps))
    picked: list[int] = []
    for i in cand:
        if not picked or i - picked[-1] > wait:
            picked.append(int(i))
    return np.asarray(picked, dtype=np.float64) / fps


def _moving_mean(x: np.ndarray, half: int) -> np.ndarray:
    """Mean of ``x`` over ``i - half .. i + half`` (fewer at the edges), same length as ``x``."""
    c = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(len(x))
    lo, hi = np.maximum(0, i - half), np.minimum(len(x), i + half + 1)
    return (c[hi] - c[lo]) / (hi - lo)


def per_minute(times: np.ndarray, start_s: float, end_s: float) -> float:
    """Events a minute inside ``start_s .. end_s`` (0 for a stretch under a second)."""
    span = end_s - start_s
    if span < 1.0:
        return 0.0
    inside = np.count_nonzero((times >= start_s) & (times <= end_s))
    return 60.0 * inside / span
