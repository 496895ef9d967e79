"""The Box reads its parts' real health: a sensor that is gone, a sound output that died."""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.box.app import Box, RunOptions
from device.config import Config


def sim_box(tmp_path: Path, **cfg_values: object) -> Box:
    cfg = Config.defaults().with_value("therapy.program", "relax")
    for key, value in cfg_values.items():
        cfg = cfg.with_value(key.replace("__", "."), value)
    opts = RunOptions(
        sim=True, audio="null", speed=None, status="none", state_dir=str(tmp_path / "state")
    )
    return Box(cfg, opts, status_out=io.StringIO())


def run_until(box: Box, t: float) -> None:
    box.loop.run(until=lambda: box.clock.now() >= t)


def test_unplugged_sensor_reads_no_contact_no_hr_quality_0_within_2_s(tmp_path: Path) -> None:
    with sim_box(tmp_path) as box:
        run_until(box, 45.0)
        before = box.status()
        assert before["contact"] is True and before["hr"] is not None
        assert isinstance(before["quality"], float) and before["quality"] > 0.5
        assert box.rig is not None
        box.rig.chip.unplug()
        unplugged_at = box.clock.now()
        run_until(box, unplugged_at + 2.0)
        # Status, console and analysis handed to the therapy: all say the heart data are gone.
        status = box.status()
        assert (status["contact"], status["hr"], status["quality"]) == (False, None, 0.0)
        assert status["rmssd"] is None and status["breathing"] is None
        info = box.sensor_info()
        assert info["contact"] is False and info["quality"] == 0.0
        assert status["loop_state"] in ("frozen", "fallback")
        run_until(box, unplugged_at + 6.0)
        sid = box.recorder.session_id
        assert sid is not None
        rows = box.export_rows(sid).run()
    late = [r for r in rows if float(str(r["t"])) >= unplugged_at + 2.0 - 0.0]
    early = [r for r in rows if float(str(r["t"])) < unplugged_at - 1.0]
    assert late and early
    assert any(r["contact"] and r["hr"] is not None for r in early)
    # The store never records the frozen figures as good data.
    for r in late:
        assert not r["contact"] and r["hr"] is None and not r["quality"], r


class Manager:
    """A service manager's notify socket, read on a thread as systemd reads it."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[str] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            with self._lock:
                self.messages.append(data)

    def take(self) -> list[str]:
        """The messages received since the last call (waits for those in flight)."""
        time.sleep(0.2)
        with self._lock:
            out, self.messages = self.messages, []
        return out

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Manager]:
    """A service manager asking the box for a watchdog ping every second (2 s watchdog)."""
    path = tmp_path / "notify.sock"
    m = Manager(path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield m
    m.close()


def test_a_dead_sound_output_shows_everywhere_and_stops_the_watchdog(
    tmp_path: Path, manager: Manager, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), sim_box(tmp_path) as box:
        for t in range(1, 11):
            run_until(box, float(t))  # a second at a time: a real manager reads as it goes
            time.sleep(0.01)
        assert any("WATCHDOG=1" in m for m in manager.take())
        assert box.status()["audio"] == "ok"
        assert dict((n, ok) for n, ok, _ in box.selftest().run())["audio"] is True
        assert box.controls is not None and box.controls.led is not None
        assert box.controls.led.fault_code is None
        box.sink.close()  # the sound card is gone: every write fails from now on
        run_until(box, 12.0)
        manager.take()
        run_until(box, 20.0)
        status = box.status()
        assert status["audio"] == "fault" and status["audio_errors"]
        checks = {n: (ok, detail) for n, ok, detail in box.selftest().run()}
        assert checks["audio"][0] is False
        assert box.controls.led.fault_code == 2  # docs/box.md: 2 blinks = audio
        # No more watchdog pings: systemd restarts a box whose sound has died.
        assert not any("WATCHDOG=1" in m for m in manager.take())
    failing = [r for r in caplog.records if "audio output failing" in r.getMessage()]
    assert len(failing) == 1, [r.getMessage() for r in failing]  # one line, not one a second


def test_a_chip_that_answers_but_stops_sampling_stops_claiming_contact() -> None:
    # The driver side of a silent sensor: the bus works, the FIFO stays empty.
    from device.drivers.pulse_sensor import PulseSensor
    from device.sim.max30102 import SimulatedMAX30102
    from device.sim.pulse import PulseModel

    t = [0.0]
    model = PulseModel(3)
    model.set_heart(70.0, 4.0)
    model.ir_gain, model.red_gain = 450.0, 315.0
    chip = SimulatedMAX30102(lambda: t[0], model)
    sensor = PulseSensor(lambda: chip, clock=lambda: t[0], sleep=lambda s: None)

    def run(seconds: float) -> None:
        for _ in range(round(seconds / 0.1)):
            t[0] = round(t[0] + 0.1, 9)
            sensor.poll()

    run(5.0)
    assert sensor.contact and sensor.info()["contact"] is True
    chip.write_byte_data(0x57, 0x09, 0x80 | chip.read_byte_data(0x57, 0x09))  # SHDN behind its back
    run(0.5)
    assert sensor.present  # the chip still answers on the bus
    run(1.0)
    assert not sensor.contact and sensor.info()["contact"] is False
