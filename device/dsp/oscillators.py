"""A bank of sine oscillators rendered a whole segment at a time, phase-continuous.

Each row is one sine. A segment is rendered in closed form: a linear frequency glide from
the row's present frequency ``f0`` to its planned end frequency ``f1`` over ``S`` frames
has the phase ``p0 + w0*n + (w1 - w0)*n**2/(2*S)`` (``w`` in radians per frame), so a glide
is smooth inside the segment and the phase carries on exactly into the next one. Phases
are kept in float64 between segments and wrapped, so a night of playback loses nothing.
"""

from __future__ import annotations

import math

import numpy as np

TWO_PI = 2.0 * math.pi


class OscillatorBank:
    """``rows`` sine oscillators rendered into a preallocated ``(rows, max_frames)`` buffer.

    Frequencies are in Hz; :attr:`freq` holds the present frequency of every row and
    :attr:`freq_end` the planned frequency at the end of the segment being rendered.
    """

    def __init__(self, rows: int, max_frames: int, sample_rate: int) -> None:
        self.rows = int(rows)
        self.sample_rate = int(sample_rate)
        self.freq = np.zeros(self.rows)
        self.freq_end = np.zeros(self.rows)
        self.phase = np.zeros(self.rows)
        self.out = np.zeros((self.rows, max_frames), np.float32)
        self._tmp = np.zeros((self.rows, max_frames), np.float32)
        self._n = np.arange(max_frames, dtype=np.float32)
        self._n2 = self._n * self._n
        self._w0 = np.zeros((self.rows, 1), np.float32)
        self._c = np.zeros((self.rows, 1), np.float32)
        self._p0 = np.zeros((self.rows, 1), np.float32)
        self._k = TWO_PI / self.sample_rate
        self._frames = 0

    def render(
        self, frames: int, lo: int = 0, hi: int | None = None, glide: bool | None = None
    ) -> np.ndarray:
        """Render rows ``lo:hi`` for ``frames`` frames; return the ``(rows, frames)`` view.

        Rows outside ``lo:hi`` are not computed (their gain is zero this segment). ``glide``
        says whether any frequency moves this segment (``None``: find out).
        """
        hi = self.rows if hi is None else hi
        self._frames = frames
        out = self.out[lo:hi, :frames]
        if hi <= lo:
            return out
        w0 = self._w0[lo:hi, 0]
        np.multiply(self.freq[lo:hi], self._k, out=w0, casting="same_kind")
        np.copyto(self._p0[lo:hi, 0], self.phase[lo:hi], casting="same_kind")
        np.multiply(self._w0[lo:hi], self._n[:frames], out=out)
        if glide is None:
            glide = bool(np.any(self.freq_end[lo:hi] != self.freq[lo:hi]))
        if glide:
            c = self._c[lo:hi, 0]
            np.subtract(self.freq_end[lo:hi], self.freq[lo:hi], out=c, casting="same_kind")
            np.multiply(c, self._k / (2.0 * frames), out=c)
            tmp = self._tmp[lo:hi, :frames]
            np.multiply(self._c[lo:hi], self._n2[:frames], out=tmp)
            np.add(out, tmp, out=out)
        np.add(out, self._p0[lo:hi], out=out)
        np.sin(out, out=out)
        return out

    def skip(self, frames: int) -> None:
        """Plan a segment of ``frames`` frames without computing it (the bank is silent)."""
        self._frames = frames

    def commit(self, played: int) -> None:
        """Advance every row's phase and frequency by ``played`` frames of the last segment."""
        s = self._frames or 1
        n = float(played)
        w0 = self.freq * self._k
        w1 = self.freq_end * self._k
        self.phase += w0 * n + (w1 - w0) * (n * n / (2.0 * s))
        np.remainder(self.phase, TWO_PI, out=self.phase)
        if played >= s:
            self.freq[:] = self.freq_end
        else:
            self.freq += (self.freq_end - self.freq) * (n / s)

    def reset_rows(self, lo: int, hi: int, freq: np.ndarray | float) -> None:
        """Set rows ``lo:hi`` to new frequencies at once (only while their gain is zero)."""
        self.freq[lo:hi] = freq
        self.freq_end[lo:hi] = freq
