"""Master peak limiter with a hard ceiling, working on whole segments.

The segment is its own look-ahead: the peak of every chunk (a few ms) is known before any
of it plays. The gain needed by each chunk is ``threshold / peak`` (at most 1); the gain
envelope may fall as fast as needed but rises at no more than ``release_db_per_s``
(computed without a loop: a running minimum in the log domain). Gains at chunk boundaries
are the minimum of the two neighbouring chunks' needs, and the gain is interpolated
linearly in between, so no sample of a chunk ever gets more gain than that chunk allows:
the output never exceeds the threshold. Only when the first chunk of a segment needs less
gain than the previous segment ended on (the cap was just lowered) is that chunk also
clipped at the threshold, so the ceiling holds even then.

Near the threshold the chunk peaks are *true* peaks (``device/dsp/truepeak.py``: the
waveform between the samples, 4x oversampled), so the reconstructed output stays under
the cap too, not only its samples.
"""

from __future__ import annotations

import math

import numpy as np

from device.dsp.truepeak import TruePeak

#: Stretches whose sample peak is within this factor (4 dB) of the threshold get their
#: true peak estimated (noise can peak up to about 3 dB between samples).
TP_HEADROOM = 10.0 ** (4.0 / 20.0)
#: Clipping puts energy near Nyquist, whose peaks between samples reach about 1.3 dB above
#: the clip level on the noise beds: the rescue clip sits 2 dB under the threshold.
CLIP_TRUE_PEAK = 10.0 ** (-2.0 / 20.0)


def chunk_size(segment_frames: int, preferred: int = 256) -> int:
    """Largest divisor of ``segment_frames`` not above ``preferred`` (at least 32 if any)."""
    for d in range(min(preferred, segment_frames), 31, -1):
        if segment_frames % d == 0:
            return d
    for d in range(preferred + 1, segment_frames + 1):
        if segment_frames % d == 0:
            return d
    return segment_frames


