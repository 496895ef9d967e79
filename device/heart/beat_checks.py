"""The beat detector's checks on the signal around a candidate (a mixin of
:class:`~device.heart.beats.BeatDetector`): the rhythm it repeats at, whether it is a pulse
or white noise, and whether a beat confirms the rhythm after a flat run.

They read the band-passed samples (and the raw second difference) kept in rings that end at
the newest sample; every window ends where the candidate's look-ahead ends, so the answers do
not depend on how the stream is cut into blocks.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from device.dsp.biquad import SosFilter
from device.heart.beat_params import (
    IBI_MAX_S,
    IBI_MIN_S,
    IBI_RULE,
    LOCK_CORR,
    LOCK_INTERVALS,
    PULSE_SNR,
    PULSE_WINDOW_MIN_S,
    RHYTHM_DISAGREE,
    RHYTHM_WINDOW_S,
    Beat,
)
from device.heart.rhythm import autocorrelation_period, median, pulse_to_noise, white_noise_gain

__all__ = ["SignalChecks"]


class SignalChecks:
    """Rhythm, pulse and lock checks over the detector's rings of recent samples."""

    rate_hz: float
    _filter: SosFilter
    _horizon: int
    _piece: int
    _next_index: int | None
    _settled_from: int
    _ibis: deque[float]

    def _init_windows(self, rate_hz: float) -> None:
        self._rhythm_n = round(RHYTHM_WINDOW_S * rate_hz)
        # Filtered samples up to the newest: a rhythm window before the end of a look-ahead,
        # plus the samples a piece can bring beyond it.
        self._ring = np.zeros(self._rhythm_n + self._horizon + 2 * self._piece + 4)
        # Second difference of the raw samples, aligned with the ring: the white noise level.
        self._d2_ring = np.zeros_like(self._ring)
        self._raw_tail = np.zeros(0)
        self._gate_min = round(PULSE_WINDOW_MIN_S * rate_hz)
        probe = SosFilter(self._filter.sections)
        impulse = np.zeros(round(20.0 * rate_hz))
        impulse[0] = 1.0
        self._white_gain = white_noise_gain(probe.process(impulse))
        self._fft_n = 1 << (2 * self._rhythm_n - 1).bit_length()
        # One sample short of the shortest interval, so a peak right at it is still a peak.
        self._lag_lo = max(1, math.floor(IBI_MIN_S * rate_hz) - 1)
        self._lag_hi = min(round(IBI_MAX_S * rate_hz), self._rhythm_n // 2)
        # After a flat run, beats are reported once the rhythm is confirmed (LOCK_CORR); the
        # rhythm and its correlation at the candidate being decided.
        self._locked = True
        self._rhythm_now: tuple[float | None, float] = (None, 0.0)
        self._since_flat: deque[float] = deque(maxlen=LOCK_INTERVALS)  # intervals found, s

    def _rhythm(self, pos: float, last: float) -> tuple[float | None, float]:
        """Pulse period (s) from the autocorrelation of the band-passed signal, or ``None``,
        and the correlation at it (:func:`~device.heart.rhythm.autocorrelation_period`).

        The window ends where the candidate's look-ahead ends, so the answer does not depend
        on how far the stream has run beyond it.
        """
        end = math.floor(pos) + self._horizon
        begin = max(end - self._rhythm_n, self._settled_from)
        if end - begin < self._rhythm_n // 2 or not math.isfinite(last):
            return None, 0.0
        newest = self._next_index - 1 if self._next_index is not None else end
        stop = len(self._ring) - (newest - end)
        seg = self._ring[stop - (end - begin) : stop]
        return autocorrelation_period(seg, self.rate_hz, self._lag_lo, self._lag_hi, self._fft_n)

    def _pulse_present(self, pos: float) -> bool:
        """Whether the signal around the candidate at ``pos`` is a pulse, not white noise.

        Measured over up to :data:`RHYTHM_WINDOW_S` ending where the candidate's look-ahead
        ends (or at the newest sample, when it is decided early at a gap or the end).
        """
        newest = self._next_index - 1 if self._next_index is not None else 0
        end = min(math.floor(pos) + self._horizon, newest)
        begin = max(end - self._rhythm_n, self._settled_from)
        if end - begin < self._gate_min:
            return False
        stop = len(self._ring) - (newest - end)
        band = self._ring[stop - (end - begin) : stop]
        d2 = self._d2_ring[stop - (end - begin) : stop]
        return pulse_to_noise(band, d2, self._white_gain) >= PULSE_SNR

    def _confirms_rhythm(self, beat: Beat) -> bool:
        """Whether ``beat`` confirms a pulse: the signal repeats strongly enough and the beat's
        interval agrees with the period it repeats at."""
        if beat.ibi is None:
            return False
        if not IBI_MIN_S <= beat.ibi <= IBI_MAX_S:
            self._since_flat.clear()
            return False
        chain = self._since_flat
        chain.append(beat.ibi)
        mid = median(chain)
        if len(chain) == LOCK_INTERVALS and all(abs(i - mid) <= IBI_RULE * mid for i in chain):
            return True
        period, corr = self._rhythm_now
        return (
            corr >= LOCK_CORR and period is not None and abs(beat.ibi - period) <= IBI_RULE * period
        )

    def _expected_interval(self, pos: float, last: float) -> float | None:
        """The interval to expect next: recent intervals, checked against the rhythm."""
        recent = median(self._ibis) if len(self._ibis) >= 3 else None
        self._rhythm_now = self._rhythm(pos, last)
        rhythm = self._rhythm_now[0]
        if recent is None:
            return rhythm
        if rhythm is not None and recent < (1.0 - RHYTHM_DISAGREE) * rhythm:
            # Recent intervals far shorter than the rhythm: the detector is finding extra
            # (dicrotic) beats, and their median would keep it doing so.
            return rhythm
        return recent
