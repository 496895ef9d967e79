"""Isochronic pulse envelope: raised-cosine pulses at a set rate and duty cycle.

One pulse cycle is a table of :data:`TABLE_SIZE` points indexed by a 32-bit phase
accumulator (the pulse rate may change every segment; the phase never jumps). The duty
cycle is the pulse's width at half height as a share of the period. Edges are raised
cosines: the attack takes 20 % of the pulse width, the release 40 % (a brisk onset and a
softer decay), and neither is ever shorter than :data:`MIN_EDGE_S`.
"""

from __future__ import annotations

import numpy as np

from device.sound.targets import DUTY_RANGE, RATE_RANGE

#: Shortest raised-cosine edge in seconds (shorter edges splatter into clicks).
MIN_EDGE_S = 0.005
#: Points in one pulse cycle (2**14).
TABLE_BITS = 14
TABLE_SIZE = 1 << TABLE_BITS
_SHIFT = 32 - TABLE_BITS
_ACC = 1 << 32


def pulse_shape(duty: float, rate_hz: float) -> tuple[float, float, float]:
    """Attack, plateau and release of one pulse as shares of the period.

    ``duty`` is the width at half height; edges are at least :data:`MIN_EDGE_S` long.
    """
    if not DUTY_RANGE[0] <= duty <= DUTY_RANGE[1]:
        raise ValueError(f"isochronic duty {duty!r} is outside {DUTY_RANGE[0]}..{DUTY_RANGE[1]}")
    if not RATE_RANGE[0] <= rate_hz <= RATE_RANGE[1]:
        raise ValueError(
            f"isochronic rate {rate_hz!r} Hz is outside {RATE_RANGE[0]}..{RATE_RANGE[1]} Hz"
        )
    floor = MIN_EDGE_S * rate_hz
    attack = max(floor, 0.2 * duty)
    release = max(floor, 0.4 * duty)
    plateau = duty - 0.5 * (attack + release)
    return attack, plateau, release


class PulseEnvelope:
    """Renders the isochronic envelope (0..1) for a segment into a preallocated buffer."""

    def __init__(self, max_frames: int, sample_rate: int) -> None:
        self.sample_rate = int(sample_rate)
        self.table = np.zeros(TABLE_SIZE + 1, np.float32)
        self._grid = (np.arange(TABLE_SIZE, dtype=np.float64) / TABLE_SIZE).astype(np.float32)
        self._a = np.zeros(TABLE_SIZE, np.float32)
        self._b = np.zeros(TABLE_SIZE, np.float32)
        self._n = np.arange(max_frames, dtype=np.int64)
        self._idx = np.zeros(max_frames, np.int64)
        self.out = np.zeros(max_frames, np.float32)
        self.acc = 0
        self.rate_hz = 10.0
        self._inc = 0
        self._frames = 0
        self._key: tuple[int, int, int] | None = None
        self.set_shape(0.45, 10.0)

    def set_shape(self, duty: float, rate_hz: float) -> None:
        """Rebuild the cycle table when the pulse shape changed (quantised to 1/1024)."""
        attack, plateau, release = pulse_shape(duty, rate_hz)
        key = (round(attack * 1024), round(plateau * 1024), round(release * 1024))
        if key == self._key:
            return
        self._key = key
        g, a, b = self._grid, self._a, self._b
        # rising edge x = u/attack, falling edge x = (end - u)/release, envelope min of both
        np.multiply(g, 1.0 / attack, out=a)
        np.subtract(attack + plateau + release, g, out=b)
        np.multiply(b, 1.0 / release, out=b)
        np.minimum(a, b, out=a)
        np.clip(a, 0.0, 1.0, out=a)
        np.multiply(a, np.float32(np.pi), out=a)
        np.cos(a, out=a)
        t = self.table[:TABLE_SIZE]
        np.multiply(a, -0.5, out=t)
        t += 0.5
        self.table[TABLE_SIZE] = self.table[0]

    def render(self, frames: int, rate_hz: float) -> np.ndarray:
        """Envelope for the next ``frames`` frames at ``rate_hz`` pulses per second."""
        self._frames = frames
        self.rate_hz = rate_hz
        self._inc = round(rate_hz / self.sample_rate * _ACC)
        idx = self._idx[:frames]
        np.multiply(self._n[:frames], self._inc, out=idx)
        idx += self.acc
        np.right_shift(idx, _SHIFT, out=idx)
        np.bitwise_and(idx, TABLE_SIZE - 1, out=idx)
        out = self.out[:frames]
        np.take(self.table, idx, out=out, mode="clip")
        return out

    def skip(self, frames: int, rate_hz: float) -> None:
        """Plan a segment at ``rate_hz`` without computing the envelope (nobody uses it)."""
        self._frames = frames
        self.rate_hz = rate_hz
        self._inc = round(rate_hz / self.sample_rate * _ACC)

    def commit(self, played: int) -> None:
        """Advance the pulse phase by ``played`` frames of the last segment."""
        self.acc = (self.acc + self._inc * played) % _ACC

    @property
    def phase(self) -> float:
        """Present pulse phase in cycles (0..1)."""
        return self.acc / _ACC