class SegmentLimiter:
    """Limits a (2, frames) stretch in place to a threshold given per stretch.

    A stretch is a whole segment or its tail (any whole number of chunks up to
    ``segment_frames``); ``chunk`` must divide ``segment_frames``.
    """

    def __init__(
        self,
        segment_frames: int,
        sample_rate: int,
        release_db_per_s: float = 20.0,
        chunk: int | None = None,
    ) -> None:
        self.frames = int(segment_frames)
        self.chunk = chunk_size(self.frames) if chunk is None else int(chunk)
        if self.chunk <= 0 or self.frames % self.chunk:
            raise ValueError(f"limiter chunk {chunk!r} does not divide {self.frames} frames")
        self.chunks = self.frames // self.chunk
        c = self.chunks
        #: Present gain (at the start of the next segment), linear.
        self.gain = 1.0
        #: Segments in which the limiter reduced the gain.
        self.active_segments = 0
        #: Segments that held NaN or infinity (replaced by silence).
        self.nonfinite = 0
        #: Lowest gain applied so far (linear).
        self.min_gain = 1.0
        self._release = release_db_per_s * self.chunk / sample_rate / 20.0 * math.log(10.0)
        self._abs = np.zeros((2, self.frames), np.float32)
        self._pk2 = np.zeros((2, c), np.float32)
        self._pk = np.zeros(c, np.float64)
        self._q = np.zeros(c + 1, np.float64)
        self._steps = np.arange(-1, c, dtype=np.float64) * self._release
        self._b = np.ones(c + 1, np.float64)
        self._g = np.zeros((c, self.chunk), np.float32)
        self._frac = (np.arange(self.chunk, dtype=np.float64) / self.chunk).astype(np.float32)
        self._db = np.zeros((c, 1), np.float32)
        self._b0 = np.zeros((c, 1), np.float32)
        self._limited = False
        #: Peak of the last segment after limiting (linear, true peak when it was limited).
        self.peak = 0.0
        self._m = self.frames
        self._c = self.frames // self.chunk
        self.true_peak = TruePeak(self.frames)
        self._tp = np.zeros(c, np.float32)
        #: Stretches whose first chunk had to be clipped (the cap was lowered, or a loud
        #: start came before the gain could fall).
        self.clipped_stretches = 0
        #: Stretches whose true peak was estimated (they came within 4 dB of the threshold).
        self.true_peak_stretches = 0

    def skip(self) -> None:
        """A silent stretch: the gain recovers fully (nothing to limit)."""
        self._limited = False
        self.peak = 0.0
        self.true_peak.before.fill(0.0)

    def process(self, mix: np.ndarray, threshold: float) -> None:
        """Limit ``mix`` (2, m) in place so that no |sample| exceeds ``threshold``.

        ``m`` is a whole number of chunks, at most ``segment_frames``.
        """
        peak = self._peaks(mix, threshold)
        c = self._c
        if not peak < math.inf:  # NaN or inf got in: never let it reach the speaker
            mix.fill(0.0)
            self.nonfinite += 1
            self.peak = 0.0
            self._b[: c + 1].fill(self.gain)
            self._limited = self.gain < 1.0
            return
        if self.gain >= 1.0 and peak <= threshold:
            self.peak = peak
            self._b[: c + 1].fill(1.0)
            self.true_peak.remember(mix)
            return
        self._limit(mix, threshold, peak)

    def _peaks(self, mix: np.ndarray, threshold: float) -> float:
        """Each chunk's peak into ``_pk[:c]`` (true peaks near the threshold); the highest."""
        n = self.chunk
        m = self._m = mix.shape[1]
        c = self._c = m // n
        absb = self._abs[:, :m]
        np.abs(mix, out=absb)
        pk2 = self._pk2[:, :c]
        np.max(absb.reshape(2, c, n), axis=2, out=pk2)
        pk = self._pk[:c]
        np.maximum(pk2[0], pk2[1], out=pk)
        peak = float(pk.max())
        self._limited = False
        if peak < math.inf and (peak * TP_HEADROOM > threshold or self.gain < 1.0):
            # near the threshold: limit the true peaks (between samples), not the samples
            tp = self._tp[:c]
            self.true_peak.chunk_peaks(mix, n, tp)
            np.maximum(pk, tp, out=pk)
            peak = float(pk.max())
            self.true_peak_stretches += 1
        return peak

    def _limit(self, mix: np.ndarray, threshold: float, peak: float) -> None:
        """Apply the release-limited gain envelope the chunk peaks ask for."""
        n, c = self.chunk, self._c
        pk = self._pk[:c]
        self._limited = True
        q = self._q[: c + 1]
        steps = self._steps[: c + 1]
        # needed log-gain per chunk (<= 0), then the release-limited running minimum
        np.maximum(pk, threshold, out=pk)
        np.divide(threshold, pk, out=pk)
        np.log(pk, out=q[1:])
        q[0] = math.log(max(self.gain, 1e-9))
        q -= steps
        np.minimum.accumulate(q, out=q)
        q += steps
        np.minimum(q, 0.0, out=q)
        env = q[1:]
        b = self._b[: c + 1]
        np.exp(env, out=b[1:])
        np.minimum(b[1:-1], b[2:], out=b[1:-1])
        b[0] = self.gain
        self._b0[:c, 0] = b[:-1]
        self._db[:c, 0] = b[1:] - b[:-1]
        g = self._g[:c]
        np.multiply(self._db[:c], self._frac, out=g)
        g += self._b0[:c]
        view = mix.reshape(2, c, n)
        np.multiply(view, g, out=view)
        if self.gain > math.exp(env[0]):
            # caught out at a segment's start: clip, low enough that the clipped chunk's
            # peaks between samples stay under the threshold too
            clip = threshold * CLIP_TRUE_PEAK
            np.clip(mix[:, :n], -clip, clip, out=mix[:, :n])
            self.clipped_stretches += 1
        self.active_segments += 1
        self.min_gain = min(self.min_gain, float(b.min()))
        self.peak = min(peak * float(b.max()), threshold)
        self.true_peak.remember(mix)

    def commit(self, played: int) -> None:
        """Move the limiter's gain to frame ``played`` of the last segment."""
        if not self._limited:
            self.gain = 1.0
            return
        if played >= self._m:
            self.gain = float(self._b[self._m // self.chunk])
            return
        k, r = divmod(played, self.chunk)
        b = self._b
        self.gain = float(b[k] + (b[k + 1] - b[k]) * r / self.chunk)
