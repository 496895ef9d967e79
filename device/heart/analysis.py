"""Heart analysis of the PPG stream: heart rate, HRV, coherence and breathing rate.

:class:`HeartAnalyzer` takes the sensor's :class:`~device.heart.samples.SampleBlock` s, runs
the streaming :class:`~device.heart.beats.BeatDetector` on the infrared channel and keeps the
figures the therapy reads through :meth:`HeartAnalyzer.snapshot`:

* heart rate beat to beat and smoothed (over the plausible intervals of the last 10 s of
  beats: a whole breath at the 6/min the box paces towards, so the breath's swing of the rate
  averages out);
* RMSSD and SDNN over a rolling 60 s, the last 5 minutes and the whole session (Task Force
  1996; SDNN with n - 1, as neurokit2 and the standard), from the corrected intervals: those
  that pass the detector's plausibility and 20 % rules (median or local trend; start-up
  intervals included); a difference is taken only between two adjacent plausible intervals,
  so an interval around a missed or extra beat leaves the figures instead of being smeared
  into them;
* HeartMath-style coherence (McCraty 2009): intervals resampled at 2 Hz, the latest 64 s,
  detrended, Hann window, every 5 s; highest peak in 0.04-0.26 Hz, peak power over 0.030 Hz
  around it, total power 0.0033-0.4 Hz, ratio ``(peak / (total - peak)) ** 2``;
* breathing rate from the respiratory (RSA) peak of the same interval spectrum.

Every figure is ``None`` while the signal quality is low or there is too little data: the
box never guesses.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from device.heart.beats import Beat, BeatDetector
from device.heart.channels import is_usable
from device.heart.hrv import HrvWindow
from device.heart.samples import SampleBlock
from device.heart.spectrum import COH_WINDOW_S, breathing_rate, coherence_spectrum

__all__ = ["HeartAnalyzer", "HeartState", "breathing_rate", "coherence_spectrum"]

#: Quality (0..1) below which every figure is withheld.
QUALITY_MIN = 0.6
#: Smoothed HR: 60 / mean of the plausible intervals lying within the ``HR_WINDOW_S`` that end
#: at the newest beat (both their beats inside), as offline tools compute a 10 s heart rate;
#: at least ``HR_MIN_INTERVALS`` of them. 10 s is one whole breath at 6/min, where the
#: breath's swing of the rate is largest; the mean of the last 8 intervals (about 7 s) that
#: it replaces swung with the breath by up to 1.4-6.4 bpm there (docs/heart.md).
HR_WINDOW_S = 10.0
HR_MIN_INTERVALS = 3
#: Rolling HRV window, s, and the plausible-interval time it needs before it is shown.
HRV_WINDOW_S = 60.0
HRV_MIN_COVER_S = 45.0
HRV_MIN_DIFFS = 20
#: Session HRV needs at least this many successive differences.
SESSION_MIN_DIFFS = 30
#: Short-term HRV window (the Task Force's standard 5 minutes), s; it needs as many
#: differences as the session figures.
SHORT_TERM_S = 300.0
#: Coherence: update period (s of stream), needed coverage of its window (share).
COH_PERIOD_S = 5.0
COH_MIN_COVER = 0.8
#: Channel check: the window (s) over which a channel must be neither clipped nor flat, and
#: how often it is checked (s of stream).
CHANNEL_WINDOW_S = 2.0
CHANNEL_CHECK_S = 1.0
#: Beats kept in memory, s (the longest window plus margin).
KEEP_S = 70.0


@dataclass
class HeartState:
    """What the heart analysis knows at time ``t``; figures are ``None`` when withheld."""

    #: Time of the latest sample, s since stream start.
    t: float
    #: Smoothed heart rate, beats/min.
    hr_bpm: float | None
    #: Heart rate from the latest interval, beats/min.
    hr_beat_bpm: float | None
    #: RMSSD over the last 60 s, ms.
    rmssd_ms: float | None
    #: SDNN over the last 60 s, ms.
    sdnn_ms: float | None
    #: RMSSD over the session, ms.
    rmssd_session_ms: float | None
    #: SDNN over the session, ms.
    sdnn_session_ms: float | None
    #: HeartMath-style coherence ratio (0 upwards; about 0.5 / 1.8 split low/medium/high).
    coherence: float | None
    #: Breathing rate from the respiratory peak of the interval series, breaths/min.
    breathing_bpm: float | None
    #: Signal quality 0..1 (0 without contact).
    quality: float
    #: Finger contact as the sensor reports it.
    contact: bool
    #: Beats detected since the start.
    beats: int
    #: RMSSD over the last 5 minutes, ms.
    rmssd_5min_ms: float | None = None
    #: SDNN over the last 5 minutes, ms.
    sdnn_5min_ms: float | None = None


class HeartAnalyzer:
    """Turns the sensor's sample blocks into a :class:`HeartState`.

    The MAX30102's infrared count *falls* as blood arrives, so the analysis runs on the
    negated ``ir``. Samples marked ``led_step`` are held at the last good value and the
    level after the step is joined on, so an LED current change is not taken for a beat.
    Without contact nothing is analysed; when contact returns the detector restarts as after
    a gap.
    """

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = float(rate_hz)
        self.detector = BeatDetector(self.rate_hz)
        self._t = 0.0
        self._contact = True
        self._restart = False
        self._offset = 0.0
        self._held: float | None = None
        self._holding = False
        self._beats: deque[Beat] = deque()
        self._last: Beat | None = None
        # Session sums: Welford mean/M2 of plausible intervals (ms), successive differences.
        self._n = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._sd_n = 0
        self._sd_sum = 0.0
        self._next_coh = COH_PERIOD_S
        self._minute = HrvWindow(HRV_WINDOW_S)
        self._five_min = HrvWindow(SHORT_TERM_S)
        self._coherence: float | None = None
        #: Samples that were not finite numbers (analysed as a gap).
        self.bad_samples = 0
        #: The channel analysed: ``"ir"``, or ``"red"`` while the infrared one is clipped or
        #: flat and the red one is not.
        self.channel = "ir"
        #: Times the analysis moved to the other channel.
        self.channel_switches = 0
        self._recent_ir: deque[np.ndarray] = deque()
        self._recent_red: deque[np.ndarray] = deque()
        self._recent_n = 0
        self._next_check = CHANNEL_CHECK_S
        self._cache_key: tuple[int, int] | None = None
        self._cached: tuple[float | None, ...] = (None,) * 5
        self._breathing: float | None = None

    @property
    def latency_s(self) -> float:
        """Delay from a beat to its report, s (the detector's fixed look-ahead)."""
        return self.detector.latency_s

    def feed(self, block: SampleBlock) -> list[Beat]:
        """Analyse one block of samples; return the beats it revealed."""
        if block.rate_hz != self.rate_hz:
            raise ValueError(
                f"sample block at {block.rate_hz:g} Hz fed to a {self.rate_hz:g} Hz analyser"
            )
        n = len(block.ir)
        if n:
            self._t = (block.start_index + n - 1) / self.rate_hz
        self._contact = bool(block.contact)
        if not n:
            return []
        if not block.contact:
            self._restart = True
            self._holding = False
            return []
        if block.gap_before or self._restart:
            self._recent_ir.clear()
            self._recent_red.clear()
            self._recent_n = 0
        switched = self._check_channel(block)
        x = -np.asarray(block.ir if self.channel == "ir" else block.red, dtype=float)
        gap = block.gap_before or self._restart or switched
        if gap:
            self._holding = False
            self._offset = 0.0
        beats = self._detect(self._join_led_steps(x, block.led_step), gap, block.start_index)
        for b in beats:
            self._add(b)
        while self._next_coh <= self._t:
            self._update_coherence(self._next_coh)
            self._next_coh += COH_PERIOD_S
        return beats

    def _detect(self, x: np.ndarray, gap: bool, start: int) -> list[Beat]:
        """Run the detector on ``x`` (stream index ``start``); unreadable samples are a gap."""
        finite = np.isfinite(x)
        if finite.all():
            self._restart = False
            return self.detector.process_beats(x, gap=gap, index=start)
        # Analyse the readable runs on either side of the unreadable samples.
        self.bad_samples += int(len(x) - finite.sum())
        beats: list[Beat] = []
        edges = np.flatnonzero(np.diff(finite.astype(np.int8))) + 1
        for a, b in zip(
            np.concatenate([[0], edges]), np.concatenate([edges, [len(x)]]), strict=True
        ):
            if finite[a]:
                beats += self.detector.process_beats(x[a:b], gap=gap or a > 0, index=start + int(a))
        self._restart = not finite[-1]
        if self._restart:
            self._holding = False
        return beats

    def snapshot(self) -> HeartState:
        """The figures now (withheld as ``None`` while quality is low)."""
        quality = self.detector.quality if self._contact else 0.0
        ok = quality >= QUALITY_MIN
        t = self._t
        hr = hr_beat = rmssd = sdnn = rmssd_5 = sdnn_5 = None
        if ok:
            # The windowed figures change only with a new beat or as a second passes.
            key = (self.detector.beats, math.floor(t))
            if key != self._cache_key:
                self._cache_key = key
                self._cached = (
                    self._smoothed_hr(t),
                    *self._minute.figures(t, HRV_MIN_DIFFS, HRV_MIN_COVER_S),
                    *self.short_term_hrv(),
                )
            hr, rmssd, sdnn, rmssd_5, sdnn_5 = self._cached
            last = self._last
            if last is not None and last.valid and last.ibi and t - last.t <= 2.0 * last.ibi + 1:
                hr_beat = 60.0 / last.ibi
        s_rmssd, s_sdnn = self.session_hrv() if ok else (None, None)
        return HeartState(
            t=t,
            hr_bpm=hr,
            hr_beat_bpm=hr_beat,
            rmssd_ms=rmssd,
            sdnn_ms=sdnn,
            rmssd_session_ms=s_rmssd,
            sdnn_session_ms=s_sdnn,
            coherence=self._coherence if ok else None,
            breathing_bpm=self._breathing if ok else None,
            quality=quality,
            contact=self._contact,
            beats=self.detector.beats,
            rmssd_5min_ms=rmssd_5,
            sdnn_5min_ms=sdnn_5,
        )

    def session_hrv(self) -> tuple[float | None, float | None]:
        """Session RMSSD and SDNN in ms, whatever the quality now (``None`` if too few)."""
        if self._sd_n < SESSION_MIN_DIFFS:
            return None, None
        return math.sqrt(self._sd_sum / self._sd_n), math.sqrt(self._m2 / (self._n - 1))

    def short_term_hrv(self) -> tuple[float | None, float | None]:
        """RMSSD and SDNN in ms over the last 5 minutes of beats, whatever the quality now.

        ``None`` while that window holds fewer than 30 successive differences. This is what a
        session summary records beside the session figures.
        """
        return self._five_min.figures(self._t, SESSION_MIN_DIFFS)

    def __repr__(self) -> str:
        return (
            f"<HeartAnalyzer rate={self.rate_hz:g} Hz t={self._t:.1f} s "
            f"beats={self.detector.beats} quality={self.detector.quality:.2f}>"
        )

    # --- internals -----------------------------------------------------------------------

    def _check_channel(self, block: SampleBlock) -> bool:
        """Keep the last samples of both channels; once a second, move to the other channel
        when the one analysed is clipped or flat and the other is not. ``True`` on a move
        (the detector then restarts as after a gap)."""
        self._recent_ir.append(np.asarray(block.ir, dtype=float))
        self._recent_red.append(np.asarray(block.red, dtype=float))
        self._recent_n += len(block.ir)
        keep = round(CHANNEL_WINDOW_S * self.rate_hz)
        while self._recent_n - len(self._recent_ir[0]) >= keep:
            self._recent_n -= len(self._recent_ir.popleft())
            self._recent_red.popleft()
        if self._t < self._next_check or self._recent_n < keep:
            return False
        self._next_check = self._t + CHANNEL_CHECK_S
        ir = np.concatenate(self._recent_ir)
        red = np.concatenate(self._recent_red)
        now, other = (ir, red) if self.channel == "ir" else (red, ir)
        if is_usable(now) or not is_usable(other):
            return False
        self.channel = "red" if self.channel == "ir" else "ir"
        self.channel_switches += 1
        return True

    def _join_led_steps(self, x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        if not self._holding and (mask is None or not np.any(mask)):
            if self._offset:
                x += self._offset
            if len(x) and math.isfinite(x[-1]):
                self._held = float(x[-1])
            return x
        mask = np.zeros(len(x), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        edges = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [len(x)]])
        for a, b in zip(starts, ends, strict=True):
            if mask[a]:
                self._hold(x[a:b])
            else:
                self._join(x[a:b])
        return x

    def _hold(self, run: np.ndarray) -> None:
        """Samples marked as an LED step: held at the last good level (in place)."""
        if self._held is None or not math.isfinite(self._held):
            self._held = float(run[0] + self._offset)
        run[:] = self._held
        self._holding = True

    def _join(self, run: np.ndarray) -> None:
        """Samples after a step: the level after it joined onto the level before (in place)."""
        if self._holding and self._held is not None and math.isfinite(run[0]):
            self._offset = self._held - float(run[0])
            self._holding = False
        run += self._offset
        if math.isfinite(run[-1]):
            self._held = float(run[-1])

    def _add(self, b: Beat) -> None:
        self._beats.append(b)
        while self._beats and self._beats[0].t < b.t - KEEP_S:
            self._beats.popleft()
        prev = self._last
        self._last = b
        if not b.valid or b.ibi is None:
            return
        ms = b.ibi * 1000.0
        self._n += 1
        delta = ms - self._mean
        self._mean += delta / self._n
        self._m2 += delta * (ms - self._mean)
        diff = None
        # A difference only between adjacent intervals: after a flat run the first beat
        # reported closes an interval from a beat found but not reported.
        if (
            prev is not None
            and prev.valid
            and prev.ibi is not None
            and abs(b.t - b.ibi - prev.t) < 1e-6
        ):
            diff = ms - prev.ibi * 1000.0
            self._sd_n += 1
            self._sd_sum += diff * diff
        self._minute.add(b.t, ms, diff)
        self._five_min.add(b.t, ms, diff)

    def _smoothed_hr(self, t: float) -> float | None:
        """60 / mean of the plausible intervals within the 10 s ending at the newest beat,
        if that beat is at most 10 s old (s of stream time ``t``)."""
        if not self._beats or self._beats[-1].t < t - HR_WINDOW_S:
            return None
        start = self._beats[-1].t - HR_WINDOW_S
        total = 0.0
        n = 0
        for b in reversed(self._beats):
            if b.t < start or (b.ibi is not None and b.t - b.ibi < start - 1e-9):
                break
            if b.valid and b.ibi:
                total += b.ibi
                n += 1
        if n < HR_MIN_INTERVALS:
            return None
        return 60.0 * n / total

    def _update_coherence(self, end: float) -> None:
        start = end - COH_WINDOW_S
        sel = [b for b in self._beats if b.valid and b.ibi is not None and b.t >= start]
        ibis = [b.ibi for b in sel if b.ibi is not None]
        # The plausible intervals must cover most of the window, the start included.
        if (
            len(ibis) < 2
            or sum(ibis) < COH_MIN_COVER * COH_WINDOW_S
            or sel[0].t - ibis[0] > start + (1.0 - COH_MIN_COVER) * COH_WINDOW_S
        ):
            self._coherence = None
            self._breathing = None
            return
        self._coherence, self._breathing = coherence_spectrum(
            np.array([b.t for b in sel]), np.array(ibis), end
        )
