"""The WAV file sink: 16-bit PCM that stays a valid file while it grows (``wav:PATH``)."""

from __future__ import annotations

import os
import struct

from device.drivers.audio import BlockSink
from device.exc import AudioDeviceError


class WavSink(BlockSink):
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
                self._failed(f"{self.path}: short write ({written} of {nbytes} bytes): disk full?")
                self.dropped_frames += frames
                return
            self._data_bytes += nbytes
            struct.pack_into("<I", self._size_buf, 0, 36 + self._data_bytes)
            os.pwrite(self._fd, self._size_buf, 4)
            struct.pack_into("<I", self._size_buf, 0, self._data_bytes)
            os.pwrite(self._fd, self._size_buf, 40)
            self._delivered()
        except OSError as exc:
            self._failed(f"{self.path}: {exc.strerror or exc}")

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if not self.closed:
            self.closed = True
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._failed(f"{self.path}: {exc.strerror or exc}")
            os.close(self._fd)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f" path={self.path!r}>"
