"""A sound card's output buffer, modelled in wall time, in front of any sink.

The ALSA ``file`` plugin over ``null`` (what CI plays into) and the null and WAV sinks take
blocks as fast as they come, so nothing there can run dry. :class:`RealTimeSink` gives them
a sound card's timing: a ring buffer of ``buffer_blocks`` blocks, primed with silence as
:class:`~device.drivers.audio.PyAudioSink` primes it, drained at the sample rate by the
monotonic clock. A write blocks while the buffer is full (so the sink paces the loop, and the
box runs on its :class:`~device.sched.clock.RealClock` exactly as on a Pi), and a write that
arrives after the buffer ran dry counts an underrun, as PortAudio's underflow flag would.

Spec: ``realtime:<inner>``, e.g. ``realtime:pyaudio`` or ``realtime:null``. Only for sinks
that keep no time of their own: in front of a real sound card the model's clock and the
card's crystal would drift apart (50 ppm uses up a 171 ms buffer in about an hour).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from device.drivers.audio import AudioSink


class RealTimeSink(AudioSink):
    """Wraps ``inner`` so that it plays in real time through a ``buffer_blocks``-deep buffer.

    :param inner: the sink that receives every block (PyAudio, WAV or null).
    :param buffer_blocks: buffer depth in blocks of ``inner.block_frames`` frames (2..64).
    :param monotonic: wall clock in seconds (injected by tests).
    :param sleep: how to wait in seconds (injected by tests).
    """

    paces = True

    def __init__(
        self,
        inner: AudioSink,
        *,
        buffer_blocks: int = 8,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 2 <= int(buffer_blocks) <= 64:
            raise ValueError(f"buffer_blocks {buffer_blocks!r} is outside 2..64")
        self.inner = inner
        self.sample_rate = int(inner.sample_rate)
        self.channels = int(inner.channels)
        self.block_frames = int(inner.block_frames)
        self.buffer_blocks = int(buffer_blocks)
        #: Seconds of audio the buffer holds when full.
        self.buffer_s = self.buffer_blocks * self.block_frames / self.sample_rate
        self._monotonic = monotonic
        self._sleep = sleep
        self._dry_at: float | None = None
        #: Underruns of the modelled buffer (the inner sink's own are added in :attr:`underruns`).
        self.model_underruns = 0
        #: Least audio left in the buffer when a block arrived, in seconds (the worst margin).
        self.min_margin_s = float("inf")
        self.closed = False

    @property
    def underruns(self) -> int:
        """Underruns of the modelled buffer plus those the inner sink reported."""
        return self.model_underruns + self.inner.underruns

    @property
    def healthy(self) -> bool:
        """Open, and the inner sink delivers."""
        return not self.closed and self.inner.healthy

    @property
    def errors(self) -> int:
        """The inner sink's failed writes."""
        return self.inner.errors

    @property
    def last_error(self) -> str:
        """The inner sink's last failure."""
        return self.inner.last_error

    @property
    def reopens(self) -> int:
        """Times the inner sink reopened its device."""
        return self.inner.reopens

    @property
    def frames_written(self) -> int:
        """Frames the inner sink accepted."""
        return self.inner.frames_written

    def write(self, block: np.ndarray) -> None:
        """Hand ``block`` to the inner sink, keeping real time; never raises."""
        now = self._monotonic()
        if self._dry_at is None:
            # A sound card starts with all but one block of silence queued.
            self._dry_at = now + (self.buffer_blocks - 1) * self.block_frames / self.sample_rate
        margin = self._dry_at - now
        if margin < 0.0:
            # The buffer ran dry: the card played silence and starts again from this block.
            self.model_underruns += 1
            self._dry_at = now
            margin = 0.0
        if margin < self.min_margin_s:
            self.min_margin_s = margin
        before = self.inner.frames_written
        self.inner.write(block)
        # Only what the inner sink accepted is queued (a malformed block is dropped there).
        self._dry_at += (self.inner.frames_written - before) / self.sample_rate
        # A blocking write returns once the block fits in the buffer.
        wait = self._dry_at - self.buffer_s - self._monotonic()
        if wait > 0.0:
            self._sleep(wait)

    def close(self) -> None:
        """Close the inner sink (idempotent)."""
        if not self.closed:
            self.closed = True
            self.inner.close()

    def __repr__(self) -> str:
        margin = "-" if self._dry_at is None else f"{self.min_margin_s * 1000:.1f}ms"
        return (
            f"<RealTimeSink {self.buffer_blocks}x{self.block_frames} frames "
            f"underruns={self.underruns} min_margin={margin} over {self.inner!r}>"
        )
