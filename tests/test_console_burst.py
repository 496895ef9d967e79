"""A burst of short lines written at once, before reading anything, gets every reply in order.

The recipe of issue 16 item 15: after a ``PING`` was answered, 2000 random short lines
(``random.Random(7)``) are written in one go and only then is anything read. Through a socat
pty pair this deadlocked: socat forwards both directions in one thread with blocking
writes, so while it waited to hand the box more input it carried no reply away, and the box
stopped reading while its replies could not leave. Over a direct pty pair a client that
writes everything before it reads blocked the same way. The box now drains its input into a
bounded backlog whatever its output is doing.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.console_box import box_env, is_final, needs_socat, running_box
from tests.support.console_burst_lines import burst_lines, in_order


def write_all_then_read(fd: int, data: bytes, quiet_s: float = 3.0) -> bytes:
    """Write ``data`` without reading (blocking writes), then read until the port is quiet."""
    os.set_blocking(fd, True)
    done = threading.Event()

    def writer() -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        done.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    thread.join(20)
    assert done.is_set(), "the box stopped reading: the client's write never finished"
    got = bytearray()
    last = time.monotonic()
    while time.monotonic() - last < quiet_s:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            with contextlib.suppress(OSError):
                chunk = os.read(fd, 65536)
                if chunk:
                    got += chunk
                    last = time.monotonic()
    return bytes(got)


def check_replies(lines: list[str], received: bytes) -> None:
    finals = [x for x in received.decode("ascii").split("\r\n") if is_final(x)]
    assert len(finals) == len(lines)
    # Every unknown line's reply names it, so the order of those is checked line by line.
    assert in_order(lines, finals)


def ping(fd: int, timeout: float = 30.0) -> None:
    """Wait for ``!READY`` (the box flushes its input when it opens the port), then PING."""
    buf = b""
    deadline = time.monotonic() + timeout
    sent = False
    while b"OK #p0\r\n" not in buf:
        assert time.monotonic() < deadline, f"no answer to PING: {buf!r}"
        if not sent and b"!READY" in buf:
            os.write(fd, b"PING #p0\r\n")
            sent = True
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            with contextlib.suppress(OSError):
                buf += os.read(fd, 65536)


@needs_socat
def test_burst_through_a_socat_pair_is_answered_line_by_line(tmp_path: Path) -> None:
    lines = burst_lines()
    data = ("\r\n".join(lines) + "\r\n").encode()
    assert 16_000 < len(data) < 18_000  # the 17 KB
    with running_box(tmp_path, box_env(tmp_path)) as box:
        term = box.terminal()
        term.ok("PING")
        received = write_all_then_read(term.fd, data)
        assert box.proc.poll() is None
    check_replies(lines, received)


@contextlib.contextmanager
def box_on_openpty(tmp: Path) -> Iterator[int]:
    """``bedside run --sim --audio null`` on the slave of an os.openpty pair; yields the master."""
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    path = os.ttyname(slave)
    cfg = tmp / "config.toml"
    cfg.write_text("[service]\nauto_start = false\n")
    env = dict(box_env(tmp), BEDSIDE_CONFIG=str(cfg))
    cmd = [sys.executable, "-m", "device", "run", "--sim", "--audio", "null"]
    cmd += ["--serial", path, "--config", str(cfg), "--state-dir", str(tmp / "state")]
    with open(tmp / "box.log", "wb") as log:
        proc = subprocess.Popen(
            [*cmd, "--status", "none"], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    os.close(slave)
    try:
        yield master
        assert proc.poll() is None, (tmp / "box.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        os.close(master)


def test_burst_through_a_direct_pty_pair_is_answered_line_by_line(tmp_path: Path) -> None:
    lines = burst_lines()
    data = ("\r\n".join(lines) + "\r\n").encode()
    with box_on_openpty(tmp_path) as fd:
        ping(fd)
        received = write_all_then_read(fd, data)
    check_replies(lines, received)


@pytest.mark.parametrize("seed", [1, 2])
def test_bigger_bursts_fit_the_backlog(tmp_path: Path, seed: int) -> None:
    lines = burst_lines(4000, seed)  # about 33 KB, still inside the 64 KiB backlog
    data = ("\r\n".join(lines) + "\r\n").encode()
    with box_on_openpty(tmp_path) as fd:
        ping(fd)
        received = write_all_then_read(fd, data)
    check_replies(lines, received)
