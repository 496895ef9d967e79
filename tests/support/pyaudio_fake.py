"""A fake of the ``pyaudio`` module that fails exactly as PyAudio 0.2.14's C code does.

Read from PyAudio 0.2.14's sources (``pip download --no-binary :all: pyaudio==0.2.14``):

- ``Stream.write(frames, num_frames, exception_on_underflow=False)`` calls
  ``Pa_WriteStream``; on ``paOutputUnderflowed`` it returns normally unless
  ``exception_on_underflow`` is true, and on that or any other error it calls
  ``PyAudioStream_Cleanup`` (``Pa_CloseStream``: the stream is gone) and raises
  ``IOError(err, Pa_GetErrorText(err))`` (``src/pyaudio/stream_io.c``).
- On a cleaned-up stream, ``write`` and ``get_write_available`` raise
  ``IOError(paBadStreamPtr, "Stream closed")``; ``stop_stream`` (still "running" on the
  Python side) raises ``IOError("Stream not open")`` (``stream_lifecycle.c``); ``close`` never
  raises (cleanup is idempotent).
- ``PyAudio()`` is ``Pa_Initialize``; ``terminate()`` closes every stream first.

The card is a buffer of ``capacity`` frames that the test drains with :meth:`Card.play`
(or :meth:`Card.sleep`, wall time passing); a drain past empty is an underrun, reported by
the next ``Pa_WriteStream`` as ``paOutputUnderflowed``. As PortAudio 19.6's ALSA host API
(``pa_linux_alsa.c``: ``WriteStream``, ``PaAlsaStream_WaitForFrames``, ``avail_min`` = one
period), a write that does not fit writes what fits, then waits until a whole period
(half the buffer) is free: the card plays that much meanwhile. A card that stopped
(``hung``: a USB card pulled out) never frees room, so such a write would wait for ever:
the fake raises :class:`WaitsForEver` instead.
"""

from __future__ import annotations

paFloat32 = 1
paInt16 = 8
paNoError = 0
paOutputUnderflowed = -9980
paBadStreamPtr = -9988
paInvalidDevice = -9996
paUnanticipatedHostError = -9999

_TEXT = {
    paOutputUnderflowed: "Output underflowed",
    paBadStreamPtr: "Invalid stream pointer",
    paInvalidDevice: "Invalid device",
    paUnanticipatedHostError: "Unanticipated host error",
}


class WaitsForEver(BaseException):
    """``Pa_WriteStream`` would poll for ever: room was asked of a card that stopped."""


class Card:
    """The sound card behind the fake: its buffer, what it played, how it fails."""

    def __init__(self, capacity: int = 4096, bytes_per_frame: int = 4, rate: int = 48000) -> None:
        self.capacity = capacity
        self.bytes_per_frame = bytes_per_frame
        self.rate = rate
        #: The card stopped taking frames (its buffer never drains).
        self.hung = False
        #: Seconds the next :meth:`sleep` oversleeps (the process stopped while it slept).
        self.stall_s = 0.0
        #: The fewest frames the buffer held right after a write.
        self.low_after_write: int | None = None
        self.queued = 0
        self.underflowed = False
        #: Every byte handed to Pa_WriteStream, in order (the card plays all of it).
        self.played = bytearray()
        #: PortAudio error every write returns while set (a dead card).
        self.fail: int | None = None
        #: The device is gone: opening a stream fails.
        self.gone = False
        self.initialised = 0
        self.terminated = 0
        self.streams_opened = 0

    def play(self, frames: int) -> None:
        """The card plays ``frames`` frames of wall time (an underrun if it had fewer)."""
        if self.hung:
            return
        if frames > self.queued:
            self.underflowed = True
        self.queued = max(0, self.queued - frames)

    def sleep(self, seconds: float) -> None:
        """``seconds`` of wall time pass: the card plays that much of what it holds.

        ``stall_s`` more pass at the next sleep: the process was stopped in it (SIGSTOP).
        """
        self.play(round((seconds + self.stall_s) * self.rate))
        self.stall_s = 0.0


