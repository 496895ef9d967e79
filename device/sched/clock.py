"""Clocks for the box's loop.

The loop's time is seconds since the box started. With a sound card the card paces the
loop, so the :class:`RealClock` simply reads the monotonic clock. With a WAV or null sink
nothing paces it: the :class:`VirtualClock` counts the audio frames rendered (the audio
clock is the master) and, for ``--speed N``, sleeps so that audio time runs N times faster
than wall time; ``--speed max`` never sleeps, so a test runs a whole night in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RealClock:
    """Monotonic wall time since construction; ``advance`` only records the frames."""

    paced_by_sink = True

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._t0 = monotonic()
        self.frames = 0

    def now(self) -> float:
        """Seconds since the clock started."""
        return self._monotonic() - self._t0

    def advance(self, frames: int, sample_rate: int) -> None:
        """Note that ``frames`` more frames were played (the sound card keeps time)."""
        self.frames += frames

    def __repr__(self) -> str:
        return f"<RealClock t={self.now():.3f}s>"


class VirtualClock:
    """Audio time: frames rendered / sample rate, optionally paced against wall time.

    :param speed: how many times faster than real time to run; ``None`` means as fast as the
        machine can (no sleeping at all).
    """

    paced_by_sink = False

    def __init__(
        self,
        speed: float | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 or None (as fast as possible), not {speed!r}")
        self.speed = speed
        self.frames = 0
        self._t = 0.0
        self._monotonic = monotonic
        self._sleep = sleep
        self._wall0 = monotonic()

    def now(self) -> float:
        """Seconds of audio rendered so far."""
        return self._t

    def advance(self, frames: int, sample_rate: int) -> None:
        """Move time on by ``frames`` audio frames; sleep to keep pace when a speed is set."""
        self.frames += frames
        self._t = self.frames / sample_rate
        if self.speed is None:
            return
        # Sleep towards the wall-clock instant this audio time belongs to; computing it from
        # the start (not from the previous block) keeps long runs free of drift.
        ahead = self._wall0 + self._t / self.speed - self._monotonic()
        if ahead > 0:
            self._sleep(ahead)

    def __repr__(self) -> str:
        speed = "max" if self.speed is None else f"{self.speed:g}x"
        return f"<VirtualClock t={self._t:.3f}s speed={speed}>"
