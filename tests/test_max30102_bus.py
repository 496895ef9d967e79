"""Transaction-exact tests: exactly what the MAX30102 driver puts on the I2C bus."""

from __future__ import annotations

import errno

import numpy as np
import pytest

from device.drivers.i2c import (
    I2C_M_RD,
    I2CMsg,
    RecordingBus,
    Retrier,
    Transaction,
    open_i2c_bus,
)
from device.drivers.max30102 import MAX30102
from device.exc import BusError, HardwareError, SensorNotFound, SettingError
from device.sim.max30102 import SimulatedMAX30102
from device.sim.pulse import PulseModel

A = 0x57


def R(reg: int, *data: int) -> Transaction:
    return Transaction("read", A, reg, bytes(data))


def W(reg: int, *data: int) -> Transaction:
    return Transaction("write", A, reg, bytes(data))


def INIT(fifo_config: int, spo2_config: int, red: int, ir: int) -> list[Transaction]:
    return [
        R(0xFF, 0x15),  # PART_ID
        R(0xFE, 0x03),  # REV_ID
        W(0x09, 0x40),  # RESET
        R(0x09, 0x00),  # RESET has cleared
        R(0x00, 0x01, 0x00),  # INT_STATUS_1/2: clears PWR_RDY
        W(0x08, fifo_config),
        R(0x08, fifo_config),
        W(0x0A, spo2_config),
        R(0x0A, spo2_config),
        W(0x0C, red),
        R(0x0C, red),
        W(0x0D, ir),
        R(0x0D, ir),
        W(0x02, 0xA0),  # A_FULL_EN | ALC_OVF_EN
        R(0x02, 0xA0),
        W(0x04, 0, 0, 0),  # WR_PTR, OVF_COUNTER, RD_PTR cleared in one write
        W(0x09, 0x03),  # SpO2 mode
        R(0x09, 0x03),
    ]


@pytest.fixture
def clock():
    t = [0.0]
    return t


@pytest.fixture
def sim(clock):
    return SimulatedMAX30102(lambda: clock[0], PulseModel(seed=3))


def test_init_default_box_settings(sim):
    bus = RecordingBus(sim)
    MAX30102(bus, bus_name="sim")
    # 4096 nA (01), 100 sps (001), 411 µs (11) -> 0b0_01_001_11; A_FULL 0x0F; 7 mA -> 35.
    assert bus.log == INIT(0x0F, 0x27, 0x23, 0x23)


def test_init_400_sps_averaging_4(sim):
    bus = RecordingBus(sim)
    MAX30102(bus, sample_rate_sps=400, averaging=4, led_red_ma=6.4, led_ir_ma=12.6)
    # SMP_AVE 010 -> 0x4F; 400 sps (011) -> 0x2F; 6.4 mA -> 32, 12.6 mA -> 63.
    assert bus.log == INIT(0x4F, 0x2F, 0x20, 0x3F)


def test_fifo_read_of_5_samples_is_one_block_read(sim, clock):
    bus = RecordingBus(sim)
    drv = MAX30102(bus)
    bus.clear()
    clock[0] = 0.05
    fifo = drv.read_fifo()
    assert len(fifo.ir) == 5
    assert [(t.op, t.reg, len(t.data)) for t in bus.log] == [
        ("read", 0x00, 7),  # INT_STATUS_1 .. FIFO_RD_PTR in one burst
        ("read", 0x07, 30),  # 5 samples x 6 bytes, one transaction
    ]
    status = bus.log[0].data
    assert status[4:] == bytes([5, 0, 0])  # WR_PTR 5, OVF 0, RD_PTR 0


def test_fifo_read_over_32_bytes_uses_i2c_rdwr(sim, clock):
    bus = RecordingBus(sim)
    drv = MAX30102(bus)
    bus.clear()
    clock[0] = 0.1
    fifo = drv.read_fifo()
    assert len(fifo.ir) == 10
    assert [(t.op, t.reg, len(t.data)) for t in bus.log] == [("read", 0x00, 7), ("rdwr", 0x07, 60)]


def test_empty_fifo_reads_only_the_pointers(sim):
    bus = RecordingBus(sim)
    drv = MAX30102(bus)
    bus.clear()
    fifo = drv.read_fifo()
    assert len(fifo.ir) == 0
    assert [(t.op, t.reg) for t in bus.log] == [("read", 0x00)]


def test_led_change_is_one_write_and_its_read_back(sim):
    bus = RecordingBus(sim)
    drv = MAX30102(bus)
    bus.clear()
    drv.led_ir_ma = 5.0
    drv.led_red_ma = 0.2
    assert bus.log == [W(0x0D, 25), R(0x0D, 25), W(0x0C, 1), R(0x0C, 1)]


