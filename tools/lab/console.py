"""The host's side of the box's technician console: the VM's ttyS1 as a host pty."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import serial
from vm import LabError

# The burst is the one the pty tests write (tests/support/console_burst_lines.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "support"))
from console_burst_lines import burst_lines, in_order


class Console:
    """Tagged request/reply over the console port (protocol in docs/protocol.md)."""

    def __init__(self, port: str) -> None:
        self.port = serial.Serial(port, 115200, timeout=0.2)
        self._n = 0
        self.buf = b""

    def close(self) -> None:
        self.port.close()

    def ask(self, command: str, timeout: float = 20.0) -> tuple[bool, list[str]]:
        """Send one command; (ok, data lines) once its tagged final line arrives."""
        self._n += 1
        tag = f"L{self._n}"
        self.port.write(f"{command} #{tag}\r\n".encode())
        deadline = time.monotonic() + timeout
        data: list[str] = []
        while time.monotonic() < deadline:
            chunk = self.port.read(self.port.in_waiting or 1)
            self.buf += chunk
            while b"\n" in self.buf:
                raw, self.buf = self.buf.split(b"\n", 1)
                line = raw.decode(errors="replace").rstrip("\r")
                if line.endswith(f" #{tag}") and (line.startswith("OK") or line.startswith("ERR")):
                    return line.startswith("OK"), [*data, line]
                if line and not line.startswith("!"):
                    data.append(line)
        raise LabError(f"console: no reply to {command!r} in {timeout:.0f} s")

    def send_raw(self, command: str) -> None:
        """Send a line without waiting (the power cut comes before the reply)."""
        self.port.write(f"{command}\r\n".encode())
        self.port.flush()

    def ready(self, timeout: float) -> bool:
        """Until the box answers PING (its console is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.ask("PING", 3)[0]:
                    return True
            except LabError:
                self.buf = b""
        return False


def fields(line: str) -> dict[str, str]:
    """key=value pairs of a data line (values may be double-quoted)."""
    out: dict[str, str] = {}
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        eq = line.find("=", i)
        if eq < 0:
            break
        key = line[i:eq]
        i = eq + 1
        if i < n and line[i] == '"':
            i += 1
            val = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    i += 1
                val.append(line[i])
                i += 1
            i += 1
        else:
            end = line.find(" ", i)
            end = n if end < 0 else end
            val = list(line[i:end])
            i = end
        out[key] = "".join(val)
    return out


def status(con: Console) -> dict[str, str]:
    ok, lines = con.ask("STATUS?")
    if not ok or len(lines) < 2:
        raise LabError(f"STATUS? failed: {lines}")
    return fields(lines[0])


def burst(con: Console, quiet_s: float = 10.0, write_s: float = 120.0) -> tuple[bool, str]:
    """Write the whole burst before reading a byte, then read until the port is quiet.

    Passes when every line got exactly one final reply, and the unknown-command errors
    (each names its line) come in the order of their lines.
    """
    lines = burst_lines()
    data = ("\r\n".join(lines) + "\r\n").encode()
    con.buf = b""
    con.port.reset_input_buffer()
    done = threading.Event()

    def writer() -> None:
        con.port.write(data)
        con.port.flush()
        done.set()

    t0 = time.monotonic()
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    thread.join(write_s)
    if not done.is_set():
        return False, f"the box stopped reading: {len(data)} bytes not written in {write_s:.0f} s"
    got = bytearray()
    last = time.monotonic()
    while time.monotonic() - last < quiet_s:
        chunk = con.port.read(con.port.in_waiting or 1)
        if chunk:
            got += chunk
            last = time.monotonic()
    took = last - t0
    text = got.decode("ascii", errors="replace").split("\r\n")
    finals = [x for x in text if x == "OK" or x.startswith(("OK ", "ERR "))]
    ordered = in_order(lines, finals)
    ok = len(finals) == len(lines) and ordered
    return ok, (
        f"burst of {len(lines)} lines ({len(data)} bytes): {len(finals)} final replies, "
        f"unknown-command errors in order {ordered}, {len(got)} bytes back in {took:.1f} s"
    )
