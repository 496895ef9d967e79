"""Causal beat detection in a PPG stream, block by block, with a fixed look-ahead.

Chain: band-pass (Butterworth high-pass 0.3 Hz, low-pass 6 Hz), first difference, then the
steepest point of each systolic upstroke is the beat's fiducial point (it is sharper and
steadier than the rounded systolic peak, so intervals jitter less). Each local maximum of the
slope is a candidate; a candidate becomes a beat when, ``look-ahead`` after it, it is the
steepest candidate within a refractory window around it (60 % of the expected interval,
0.3-0.6 s) and its slope clears an adaptive threshold (a share of the median slope of recent
beats). Its time is refined to a fraction of a sample by a parabola through the slope maximum.
The expected interval is the median of recent intervals, checked against the rhythm of the
signal (its autocorrelation), so a run of double detections cannot sustain itself. Intervals
outside 0.3-2.0 s, or off by more than 20 % both from the recent median and from the local
trend (a line through the last three intervals, when they lie on one: a breath's smooth swing
of the rate, which the median lags, follows it; a premature or missed beat does not), are
flagged (the first ones, before there is a median, against the rhythm: unconfirmed start-up
intervals are flagged too); the share of plausible recent intervals is the signal-quality
index.

Every decision uses only samples up to the candidate plus the fixed look-ahead, so the beats do
not depend on how the stream is cut into blocks, and the first part of a recording gives the
same beats whether or not more follows.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from device.dsp.biquad import SosFilter, butterworth_highpass, butterworth_lowpass

__all__ = ["Beat", "BeatDetector", "Tuning"]

#: Band-pass corners in Hz: below the slowest heart rate's fundamental (30 bpm is 0.5 Hz) yet
#: above most breathing wander; above the harmonics that shape the upstroke at 180 bpm (the
#: low-pass corner is :attr:`Tuning.lowpass_hz`, 6 Hz by default).
HIGHPASS_HZ = 0.3
#: Frequency (Hz) at which the filter delay is taken out of the reported times: the slope
#: maximum is formed mostly by the 2nd-4th harmonic of a resting pulse.
DELAY_REF_HZ = 2.5
#: Total delay from a beat's fiducial point to its report, s (the contract allows 1.0).
LATENCY_S = 0.9
#: Plausible inter-beat interval, s (200 to 30 bpm).
IBI_MIN_S = 0.3
IBI_MAX_S = 2.0
#: Largest relative change of an interval against the recent median (the "20 % rule"), or
#: against the local trend of the last valid intervals.
IBI_RULE = 0.2
#: Local trend: a line through the last few plausible intervals, all within this many seconds
#: of the beat, extrapolated to it, when they lie on it within a share of their mean. A
#: breath's smooth swing of the rate (up to +-25 % within a few beats at resonance breathing)
#: follows such a line; a premature or missed beat is abrupt and breaks it. The median of five
#: lags such a swing by two or three beats.
TREND_INTERVALS = 3
TREND_SPAN_S = 5.0
TREND_FIT = 0.05
#: Refractory window around a beat: a share of the recent interval
#: (:attr:`Tuning.refractory_share`), clamped, s.
REFRACTORY_MIN_S = 0.3
REFRACTORY_MAX_S = 0.6
#: A candidate must reach a share of the reference slope (median of recent beats):
#: :attr:`Tuning.threshold_share`.
#: Slopes above this many times the reference are movement, not pulse.
ARTEFACT_RATIO = 4.0
#: Beats whose slopes form the reference, and how many it takes to leave start-up.
REFERENCE_BEATS = 5
STARTUP_BEATS = 3
#: Without a beat for this long (s, or this many recent intervals) the reference restarts.
RESTART_S = 3.0
RESTART_INTERVALS = 3.0
#: After beats stop, the old reference still bounds the new one from below: it halves every
#: this many seconds, down to this share of its value.
FALLBACK_HALF_LIFE_S = 1.0
FALLBACK_FLOOR = 0.03
#: Samples after a start or a gap that are not searched (filter settling), s.
SETTLE_S = 0.3
#: Rhythm estimate (autocorrelation of the band-passed signal): window, s; the least
#: normalised correlation believed; the share of the best peak a shorter lag needs to be
#: taken as the period; how much shorter than it the recent intervals may be.
RHYTHM_WINDOW_S = 5.0
RHYTHM_MIN_CORR = 0.3
RHYTHM_PICK = 0.8
RHYTHM_DISAGREE = 0.3
#: Intervals that make up the quality index.
QUALITY_BEATS = 8


@dataclass(frozen=True, slots=True)
class Tuning:
    """The detector's constants that are chosen on recordings (not given by physiology, the
    latency contract or a published method).

    ``bench/ppg_crossval.py`` chooses them from a grid by the training loss over every
    recording in the repository; the defaults are its choice on all of them (it also chose
    them in 20 of 24 leave-one-recording-out folds), and its cross-validated figures are what
    this choice is expected to score on recordings it never saw (docs/heart.md).
    """

    #: Share of the reference slope a candidate must reach (qppg's adaptive threshold).
    threshold_share: float = 0.25
    #: Refractory window as a share of the expected interval (clamped to 0.3-0.6 s).
    refractory_share: float = 0.6
    #: Low-pass corner of the band-pass, Hz.
    lowpass_hz: float = 6.0

    def __post_init__(self) -> None:
        if not 0.05 <= self.threshold_share <= 0.9:
            raise ValueError(f"threshold_share must be 0.05-0.9, got {self.threshold_share!r}")
        if not 0.2 <= self.refractory_share <= 0.9:
            raise ValueError(f"refractory_share must be 0.2-0.9, got {self.refractory_share!r}")
        if not 2.0 <= self.lowpass_hz <= 15.0:
            raise ValueError(f"lowpass_hz must be 2-15 Hz, got {self.lowpass_hz!r}")


@dataclass(frozen=True, slots=True)
class Beat:
    """One detected beat."""

    #: Time of the fiducial point (steepest upstroke), s since stream index 0.
    t: float
    #: Interval from the previous beat, s; ``None`` for the first beat after a start or gap.
    ibi: float | None
    #: The interval is plausible (0.3-2.0 s and within 20 % of the recent median or of the
    #: local trend).
    valid: bool
    #: Upstroke slope (signal units per second) after the band-pass.
    slope: float


def _median(values: deque[float]) -> float:
    """Median of a short sequence (a few items: faster than numpy's)."""
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def _trend_prediction(trend: deque[tuple[float, float]], t: float) -> float | None:
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


class BeatDetector:
    """Streaming PPG beat detector with a fixed look-ahead of :attr:`latency_s`.

    Feed consecutive blocks of samples (systolic peaks up; invert raw reflectance counts
    first) with :meth:`process`; it returns the beats whose look-ahead has passed. Times are
    seconds since stream index 0 at ``rate_hz``. Works at 20-1000 Hz.
    """

    def __init__(self, rate_hz: float, tuning: Tuning | None = None) -> None:
        rate_hz = float(rate_hz)
        if not 20.0 <= rate_hz <= 1000.0:
            raise ValueError(f"beat detector rate must be 20-1000 Hz, got {rate_hz!r}")
        self.rate_hz = rate_hz
        #: The constants in use (:class:`Tuning`; the product's defaults unless given).
        self.tuning = tuning = Tuning() if tuning is None else tuning
        self._threshold_share = tuning.threshold_share
        self._refractory_share = tuning.refractory_share
        lowpass = min(tuning.lowpass_hz, 0.4 * rate_hz)
        self._filter = SosFilter(
            butterworth_highpass(2, HIGHPASS_HZ, rate_hz) + butterworth_lowpass(4, lowpass, rate_hz)
        )
        #: Filter delay taken out of the reported times, s.
        self.filter_delay_s = self._filter.group_delay(DELAY_REF_HZ, rate_hz)
        # Look-ahead in samples past a candidate before it is decided; +2 samples for the
        # difference and the local-maximum test.
        self._horizon = math.floor((LATENCY_S - self.filter_delay_s) * rate_hz) - 2
        #: Fixed delay from a beat's time to the sample that reveals it, s (<= 1.0).
        self.latency_s = (self._horizon + 2) / rate_hz + self.filter_delay_s
        self._settle = round(SETTLE_S * rate_hz)
        self._piece = max(1, round(rate_hz))
        self._rhythm_n = round(RHYTHM_WINDOW_S * rate_hz)
        # Filtered samples up to the newest: a rhythm window before the end of a look-ahead,
        # plus the samples a piece can bring beyond it.
        self._ring = np.zeros(self._rhythm_n + self._horizon + 2 * self._piece + 4)
        self._fft_n = 1 << (2 * self._rhythm_n - 1).bit_length()
        # One sample short of the shortest interval, so a peak right at it is still a peak.
        self._lag_lo = max(1, math.floor(IBI_MIN_S * rate_hz) - 1)
        self._lag_hi = min(round(IBI_MAX_S * rate_hz), self._rhythm_n // 2)
        self._next_index: int | None = None
        self._prev_y = 0.0
        self._tail = np.zeros(0)  # last two slope samples
        self._settled_from = 0
        self._pending: deque[tuple[float, float]] = deque()  # (position in samples, slope)
        self._recent: deque[tuple[float, float]] = deque()  # decided candidates, for neighbours
        self._last_t: float | None = None
        self._ibis: deque[float] = deque(maxlen=5)  # plausible intervals, s
        self._trend: deque[tuple[float, float]] = deque(maxlen=TREND_INTERVALS)  # (t, ibi) s
        self._slopes: deque[float] = deque(maxlen=REFERENCE_BEATS)
        self._valid: deque[bool] = deque(maxlen=QUALITY_BEATS)
        self._fallback = 0.0
        self._fallback_t = 0.0
        #: Beats reported since construction.
        self.beats = 0
        #: Candidates rejected as movement (slope far above that of recent beats).
        self.artefacts = 0

    # --- public --------------------------------------------------------------------------

    def process(self, x: np.ndarray, gap: bool = False, index: int | None = None) -> list[float]:
        """Feed the next samples; return beat times (s) that became certain.

        ``gap=True`` says samples were lost before ``x``: pending candidates are decided on
        what came before, the filters restart, and no interval spans the gap. ``index`` is
        the stream index of ``x[0]`` (for time keeping across gaps); a jump is a gap too.
        """
        return [b.t for b in self.process_beats(x, gap, index)]

    def process_beats(
        self, x: np.ndarray, gap: bool = False, index: int | None = None
    ) -> list[Beat]:
        """Like :meth:`process` but return :class:`Beat` records with their intervals."""
        x = np.asarray(x, dtype=float)
        if x.ndim != 1:
            raise ValueError(f"samples must be one-dimensional, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            bad = int(np.flatnonzero(~np.isfinite(x))[0])
            raise ValueError(f"sample {bad} of the block is {float(x[bad])}, not a finite number")
        out: list[Beat] = []
        if index is None:
            index = 0 if self._next_index is None else self._next_index
        if len(x) == 0:
            return out
        if self._next_index is None or gap or index != self._next_index:
            if self._next_index is not None:
                self._decide(out, math.inf)
                self._last_t = None
            self._restart(index, float(x[0]))
        # At most one second at a time, so the history kept for the rhythm estimate always
        # covers what a decision needs, however large the block.
        step = self._piece
        for start in range(0, len(x), step):
            self._step(x[start : start + step], index + start, out)
        return out

    def _step(self, x: np.ndarray, index: int, out: list[Beat]) -> None:
        y = self._filter.process(x)
        n = len(y)
        ring = self._ring
        ring[:-n] = ring[n:]
        ring[-n:] = y
        slope = np.empty(len(y) + len(self._tail))
        slope[: len(self._tail)] = self._tail
        dd = slope[len(self._tail) :]
        dd[0] = y[0] - self._prev_y
        np.subtract(y[1:], y[:-1], out=dd[1:])
        dd *= self.rate_hz
        self._prev_y = float(y[-1])
        # Index of slope[0] in the stream: slope sample k sits between samples k-1 and k.
        base = index - len(self._tail)
        if len(slope) >= 3:
            mid = slope[1:-1]
            peaks = np.flatnonzero((mid > slope[:-2]) & (mid >= slope[2:]) & (mid > 0.0)) + 1
            for p in peaks:
                if base + p < self._settled_from:
                    continue
                s0, s1, s2 = slope[p - 1], slope[p], slope[p + 1]
                curve = s0 - 2.0 * s1 + s2
                offset = 0.5 * (s0 - s2) / curve if curve < 0.0 else 0.0
                value = s1 - 0.25 * (s0 - s2) * offset
                self._pending.append((base + p - 0.5 + offset, float(value)))
        self._tail = slope[-2:].copy()
        last = index + len(x) - 1
        self._next_index = last + 1
        self._decide(out, last)

    def flush(self) -> list[float]:
        """Decide the pending candidates on what has been seen (end of stream); return beats."""
        out: list[Beat] = []
        self._decide(out, math.inf)
        return [b.t for b in out]

    @property
    def quality(self) -> float:
        """Signal quality 0..1: share of plausible recent intervals, 0 when beats stop."""
        if self._last_t is None or self._next_index is None:
            return 0.0
        now = self._next_index / self.rate_hz
        expected = _median(self._ibis) if self._ibis else 1.0
        if now - self._last_t > max(RESTART_S, RESTART_INTERVALS * expected) + self.latency_s:
            return 0.0
        return sum(self._valid) / QUALITY_BEATS

    def __repr__(self) -> str:
        return (
            f"<BeatDetector rate={self.rate_hz:g} Hz latency={self.latency_s:.3f} s "
            f"beats={self.beats} quality={self.quality:.2f}>"
        )

    # --- internals -----------------------------------------------------------------------

    def _restart(self, index: int, first: float) -> None:
        if len(self._slopes) >= STARTUP_BEATS and self._last_t is not None:
            self._fallback = _median(self._slopes)
            self._fallback_t = self._last_t
            self._slopes.clear()
        self._filter.reset(first)
        self._prev_y = 0.0
        self._tail = np.zeros(0)
        self._ring[:] = 0.0
        self._settled_from = index + self._settle
        self._pending.clear()
        self._recent.clear()
        self._last_t = None
        self._valid.clear()
        self._trend.clear()

    def _decide(self, out: list[Beat], last: float) -> None:
        """Decide every pending candidate whose look-ahead ends at or before sample ``last``."""
        fs = self.rate_hz
        while self._pending and self._pending[0][0] + self._horizon + 1 <= last:
            pos, value = self._pending.popleft()
            t = pos / fs
            expected = _median(self._ibis) if self._ibis else None
            if (
                self._slopes
                and self._last_t is not None
                and t - self._last_t > max(RESTART_S, RESTART_INTERVALS * (expected or 0.0))
            ):
                if len(self._slopes) >= STARTUP_BEATS:
                    self._fallback = _median(self._slopes)
                    self._fallback_t = self._last_t
                self._slopes.clear()
            period = self._expected_interval(pos, last)
            reach = (
                REFRACTORY_MIN_S
                if period is None
                else min(max(self._refractory_share * period, REFRACTORY_MIN_S), REFRACTORY_MAX_S)
            )
            while self._recent and self._recent[0][0] < pos - (RESTART_S + REFRACTORY_MAX_S) * fs:
                self._recent.popleft()
            beat = self._judge(pos, value, reach, last)
            self._recent.append((pos, value))
            if beat:
                out.append(self._accept(t - self.filter_delay_s, value, period))

    def _rhythm(self, pos: float, last: float) -> float | None:
        """Pulse period (s) from the autocorrelation of the band-passed signal, or ``None``.

        The window ends where the candidate's look-ahead ends, so the answer does not depend
        on how far the stream has run beyond it.
        """
        end = math.floor(pos) + self._horizon
        begin = max(end - self._rhythm_n, self._settled_from)
        if end - begin < self._rhythm_n // 2 or not math.isfinite(last):
            return None
        newest = self._next_index - 1 if self._next_index is not None else end
        stop = len(self._ring) - (newest - end)
        seg = self._ring[stop - (end - begin) : stop]
        seg = seg - seg.mean()
        spec = np.fft.rfft(seg, self._fft_n)
        acf = np.fft.irfft(spec.real**2 + spec.imag**2, self._fft_n)[: self._lag_hi + 2]
        if acf[0] <= 0.0:
            return None
        acf /= acf[0]
        lo, hi = self._lag_lo, min(self._lag_hi, len(seg) // 2)
        if hi <= lo + 2:
            return None
        mid = acf[lo:hi]
        peaks = np.flatnonzero((mid[1:-1] > mid[:-2]) & (mid[1:-1] >= mid[2:])) + 1
        if len(peaks) == 0:
            return None
        best = float(mid[peaks].max())
        if best < RHYTHM_MIN_CORR:
            return None
        # The shortest lag nearly as good as the best: the period, not a multiple of it.
        k = int(peaks[np.flatnonzero(mid[peaks] >= RHYTHM_PICK * best)[0]])
        return (lo + k) / self.rate_hz

    def _expected_interval(self, pos: float, last: float) -> float | None:
        """The interval to expect next: recent intervals, checked against the rhythm."""
        median = _median(self._ibis) if len(self._ibis) >= 3 else None
        rhythm = self._rhythm(pos, last)
        if median is None:
            return rhythm
        if rhythm is not None and median < (1.0 - RHYTHM_DISAGREE) * rhythm:
            # Recent intervals far shorter than the rhythm: the detector is finding extra
            # (dicrotic) beats, and their median would keep it doing so.
            return rhythm
        return median

    def _judge(self, pos: float, value: float, reach: float, last: float) -> bool:
        fs = self.rate_hz
        span = reach * fs
        for p, v in self._recent:
            if p >= pos - span and v > value:
                return False
        for p, v in self._pending:
            if p > pos + span:
                break
            if v > value:
                return False
        if len(self._slopes) >= STARTUP_BEATS:
            reference = _median(self._slopes)
            if value > ARTEFACT_RATIO * reference:
                self.artefacts += 1
                return False
        else:
            # Start-up: the steepest upstroke in the last few seconds and the look-ahead
            # (a jolt as the finger settles blocks beats only until it is that old), but
            # not far below the beats seen before (a flat line or a filter's ringing after
            # the finger went is no pulse).
            reference = value
            for p, v in self._recent:
                if p >= pos - RESTART_S * fs:
                    reference = max(reference, v)
            for p, v in self._pending:
                if p > pos + self._horizon:
                    break
                reference = max(reference, v)
            if self._fallback > 0.0:
                age = pos / fs - self._fallback_t
                decay = max(FALLBACK_FLOOR, 0.5 ** (age / FALLBACK_HALF_LIFE_S))
                reference = max(reference, self._fallback * decay)
        if value < self._threshold_share * reference:
            return False
        t = pos / fs - self.filter_delay_s
        return self._last_t is None or t - self._last_t >= IBI_MIN_S

    def _accept(self, t: float, value: float, period: float | None) -> Beat:
        ibi = None if self._last_t is None else t - self._last_t
        valid = False
        if ibi is not None:
            plausible = IBI_MIN_S <= ibi <= IBI_MAX_S
            # The 20 % rule against the recent median, else the local trend (a breath's swing);
            # the first ones against the rhythm, and untrusted without one (as every other).
            ref = _median(self._ibis) if len(self._ibis) >= 3 else period
            valid = plausible and ref is not None and abs(ibi - ref) <= IBI_RULE * ref
            if plausible and not valid:
                ref = _trend_prediction(self._trend, t)
                valid = ref is not None and abs(ibi - ref) <= IBI_RULE * ref
            if plausible:
                self._ibis.append(ibi)
                self._trend.append((t, ibi))
            else:
                self._trend.clear()
            self._valid.append(valid)
        self._slopes.append(value)
        self._last_t = t
        self.beats += 1
        return Beat(t, ibi, valid, value)
