"""The sound card through PyAudio (PortAudio): blocking writes into a deep output buffer.

PyAudio 0.2.14's ``Stream.write(..., exception_on_underflow=True)`` closes the PortAudio
stream when ``Pa_WriteStream`` reports ``paOutputUnderflowed`` (``PyAudioStream_Cleanup`` in
its ``src/pyaudio/stream_io.c``), so every later write fails with "Stream closed". So this
sink writes with ``exception_on_underflow=False`` (PortAudio recovers the underrun itself
and the block is played) and detects underruns from ``get_write_available()`` instead: the
buffer held audio after the last write and is all free now, so it ran dry. A late block
then costs the silence of its lateness, never a reopen.

The sink never lets ``Pa_WriteStream`` wait for room. PortAudio 19.6's blocking write, when
the buffer is full, polls until a whole period (half the buffer) is free, so the buffer
runs as low as one period before the loop is let go, and on a USB card pulled out it polls
for ever (seen in the lab: the loop hung until the watchdog killed it). So before each write
the sink waits itself, in sleeps of the missing time, until the data fits: the buffer stays
full to within one write, and a card whose buffer does not drain for :data:`STALL_S` is a
device error like any other (closed, reported, reopened).

One ``PyAudio()`` (``Pa_Initialize``, which probes every ALSA and JACK name: ~60 ms and
~60 lines on stderr) serves the sink's whole life, reopens included; it is made again only
after :data:`REINIT_AFTER` reopens in a row failed (a USB card that came back under a new
index). The probing's stderr noise is silenced at its source (:mod:`device.drivers.alsa_quiet`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from device.drivers.alsa_quiet import quiet_probing
from device.drivers.audio import BlockSink
from device.exc import AudioDeviceError

#: Seconds between attempts to reopen a failed sound device.
REOPEN_INTERVAL_S = 1.0
#: Failed reopens in a row after which PortAudio is initialised again (rescans the cards).
REINIT_AFTER = 3
#: Seconds without the output buffer draining at all after which the card counts as stopped.
STALL_S = 1.0


class PyAudioSink(BlockSink):
    """Plays through PortAudio with blocking writes and a deep output buffer.

    ``device`` is an output device index ("3") or a substring of its name ("MAX98357A");
    empty means the default device. ``backend`` is the ``pyaudio`` module or a compatible
    object (imported lazily when omitted). A device error closes the stream, counts an
    error (the sink reads unhealthy at once) and retries the open every
    :data:`REOPEN_INTERVAL_S` seconds; meanwhile ``write`` sleeps one block's time so the
    loop keeps its pace. ``write`` never raises.
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
                import pyaudio

                backend = pyaudio
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
        self._failed_reopens = 0
        self._missing = False
        #: Frames the output buffer holds when full (``get_write_available()`` of an empty one).
        self.capacity_frames = 0
        self._free_after_write = 0
        #: Frames of silence written at each open to fill the output buffer.
        self.primed_frames = 0
        self.device_name = ""
        self._silence = bytes(self.block_frames * self._conv.bytes_per_frame)
        self._open()

    @property
    def healthy(self) -> bool:
        """Open, with a working stream (false from the first failed write until a reopen)."""
        return not self.closed and self._stream is not None

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
        # A named card missing from PortAudio's list: only a rescan can find it again.
        self._missing = True
        raise AudioDeviceError(
            f"no audio output device matches {self.device!r} "
            f"(outputs: {', '.join(names) or 'none'})"
        )

    def _open(self) -> None:
        """Open the stream (PortAudio once), then prime the buffer with silence; raises."""
        bk = self._backend
        try:
            with quiet_probing():
                if self._pa is None:
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
            self.capacity_frames = int(self._stream.get_write_available())
            for _ in range(self.buffer_blocks - 1):
                self._stream.write(self._silence, self.block_frames)
            self._free_after_write = int(self._stream.get_write_available())
            self.primed_frames = (self.buffer_blocks - 1) * self.block_frames
        except AudioDeviceError:
            self._close_stream()
            raise
        except Exception as exc:
            self._close_stream()
            raise AudioDeviceError(f"cannot open audio output {self.device!r}: {exc}") from exc

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            # stop_stream raises "Stream not open" when PyAudio already cleaned it up
            with contextlib.suppress(Exception):
                stream.stop_stream()
            with contextlib.suppress(Exception):
                stream.close()

    def _terminate(self) -> None:
        self._close_stream()
        pa, self._pa = self._pa, None
        if pa is not None:
            with contextlib.suppress(Exception):
                pa.terminate()

    def _reopen(self) -> None:
        now = self._monotonic()
        if now < self._next_try:
            return
        self._next_try = now + REOPEN_INTERVAL_S
        if self._failed_reopens >= REINIT_AFTER or self._missing:
            self._terminate()  # rescan: the card may be back under another index
            self._failed_reopens = 0
            self._missing = False
        try:
            self._open()
        except AudioDeviceError as exc:
            self._failed_reopens += 1
            self._failed(str(exc))
            return
        self._failed_reopens = 0
        self._reopens += 1
        self._delivered()

    def _write_bytes(self, data: bytes | memoryview, frames: int) -> None:
        if self._stream is None:
            self._reopen()
            if self._stream is None:
                self._sleep(frames / self.sample_rate)
                return
        stream = self._stream
        try:
            free = self._free(stream)
            self._wait_for_room(stream, free, min(frames, self.capacity_frames))
            held = free < self.capacity_frames  # the buffer held audio at the check
            # Never exception_on_underflow=True: PyAudio closes the stream when it raises.
            stream.write(data, frames, exception_on_underflow=False)
            after = int(stream.get_write_available())
            if held and after >= self.capacity_frames:
                # Empty right after a write: PortAudio met the underrun inside Pa_WriteStream
                # (the loop was stopped between its check and the write) and restarted.
                self._underruns += 1
            self._free_after_write = after
        except Exception as exc:
            self._failed(f"{type(exc).__name__}: {exc}")
            self._close_stream()
            self._next_try = self._monotonic() + REOPEN_INTERVAL_S
            # A named card that failed is likely gone (a USB card pulled out): rescan first.
            self._missing = self.device != ""
            return
        self._delivered()

    def _free(self, stream: Any) -> int:
        """Frames that fit now; counts an underrun when the buffer ran dry since the last write."""
        free = int(stream.get_write_available())
        if free >= self.capacity_frames > self._free_after_write:
            # Audio was queued after the last write and all of it is gone: it ran dry.
            self._underruns += 1
            self._free_after_write = free  # once per dry spell
        return free

    def _wait_for_room(self, stream: Any, free: int, frames: int) -> None:
        """Sleep until ``frames`` fit (``free`` fit now); raises on a card that stopped."""
        still_s = 0.0
        while free < frames:
            step = max((frames - free) / self.sample_rate, 0.001)
            self._sleep(step)  # a stall here (the process stopped) is seen by _free
            now_free = self._free(stream)
            still_s = 0.0 if now_free > free else still_s + step
            if still_s >= STALL_S:
                raise AudioDeviceError(
                    f"the sound card stopped playing: its buffer did not drain in {still_s:.1f} s"
                )
            free = now_free

    def close(self) -> None:
        """Stop and close the stream and PortAudio (idempotent)."""
        if not self.closed:
            self.closed = True
            self._terminate()

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f" device={self.device_name!r} reopens={self.reopens}>"
