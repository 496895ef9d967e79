"""Twice the sample rate, in place, without allocating: the synthesiser renders at half rate.

FluidSynth's cost is per frame: every voice's interpolation, filter and envelope, and its
reverb (measured here: the reverb alone 0.0024-0.0032 CPU s per s at 48 kHz, ten voices
0.0045 more). Rendered at 24 kHz and brought to 48 kHz here, the composer costs about half
(``bench/dsp_speed.py --mixes b,c,d``; figures in docs/sound.md). What is lost is the
treble above the half rate's band: the synthesiser plays nothing above 12 kHz at 24 kHz,
and this interpolator is down 1 dB at 7 kHz and 4 dB at 10 kHz, its images of 5 kHz 40 dB
under it. Composed music for the night is dark by design (the composer lowers every
voice's cutoff towards sleep; the sleep program's spectral centroid is 500-600 Hz), so the
band kept is the band it uses.

The interpolator is the 6-point Lagrange half-sample filter (3, -25, 150, 150, -25, 3)/256
for the new samples between the old ones, the old ones kept as they are; it runs on
preallocated rows with a three-sample history carried from segment to segment (a delay of
three half-rate frames, 0.13 ms at 48 kHz), so a segment's end joins the next one's start
exactly as inside a segment.

Not libsoxr (which resamples the listener's music, docs/sound.md): its streaming
``ResampleStream.resample_chunk`` returns a new array on every call, and the audio path,
where the synthesiser renders, may not allocate; an exact 2x with a fixed 6-tap filter is
also a few numpy operations per segment, cheaper on a Pi than soxr's HQ filter.
"""

from __future__ import annotations

import numpy as np

#: Half-sample interpolation taps (6-point Lagrange), applied to the history and the input.
TAPS = (3.0 / 256.0, -25.0 / 256.0, 150.0 / 256.0)
#: Samples of history carried between segments.
HISTORY = 5


class Upsampler:
    """Doubles the rate of ``channels`` rows of up to ``frames`` (output) frames each.

    The synthesiser renders into :meth:`input` (contiguous rows, half as many frames), then
    :meth:`run` writes twice as many frames into the caller's rows.
    """

    def __init__(self, channels: int, frames: int) -> None:
        half = frames // 2
        self._ext = np.zeros((channels, HISTORY + half), np.float32)
        self._tmp = np.zeros((channels, half), np.float32)

    def input(self, row: int) -> int:
        """Address of row ``row``'s input (float32, contiguous, after the history)."""
        return int(self._ext[row].ctypes.data) + 4 * HISTORY

    def reset(self) -> None:
        """Forget the history (the synthesiser was silenced)."""
        self._ext[:, :HISTORY].fill(0.0)

    def run(self, out: np.ndarray, half: int) -> None:
        """Write ``2 * half`` frames into ``out`` (rows x frames) from the ``half`` frames
        rendered into the input; keep the last samples as the next segment's history."""
        e = self._ext
        tmp = self._tmp[:, :half]
        even, odd = out[:, 0 : 2 * half : 2], out[:, 1 : 2 * half : 2]
        # output pair n: the old sample e[n + 2] and the point halfway to e[n + 3]
        np.copyto(even, e[:, 2 : half + 2])
        a, b, c = TAPS
        np.add(e[:, 2 : half + 2], e[:, 3 : half + 3], out=odd)
        odd *= c
        np.add(e[:, 1 : half + 1], e[:, 4 : half + 4], out=tmp)
        tmp *= b
        odd += tmp
        np.add(e[:, 0:half], e[:, 5 : half + 5], out=tmp)
        tmp *= a
        odd += tmp
        np.copyto(e[:, :HISTORY], e[:, half : half + HISTORY])
