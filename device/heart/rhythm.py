"""The beat detector's checks of the rhythm and of the signal itself.

* :func:`autocorrelation_period`: the pulse period of a stretch of band-passed signal and how
  strongly the stretch repeats at it (normalised autocorrelation, 0..1). A pulse repeats; a
  filter's ringing, white noise or a baseline wander does not, or much less.
* :func:`trend_prediction`: the interval a smooth swing of the rate (a breath) predicts.
* :func:`pulse_to_noise`: how far the band-passed power stands above what white noise of the
  measured level would put in the band (1 for white noise, whatever its level).
* :class:`FlatRuns`: finds where the raw samples stop changing (a flat line, or a converter
  held at its limit: clipped), so the detector treats the stretch as no signal at all.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

__all__ = [
    "FlatRuns",
    "autocorrelation_period",
    "median",
    "pulse_to_noise",
    "trend_prediction",
    "white_noise_gain",
]

#: Local trend: a line through the last few plausible intervals, all within this many seconds
#: of the beat, extrapolated to it, when they lie on it within a share of their mean. A
#: breath's smooth swing of the rate (up to +-25 % within a few beats at resonance breathing)
#: follows such a line; a premature or missed beat is abrupt and breaks it. The median of five
#: lags such a swing by two or three beats.
TREND_INTERVALS = 3
TREND_SPAN_S = 5.0
TREND_FIT = 0.05
#: Rhythm estimate: the least normalised correlation believed, and the share of the best peak
#: a shorter lag needs to be taken as the period (not a multiple of it).
RHYTHM_MIN_CORR = 0.3
RHYTHM_PICK = 0.8


def median(values: Sequence[float]) -> float:
    """Median of a short sequence (a few items: faster than numpy's)."""
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def trend_prediction(trend: deque[tuple[float, float]], t: float) -> float | None:
    """The interval ending at ``t`` (s) that the local trend predicts, or ``None``.

    ``trend`` holds the last plausible intervals in a row (flagged or not) as (time of the
    beat, interval), s. A least-squares line through :data:`TREND_INTERVALS` of them against
    their beats' times, when all lie within :data:`TREND_SPAN_S` of ``t`` and on the line within
    :data:`TREND_FIT` of their mean. Flagged ones count, so that after a premature or missed
    beat the swing is followed again three beats later rather than when the median catches up
    with it; a run of doubled intervals is let in no sooner than the median would let it.
    """
    if len(trend) < TREND_INTERVALS or t - trend[0][0] > TREND_SPAN_S:
        return None
    n = len(trend)
    mt = sum(p[0] for p in trend) / n
    mi = sum(p[1] for p in trend) / n
    sxx = sum((p[0] - mt) ** 2 for p in trend)
    slope = sum((p[0] - mt) * (p[1] - mi) for p in trend) / sxx if sxx > 0.0 else 0.0
    if any(abs(p[1] - mi - slope * (p[0] - mt)) > TREND_FIT * mi for p in trend):
        return None
    return mi + slope * (t - mt)


def autocorrelation_period(
    seg: np.ndarray, rate_hz: float, lag_lo: int, lag_hi: int, fft_n: int
) -> tuple[float | None, float]:
    """Pulse period (s) of ``seg`` and its normalised autocorrelation there.

    ``lag_lo``-``lag_hi`` (samples) bound the period; ``fft_n`` >= 2 x ``len(seg)`` is the
    transform length. The period is the shortest lag whose autocorrelation peak reaches
    :data:`RHYTHM_PICK` of the best one; ``None`` (with the best correlation, 0 when there is
    no peak) when the best is below :data:`RHYTHM_MIN_CORR` or the stretch is too short.
    """
    seg = seg - seg.mean()
    spec = np.fft.rfft(seg, fft_n)
    acf = np.fft.irfft(spec.real**2 + spec.imag**2, fft_n)[: lag_hi + 2]
    if acf[0] <= 0.0:
        return None, 0.0
    acf /= acf[0]
    hi = min(lag_hi, len(seg) // 2)
    if hi <= lag_lo + 2:
        return None, 0.0
    mid = acf[lag_lo:hi]
    peaks = np.flatnonzero((mid[1:-1] > mid[:-2]) & (mid[1:-1] >= mid[2:])) + 1
    if len(peaks) == 0:
        return None, 0.0
    best = float(mid[peaks].max())
    if best < RHYTHM_MIN_CORR:
        return None, best
    k = int(peaks[np.flatnonzero(mid[peaks] >= RHYTHM_PICK * best)[0]])
    return (lag_lo + k) / rate_hz, best


def white_noise_gain(impulse_response: np.ndarray) -> float:
    """Band-passed power per unit of second-difference power, for white noise.

    White noise of variance s2 has a second difference of variance 6 s2 (1 + 4 + 1) and
    band-passed variance s2 x sum(h ** 2) (``impulse_response`` = h).
    """
    return float(np.sum(np.square(impulse_response))) / 6.0


def pulse_to_noise(band: np.ndarray, second_diff: np.ndarray, white_gain: float) -> float:
    """Band-passed power over the part of it that white noise accounts for (>= 0).

    ``band`` is a stretch of the band-passed signal, ``second_diff`` the second difference of
    the raw samples over the same stretch: the pulse has almost no power up there, so it
    measures the white noise. White noise alone gives about 1 at any level (at most about 2.7
    over 1.5-5 s at 25-125 Hz); a pulse gives 1 + its in-band signal-to-noise ratio. A
    quadratic is taken out of ``band`` first: what remains of the high-pass filter's settling
    after a restart is slow and is not pulse.
    """
    n = len(band)
    noise = float(np.var(second_diff)) * white_gain
    k = np.linspace(-1.0, 1.0, n)
    basis = np.stack([np.ones(n), k, k * k - 1.0 / 3.0], axis=1)
    coef, *_ = np.linalg.lstsq(basis, band, rcond=None)
    power = float(np.mean(np.square(band - basis @ coef)))
    if noise <= 0.0:
        return math.inf if power > 0.0 else 0.0
    return power / noise


class FlatRuns:
    """Finds runs of identical raw samples, block after block.

    A real optical pulse, even a weak one read by an 18-bit converter, never holds one value
    for long; a flat line does, and so does a channel clipped at the converter's limit. A run
    of ``length`` identical samples is a *flat run*: :meth:`find` names the sample that
    completes it, and the run lasts while the value holds (:meth:`holds`).
    """

    def __init__(self, length: int) -> None:
        #: Identical samples in a row that make a flat run.
        self.length = length
        self.value = float("nan")
        #: Identical samples in a row up to the last one seen.
        self.count = 0

    def find(self, x: np.ndarray) -> int | None:
        """Offset in ``x`` of the sample that completes a flat run, or ``None``.

        Only the samples up to that one are taken into account (call again with the rest).
        """
        if len(x) == 0:
            return None
        same = np.empty(len(x), dtype=bool)
        same[0] = x[0] == self.value
        np.equal(x[1:], x[:-1], out=same[1:])
        idx = np.arange(len(x))
        last_break = np.maximum.accumulate(np.where(same, -1, idx))
        run = np.where(last_break >= 0, idx - last_break + 1, idx + 1 + self.count)
        done = np.flatnonzero(run >= self.length)
        end = int(done[0]) if len(done) else len(x) - 1
        self.value = float(x[end])
        self.count = int(run[end])
        return int(done[0]) if len(done) else None

    def holds(self, x: np.ndarray) -> int:
        """How many samples at the start of ``x`` keep the run's value."""
        differ = np.flatnonzero(x != self.value)
        n = int(differ[0]) if len(differ) else len(x)
        self.count += n
        return n

    def reset(self) -> None:
        """Forget the samples seen (after a gap)."""
        self.value = float("nan")
        self.count = 0
