"""A simulated listener's heart as the session runner reads it: no PPG, no analysis.

``bedside render --listener KIND`` closes the loop on :class:`~device.sim.listener.IdealHeart`
(the heart state a perfect analyser would report). :class:`IdealFeed` gives it the face of
the box's :class:`~device.heart.feed.HeartFeed`, so a render's session runs through the same
:class:`~device.box.session_runner.SessionRunner` as the box's; :meth:`IdealFeed.step` moves
the listener with what plays, as the box's sensor task moves a ``--sim`` listener.
"""

from __future__ import annotations

from device.exc import ConfigError
from device.heart.analysis import HeartState
from device.sim.listener import IdealHeart, Listener
from device.sound.targets import SoundTargets


def make_listener(kind: str, seed: int) -> Listener:
    """The simulated listener of kind ``kind`` (a built-in kind or a listener file).

    :raises ConfigError: no such kind, or a bad listener file (names ``sim.listener``).
    """
    try:
        return Listener(kind, seed=seed)
    except ConfigError:
        raise
    except (ValueError, OSError) as exc:
        text = str(exc) if isinstance(exc, ValueError) else f"listener file {kind}: {exc}"
        raise ConfigError(text, key="sim.listener", value=kind) from None


class IdealFeed:
    """The ideal heart of a simulated listener of kind ``kind`` (or a listener file).

    :raises ConfigError: no such listener kind, or a bad listener file.
    """

    def __init__(self, kind: str, *, seed: int) -> None:
        self.listener = make_listener(kind, seed)
        self.heart = IdealHeart(self.listener)
        self._t = 0.0

    def step(self, t: float, pacer_bpm: float | None, targets: SoundTargets | None) -> None:
        """Advance the listener to loop time ``t`` s under what plays (nothing before a session)."""
        if targets is not None:
            self.listener.step(t, t - self._t, pacer_bpm, targets)
        self._t = t

    def snapshot(self, now: float) -> HeartState:
        """The heart state at ``now`` s."""
        state: HeartState = self.heart.snapshot(now)
        return state

    def update(self, now: float) -> HeartState:
        """The heart state of this control tick."""
        return self.snapshot(now)

    def standby(self, on: bool) -> None:
        """Nothing to darken: the listener is always there."""

    def hrv_summary(self) -> dict[str, float | None]:
        """No interval series is kept: no HRV figures."""
        return dict.fromkeys(("rmssd_ms", "sdnn_ms", "rmssd_5min_ms", "sdnn_5min_ms"))

    def take_beats(self) -> list[tuple[float, float | None, bool]]:
        """No beats are detected from an ideal heart: a render records no RR intervals."""
        return []

    def __repr__(self) -> str:
        return f"<IdealFeed {self.listener.kind}>"
