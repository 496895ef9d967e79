"""The MAX30102 driver against the simulated chip: identity, settings, FIFO, errors, lifecycle."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from device.drivers.i2c import Retrier
from device.drivers.max30102 import MAX30102, check_settings, led_code
from device.exc import BusError, HardwareError, SensorNotFound, SensorTimeout, SettingError
from device.sim.max30102 import SimulatedMAX30102
from device.sim.pulse import PulseModel


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock) -> SimulatedMAX30102:
    return SimulatedMAX30102(clock, PulseModel(seed=2))


def make(sim, clock, **kwargs) -> MAX30102:
    return MAX30102(sim, bus_name="/dev/i2c-1", monotonic=clock, sleep=clock.sleep, **kwargs)


def test_identity_and_repr(sim, clock):
    drv = make(sim, clock)
    assert (drv.part_id, drv.rev_id) == (0x15, 0x03)
    assert repr(drv) == "<MAX30102 rev 0x03 at 0x57 on /dev/i2c-1 100 sps/1 411 µs 4096 nA>"


def test_rev_id_is_logged(sim, clock, caplog):
    caplog.set_level("INFO", logger="device.drivers.max30102")
    make(sim, clock)
    assert "MAX30102 rev 0x03 found at 0x57 on /dev/i2c-1" in caplog.text


def test_max30100_is_refused_by_name(clock):
    sim = SimulatedMAX30102(clock, PulseModel(), part_id=0x11)
    with pytest.raises(SensorNotFound, match="MAX30100 not supported") as info:
        make(sim, clock)
    assert "0x57 on /dev/i2c-1" in str(info.value)
    assert sim.read_byte_data(0x57, 0x09) == 0  # nothing was written to it


def test_other_chip_names_what_was_read(clock):
    sim = SimulatedMAX30102(clock, PulseModel(), part_id=0x42)
    with pytest.raises(SensorNotFound) as info:
        make(sim, clock)
    message = str(info.value)
    assert "PART_ID (0xFF) reads 0x42, expected 0x15" in message
    assert "0x57 on /dev/i2c-1" in message and "i2cdetect -y 1" in message


def test_nothing_at_the_address(sim, clock):
    sim.unplug()
    with pytest.raises(SensorNotFound) as info:
        make(sim, clock)
    assert info.value.errno == errno.EREMOTEIO
    message = str(info.value)
    assert "no MAX30102 answered at 0x57 on /dev/i2c-1" in message
    assert "wiring" in message and "sensor.address" in message


def test_wrong_address_is_not_found(sim, clock):
    with pytest.raises(SensorNotFound, match="at 0x58 on"):
        MAX30102(sim, 0x58, sleep=clock.sleep)


class StuckReset:
    """A bus whose chip never clears RESET (a fault injected on top of the simulator)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def read_byte_data(self, addr: int, reg: int) -> int:
        value = self.inner.read_byte_data(addr, reg)
        return value | 0x40 if reg == 0x09 else value


def test_reset_times_out_after_100_ms(sim, clock):
    with pytest.raises(SensorTimeout, match="did not finish its reset within 100 ms") as info:
        make(StuckReset(sim), clock)
    assert isinstance(info.value, TimeoutError)
    assert 0.1 <= clock.t < 0.11


def test_setup_starts_spo2_sampling(sim, clock):
    drv = make(sim, clock)
    assert sim.read_byte_data(0x57, 0x09) == 0x03
    assert (drv.sample_rate_sps, drv.averaging, drv.pulse_width_us) == (100, 1, 411)
    assert (drv.adc_range_na, drv.adc_bits, drv.output_rate_hz) == (4096, 18, 100.0)
    assert (drv.led_red_ma, drv.led_ir_ma) == (7.0, 7.0)


