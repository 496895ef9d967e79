"""Signals a box gets from its surroundings, and a console port that is not there (#23.10)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from device.drivers.serial_port import open_serial
from device.exc import SerialPortError
from device.store.sessions import Store


def start_and_hangup(cmd: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``cmd`` until its session has started, send SIGHUP; its status and stderr."""
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True)  # fmt: skip
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 90
    try:
        for line in proc.stderr:
            seen.append(line)
            if "event start program=" in line:
                break
            assert time.monotonic() < deadline, "".join(seen)
        proc.send_signal(signal.SIGHUP)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(seen) + rest


def test_sighup_fades_out_and_closes_the_session_as_sigterm_does(
    tmp_path: Path, bedside_cmd: list[str], cli_env: dict[str, str]
) -> None:
    state = tmp_path / "state"
    status, err = start_and_hangup(
        [*bedside_cmd, "run", "--sim", "--audio", "null", "--status", "none",
         "--state-dir", str(state)], cli_env,
    )  # fmt: skip
    assert status == 0, err[-2000:]
    assert "event stop SIGHUP" in err
    with Store(state / "sessions.db", readonly=True) as store:
        (session,) = store.sessions()
    assert session["end_reason"] == "SIGHUP"


def test_sighup_removes_a_sim_runs_temporary_state(
    bedside_cmd: list[str], cli_env: dict[str, str]
) -> None:
    status, err = start_and_hangup(
        [*bedside_cmd, "run", "--sim", "--audio", "null", "--status", "none"], cli_env
    )
    assert status == 0, err[-2000:]
    found = re.search(r"state in (\S*bedside-sim-\S+) ", err)
    assert found, err[-2000:]
    assert not Path(found.group(1)).exists()


def test_a_missing_serial_port_is_one_clear_line() -> None:
    pytest.importorskip("serial")
    with pytest.raises(SerialPortError) as info:
        open_serial("/dev/ttyNOPE")
    text = str(info.value)
    assert text == (
        "cannot open serial port /dev/ttyNOPE: no such device "
        "(is the UART enabled, or the USB adapter plugged in?)"
    )


def test_a_missing_console_port_warns_once_then_retries_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("serial")
    from device.console.server import ConsoleServer
    from device.drivers.serial_port import serial_opener
    from tests.support.console_doubles import FakeBox, FakeClock

    clock = FakeClock()
    server = ConsoleServer(serial_opener("/dev/ttyNOPE"), FakeBox(), None, clock=clock, serial="T")
    tries = []
    real_open = server.open_port

    def counted() -> object:
        tries.append(clock.t)
        return real_open()

    server.open_port = counted
    with caplog.at_level("DEBUG", logger="device.console.server"):
        for _ in range(50):  # 5 s of loop time
            clock.t += 0.1
            server.poll(clock.t)
    server.close()
    assert len(tries) >= 4, "the port is tried again about once a second"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "[Errno" not in warnings[0] and "could not open port" not in warnings[0]
    assert "/dev/ttyNOPE" in warnings[0] and "retrying" in warnings[0]
