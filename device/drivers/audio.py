"""Audio sinks: where rendered blocks go (the sound card through PyAudio, a WAV file, nowhere).

Every sink takes float32 ``(frames, channels)`` blocks in [-1, 1], converts them into a
preallocated buffer and never raises from :meth:`AudioSink.write`: problems are counted
(``errors``, ``underruns``) and reported by the loop. ``open_sink(spec, ...)`` picks one
from a spec string: ``"pyaudio"``, ``"wav:PATH"`` or ``"null"``, optionally behind
``"realtime:"`` (a sound card's buffer timing, :mod:`device.drivers.realtime_sink`).

PyAudio is imported only when a PyAudio sink is opened (or passed in as ``backend``), so
``import device`` works on machines without PortAudio.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import os
import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from device.exc import AudioDeviceError

SAMPLE_FORMATS = ("int16", "float32")
#: PortAudio's "output underflowed" code (Pa_WriteStream reports it; the data was written).
PA_OUTPUT_UNDERFLOWED = -9980
#: Seconds between attempts to reopen a failed sound device.
REOPEN_INTERVAL_S = 1.0


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
            raw = (ctypes.c_char * nbytes).from_address(addr)
            self._out = np.frombuffer(raw, dtype).reshape(frames, channels)
        else:
            self._out = np.zeros((frames, channels), dtype)
            self.data = memoryview(self._out).cast("B").toreadonly()

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
    """Base class of the sinks: counters, idempotent close, context manager."""

    #: True when :meth:`write` blocks in real time (the sink paces the loop).
    paces = False

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
        #: Output underruns detected (the device ran dry before a block arrived).
        self.underruns = 0
        #: Failed writes (device errors, disk errors, malformed blocks).
        self.errors = 0
        #: Frames accepted by :meth:`write`.
        self.frames_written = 0
        #: Times the device was opened again after a failure.
        self.reopens = 0
        #: Text of the last failure (``""`` when none).
        self.last_error = ""
        self.closed = False

    @property
    def healthy(self) -> bool:
        """False while the sink cannot deliver sound (closed, or its device keeps failing)."""
        return not self.closed

    def write(self, block: np.ndarray) -> None:
        """Play/store one float32 ``(frames, channels)`` block; never raises."""
        if self.closed:
            self.errors += 1
            return
        try:
            n = block.shape[0]
            if block.ndim != 2 or block.shape[1] != self.channels:
                self.errors += 1
                return
        except AttributeError:
            self.errors += 1
            return
        step = self.block_frames
        if n == step:
            self._write_bytes(self._conv.convert(block), n)
        else:
            for start in range(0, n, step):
                part = block[start : start + step]
                self._write_bytes(self._conv.convert(part), part.shape[0])
        self.frames_written += n

    @abc.abstractmethod
    def _write_bytes(self, data: bytes | memoryview, frames: int) -> None:
        """Deliver ``frames`` converted frames (each sink's own transport)."""

    def close(self) -> None:
        """Release the sink (idempotent)."""
        self.closed = True

    def __enter__(self) -> AudioSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"<{type(self).__name__} {state} {self.sample_rate} Hz {self.channels} ch "
            f"{self.sample_format} frames={self.frames_written} underruns={self.underruns} "
            f"errors={self.errors}>"
        )


class NullSink(AudioSink):
    """Discards every block (counts them); does not pace."""

    def _write_bytes(self, data: bytes | memoryview, frames: int) -> None:
        return


