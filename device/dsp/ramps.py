"""Rate-limited parameter glides for the segment renderer.

The engine renders audio in segments of a few thousand frames. Every parameter that moves
is a :class:`Glide`: at the start of a segment :meth:`Glide.plan` picks the value the
parameter will have at the segment's end (at most ``rate`` units per second away from the
present value), the renderer interpolates linearly across the segment, and
:meth:`Glide.commit` moves the state to any frame of the segment that was actually played
(all of it normally; fewer frames when an urgent change cuts the segment short).
"""

from __future__ import annotations

import math

import numpy as np

#: Levels at or below this many dB are rendered as exact silence (amplitude 0).
SILENT_DB = -80.0


def db_to_amp(db: float) -> float:
    """Amplitude factor of a level in dB; exactly 0.0 at or below :data:`SILENT_DB`."""
    return 0.0 if db <= SILENT_DB else 10.0 ** (db / 20.0)


def amp_to_db(amp: float) -> float:
    """Level in dB of an amplitude factor; ``-inf`` for 0."""
    return 20.0 * math.log10(amp) if amp > 0.0 else -math.inf


class Glide:
    """A scalar that approaches its target at no more than ``rate`` units per second.

    ``value`` is the present value (at the start of the segment being planned), ``end``
    the planned value at the segment's end.
    """

    __slots__ = ("end", "rate", "target", "value")

    def __init__(self, value: float, rate: float) -> None:
        self.value = float(value)
        self.target = float(value)
        self.end = float(value)
        self.rate = float(rate)

    def plan(self, seconds: float) -> float:
        """Plan the value at the end of a segment lasting ``seconds``; return it."""
        step = self.rate * seconds
        d = self.target - self.value
        self.end = self.target if abs(d) <= step else self.value + math.copysign(step, d)
        return self.end

    def at(self, frac: float) -> float:
        """Value at fraction ``frac`` (0..1) of the planned segment."""
        if self.end == self.value:
            return self.value
        return self.value + (self.end - self.value) * frac

    def commit(self, frac: float) -> None:
        """Move the present value to fraction ``frac`` of the planned segment.

        The plan ends here: until the next :meth:`plan` the glide stands still (a plan
        only partly played must not go on being reported as if it were still playing).
        """
        self.value = self.end if frac >= 1.0 else self.at(frac)
        self.end = self.value

    @property
    def moving(self) -> bool:
        """True while the planned segment changes the value."""
        return self.end != self.value

    def __repr__(self) -> str:
        return f"<Glide value={self.value:.6g} target={self.target:.6g} rate={self.rate:g}/s>"


class LevelGlide(Glide):
    """A level in dB, rate-limited in dB/s, that switches on and off without waiting.

    Below :data:`SILENT_DB` a level is silent. Switching on from silence starts the dB ramp
    at :data:`SILENT_DB` (the amplitude rises linearly from 0 over one segment); switching
    off ramps down to :data:`SILENT_DB` and then to the target (amplitude falls linearly to
    0 over one segment). No amplitude step occurs anywhere.
    """

    __slots__ = ()

    def plan(self, seconds: float) -> float:
        """Plan the level in dB at the end of a segment lasting ``seconds``; return it."""
        step = self.rate * seconds
        if self.value <= SILENT_DB:
            self.end = (
                self.target if self.target <= SILENT_DB else min(self.target, SILENT_DB + step)
            )
            return self.end
        goal = max(self.target, SILENT_DB)
        d = goal - self.value
        self.end = goal if abs(d) <= step else self.value + math.copysign(step, d)
        return self.end

    @property
    def amp(self) -> float:
        """Present amplitude factor."""
        return db_to_amp(self.value)

    @property
    def amp_end(self) -> float:
        """Planned amplitude factor at the segment's end."""
        return db_to_amp(self.end)


def fade_gain(x: float) -> float:
    """Fade gain for fade progress ``x`` in 0..1: 0 at 0, 1 at 1, about 60 dB linear in dB.

    A dB-linear (log) curve sounds even; the small offset makes it start at exact zero.
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    return (10.0 ** (3.0 * (x - 1.0)) - 1e-3) / (1.0 - 1e-3)


class Fade:
    """Fade progress 0 (silent) .. 1 (full) moving at ``rate`` per second, exact per sample.

    Unlike a :class:`Glide`, a fade may end part-way through a segment (a 50 ms mute must
    not wait for the segment's end), so it is rendered as a per-sample gain curve.
    """

    __slots__ = ("_d", "_frames", "end", "rate", "sample_rate", "target", "value")

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = int(sample_rate)
        self.value = 0.0
        self.target = 0.0
        self.end = 0.0
        self.rate = 1.0
        self._d = 0.0
        self._frames = 0

    def plan(self, frames: int) -> float:
        """Plan a segment of ``frames`` frames; return the progress at its end."""
        self._frames = frames
        step = self.rate / self.sample_rate
        self._d = step if self.target > self.value else -step if self.target < self.value else 0.0
        self.end = self.at_frame(frames)
        return self.end

    def at_frame(self, n: int) -> float:
        """Progress ``n`` frames into the planned segment."""
        x = self.value + self._d * n
        return min(max(x, 0.0), 1.0) if self._d >= 0 else max(min(x, 1.0), self.target, 0.0)

    @property
    def moving(self) -> bool:
        """True while the planned segment changes the fade."""
        return self.end != self.value

    def zero_frame(self) -> int | None:
        """First frame of the planned segment at which a fade-out has reached silence."""
        if self.end != 0.0 or self._d >= 0:
            return None
        return math.ceil(self.value / -self._d)

    def curve(self, out: np.ndarray, ramp: np.ndarray) -> np.ndarray:
        """Write the per-sample fade gains for the planned segment into ``out``.

        ``ramp`` is ``arange(frames)`` as float32.
        """
        np.multiply(ramp, self._d, out=out)
        out += self.value
        np.minimum(out, 1.0, out=out)
        np.maximum(out, 0.0, out=out)
        # (10**(3(x-1)) - 1e-3) / (1 - 1e-3), the vector form of fade_gain()
        out -= 1.0
        out *= 3.0 * math.log(10.0)
        np.exp(out, out=out)
        out -= 1e-3
        out *= 1.0 / (1.0 - 1e-3)
        np.maximum(out, 0.0, out=out)
        return out

    def commit(self, played: int) -> None:
        """Move the fade to frame ``played`` of the planned segment."""
        self.value = self.at_frame(played)
