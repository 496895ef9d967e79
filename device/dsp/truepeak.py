"""True-peak estimate of a stereo stretch: the peaks between samples, 4x oversampled.

A signal's continuous waveform can peak between its samples (by up to about 3 dB for
noise with energy near Nyquist), and a DAC reconstructs that waveform: a cap on sample
values alone does not cap the output. Following ITU-R BS.1770's true-peak meter, the
signal is interpolated at the three points between samples (4x oversampling) with a
16-tap Lanczos kernel (``sinc(t) sinc(t/8)``: within 0.2 dB of a long FIR on the noise
beds), and each chunk's peak is the largest of the samples and the interpolated points,
raised by :data:`MARGIN` for what the short kernel misses. The first samples look back at
the seven samples before the stretch; the last look ahead at copies of its last sample.
"""

from __future__ import annotations

import numpy as np

#: Oversampling factor and taps per interpolated point (the kernel spans -7..+8 samples).
OVERSAMPLE = 4
TAPS = 16
_BACK = 7
_AHEAD = TAPS - 1 - _BACK
#: Interpolated points are raised by this factor (0.3 dB) before they count.
MARGIN = 10.0 ** (0.3 / 20.0)


def lanczos_phases() -> np.ndarray:
    """Kernel ``(OVERSAMPLE - 1, TAPS)``: weights of x[n-3 .. n+4] for the point n + p/4."""
    k = np.arange(-_BACK, _AHEAD + 1, dtype=np.float64)
    out = np.empty((OVERSAMPLE - 1, TAPS))
    for i, p in enumerate(range(1, OVERSAMPLE)):
        t = k - p / OVERSAMPLE
        w = np.sinc(t) * np.sinc(t / (TAPS / 2))  # Lanczos, a = TAPS / 2
        out[i] = w / w.sum()
    return out.astype(np.float32)


class TruePeak:
    """Per-chunk true peaks of ``(2, m)`` stretches up to ``max_frames`` frames."""

    def __init__(self, max_frames: int) -> None:
        self.kernel = lanczos_phases()
        self._x = np.zeros((2, max_frames + TAPS - 1), np.float32)
        self._y = np.zeros((2, max_frames), np.float32)
        self._t = np.zeros((2, max_frames), np.float32)
        self._a = np.zeros((2, max_frames), np.float32)
        #: The last samples of the previous stretch (what comes before the next one).
        self.before = np.zeros((2, _BACK), np.float32)

    def chunk_peaks(self, x: np.ndarray, chunk: int, out: np.ndarray) -> None:
        """Write the true peak of each ``chunk`` of ``x`` (both channels) into ``out``."""
        m = x.shape[1]
        c = m // chunk
        xs = self._x[:, : m + TAPS - 1]
        xs[:, :_BACK] = self.before
        xs[:, _BACK : _BACK + m] = x
        xs[:, _BACK + m :] = x[:, m - 1 : m]
        best = self._a[:, :m]
        np.abs(x, out=best)
        y, t = self._y[:, :m], self._t[:, :m]
        for phase in self.kernel:
            np.multiply(xs[:, 0:m], phase[0], out=y)
            for k in range(1, TAPS):
                np.multiply(xs[:, k : k + m], phase[k], out=t)
                y += t
            np.abs(y, out=y)
            y *= MARGIN
            np.maximum(best, y, out=best)
        pk2 = self._t[:, :c]
        np.max(best.reshape(2, c, chunk), axis=2, out=pk2)
        np.maximum(pk2[0], pk2[1], out=out[:c])

    def remember(self, x: np.ndarray) -> None:
        """Keep the last samples of ``x`` (the output just made) for the next stretch."""
        self.before[:] = x[:, -_BACK:]
