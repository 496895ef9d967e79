"""A running box with its console on a socat pty pair, for end-to-end console tests.

The box (``bedside run --sim --audio null --serial BOX_TTY``) owns one end of the pair; the
test talks on the other end as a technician's terminal would. Killing socat and starting it
again is a USB adapter unplugged and plugged back in.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOCAT = shutil.which("socat")
needs_socat = pytest.mark.skipif(SOCAT is None, reason="socat is not installed")


def is_final(line: str) -> bool:
    """Whether ``line`` is a reply's final line."""
    return line == "OK" or line.startswith(("OK ", "ERR "))


class Terminal:
    """The technician's end of the pair: raw bytes in, CRLF lines out."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.buf = bytearray()
        self.seen: list[str] = []
        self._n = 0

    def send(self, data: bytes | str) -> None:
        """Write ``data`` (all of it, waiting while the pty is full)."""
        raw = data.encode() if isinstance(data, str) else data
        view = memoryview(raw)
        deadline = time.monotonic() + 20
        while view:
            select.select([], [self.fd], [], 0.1)
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                n = 0
            view = view[n:]
            # Keep reading while writing, or a flood fills both directions and stalls.
            self._pump(0)
            if time.monotonic() > deadline:
                raise AssertionError("the box stopped reading")

    def _pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            with contextlib.suppress(OSError):
                self.buf += os.read(self.fd, 65536)

    def reply_line(self, timeout: float = 10.0) -> str:
        """The next line that is not one the box sent on its own (``!...``)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.line(max(0.0, deadline - time.monotonic()))
            if not text.startswith("!"):
                return text

    def line(self, timeout: float = 10.0) -> str:
        """The next non-empty line received."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                text = self.buf[:i].decode("ascii")
                del self.buf[: i + 2]
                if text:
                    self.seen.append(text)
                    return text
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line within {timeout} s; pending {bytes(self.buf)!r}")
            self._pump(min(left, 0.1))

    def until(self, pred: object, timeout: float = 10.0) -> list[str]:
        """Lines up to and including the first one for which ``pred(line)`` is true."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(max(0.01, deadline - time.monotonic()))
            out.append(line)
            if pred(line):  # type: ignore[operator]
                return out

    def ask(self, command: str, timeout: float = 10.0) -> tuple[list[str], str, list[str]]:
        """Send ``command`` with a fresh tag; return (data lines, final line, ``!`` lines).

        Fails if a ``!`` line arrives inside the reply (after its first data line).
        """
        self._n += 1
        tag = f"t{self._n}"
        self.send(f"{command} #{tag}\r\n")
        data: list[str] = []
        bangs: list[str] = []
        for line in self.until(lambda x: is_final(x) and x.endswith(f" #{tag}"), timeout):
            if line.startswith("!"):
                assert not data, f"async line inside the reply to {command}: {line}"
                bangs.append(line)
            elif is_final(line):
                if not line.endswith(f" #{tag}"):
                    data.clear()  # the end of an earlier, untagged reply
                    continue
                return data, line[: -len(tag) - 2], bangs
            else:
                data.append(line)
        raise AssertionError("unreachable")

    def ok(self, command: str, timeout: float = 10.0) -> list[str]:
        """Send ``command``; assert it answered OK; return its data lines."""
        data, final, _ = self.ask(command, timeout)
        assert final == "OK", f"{command} -> {final}"
        return data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


@dataclass
class BoxRun:
    """A running box and the paths around it."""

    proc: subprocess.Popen[bytes]
    box_tty: str
    tech_tty: str
    state_dir: Path
    config: Path
    log: Path
    socat: subprocess.Popen[bytes] | None = None
    terminals: list[Terminal] = field(default_factory=list)
    #: The PIN set by a test with PIN SET (``None``: still the default).
    new_pin: str | None = None

    def plug(self) -> None:
        """Create the pty pair (socat) and wait for both links."""
        assert SOCAT is not None
        self.socat = subprocess.Popen(
            [SOCAT, f"pty,raw,echo=0,link={self.box_tty}", f"pty,raw,echo=0,link={self.tech_tty}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while not (os.path.exists(self.box_tty) and os.path.exists(self.tech_tty)):
            assert time.monotonic() < deadline, "socat made no ptys"
            time.sleep(0.01)

    def unplug(self) -> None:
        """Kill socat: the box's port fails as an unplugged USB adapter does."""
        for t in self.terminals:
            t.close()
        self.terminals.clear()
        if self.socat is not None:
            self.socat.terminate()
            self.socat.wait(5)
            self.socat = None

    def terminal(self) -> Terminal:
        """Open the technician's end."""
        t = Terminal(self.tech_tty)
        self.terminals.append(t)
        return t

    def pin(self) -> str:
        """The box's default service PIN, via ``bedside pin show-default`` (tests run as root)."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "device",
                "pin",
                "show-default",
                "--state-dir",
                str(self.state_dir),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.split("default service PIN:")[1].split()[0]

    def current_pin(self) -> str:
        """The service PIN now in use."""
        return self.new_pin or self.pin()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def box_env(tmp: Path) -> dict[str, str]:
    """Environment for the box: no system config or systemd, this checkout first."""
    env = dict(os.environ)
    for name in ("BEDSIDE_CONFIG", "NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC"):
        env.pop(name, None)
    env["XDG_STATE_HOME"] = str(tmp / "xdg-state")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@contextlib.contextmanager
def running_box(
    tmp: Path, env: dict[str, str], config: str = "", audio: str = "null"
) -> Iterator[BoxRun]:
    """Start ``bedside run --sim --audio AUDIO --serial`` on a socat pty; stop it after."""
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = tmp / "config.toml"
    cfg.write_text("[service]\nauto_start = false\n" + config)
    state = tmp / "state"
    log = tmp / "box.log"
    run = BoxRun(None, str(tmp / "box-tty"), str(tmp / "tech-tty"), state, cfg, log)  # type: ignore[arg-type]
    run.plug()
    env = dict(env, BEDSIDE_CONFIG=str(cfg))
    with open(log, "wb") as logf:
        run.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "device",
                "run",
                "--sim",
                "--audio",
                audio,
                "--serial",
                run.box_tty,
                "--config",
                str(cfg),
                "--state-dir",
                str(state),
                "--status",
                "none",
            ],
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        term = run.terminal()
        try:
            term.until(lambda x: x.startswith("!READY"), timeout=30)
        except AssertionError:
            raise AssertionError(f"the box did not open its console:\n{run.log_text()}") from None
        yield run
    finally:
        for t in run.terminals:
            t.close()
        if run.proc.poll() is None:
            run.proc.send_signal(signal.SIGTERM)
            try:
                run.proc.wait(10)
            except subprocess.TimeoutExpired:
                run.proc.kill()
                run.proc.wait(5)
        run.unplug()
