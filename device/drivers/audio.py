"""Audio sinks: where rendered blocks go (the sound card through PyAudio, a WAV file, nowhere).

Every sink takes float32 ``(frames, channels)`` blocks in [-1, 1], converts them into a
preallocated buffer and never raises from :meth:`AudioSink.write`: problems are counted
(``errors``, ``underruns``) and reported by the loop. ``open_sink(spec, ...)`` picks one
from a spec string: ``"pyaudio"``, ``"wav:PATH"`` or ``"null"``, optionally behind
``"realtime:"`` (a sound card's buffer timing, :mod:`device.drivers.realtime_sink`).

:class:`AudioSink` is the interface (health included: ``healthy``, ``errors``,
``last_error``, ``reopens``); :class:`BlockSink` the base of the sinks that convert blocks
themselves. The PyAudio sink lives in :mod:`device.drivers.pyaudio_sink`, the WAV file
sink in :mod:`device.drivers.wav_sink`; PyAudio is imported
only when one is opened, so ``import device`` works on machines without PortAudio.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes

import numpy as np

SAMPLE_FORMATS = ("int16", "float32")


def float_to_int16(block: np.ndarray) -> np.ndarray:
    """Convert float samples in [-1, 1] to int16 exactly as the sinks do (round, clip, NaN -> 0)."""
    x = np.asarray(block, dtype=np.float32) * np.float32(32767.0)
    x = np.nan_to_num(x, nan=0.0)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


class _Converter:
    """Converts float blocks into a preallocated interleaved buffer (int16 or float32)."""

    def __init__(
        self, frames: int, channels: int, sample_format: str, immutable: bool = False
    ) -> None:
        if sample_format not in SAMPLE_FORMATS:
            raise ValueError(
                f"sample_format {sample_format!r} is not one of {', '.join(SAMPLE_FORMATS)}"
            )
        self.channels = channels
        self.sample_format = sample_format
        self.frames = frames
        self._f = np.zeros((frames, channels), np.float32)
        self._nan = np.zeros((frames, channels), bool)
        self._scale = np.float32(32767.0)
        self._hi = np.float32(32767.0)
        self._lo = np.float32(-32768.0)
        self._one = np.float32(1.0)
        self._mone = np.float32(-1.0)
        dtype = np.dtype(np.int16 if sample_format == "int16" else np.float32)
        self.bytes_per_frame = channels * dtype.itemsize
        nbytes = frames * self.bytes_per_frame
        self.data: bytes | memoryview
        if immutable:
            # PyAudio's write() accepts only an immutable bytes object. Converting into a
            # private bytes object (never hashed, never shared) through a numpy view of its
            # storage avoids allocating a new bytes object for every block.
            self.data = bytes(nbytes)
            addr = ctypes.cast(ctypes.c_char_p(self.data), ctypes.c_void_p).value
            assert addr is not None
            raw = (ctypes.c_char * nbytes).from_address(addr)
            self._out = np.frombuffer(memoryview(raw).cast("B"), dtype).reshape(frames, channels)
        else:
            self._out = np.zeros((frames, channels), dtype)
            self.data = memoryview(self._out.data).cast("B").toreadonly()

    def convert(self, block: np.ndarray) -> bytes | memoryview:
        """Convert ``block`` (at most ``frames`` frames) into :attr:`data`; return it.

        Only the first ``block.shape[0]`` frames of the returned buffer are valid.
        """
        n = block.shape[0]
        if n == self.frames:
            f, nan, out = self._f, self._nan, self._out
        else:
            f, nan, out = self._f[:n], self._nan[:n], self._out[:n]
        # copy first: ufuncs reading a non-contiguous block allocate an iteration buffer
        if self.sample_format == "int16":
            np.copyto(f, block)
            np.multiply(f, self._scale, out=f)
            np.isnan(f, out=nan)
            np.copyto(f, 0.0, where=nan)
            np.rint(f, out=f)
            np.minimum(f, self._hi, out=f)
            np.maximum(f, self._lo, out=f)
            np.copyto(out, f, casting="unsafe")
        else:
            np.copyto(out, block)
            np.minimum(out, self._one, out=out)
            np.maximum(out, self._mone, out=out)
            np.isnan(out, out=nan)
            np.copyto(out, 0.0, where=nan)
        return self.data


class AudioSink(abc.ABC):
    """What the loop writes rendered blocks to: the interface every sink implements.

    A sink takes float32 ``(frames, channels)`` blocks, never raises from :meth:`write`,
    and reports its health truthfully: :attr:`healthy` turns false as soon as the device
    fails (a dead card, a full disk) and true again once it delivers again.
    """

    #: True when :meth:`write` blocks in real time (the sink paces the loop).
    paces = False
    sample_rate: int
    channels: int
    block_frames: int
    closed: bool

    @abc.abstractmethod
    def write(self, block: np.ndarray) -> None:
        """Play/store one float32 ``(frames, channels)`` block; never raises."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the sink (idempotent)."""

    @property
    @abc.abstractmethod
    def healthy(self) -> bool:
        """Whether the sink delivers sound now (false while its device is failing or closed)."""

    @property
    @abc.abstractmethod
    def errors(self) -> int:
        """Failed writes and failed reopen attempts since the sink was opened."""

    @property
    @abc.abstractmethod
    def last_error(self) -> str:
        """The last failure, for people (``""`` when there was none)."""

    @property
    @abc.abstractmethod
    def reopens(self) -> int:
        """Times the device was reopened after a failure (0 for sinks that never reopen)."""

    @property
    @abc.abstractmethod
    def underruns(self) -> int:
        """Output underruns: times the device ran dry before a block arrived."""

    @property
    @abc.abstractmethod
    def frames_written(self) -> int:
        """Frames accepted by :meth:`write`."""

    def __enter__(self) -> AudioSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlockSink(AudioSink):
    """Base of the sinks that convert blocks themselves: counters, idempotent close.

    Subclasses deliver converted bytes in :meth:`_write_bytes` and report failures with
    :meth:`_failed` (counted, remembered, the sink unhealthy until :meth:`_delivered`).
    """

    #: The converter fills an immutable bytes object (what PyAudio's write() needs).
    _immutable = False

    def __init__(
        self, sample_rate: int, channels: int, block_frames: int, sample_format: str
    ) -> None:
        if not 8000 <= int(sample_rate) <= 192000:
            raise ValueError(f"sample_rate {sample_rate!r} Hz is outside 8000..192000")
        if not 1 <= int(channels) <= 8:
            raise ValueError(f"channels {channels!r} is outside 1..8")
        if not 16 <= int(block_frames) <= 65536:
            raise ValueError(f"block_frames {block_frames!r} is outside 16..65536")
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.block_frames = int(block_frames)
        self.sample_format = sample_format
        self._conv = _Converter(self.block_frames, self.channels, sample_format, self._immutable)
        self._underruns = 0
        self._errors = 0
        self._last_error = ""
        self._reopens = 0
        self._failing = False
        self._frames_written = 0
        self.closed = False

    @property
    def healthy(self) -> bool:
        """Open, and the last delivery did not fail."""
        return not self.closed and not self._failing

    @property
    def errors(self) -> int:
        """Failed writes (device or disk errors, malformed blocks) and failed reopens."""
        return self._errors

    @property
    def last_error(self) -> str:
        """The last failure (``""`` when there was none)."""
        return self._last_error

    @property
    def reopens(self) -> int:
        """Times the device was reopened after a failure."""
        return self._reopens

    @property
    def underruns(self) -> int:
        """Output underruns detected (the device ran dry before a block arrived)."""
        return self._underruns

    @property
    def frames_written(self) -> int:
        """Frames accepted by :meth:`write`."""
        return self._frames_written

    def _failed(self, message: str) -> None:
        """Count a failed delivery; the sink reads unhealthy until the next success."""
        self._errors += 1
        self._last_error = message
        self._failing = True

    def _delivered(self) -> None:
        self._failing = False

    def _rejected(self, message: str) -> None:
        # A malformed block is the caller's fault, not the device's: counted, still healthy.
        self._errors += 1
        self._last_error = message

    def write(self, block: np.ndarray) -> None:
        """Play/store one float32 ``(frames, channels)`` block; never raises."""
        if self.closed:
            self._rejected("write after close")
            return
        try:
            n = block.shape[0]
            if block.ndim != 2 or block.shape[1] != self.channels:
                self._rejected(f"block of shape {block.shape}, expected (n, {self.channels})")
                return
        except AttributeError:
            self._rejected(f"block is a {type(block).__name__}, not an array")
            return
        step = self.block_frames
        if n == step:
            self._write_bytes(self._conv.convert(block), n)
        else:
            for start in range(0, n, step):
                part = block[start : start + step]
                self._write_bytes(self._conv.convert(part), part.shape[0])
        self._frames_written += n

    @abc.abstractmethod
    def _write_bytes(self, data: bytes | memoryview, frames: int) -> None:
        """Deliver ``frames`` converted frames (each sink's own transport)."""

    def close(self) -> None:
        """Release the sink (idempotent)."""
        self.closed = True

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("open" if self.healthy else "failing")
        return (
            f"<{type(self).__name__} {state} {self.sample_rate} Hz {self.channels} ch "
            f"{self.sample_format} frames={self.frames_written} underruns={self.underruns} "
            f"errors={self.errors}>"
        )