def test_sample_rate_change_reads_modifies_writes_and_reads_back(sim):
    bus = RecordingBus(sim)
    drv = MAX30102(bus)
    bus.clear()
    drv.sample_rate_sps = 50
    assert bus.log == [R(0x0A, 0x27), W(0x0A, 0x23), R(0x0A, 0x23)]


def test_forbidden_setting_puts_nothing_on_the_bus(sim):
    bus = RecordingBus(sim)
    drv = MAX30102(bus)
    bus.clear()
    with pytest.raises(SettingError):
        drv.led_ir_ma = 51.2
    assert bus.log == []
    with pytest.raises(SettingError):
        MAX30102(bus, sample_rate_sps=800, pulse_width_us=411)
    assert bus.log == []


def test_shutdown_on_close(sim):
    bus = RecordingBus(sim)
    drv = MAX30102(bus)
    bus.clear()
    drv.close()
    drv.close()
    assert bus.log == [R(0x09, 0x03), W(0x09, 0x83), R(0x09, 0x83)]


def test_temperature_transactions(sim, clock):
    bus = RecordingBus(sim)
    drv = MAX30102(bus)
    bus.clear()
    drv.start_temperature()
    assert drv.read_temperature() is None  # conversion takes 29 ms
    clock[0] = 0.03
    assert drv.read_temperature() == 31.5
    assert bus.log == [
        W(0x21, 0x01),
        R(0x21, 0x01),
        R(0x21, 0x00),
        R(0x1F, 31, 8),  # TINT 31, TFRAC 8/16
    ]


class ScriptedBus:
    """Plays back scripted register reads and checks every transfer against the script."""

    i2c_msg = I2CMsg

    def __init__(self, script: list[tuple]) -> None:
        self.script = list(script)

    def _next(self, op: str, reg: int, arg: object):
        expected = self.script.pop(0)
        assert (op, reg) == expected[:2], f"expected {expected[:2]}, driver did {(op, reg)}"
        if isinstance(expected[2], Exception):
            raise expected[2]
        if op == "write":
            assert arg == expected[2]
        return expected[2]

    def read_i2c_block_data(self, addr: int, reg: int, length: int) -> list[int]:
        data = self._next("read", reg, length)
        assert len(data) == length
        return list(data)

    def read_byte_data(self, addr: int, reg: int) -> int:
        return self._next("read", reg, None)

    def write_byte_data(self, addr: int, reg: int, value: int) -> None:
        self._next("write", reg, value)

    def i2c_rdwr(self, *msgs) -> None:
        write, read = msgs
        assert not write.flags & I2C_M_RD and read.flags & I2C_M_RD
        data = self._next("rdwr", bytes(write)[0], read.len)
        read.buf[:] = bytes(data)


def bare_driver(bus) -> MAX30102:
    drv = MAX30102.__new__(MAX30102)
    drv.bus, drv.address, drv.bus_name, drv.retrier = bus, A, "script", Retrier(sleep=lambda s: 0)
    drv._closed, drv.overflows, drv.samples_lost = False, 0, 0
    drv._settings = (100, 1, 411, 4096)
    return drv


def test_samples_are_masked_to_18_bits_red_then_ir():
    raw = [0xFF, 0x12, 0x34, 0x01, 0x02, 0x03, 0x02, 0xFF, 0xFF, 0xFC, 0x00, 0x01]
    bus = ScriptedBus([("read", 0x00, [0, 0, 0, 0, 2, 0, 0]), ("read", 0x07, raw)])
    fifo = bare_driver(bus).read_fifo()
    np.testing.assert_array_equal(fifo.red, [0x31234, 0x2FFFF])
    np.testing.assert_array_equal(fifo.ir, [0x10203, 0x00001])
    assert fifo.red.dtype == np.float64
    assert bus.script == []


def test_full_fifo_with_overflow_reads_32_samples_in_one_rdwr():
    # WR == RD with OVF_COUNTER 9: the FIFO is full (not empty), 9 samples were dropped.
    raw = bytes(range(6)) * 32
    bus = ScriptedBus([("read", 0x00, [0x80, 0, 0xA0, 0, 7, 9, 7]), ("rdwr", 0x07, raw)])
    drv = bare_driver(bus)
    fifo = drv.read_fifo()
    assert len(fifo.ir) == 32 and fifo.lost == 9 and fifo.overflow
    assert (drv.overflows, drv.samples_lost) == (1, 9)


