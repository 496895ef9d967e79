"""The engine's master stage: user volume, program level, fade, chimes and the limiter.

It turns the voices' sum for a segment into the output segment. It works on *stretches*:
normally a whole segment, but an urgent request (a fade, a lower cap) ends the present
stretch at the next block and plans a new one over the rest of the segment, so the
request is heard within one block while the voices' segment is kept as it was rendered.
"""

from __future__ import annotations

import math

import numpy as np

from device.dsp.limiter import SegmentLimiter, chunk_size
from device.dsp.ramps import Fade, LevelGlide, db_to_amp, fade_gain
from device.sound.chimes import ChimePlayer

#: Program level speed (dB/s) and user volume speed (dB/s).
LEVEL_RATE = 15.0
VOLUME_RATE = 3.0


class Master:
    """Master gains, fade, chimes and limiter over stretches of a ``segment_frames`` segment.

    ``block_frames`` is the block size: every stretch starts on a block boundary.
    """

    def __init__(self, sample_rate: int, segment_frames: int, block_frames: int) -> None:
        self.sample_rate = int(sample_rate)
        s = self.segment_frames = int(segment_frames)
        self.volume = LevelGlide(0.0, VOLUME_RATE)
        self.program = LevelGlide(0.0, LEVEL_RATE)
        self.fade = Fade(self.sample_rate)
        self.chimes = ChimePlayer(s, self.sample_rate)
        self.limiter = SegmentLimiter(s, self.sample_rate, chunk=chunk_size(block_frames))
        #: Limiter threshold (linear) for the stretches planned from now on.
        self.threshold = 1.0
        #: First frame of the present stretch in the segment, and its length.
        self.start = 0
        self.frames = s
        self._gain = np.zeros(s, np.float32)
        self._fade = np.zeros(s, np.float32)
        self._n = np.arange(s, dtype=np.float32)

    def _plan(self, start: int) -> tuple[float, float, float, float, bool]:
        self.start = start
        m = self.frames = self.segment_frames - start
        sec = m / self.sample_rate
        v0, v1 = self.volume.amp, db_to_amp(self.volume.plan(sec))
        p0, p1 = self.program.amp, db_to_amp(self.program.plan(sec))
        self.fade.plan(m)
        return v0, v1, p0, p1, self.fade.moving

    def render(self, src: np.ndarray | None, dst: np.ndarray, start: int) -> None:
        """Fill ``dst[:, start:]`` from the voices' sum ``src`` (``None``: they were silent)."""
        v0, v1, p0, p1, fading = self._plan(start)
        m = self.frames
        out = dst[:, start:]
        # a moving fade is applied per sample; a steady one folds into the master gain
        f = 1.0 if fading else fade_gain(self.fade.value)
        g0, g1 = v0 * p0 * f, v1 * p1 * f
        if src is None or (g0 == 0.0 and g1 == 0.0):
            out.fill(0.0)
        else:
            part = src[:, start:]
            if g0 == g1:
                np.multiply(part, g0, out=out)
            else:
                gain = self._gain[:m]
                np.multiply(self._n[:m], (g1 - g0) / m, out=gain)
                gain += g0
                np.multiply(part, gain, out=out)
            if fading:
                out *= self.fade.curve(self._fade[:m], self._n[:m])
        self.chimes.render(out, m, v0 if v0 == v1 else 0.5 * (v0 + v1))
        self.limiter.process(out, self.threshold)

    def skip(self, start: int) -> None:
        """Plan a silent stretch from ``start`` (nothing is rendered; time still passes)."""
        self._plan(start)
        self.chimes.skip(self.frames)
        self.limiter.skip()

    def commit(self, upto: int) -> None:
        """Move every state to frame ``upto`` of the segment (the end of the played part)."""
        played = upto - self.start
        frac = played / self.frames if self.frames else 1.0
        self.fade.commit(played)
        self.volume.commit(frac)
        self.program.commit(frac)
        self.chimes.commit(played)
        self.limiter.commit(played)

    def progress(self, upto: int) -> float:
        """Share of the present stretch played when the segment has reached frame ``upto``."""
        return (upto - self.start) / self.frames if self.frames else 1.0

    def silent_now(self, upto: int) -> bool:
        """True when the fade has reached silence by frame ``upto`` of the segment."""
        if self.fade.value == 0.0:
            return True
        zero = self.fade.zero_frame()
        return zero is not None and upto - self.start >= zero

    def gain_at(self, upto: int) -> float:
        """Linear master gain (volume x program x fade) at frame ``upto`` of the segment."""
        frac = self.progress(upto)
        return (
            db_to_amp(self.volume.at(frac))
            * fade_gain(self.fade.at_frame(upto - self.start))
            * db_to_amp(self.program.at(frac))
        )

    def set_cap(self, cap_dbfs: float, margin: float) -> None:
        """Set the limiter threshold from the cap in dBFS and a safety margin (linear)."""
        self.threshold = 10.0 ** (cap_dbfs / 20.0) * margin
        if not math.isfinite(self.threshold):
            raise ValueError(f"cap {cap_dbfs!r} dBFS is not a finite level")
