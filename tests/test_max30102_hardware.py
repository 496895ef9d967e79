"""On a real box only: the driver and PulseSensor against a MAX30102 on /dev/i2c-N.

Skipped unless ``BEDSIDE_HW=real``; the bus number comes from ``BEDSIDE_I2C_BUS`` (1).
"""

from __future__ import annotations

import os
import time

import pytest

from device.drivers.i2c import open_i2c_bus
from device.drivers.max30102 import MAX30102
from device.drivers.pulse_sensor import PulseSensor

pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(
        os.environ.get("BEDSIDE_HW") != "real",
        reason="needs a MAX30102 on a Raspberry Pi (set BEDSIDE_HW=real)",
    ),
]
BUS = int(os.environ.get("BEDSIDE_I2C_BUS", "1"))


@pytest.fixture
def bus():
    bus = open_i2c_bus(BUS)
    yield bus
    bus.close()


def test_identity_settings_fifo_and_temperature(bus):
    with MAX30102(bus, bus_name=f"/dev/i2c-{BUS}") as drv:
        assert drv.part_id == 0x15
        assert (drv.sample_rate_sps, drv.pulse_width_us, drv.led_ir_ma) == (100, 411, 7.0)
        drv.read_fifo()
        time.sleep(0.2)  # 20 samples at 100 sps
        fifo = drv.read_fifo()
        assert 15 <= len(fifo.ir) <= 25 and not fifo.overflow
        assert 0.0 < drv.temperature_c < 70.0
    assert drv.closed


def test_pulse_sensor_streams_at_the_rate():
    with PulseSensor(lambda: open_i2c_bus(BUS), bus_name=f"/dev/i2c-{BUS}") as sensor:
        assert sensor.present, sensor.info()["error"]
        total = 0
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            time.sleep(0.1)
            block = sensor.poll()
            total += 0 if block is None else len(block)
        assert 180 <= total <= 210
        assert sensor.info()["bus_errors"] == 0