def test_settings_are_written_and_read_back(sim, clock):
    drv = make(sim, clock)
    drv.pulse_width_us = 69
    drv.sample_rate_sps = 1600
    drv.adc_range_na = 16384
    drv.averaging = 8
    drv.led_ir_ma = 12.6
    drv.led_red_ma = 0.0
    assert (drv.sample_rate_sps, drv.pulse_width_us, drv.adc_range_na) == (1600, 69, 16384)
    assert (drv.averaging, drv.output_rate_hz, drv.adc_bits) == (8, 200.0, 15)
    assert (drv.led_ir_ma, drv.led_red_ma) == (12.6, 0.0)
    assert sim.read_byte_data(0x57, 0x0D) == 63


@pytest.mark.parametrize(
    ("attr", "value", "message"),
    [
        ("sample_rate_sps", 1600, "forbids 1600 sps with 411 µs pulses"),
        ("sample_rate_sps", 3200, "allowed pulse widths are none"),
        ("sample_rate_sps", 150, "150 is not one of"),
        ("pulse_width_us", 100, "100 is not one of"),
        ("adc_range_na", 5000, "5000 is not one of"),
        ("averaging", 3, "averaging 3"),
        ("led_ir_ma", 51.2, "led_ir_ma must be 0-51 mA"),
        ("led_red_ma", -1.0, "led_red_ma must be 0-51 mA"),
        ("led_red_ma", float("nan"), "led_red_ma must be 0-51 mA"),
    ],
)
def test_forbidden_settings_are_rejected(sim, clock, attr, value, message):
    drv = make(sim, clock)
    before = sim.read_i2c_block_data(0x57, 0x08, 6)
    with pytest.raises(SettingError, match=message):
        setattr(drv, attr, value)
    assert sim.read_i2c_block_data(0x57, 0x08, 6) == before


def test_800_sps_allows_215_but_not_411_us():
    check_settings(800, 1, 215, 4096)
    with pytest.raises(SettingError, match="Table 11: at 800 sps the allowed pulse widths are"):
        check_settings(800, 1, 411, 4096)


def test_led_code_rounds_to_0_2_ma_steps():
    assert [led_code(x) for x in (0.0, 0.2, 7.0, 7.05, 51.0)] == [0, 1, 35, 35, 255]


class Flipping:
    """A bus on which one register reads back differently from what was written."""

    def __init__(self, inner, reg: int) -> None:
        self.inner, self.reg = inner, reg

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def read_byte_data(self, addr: int, reg: int) -> int:
        value = self.inner.read_byte_data(addr, reg)
        return value ^ 0x01 if reg == self.reg else value


def test_read_back_mismatch_is_a_hardware_error(sim, clock):
    with pytest.raises(HardwareError, match=r"wrote 0x23 to LED2_PA \(0x0D\) but read back 0x22"):
        make(Flipping(sim, 0x0D), clock)
    assert sim.read_byte_data(0x57, 0x09) & 0x80  # the half-set-up chip was shut down


def test_fifo_samples_follow_the_clock(sim, clock):
    drv = make(sim, clock)
    clock.t += 0.25
    fifo = drv.read_fifo()
    assert len(fifo.ir) == len(fifo.red) == 25
    assert not fifo.overflow and not fifo.light and not fifo.power_up
    assert np.all((fifo.ir > 0) & (fifo.ir <= 0x3FFFF))
    assert len(drv.read_fifo().ir) == 0


def test_overflow_is_counted(sim, clock):
    drv = make(sim, clock)
    clock.t += 0.5  # 50 samples due, 32 fit
    fifo = drv.read_fifo()
    assert (len(fifo.ir), fifo.lost) == (32, 18)
    clock.t += 2.0
    fifo = drv.read_fifo()
    assert (len(fifo.ir), fifo.lost) == (32, 31)  # saturated
    assert (drv.overflows, drv.samples_lost) == (2, 49)


def test_light_and_power_up_flags(sim, clock):
    drv = make(sim, clock)
    sim.set_light(True)
    clock.t += 0.1
    assert drv.read_fifo().light
    sim.replug()
    assert drv.read_fifo().power_up


def test_transient_bus_errors_are_retried(sim, clock):
    drv = make(sim, clock)
    sim.inject_bus_errors(2)
    clock.t += 0.1
    before = clock.t
    assert len(drv.read_fifo().ir) == 10
    assert drv.retrier.retries == 2
    assert clock.t - before == pytest.approx(0.0005 + 0.001)  # backoff doubles