class NullSink(BlockSink):
    """Discards every block (counts them); does not pace."""

    def _write_bytes(self, data: bytes | memoryview, frames: int) -> None:
        return


def open_sink(
    spec: str,
    *,
    sample_rate: int,
    channels: int = 2,
    device: str = "",
    buffer_blocks: int = 8,
    block_frames: int = 1024,
    sample_format: str = "int16",
) -> AudioSink:
    """Open the sink named by ``spec``: ``"pyaudio"``, ``"wav:PATH"`` or ``"null"``.

    ``"realtime:<spec>"`` puts that sink behind a modelled sound-card buffer of
    ``buffer_blocks`` blocks drained in real time (for playing into the ALSA file plugin,
    which does not keep time, as a sound card would).
    """
    if spec.startswith("realtime:"):
        from device.drivers.realtime_sink import RealTimeSink

        inner = open_sink(
            spec[len("realtime:") :],
            sample_rate=sample_rate,
            channels=channels,
            device=device,
            buffer_blocks=buffer_blocks,
            block_frames=block_frames,
            sample_format=sample_format,
        )
        return RealTimeSink(inner, buffer_blocks=buffer_blocks)
    if spec == "null":
        return NullSink(sample_rate, channels, block_frames, sample_format)
    if spec == "pyaudio":
        from device.drivers.pyaudio_sink import PyAudioSink

        return PyAudioSink(
            sample_rate=sample_rate,
            channels=channels,
            device=device,
            buffer_blocks=buffer_blocks,
            block_frames=block_frames,
            sample_format=sample_format,
        )
    if spec.startswith("wav:") and len(spec) > 4:
        from device.drivers.wav_sink import WavSink

        return WavSink(
            spec[4:], sample_rate=sample_rate, channels=channels, block_frames=block_frames
        )
    raise ValueError(
        f"audio sink {spec!r} is not one of: pyaudio, wav:PATH, null (each optionally "
        "after realtime:)"
    )
