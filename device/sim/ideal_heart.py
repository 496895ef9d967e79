"""The heart state a perfect analyser would report for a simulated listener (no PPG).

:class:`IdealHeart` reads a :class:`~device.sim.listener.Listener` and answers what
``device.heart.analysis.HeartAnalyzer`` would, for simulations and tests that need no pulse
waveform: the breathing estimate and coherence lag like a 64-s spectral window, the
beat-to-beat rate holds each whole beat's rate, contact and quality can be set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from device.sim.listener import Listener


class IdealHeart:
    """The heart state a perfect analyser would report for a listener (no PPG needed).

    The breathing estimate lags the true rate like a spectral estimate over a window of
    ``breath_window_s``; the coherence is the listener's model coherence through the same
    lag. The beat-to-beat rate is the listener's :attr:`Listener.hr_now_bpm` taken at each
    whole beat and held to the next, so the heart's breathing swing shows in it as in a
    real interval series. ``contact`` and ``quality`` can be set to simulate finger removal.
    """

    def __init__(
        self, listener: Listener, *, breath_window_s: float = 64.0, warmup_s: float = 0.0
    ) -> None:
        self.listener = listener
        self.breath_window_s = breath_window_s
        self.warmup_s = warmup_s
        self._good_since: float | None = None
        self.contact = True
        self.quality = 0.95
        self._breath: float | None = None
        self._coherence: float | None = None
        self._t_last: float | None = None
        self._beats = 0.0
        self._beat_bpm: float | None = None

    def snapshot(self, t: float) -> Any:
        """A ``device.heart.analysis.HeartState`` at ``t`` s (figures ``None`` without contact)."""
        from device.heart.analysis import HeartState

        lst = self.listener
        dt = 0.0 if self._t_last is None else max(0.0, t - self._t_last)
        self._t_last = t
        self._follow_window(dt)
        good = self.contact and self.quality >= 0.6
        self._count_beats(t, dt, good)
        # Like a spectral estimate, breathing and coherence need warmup_s of good signal.
        warm = good and self._good_since is not None and t - self._good_since >= self.warmup_s
        rmssd = 10.0 + 4.0 * lst.rsa_bpm if good else None
        sdnn = None if rmssd is None else 1.2 * rmssd
        return HeartState(
            t=t,
            hr_bpm=lst.hr_mean_bpm if good else None,
            hr_beat_bpm=self._beat_bpm if good else None,
            rmssd_ms=rmssd,
            sdnn_ms=sdnn,
            rmssd_session_ms=rmssd,
            sdnn_session_ms=sdnn,
            coherence=self._coherence if warm else None,
            breathing_bpm=self._breath if warm else None,
            quality=self.quality if self.contact else 0.0,
            contact=self.contact,
            beats=int(self._beats),
        )

    def _follow_window(self, dt: float) -> None:
        """Breathing and coherence follow the listener's through the window's lag."""
        lst = self.listener
        if self._breath is None or self._coherence is None:
            self._breath, self._coherence = lst.breathing_bpm, lst.coherence
        else:
            k = min(1.0, dt / (self.breath_window_s / 2.0))
            self._breath += (lst.breathing_bpm - self._breath) * k
            self._coherence += (lst.coherence - self._coherence) * k

    def _count_beats(self, t: float, dt: float, good: bool) -> None:
        """Count whole beats; the beat-to-beat rate is held from one beat to the next."""
        if not good:
            self._good_since = None
            self._beat_bpm = None
            return
        hr_now = self.listener.hr_now_bpm
        before = int(self._beats)
        self._beats += hr_now / 60.0 * dt
        if self._beat_bpm is None or int(self._beats) != before:
            self._beat_bpm = hr_now
        if self._good_since is None:
            self._good_since = t

    def __repr__(self) -> str:
        return f"<IdealHeart contact={self.contact} quality={self.quality:.2f}>"