def test_persistent_bus_errors_raise_bus_error(sim, clock):
    drv = make(sim, clock)
    sim.inject_bus_errors(3)
    with pytest.raises(BusError) as info:
        drv.read_fifo()
    assert info.value.errno == errno.EIO
    assert "INT_STATUS_1 (0x00) at 0x57 on /dev/i2c-1 failed after 3 tries" in str(info.value)
    assert drv.retrier.failures == 1


def test_other_os_errors_are_not_retried():
    calls = []

    def fail() -> None:
        calls.append(1)
        raise OSError(errno.ENXIO, "No such device or address")

    with pytest.raises(BusError, match="after 1 try"):
        Retrier(sleep=lambda s: None).call("probe", fail)
    assert len(calls) == 1


def test_temperature(sim, clock):
    drv = make(sim, clock)
    sim.die_temp_c = 36.875
    assert drv.temperature_c == 36.875  # waits (on the injected sleep) for the conversion
    sim.die_temp_c = -12.5
    drv.start_temperature()
    clock.t += 0.03
    assert drv.read_temperature() == -12.5


def test_close_shuts_down_is_idempotent_and_context_managed(sim, clock):
    with make(sim, clock) as drv:
        pass
    assert sim.read_byte_data(0x57, 0x09) == 0x83  # SHDN kept with the mode
    drv.close()
    assert drv.closed
    assert repr(drv) == "<MAX30102 at 0x57 on /dev/i2c-1 closed>"
    with pytest.raises(HardwareError, match="closed"):
        drv.read_fifo()


def test_close_survives_a_vanished_chip(sim, clock):
    drv = make(sim, clock)
    sim.unplug()
    drv.close()
    assert drv.closed


def test_shutdown_and_wake(sim, clock):
    drv = make(sim, clock)
    drv.shutdown()
    clock.t += 0.5
    assert len(drv.read_fifo().ir) == 0
    drv.wake()
    clock.t += 0.1
    assert len(drv.read_fifo().ir) == 10


def test_no_reserved_register_is_ever_written(sim, clock):
    drv = make(sim, clock)
    drv.led_ir_ma = 3.0
    drv.temperature_c  # noqa: B018 - a property with a bus transaction behind it
    drv.close()
    assert sim.reserved_writes == []


#: Table 11 (p.23) as printed: SpO2 mode, sample rate -> allowed pulse widths (µs).
TABLE_11 = {
    50: "69 118 215 411",
    100: "69 118 215 411",
    200: "69 118 215 411",
    400: "69 118 215 411",
    800: "69 118 215",
    1000: "69 118",
    1600: "69",
    3200: "",
}


@pytest.mark.parametrize("rate", sorted(TABLE_11))
def test_check_settings_allows_exactly_table_11(rate):
    allowed = {int(w) for w in TABLE_11[rate].split()}
    for width in (69, 118, 215, 411):
        if width in allowed:
            check_settings(rate, 1, width, 4096)
        else:
            with pytest.raises(SettingError, match=f"forbids {rate} sps with {width} µs"):
                check_settings(rate, 1, width, 4096)


@pytest.mark.parametrize("rate", sorted(TABLE_11))
def test_the_simulated_chip_clamps_by_the_same_table(clock, rate):
    # Table 11 in SpO2 mode, and what the chip keeps: a rate too high for the pulse width
    # is lowered (p.19), so each kept pair is an allowed one.
    for code, width in enumerate((69, 118, 215, 411)):
        chip = SimulatedMAX30102(clock, PulseModel(seed=2))
        chip.write_byte_data(0x57, 0x09, 0x03)
        sr = (50, 100, 200, 400, 800, 1000, 1600, 3200).index(rate)
        chip.write_byte_data(0x57, 0x0A, 0x20 | sr << 2 | code)
        kept = (chip.read_byte_data(0x57, 0x0A) >> 2 & 0x07) == sr
        assert kept == (str(width) in TABLE_11[rate].split())