class WavSink(AudioSink):
    """Writes a 16-bit PCM WAV file that stays valid while it grows.

    After every block the RIFF and data chunk sizes in the header are rewritten (two small
    ``pwrite`` calls on the open descriptor), so a crash or power cut leaves a readable file
    holding every frame written before it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sample_rate: int,
        channels: int = 2,
        block_frames: int = 1024,
    ) -> None:
        super().__init__(sample_rate, channels, block_frames, "int16")
        self.path = os.fspath(path)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            self.closed = True
            raise AudioDeviceError(f"cannot create WAV file {self.path}: {exc.strerror}") from exc
        self._data_bytes = 0
        bpf = 2 * self.channels
        header = (
            b"RIFF"
            + struct.pack("<I", 36)
            + b"WAVE"
            + b"fmt "
            + struct.pack(
                "<IHHIIHH", 16, 1, self.channels, self.sample_rate, self.sample_rate * bpf, bpf, 16
            )
            + b"data"
            + struct.pack("<I", 0)
        )
        os.write(self._fd, header)
        self._size_buf = bytearray(4)
        bpf = 2 * self.channels
        #: Largest data chunk a RIFF header can describe, in whole frames.
        self.max_data_bytes = (0xFFFFFFFF - 36) // bpf * bpf
        #: Frames not written because the file reached the RIFF size limit.
        self.dropped_frames = 0

    def _write_bytes(self, data: bytes | memoryview, frames: int) -> None:
        nbytes = frames * self._conv.bytes_per_frame
        if self._data_bytes + nbytes > self.max_data_bytes:
            # a RIFF file cannot hold more (about 6 h of 48 kHz stereo): keep what we have
            self.dropped_frames += frames
            return
        try:
            written = os.write(self._fd, data[:nbytes] if nbytes < len(data) else data)
            if written != nbytes:  # disk full: drop the partial block so the frames stay whole
                os.ftruncate(self._fd, 44 + self._data_bytes)
                os.lseek(self._fd, 44 + self._data_bytes, os.SEEK_SET)
                self.errors += 1
                self.dropped_frames += frames
                return
            self._data_bytes += nbytes
            struct.pack_into("<I", self._size_buf, 0, 36 + self._data_bytes)
            os.pwrite(self._fd, self._size_buf, 4)
            struct.pack_into("<I", self._size_buf, 0, self._data_bytes)
            os.pwrite(self._fd, self._size_buf, 40)
        except OSError:
            self.errors += 1

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if not self.closed:
            self.closed = True
            try:
                os.fsync(self._fd)
            except OSError:
                self.errors += 1
            os.close(self._fd)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f" path={self.path!r}>"


class PyAudioSink(AudioSink):
    """Plays through PortAudio with blocking writes and a deep output buffer.

    ``device`` is an output device index ("3") or a substring of its name ("MAX98357A");
    empty means the default device. ``backend`` is the ``pyaudio`` module or a compatible
    object (imported lazily when omitted). Underruns (the device ran dry) are counted from
    PortAudio's underflow flag. A device error closes the stream, counts an error and
    retries the open every :data:`REOPEN_INTERVAL_S` seconds; meanwhile ``write`` sleeps
    one block's time so the loop keeps its pace. ``write`` never raises.
    """

    paces = True
    _immutable = True

    def __init__(
        self,
        *,
        sample_rate: int,
        channels: int = 2,
        device: str = "",
        buffer_blocks: int = 8,
        block_frames: int = 1024,
        sample_format: str = "int16",
        backend: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(sample_rate, channels, block_frames, sample_format)
        if not 2 <= int(buffer_blocks) <= 64:
            raise ValueError(f"buffer_blocks {buffer_blocks!r} is outside 2..64")
        self.device = str(device)
        self.buffer_blocks = int(buffer_blocks)
        if backend is None:
            try:
                import pyaudio as backend
            except ImportError as exc:
                self.closed = True
                raise AudioDeviceError(
                    "PyAudio is not installed (pip install pyaudio; apt install portaudio19-dev)"
                ) from exc
        self._backend = backend
        self._sleep = sleep
        self._monotonic = monotonic
        self._pa: Any = None
        self._stream: Any = None
        self._next_try = 0.0
        #: Times the stream was reopened after an error.
        self.reopens = 0
        #: Frames of silence written at each open to fill the output buffer.
        self.primed_frames = 0
        self.device_name = ""
        self.last_error = ""
        self._silence = bytes(self.block_frames * self._conv.bytes_per_frame)
        self._open()

    def _find_device(self) -> int | None:
        pa = self._pa
        if self.device == "":
            return None
        if self.device.isdigit():
            idx = int(self.device)
            info = pa.get_device_info_by_index(idx)
            if int(info.get("maxOutputChannels", 0)) < self.channels:
                raise AudioDeviceError(f"audio device {idx} has no {self.channels}-channel output")
            return idx
        names = []
        for i in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(i)
            if int(info.get("maxOutputChannels", 0)) < self.channels:
                continue
            names.append(str(info.get("name")))
            if self.device.lower() in str(info.get("name", "")).lower():
                return i
        raise AudioDeviceError(
            f"no audio output device matches {self.device!r} "
            f"(outputs: {', '.join(names) or 'none'})"
        )

    def _open(self) -> None:
        """Open PortAudio and the stream, then prime the buffer with silence; raises on failure."""
        bk = self._backend
        try:
            self._pa = bk.PyAudio()
            idx = self._find_device()
            fmt = bk.paInt16 if self.sample_format == "int16" else bk.paFloat32
            self._stream = self._pa.open(
                format=fmt,
                channels=self.channels,
                rate=self.sample_rate,
                output=True,
                output_device_index=idx,
                # the host buffer holds about two of these periods: buffer_blocks blocks
                frames_per_buffer=self.block_frames * max(1, self.buffer_blocks // 2),
            )
            info = (
                self._pa.get_device_info_by_index(idx)
                if idx is not None
                else self._pa.get_default_output_device_info()
            )
            self.device_name = str(info.get("name", ""))
            for _ in range(self.buffer_blocks - 1):
                self._stream.write(self._silence, self.block_frames)
            self.primed_frames = (self.buffer_blocks - 1) * self.block_frames
        except AudioDeviceError:
            self._teardown()
            raise
        except Exception as exc:
            self._teardown()
            raise AudioDeviceError(f"cannot open audio output {self.device!r}: {exc}") from exc

    def _teardown(self) -> None:
        stream, pa = self._stream, self._pa
        self._stream = self._pa = None
        for action in (
            (lambda: stream.stop_stream()) if stream is not None else None,
            (lambda: stream.close()) if stream is not None else None,
            (lambda: pa.terminate()) if pa is not None else None,
        ):
            if action is None:
                continue
            with contextlib.suppress(Exception):
                action()

    def _write_bytes(self, data: bytes | memoryview, frames: int) -> None:
        if self._stream is None:
            now = self._monotonic()
            if now >= self._next_try:
                self._next_try = now + REOPEN_INTERVAL_S
                try:
                    self._open()
                    self.reopens += 1
                except AudioDeviceError as exc:
                    self.errors += 1
                    self.last_error = str(exc)
            if self._stream is None:
                self._sleep(frames / self.sample_rate)
                return
        try:
            self._stream.write(data, frames, exception_on_underflow=True)
        except OSError as exc:
            code = exc.args[0] if exc.args else None
            if code == PA_OUTPUT_UNDERFLOWED or getattr(exc, "errno", None) == (
                PA_OUTPUT_UNDERFLOWED
            ):
                self.underruns += 1
                return
            self._fail(exc)
        except Exception as exc:
            self._fail(exc)

    @property
    def healthy(self) -> bool:
        """False while the stream is closed after a failure (until a reopen succeeds)."""
        return not self.closed and self._stream is not None

    def _fail(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._teardown()
        self._next_try = self._monotonic() + REOPEN_INTERVAL_S

    def close(self) -> None:
        """Stop and close the stream and PortAudio (idempotent)."""
        if not self.closed:
            self.closed = True
            self._teardown()

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f" device={self.device_name!r} reopens={self.reopens}>"


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
        return RealTimeSink(inner, buffer_blocks=buffer_blocks)  # type: ignore[return-value]
    if spec == "null":
        return NullSink(sample_rate, channels, block_frames, sample_format)
    if spec == "pyaudio":
        return PyAudioSink(
            sample_rate=sample_rate,
            channels=channels,
            device=device,
            buffer_blocks=buffer_blocks,
            block_frames=block_frames,
            sample_format=sample_format,
        )
    if spec.startswith("wav:") and len(spec) > 4:
        return WavSink(
            spec[4:], sample_rate=sample_rate, channels=channels, block_frames=block_frames
        )
    raise ValueError(
        f"audio sink {spec!r} is not one of: pyaudio, wav:PATH, null (each optionally "
        "after realtime:)"
    )