class FakeStream:
    """``pyaudio.PyAudio.Stream`` over a :class:`Card`."""

    def __init__(self, parent: FakePyAudio, card: Card) -> None:
        self._parent = parent
        self._card = card
        self._open = True  # PyAudioStream_IsOpen
        #: The next write meets an underrun inside Pa_WriteStream (a stall just before it).
        self.stall_in_write = False
        self._is_running = True
        card.queued = 0
        card.underflowed = False

    def write(
        self, frames: bytes, num_frames: int | None = None, exception_on_underflow: bool = False
    ) -> None:
        if not self._open:
            raise OSError(paBadStreamPtr, "Stream closed")
        card = self._card
        n = len(frames) // card.bytes_per_frame if num_frames is None else num_frames
        if card.fail is not None:
            self._open = False  # PyAudioStream_Cleanup
            raise OSError(card.fail, _TEXT.get(card.fail, "error"))
        err = paOutputUnderflowed if card.underflowed else paNoError
        card.underflowed = False
        if self.stall_in_write:
            # The process stopped between its check and this write: the card ran dry,
            # PortAudio restarts the PCM (snd_pcm_drop) and this write's frames are dropped.
            self.stall_in_write = False
            card.queued = 0
            return
        card.played += bytes(frames[: n * card.bytes_per_frame])
        room = card.capacity - card.queued
        if n <= room:
            card.queued += n
        else:  # writes what fits, then polls until a whole period is free
            if card.hung:
                raise WaitsForEver(f"{n} frames asked of a stopped card with room for {room}")
            period = card.capacity // 2
            card.queued = card.capacity - period + (n - room)
        low = card.low_after_write
        card.low_after_write = card.queued if low is None else min(low, card.queued)
        if err == paOutputUnderflowed and exception_on_underflow:
            self._open = False  # PyAudioStream_Cleanup, although the data was written
            raise OSError(err, _TEXT[err])

    def get_write_available(self) -> int:
        if not self._open:
            raise OSError(paBadStreamPtr, "Stream closed")
        return self._card.capacity - self._card.queued

    def stop_stream(self) -> None:
        if not self._is_running:
            return
        if not self._open:
            raise OSError("Stream not open")
        self._is_running = False

    def close(self) -> None:
        self._open = False
        self._is_running = False
        self._parent._streams.discard(self)

    @property
    def is_open(self) -> bool:
        """Whether PortAudio still has this stream (false after PyAudio cleaned it up)."""
        return self._open


class FakePyAudio:
    """``pyaudio.PyAudio`` (``Pa_Initialize``) over one :class:`Card` named ``fakecard``."""

    card: Card

    def __init__(self) -> None:
        self.card.initialised += 1
        self._streams: set[FakeStream] = set()

    def get_device_count(self) -> int:
        return 0 if self.card.gone else 1

    def get_device_info_by_index(self, i: int) -> dict[str, object]:
        if self.card.gone or i != 0:
            raise OSError(paInvalidDevice, "Invalid device")
        return {"name": "fakecard", "maxOutputChannels": 2}

    def get_default_output_device_info(self) -> dict[str, object]:
        return self.get_device_info_by_index(0)

    def open(self, **kwargs: object) -> FakeStream:
        if self.card.gone:
            raise OSError(paInvalidDevice, "Invalid output device (no default output device)")
        stream = FakeStream(self, self.card)
        self.card.streams_opened += 1
        self._streams.add(stream)
        return stream

    def terminate(self) -> None:
        for s in list(self._streams):
            s.close()
        self.card.terminated += 1


class FakePyAudioModule:
    """Stands for the ``pyaudio`` module (``backend=`` of the sink), bound to one card."""

    paInt16 = paInt16
    paFloat32 = paFloat32

    def __init__(self, card: Card) -> None:
        self.card = card
        self.PyAudio = type("PyAudio", (FakePyAudio,), {"card": card})