def test_full_fifo_without_overflow_is_seen_by_a_full():
    raw = bytes(6) * 32
    bus = ScriptedBus([("read", 0x00, [0x80, 0, 0, 0, 3, 0, 3]), ("rdwr", 0x07, raw)])
    assert len(bare_driver(bus).read_fifo().ir) == 32


def test_pointer_wrap_counts_samples_modulo_32():
    bus = ScriptedBus([("read", 0x00, [0, 0, 0, 0, 2, 0, 30]), ("read", 0x07, bytes(24))])
    assert len(bare_driver(bus).read_fifo().ir) == 4


def test_alc_ovf_and_pwr_rdy_flags():
    bus = ScriptedBus([("read", 0x00, [0x21, 0, 0, 0, 0, 0, 0])])
    fifo = bare_driver(bus).read_fifo()
    assert fifo.light and fifo.power_up and len(fifo.ir) == 0


def test_failed_sample_read_puts_rd_ptr_back():
    eio = OSError(errno.EIO, "I/O error")
    bus = ScriptedBus(
        [
            ("read", 0x00, [0, 0, 0, 0, 9, 0, 4]),
            ("read", 0x07, eio),
            ("read", 0x07, eio),
            ("read", 0x07, eio),
            ("write", 0x06, 4),  # RD_PTR back to 4: the 5 samples will be read again
        ]
    )
    with pytest.raises(BusError) as info:
        bare_driver(bus).read_fifo()
    assert info.value.errno == errno.EIO
    assert "FIFO_DATA (0x07)" in str(info.value) and "3 tries" in str(info.value)
    assert bus.script == []


# --- the I2C backend itself ---------------------------------------------------------------


def test_missing_bus_says_how_to_enable_i2c():
    with pytest.raises(SensorNotFound) as info:
        open_i2c_bus(29)
    message = str(info.value)
    assert "/dev/i2c-29 does not exist" in message and "dtparam=i2c_arm=on" in message
    assert info.value.errno == errno.ENOENT


def test_bus_without_permission_names_the_group(mocker):
    mocker.patch("smbus2.SMBus", side_effect=PermissionError(errno.EACCES, "Permission denied"))
    with pytest.raises(HardwareError, match="group 'i2c'") as info:
        open_i2c_bus("/dev/i2c-1")
    assert not isinstance(info.value, SensorNotFound)


def test_retrier_backs_off_and_counts():
    waits: list[float] = []
    attempts = iter([OSError(errno.EBUSY, "busy"), OSError(errno.EIO, "io"), 42])

    def flaky() -> int:
        result = next(attempts)
        if isinstance(result, Exception):
            raise result
        return result

    retrier = Retrier(tries=3, backoff_s=0.001, sleep=waits.append)
    assert retrier.call("read", flaky) == 42
    assert waits == [0.001, 0.002] and (retrier.retries, retrier.failures) == (2, 0)
    assert repr(retrier) == "<Retrier tries=3 backoff=1ms retries=2 failures=0>"


def test_retrier_gives_up_with_the_last_errno():
    retrier = Retrier(tries=2, sleep=lambda s: None)

    def gone() -> None:
        raise OSError(errno.EREMOTEIO, "Remote I/O error")

    with pytest.raises(BusError, match=r"sensor read failed after 2 tries: \[Errno 121\]") as info:
        retrier.call("sensor read", gone)
    assert info.value.errno == errno.EREMOTEIO and isinstance(info.value, OSError)
    assert (retrier.retries, retrier.failures) == (1, 1)
    with pytest.raises(ValueError, match="tries must be >= 1"):
        Retrier(tries=0)


def test_recording_bus_records_failures_with_their_errno(sim):
    bus = RecordingBus(sim)
    sim.unplug()
    with pytest.raises(OSError):
        bus.write_byte_data(A, 0x0D, 5)
    with pytest.raises(OSError):
        bus.i2c_rdwr(I2CMsg.write(A, [0x07]), I2CMsg.read(A, 6))
    assert bus.log == [
        Transaction("write", A, 0x0D, b"\x05", errno.EREMOTEIO),
        Transaction("rdwr", A, 0x07, b"", errno.EREMOTEIO),
    ]


def test_packaged_message_looks_like_smbus2s():
    read, write = I2CMsg.read(A, 3), I2CMsg.write(A, [7, 8])
    assert (read.addr, read.flags, read.len) == (A, I2C_M_RD, 3)
    assert (write.flags, bytes(write), list(write), len(write)) == (0, b"\x07\x08", [7, 8], 2)
    assert repr(write) == "I2CMsg.write(0x57, b'\\x07\\x08')"
