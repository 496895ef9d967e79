"""What the closed loop watches of the heart: signal quality, coherence, heart rate, breathing.

:class:`SignalWatch` is the closed loop's (``device.therapy.closed_loop``) view of the heart
state each control tick: whether the signal is good and since when, a fast and a slow mean
of coherence and of the heart rate (so the loop can tell a falling coherence or a rising
heart), how long coherence has been high, and the highest breathing estimate of a recent
window (the slowest-to-fall view of the listener's breathing the pacer's gates use).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol


class HeartLike(Protocol):
    """What the loop reads of a heart state (``device.dsp.heart.HeartState``)."""

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
    window whose highest breathing estimate :attr:`breath_peak` is.
    """

    def __init__(self, quality_min: float, coherence_high: float, breath_hold_s: float) -> None:
        self.quality_min = quality_min
        self.coherence_high = coherence_high
        self.breath_hold_s = breath_hold_s
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

    def track_breathing(self, t: float, breathing: float | None) -> float | None:
        """Take in a breathing estimate at ``t``; the highest of the last ``breath_hold_s``."""
        peaks = self._breath_peaks
        while peaks and peaks[0][0] < t - self.breath_hold_s:
            peaks.popleft()
        if breathing is not None:
            # A monotonic queue: its head is the highest estimate of the window.
            while peaks and peaks[-1][1] <= breathing:
                peaks.pop()
            peaks.append((t, breathing))
        return self.breath_peak

    @property
    def breath_peak(self) -> float | None:
        """The highest breathing estimate of the window, /min (``None`` without one)."""
        return self._breath_peaks[0][1] if self._breath_peaks else None

    def __repr__(self) -> str:
        return f"<SignalWatch good_since={self.good_since} bad_since={self.bad_since}>"
