"""Test doubles for console tests: a fake monotonic clock and an in-memory serial port."""

from __future__ import annotations

import time

from device.console.server import ConsoleServer


class FakeClock:
    """Monotonic seconds that move only when a test moves them."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class MemoryPort:
    """An in-memory serial port: the test fills ``inbox`` and reads ``sent``.

    ``room`` bounds the bytes one ``write`` call takes (a slow port); ``broken`` makes every
    call fail as an unplugged USB adapter does.
    """

    def __init__(self, room: int | None = None) -> None:
        self.inbox = bytearray()
        self.sent = bytearray()
        self.room = room
        self.broken = False
        self.closed = False

    def read(self, n: int) -> bytes:
        if self.broken:
            raise OSError(5, "Input/output error")
        data = bytes(self.inbox[:n])
        del self.inbox[:n]
        return data

    def write(self, data: bytes) -> int:
        if self.broken:
            raise OSError(5, "Input/output error")
        n = len(data) if self.room is None else min(len(data), self.room)
        self.sent += data[:n]
        return n

    def close(self) -> None:
        self.closed = True


def is_final(line: str) -> bool:
    """Whether ``line`` is a reply's final line."""
    return line == "OK" or line.startswith(("OK ", "ERR "))


def run_server(
    server: ConsoleServer, port: MemoryPort, finals: int, t0: float = 0.0, timeout: float = 10.0
) -> list[str]:
    """Poll until ``finals`` final lines were sent (PIN checks run on a worker thread)."""
    deadline = time.monotonic() + timeout
    t = t0
    while time.monotonic() < deadline:
        server.poll(t)
        t += 0.02
        lines = port.sent.decode().split("\r\n")
        if sum(1 for x in lines if is_final(x)) >= finals:
            return [x for x in lines if x]
        time.sleep(0.0005)
    raise AssertionError(f"no {finals} replies: {bytes(port.sent[-500:])!r}")
