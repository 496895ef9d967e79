"""What the closed loop watches of the heart: signal quality, coherence, heart rate, breathing.

:class:`SignalWatch` is the closed loop's (``device.therapy.closed_loop``) view of the heart
state each control tick: whether the signal is good and since when, a fast and a slow mean
of coherence and of the heart rate (so the loop can tell a falling coherence or a rising
heart), how long coherence has been high, and the highest breathing estimate of a recent
window (the slowest-to-fall view of the listener's breathing the pacer's gates use).

That view (:meth:`SignalWatch.track_breathing`) is the highest estimate of the last
``breath_hold_s``, lowered by as much as the pacer itself fell meanwhile as the estimate
would show it, never below the latest estimate. The estimate is a spectral peak over the
heart analysis' last 64 s, so it trails the breathing by about 32 s; the watch passes the
pacer through the same delay (:attr:`SignalWatch.seen_pacer`). A listener who breathes
with a gliding pacer is thus not taken for one who lags it by the whole window's glide,
while for one who does not follow (their estimate stays up) and for a dip while the pacer
holds, the view stays at the window's peak.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol


class HeartLike(Protocol):
    """What the loop reads of a heart state (``device.heart.analysis.HeartState``)."""

    hr_bpm: float | None
    hr_beat_bpm: float | None
    coherence: float | None
    breathing_bpm: float | None
    quality: float
    contact: bool


def finite(value: float | None) -> float | None:
    """``value`` if it is a finite number, else ``None`` (a NaN never steers the loop)."""
    return value if value is not None and math.isfinite(value) else None


class FastSlow:
    """A 20 s and a 90 s running mean of one figure (``None`` until its first value)."""

    __slots__ = ("fast", "slow")

    def __init__(self) -> None:
        self.fast: float | None = None
        self.slow: float | None = None

    def add(self, value: float, dt: float) -> None:
        """Fold in ``value``, ``dt`` s after the last one."""
        if self.fast is None or self.slow is None:
            self.fast = self.slow = value
        else:
            self.fast += (value - self.fast) * min(1.0, dt / 20.0)
            self.slow += (value - self.slow) * min(1.0, dt / 90.0)


class SignalWatch:
    """The heart state as the closed loop's gates see it (times in s, rates per min).

    ``quality_min``: the lowest signal quality that counts as good; ``coherence_high``: the
    coherence counted as high (it stops counting below 0.75 of it); ``breath_hold_s``: the
    window whose highest breathing estimate :attr:`breath_peak` is; ``estimate_delay_s``:
    how far the breathing estimate trails the breathing (half the heart analysis' 64-s
    window, ``device.heart.analysis.COH_WINDOW_S``).
    """

    def __init__(
        self,
        quality_min: float,
        coherence_high: float,
        breath_hold_s: float,
        estimate_delay_s: float = 32.0,
    ) -> None:
        self.quality_min = quality_min
        self.coherence_high = coherence_high
        self.breath_hold_s = breath_hold_s
        self.estimate_delay_s = estimate_delay_s
        #: The pacer as the breathing estimate would show it, /min (``None``: no pacer).
        self.seen_pacer: float | None = None
        self._seen_peaks: deque[tuple[float, float]] = deque()
        #: Since when the signal has been good / bad (``None`` while it is not).
        self.good_since: float | None = None
        self.bad_since: float | None = None
        #: Since when coherence has been high (``None`` while it is not).
        self.high_since: float | None = None
        self._coh = FastSlow()
        self._hr = FastSlow()
        self._breath_peaks: deque[tuple[float, float]] = deque()

    def good(self, heart: HeartLike | None) -> bool:
        """True when ``heart`` has contact, enough quality and a heart rate."""
        return (
            heart is not None
            and bool(heart.contact)
            and heart.quality >= self.quality_min
            and finite(heart.hr_bpm) is not None
        )

    def observe(self, t: float, dt: float, heart: HeartLike | None) -> bool:
        """Take in the heart state at ``t`` (``dt`` s after the last); True if it is good."""
        good = self.good(heart)
        if good:
            self.bad_since = None
            if self.good_since is None:
                self.good_since = t
        else:
            self.good_since = None
            if self.bad_since is None:
                self.bad_since = t
        if heart is not None and good:
            self._track_coherence(t, dt, finite(heart.coherence))
            hr = finite(heart.hr_bpm)
            if hr is not None:
                self._hr.add(hr, dt)
        return good

    def _track_coherence(self, t: float, dt: float, coherence: float | None) -> None:
        if coherence is None:
            self.high_since = None
            return
        self._coh.add(coherence, dt)
        if coherence >= self.coherence_high:
            if self.high_since is None:
                self.high_since = t
        elif coherence < 0.75 * self.coherence_high:
            self.high_since = None

    def restart_coherence(self) -> None:
        """Forget the coherence means (after a gap in the signal)."""
        self._coh = FastSlow()

    def heart_rising(self) -> bool:
        """The heart speeds up (the 20 s mean 1 bpm above the 90 s mean)."""
        fast, slow = self._hr.fast, self._hr.slow
        return fast is not None and slow is not None and fast > slow + 1.0

    def coherence_falling(self) -> bool:
        """Coherence falls (the 20 s mean well below the 90 s mean) and is not high."""
        fast, slow = self._coh.fast, self._coh.slow
        if fast is None or slow is None:
            return False
        return fast < 0.85 * slow - 0.05 and fast < self.coherence_high

    def see_pacer(self, t: float, dt: float, pacer: float | None) -> None:
        """The pacer played for the ``dt`` s up to ``t``: :attr:`seen_pacer` moves toward it.

        A first-order delay of ``estimate_delay_s``: on a steady glide it trails the pacer
        by as long as the estimate trails the breathing.
        """
        if pacer is None or self.seen_pacer is None or self.estimate_delay_s <= 0.0:
            self.seen_pacer = pacer
        else:
            self.seen_pacer += (pacer - self.seen_pacer) * min(1.0, dt / self.estimate_delay_s)
        _window_max(self._seen_peaks, t, self.breath_hold_s, self.seen_pacer)

    def track_breathing(self, t: float, breathing: float | None) -> float | None:
        """Take in a breathing estimate at ``t``; the gates' view of the breathing, /min.

        The highest estimate of the last ``breath_hold_s``, less the fall of
        :attr:`seen_pacer` from its highest of the same window, never below the latest
        estimate of the window (``None`` without one).
        """
        peaks = self._breath_peaks
        _window_max(peaks, t, self.breath_hold_s, breathing)
        if not peaks:
            return None
        # The queue's tail is the latest estimate of the window, its head the highest.
        latest, peak = peaks[-1][1], peaks[0][1]
        seen = self._seen_peaks
        fall = 0.0 if not seen or self.seen_pacer is None else seen[0][1] - self.seen_pacer
        return max(latest, peak - fall)

    @property
    def breath_peak(self) -> float | None:
        """The highest breathing estimate of the window, /min (``None`` without one)."""
        return self._breath_peaks[0][1] if self._breath_peaks else None

    def __repr__(self) -> str:
        return f"<SignalWatch good_since={self.good_since} bad_since={self.bad_since}>"


def _window_max(
    queue: deque[tuple[float, float]], t: float, span: float, value: float | None
) -> None:
    """Keep ``queue`` the monotonic queue of the last ``span`` s (its head the highest)."""
    while queue and queue[0][0] < t - span:
        queue.popleft()
    if value is not None:
        while queue and queue[-1][1] <= value:
            queue.pop()
        queue.append((t, value))
