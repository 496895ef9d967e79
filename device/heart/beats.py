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

import numpy as np

from device.dsp.biquad import SosFilter, butterworth_highpass, butterworth_lowpass
from device.heart.beat_checks import SignalChecks
from device.heart.beat_params import (
    ARTEFACT_RATIO,
    DELAY_REF_HZ,
    FALLBACK_FLOOR,
    FALLBACK_HALF_LIFE_S,
    FLAT_MIN_SAMPLES,
    FLAT_S,
    HIGHPASS_HZ,
    IBI_MAX_S,
    IBI_MIN_S,
    IBI_RULE,
    LATENCY_S,
    QUALITY_BEATS,
    REFERENCE_BEATS,
    REFRACTORY_MAX_S,
    REFRACTORY_MIN_S,
    RESTART_INTERVALS,
    RESTART_S,
    SETTLE_S,
    STARTUP_BEATS,
    Beat,
    Tuning,
)
from device.heart.rhythm import (
    FlatRuns,
    median,
    trend_prediction,
)

__all__ = ["Beat", "BeatDetector", "Tuning"]


class BeatDetector(SignalChecks):
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
        self._init_windows(rate_hz)
        self._next_index: int | None = None
        self._prev_y = 0.0
        self._tail = np.zeros(0)  # last two slope samples
        self._settled_from = 0
        self._pending: deque[tuple[float, float]] = deque()  # (position in samples, slope)
        self._recent: deque[tuple[float, float]] = deque()  # decided candidates, for neighbours
        self._last_t: float | None = None
        self._ibis: deque[float] = deque(maxlen=5)  # plausible intervals, s
        self._trend: deque[tuple[float, float]] = deque(maxlen=3)  # (t, ibi) s, local trend
        self._slopes: deque[float] = deque(maxlen=REFERENCE_BEATS)
        self._valid: deque[bool] = deque(maxlen=QUALITY_BEATS)
        self._fallback = 0.0
        self._fallback_t = 0.0
        self._flat = FlatRuns(max(FLAT_MIN_SAMPLES, round(FLAT_S * rate_hz)))
        self._in_flat = False
        #: Beats reported since construction.
        self.beats = 0
        #: Candidates rejected as movement (slope far above that of recent beats).
        self.artefacts = 0
        self._artefacts_at_beat = 0  # movement rejections counted up to the last beat

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
            self._flat.reset()
            self._in_flat = False
            self._restart(index, float(x[0]))
        # At most one second at a time, so the history kept for the rhythm estimate always
        # covers what a decision needs, however large the block.
        pos = 0
        while pos < len(x):
            if self._in_flat:
                pos += self._flat.holds(x[pos:])
                self._next_index = index + pos
                if pos < len(x):  # the signal moves again: start afresh on it
                    self._in_flat = False
                    self._flat.reset()
                    self._restart(index + pos, float(x[pos]))
                continue
            part = x[pos : pos + self._piece]
            k = self._flat.find(part)
            if k is None:
                self._step(part, index + pos, out)
                pos += len(part)
                continue
            if k:
                self._step(part[:k], index + pos, out)
            self._enter_flat(index + pos + k + 1 - self._flat.length, out)
            pos += k + 1
            self._next_index = index + pos
        return out

    def _step(self, x: np.ndarray, index: int, out: list[Beat]) -> None:
        y = self._filter.process(x)
        n = len(y)
        ring = self._ring
        ring[:-n] = ring[n:]
        ring[-n:] = y
        raw = np.concatenate((self._raw_tail, x))
        d2 = self._d2_ring
        d2[:-n] = d2[n:]
        d2[-n:] = 0.0
        if len(raw) >= 3:
            k = min(n, len(raw) - 2)
            d2[-k:] = raw[2:][-k:] - 2.0 * raw[1:-1][-k:] + raw[:-2][-k:]
        self._raw_tail = raw[-2:].copy()
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
        """Signal quality 0..1: share of plausible recent intervals; 0 when beats stop, on a
        flat run and until the rhythm is confirmed."""
        if self._last_t is None or self._next_index is None or not self._locked:
            return 0.0
        now = self._next_index / self.rate_hz
        expected = median(self._ibis) if self._ibis else 1.0
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
            self._fallback = median(self._slopes)
            self._fallback_t = self._last_t
            self._slopes.clear()
        self._filter.reset(first)
        self._prev_y = 0.0
        self._tail = np.zeros(0)
        self._ring[:] = 0.0
        self._d2_ring[:] = 0.0
        self._raw_tail = np.zeros(0)
        self._settled_from = index + self._settle
        self._pending.clear()
        self._recent.clear()
        self._last_t = None
        self._valid.clear()
        self._trend.clear()

    def _enter_flat(self, start: int, out: list[Beat]) -> None:
        """The raw samples have held one value since stream index ``start``: no signal.

        Candidates from the step into the flat run are dropped, the others decided on what
        came before it (as at a gap); no interval will span the run, and beats are reported
        again only once the signal that follows is rhythmic.
        """
        while self._pending and self._pending[-1][0] >= start - 1:
            self._pending.pop()
        self._decide(out, math.inf)
        if len(self._slopes) >= STARTUP_BEATS and self._last_t is not None:
            self._fallback = median(self._slopes)
            self._fallback_t = self._last_t
        self._slopes.clear()
        self._last_t = None
        self._locked = False
        self._since_flat.clear()
        self._in_flat = True

    def _decide(self, out: list[Beat], last: float) -> None:
        """Decide every pending candidate whose look-ahead ends at or before sample ``last``."""
        fs = self.rate_hz
        while self._pending and self._pending[0][0] + self._horizon + 1 <= last:
            pos, value = self._pending.popleft()
            t = pos / fs
            self._forget_if_stopped(t)
            period = self._expected_interval(pos, last)
            reach = (
                REFRACTORY_MIN_S
                if period is None
                else min(max(self._refractory_share * period, REFRACTORY_MIN_S), REFRACTORY_MAX_S)
            )
            while self._recent and self._recent[0][0] < pos - (RESTART_S + REFRACTORY_MAX_S) * fs:
                self._recent.popleft()
            beat = self._judge(pos, value, reach, last) and self._pulse_present(pos)
            self._recent.append((pos, value))
            if beat:
                found = self._accept(t - self.filter_delay_s, value, period)
                if self._locked or self._confirms_rhythm(found):
                    self._locked = True
                    self.beats += 1
                    out.append(found)

    def _forget_if_stopped(self, t: float) -> None:
        """Beats stopped before ``t`` (s): the reference restarts; the old one is a fallback.

        When no candidate was rejected as movement meanwhile, the pulse was lost (a dropout
        that the samples need not show as a flat run: a monitor's hold, smoothed by a lower
        rate, wanders), so beats are reported again only once the signal is rhythmic, as
        after a flat run. Stopped by movement, the pulse was under it: no such wait.
        """
        expected = median(self._ibis) if self._ibis else 0.0
        if (
            self._slopes
            and self._last_t is not None
            and t - self._last_t > max(RESTART_S, RESTART_INTERVALS * expected)
        ):
            if len(self._slopes) >= STARTUP_BEATS:
                self._fallback = median(self._slopes)
                self._fallback_t = self._last_t
            self._slopes.clear()
            if self.artefacts == self._artefacts_at_beat:
                # No interval may join the beats before and after; the weak steps of a
                # returning signal are not beats (issue 23.2).
                self._locked = False
                self._since_flat.clear()

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
            reference = median(self._slopes)
            if value > ARTEFACT_RATIO * reference:
                self.artefacts += 1
                return False
        else:
            reference = self._startup_reference(pos, value)
        if value < self._threshold_share * reference:
            return False
        t = pos / fs - self.filter_delay_s
        return self._last_t is None or t - self._last_t >= IBI_MIN_S

    def _startup_reference(self, pos: float, value: float) -> float:
        """Start-up: the steepest upstroke in the last few seconds and the look-ahead (a jolt
        as the finger settles blocks beats only until it is that old), but not far below the
        beats seen before (a flat line or a filter's ringing after the finger went is no
        pulse)."""
        fs = self.rate_hz
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
        return reference

    def _accept(self, t: float, value: float, period: float | None) -> Beat:
        ibi = None if self._last_t is None else t - self._last_t
        valid = False
        if ibi is not None:
            plausible = IBI_MIN_S <= ibi <= IBI_MAX_S
            # The 20 % rule against the recent median, else the local trend (a breath's swing);
            # the first ones against the rhythm, and untrusted without one (as every other).
            ref = median(self._ibis) if len(self._ibis) >= 3 else period
            valid = plausible and ref is not None and abs(ibi - ref) <= IBI_RULE * ref
            if plausible and not valid:
                ref = trend_prediction(self._trend, t)
                valid = ref is not None and abs(ibi - ref) <= IBI_RULE * ref
            if plausible:
                self._ibis.append(ibi)
                self._trend.append((t, ibi))
            else:
                self._trend.clear()
            self._valid.append(valid)
        self._slopes.append(value)
        self._last_t = t
        self._artefacts_at_beat = self.artefacts
        return Beat(t, ibi, valid, value)
