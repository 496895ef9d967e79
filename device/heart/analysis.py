"""Heart analysis of the PPG stream: heart rate, HRV, coherence and breathing rate.

:class:`HeartAnalyzer` takes the sensor's :class:`~device.heart.samples.SampleBlock` s, runs
the streaming :class:`~device.heart.beats.BeatDetector` on the infrared channel and keeps the
figures the therapy reads through :meth:`HeartAnalyzer.snapshot`:

* heart rate beat to beat and smoothed (mean of the last plausible intervals);
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

__all__ = ["HeartAnalyzer", "HeartState", "breathing_rate", "coherence_spectrum"]

#: Quality (0..1) below which every figure is withheld.
QUALITY_MIN = 0.6
#: Smoothed HR: mean of up to this many plausible intervals from the last ``HR_WINDOW_S``.
HR_BEATS = 8
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
#: Coherence: resampling rate (Hz), window (s), update period (s), needed coverage (share).
COH_RATE_HZ = 2.0
COH_WINDOW_S = 64.0
COH_PERIOD_S = 5.0
COH_MIN_COVER = 0.8
COH_PAD = 512
COH_PEAK_BAND = (0.04, 0.26)
COH_PEAK_WIDTH_HZ = 0.030
COH_TOTAL_BAND = (0.0033, 0.4)
#: Breathing peak search band in Hz (3.6-30 breaths/min) and the share of the band's power
#: the peak must hold to be believed.
BREATH_BAND = (0.06, 0.5)
BREATH_MIN_SHARE = 0.25
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


def coherence_spectrum(
    beat_t: np.ndarray, ibi_s: np.ndarray, end_t: float
) -> tuple[float, float | None]:
    """Coherence ratio and breathing rate (breaths/min or ``None``) of a tachogram.

    ``beat_t`` (s) are the times of beats that close plausible intervals ``ibi_s`` (s); the
    series is interpolated at 2 Hz over the 64 s ending at ``end_t``.
    """
    n = int(COH_WINDOW_S * COH_RATE_HZ)
    grid = end_t - COH_WINDOW_S + np.arange(1, n + 1) / COH_RATE_HZ
    series = np.interp(grid, beat_t, ibi_s * 1000.0)
    k = np.arange(n, dtype=float)
    slope, intercept = np.polyfit(k, series, 1)
    series = (series - (slope * k + intercept)) * np.hanning(n)
    power = np.abs(np.fft.rfft(series, COH_PAD)) ** 2
    freq = np.fft.rfftfreq(COH_PAD, 1.0 / COH_RATE_HZ)
    band = (freq >= COH_PEAK_BAND[0]) & (freq <= COH_PEAK_BAND[1])
    peak_f = freq[band][int(np.argmax(power[band]))]
    peak = float(power[np.abs(freq - peak_f) <= COH_PEAK_WIDTH_HZ / 2.0 + 1e-9].sum())
    total = float(power[(freq >= COH_TOTAL_BAND[0]) & (freq <= COH_TOTAL_BAND[1])].sum())
    rest = total - peak
    coherence = (peak / rest) ** 2 if rest > 0.0 else math.inf
    if total <= 0.0:
        coherence = 0.0
    breathing = breathing_rate(freq, power)
    return coherence, breathing


def breathing_rate(freq: np.ndarray, power: np.ndarray) -> float | None:
    """Breathing rate (breaths/min) from the respiratory peak of a tachogram's spectrum.

    The peak is the strongest *local maximum* of ``power`` inside :data:`BREATH_BAND`, refined
    by a parabola through it and its neighbours (at most half a bin either way). When the band's
    strongest bin sits at an edge with the spectrum still rising beyond it, the peak lies
    outside the band and nothing is returned: extrapolating the parabola there is what gave
    0.6 breaths/min. The answer is always inside the band (3.6-30/min) or ``None``.
    """
    lo, hi = BREATH_BAND
    bb = np.flatnonzero((freq >= lo) & (freq <= hi))
    if len(bb) == 0:
        return None
    band_power = float(power[bb].sum())
    inner = bb[(bb > 0) & (bb < len(power) - 1)]
    peaks = inner[(power[inner] >= power[inner - 1]) & (power[inner] >= power[inner + 1])]
    if band_power <= 0.0 or len(peaks) == 0:
        return None
    i = int(peaks[int(np.argmax(power[peaks]))])
    if power[i] < float(power[bb].max()):
        return None  # the band's strongest power is an edge rising out of it
    share = float(power[np.abs(freq - freq[i]) <= COH_PEAK_WIDTH_HZ / 2.0 + 1e-9].sum())
    if share / band_power < BREATH_MIN_SHARE:
        return None
    a, b, c = power[i - 1], power[i], power[i + 1]
    curve = a - 2.0 * b + c
    offset = min(max(0.5 * (a - c) / curve, -0.5), 0.5) if curve < 0.0 else 0.0
    hz = float(freq[i] + offset * (freq[1] - freq[0]))
    return 60.0 * hz if lo <= hz <= hi else None


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
        x = self._join_led_steps(x, block.led_step)
        finite = np.isfinite(x)
        if finite.all():
            beats = self.detector.process_beats(x, gap=gap, index=block.start_index)
        else:
            # Unreadable samples are a gap: analyse the readable runs on either side.
            self.bad_samples += int(n - finite.sum())
            beats = []
            edges = np.flatnonzero(np.diff(finite.astype(np.int8))) + 1
            for a, b in zip(
                np.concatenate([[0], edges]), np.concatenate([edges, [n]]), strict=True
            ):
                if finite[a]:
                    beats += self.detector.process_beats(
                        x[a:b], gap=gap or a > 0, index=block.start_index + int(a)
                    )
            self._restart = not finite[-1]
            if self._restart:
                self._holding = False
        if finite[-1]:
            self._restart = False
        for b in beats:
            self._add(b)
        while self._next_coh <= self._t:
            self._update_coherence(self._next_coh)
            self._next_coh += COH_PERIOD_S
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
                if self._held is None or not math.isfinite(self._held):
                    self._held = float(x[a] + self._offset)
                x[a:b] = self._held
                self._holding = True
            else:
                if self._holding and self._held is not None and math.isfinite(x[a]):
                    # Join the level after the step onto the level before it.
                    self._offset = self._held - float(x[a])
                    self._holding = False
                x[a:b] += self._offset
                if math.isfinite(x[b - 1]):
                    self._held = float(x[b - 1])
        return x

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
        if prev is not None and prev.valid and prev.ibi is not None:
            diff = ms - prev.ibi * 1000.0
            self._sd_n += 1
            self._sd_sum += diff * diff
        self._minute.add(b.t, ms, diff)
        self._five_min.add(b.t, ms, diff)

    def _smoothed_hr(self, t: float) -> float | None:
        recent: list[float] = []
        for b in reversed(self._beats):
            if b.t < t - HR_WINDOW_S or len(recent) == HR_BEATS:
                break
            if b.valid and b.ibi:
                recent.append(b.ibi)
        if len(recent) < HR_MIN_INTERVALS:
            return None
        return 60.0 / (sum(recent) / len(recent))

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
