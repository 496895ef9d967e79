"""Two third-party MAX3010x drivers read the simulated chip in HR, SpO2 and multi-LED mode.

Each driver's bus traffic is reproduced transfer for transfer from its source, then checked
against a :class:`RecordingBus` and decoded as the driver decodes it; the samples must equal
those a twin chip (same seeds, same settings, same clock) gives the product driver in SpO2
mode, so a simulator that sends the wrong bytes per sample fails here.

- Pimoroni ``max30105`` 0.0.5 (``pimoroni/max30105-python``, ``library/max30105/__init__.py``)
  over ``i2cdevice`` (``pimoroni/i2cdevice-python``): every register access is an SMBus block
  transfer of the register's width; a field set outside ``with`` is read-modify-write.
  ``setup()`` resets, configures FIFO (its 9-bit SMP_AVE mask turns "average 4" into 16),
  SPO2_CONFIG, LED1-3 amplitudes in one 3-byte write (0x0E is reserved on a MAX30102), the
  pilot amplitude (0x10, reserved), MODE, the slots in one 2-byte write, then clears RD, WR,
  OVF. ``get_samples()`` reads RD_PTR, WR_PTR, reads ``count * 3 * leds`` bytes from 0x07 in
  32-byte blocks (so samples straddle transfers), clears the pointers, and splits the bytes
  into 3-byte values without masking.
- SparkFun ``sparkfun-qwiic-max3010x`` (``sparkfun/Qwiic_MAX3010x_Py``,
  ``qwiic_max3010x/qwiic_max3010x.py``) over ``qwiic_i2c``'s Linux driver (``readByte`` =
  ``read_byte_data``, ``writeByte`` = ``write_byte_data``, ``readBlock`` =
  ``read_i2c_block_data``). ``setup()`` reads-modifies-writes each field, writes LED1-3 and
  the pilot amplitude one byte each, enables slots 1..ledMode (Red, IR, Green = code 011, a
  "None" slot on the MAX30102), clears WR, OVF, RD. ``check()`` reads RD_PTR, WR_PTR, counts
  samples with wrap, reads ``n * ledMode * 3`` bytes in 32-byte blocks and masks 18 bits.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from device.drivers.i2c import RecordingBus, Transaction
from device.drivers.max30102 import MAX30102
from device.sim.max30102 import SimulatedMAX30102
from device.sim.pulse import PulseModel

A = 0x57
FIFO_DATA = 0x07


def R(reg: int, *data: int) -> Transaction:
    return Transaction("read", A, reg, bytes(data))


def W(reg: int, *data: int) -> Transaction:
    return Transaction("write", A, reg, bytes(data))


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def chip(clock: Clock) -> SimulatedMAX30102:
    return SimulatedMAX30102(clock, PulseModel(seed=11), seed=4)


def twin_samples(t: float, **settings: float) -> tuple[np.ndarray, np.ndarray]:
    """Red and IR as the product driver reads them at ``t`` (SpO2 mode) from a twin chip
    set up at 0 s."""
    clock = Clock()
    drv = MAX30102(chip(clock), **settings)  # type: ignore[arg-type]
    clock.t = t
    fifo = drv.read_fifo()
    return fifo.red.astype(np.int64), fifo.ir.astype(np.int64)


def fifo_shape(log: list[Transaction]) -> list[tuple[str, int, int]]:
    return [(t.op, t.reg, len(t.data)) for t in log]


# --- Pimoroni max30105 ----------------------------------------------------------------------


class Pimoroni:
    """The bus traffic of ``max30105.MAX30105`` (``i2c_dev`` = our bus)."""

    MODES: ClassVar[dict[int, int]] = {1: 0b010, 2: 0b011, 3: 0b111}

    def __init__(self, bus: RecordingBus, leds: int) -> None:
        self.bus, self.leds = bus, leds

    def rd(self, reg: int, n: int = 1) -> list[int]:
        return self.bus.read_i2c_block_data(A, reg, n)

    def wr(self, reg: int, data: list[int]) -> None:
        self.bus.write_i2c_block_data(A, reg, data)

    def rmw(self, reg: int, mask: int, value: int) -> None:
        self.wr(reg, [(self.rd(reg)[0] & ~mask) | value])

    def setup(self) -> None:  # defaults: 6.4 mA, average 4, 400 sps, 215 µs, 16384 nA
        self.rmw(0x09, 0x40, 0x40)  # soft_reset
        while self.rd(0x09)[0] & 0x40:
            pass
        self.rd(0x08)  # with FIFO_CONFIG: read, then one write
        self.wr(0x08, [0x80 | 0x10])  # code 0b010 under mask 0b111000000 -> 0x80; rollover
        self.rd(0x0A)
        self.wr(0x0A, [0x60 | 0x0C | 0x02])  # 16384 nA, 400 sps, 215 µs
        self.rd(0x0C, 3)
        self.wr(0x0C, [32, 32, 32])  # int(6.4 / 0.2) for LED1, LED2, LED3
        self.rmw(0x10, 0xFF, 32)  # pilot amplitude
        self.rmw(0x09, 0x07, self.MODES[self.leds])
        self.rd(0x11, 2)
        slots = 0x0100 | (0x2000 if self.leds >= 2 else 0) | (0x0003 if self.leds >= 3 else 0)
        self.wr(0x11, [slots >> 8, slots & 0xFF])
        self.clear_fifo()

    def set_slots(self, slot1: int, slot2: int) -> None:  # set_slot_mode(1, ..), (2, ..)
        hi, lo = self.rd(0x11, 2)
        self.wr(0x11, [(hi & 0xF8) | slot1, lo])
        hi, lo = self.rd(0x11, 2)
        self.wr(0x11, [(hi & 0x8F) | slot2 << 4, lo])

    def clear_fifo(self) -> None:
        for reg in (0x06, 0x04, 0x05):
            self.rmw(reg, 0x1F, 0)

    def get_samples(self) -> list[int] | None:
        ptr_r, ptr_w = self.rd(0x06)[0], self.rd(0x04)[0]
        if ptr_r == ptr_w:
            return None
        count = ptr_w - ptr_r if ptr_w > ptr_r else 32
        left = count * 3 * self.leds
        data: list[int] = []
        while left > 0:
            data += self.rd(FIFO_DATA, min(left, 32))
            left -= 32
        self.clear_fifo()
        return [data[i] << 16 | data[i + 1] << 8 | data[i + 2] for i in range(0, len(data), 3)]


def pimoroni_setup_log(leds: int) -> list[Transaction]:
    mode = Pimoroni.MODES[leds]
    slots = 0x0100 | (0x2000 if leds >= 2 else 0) | (0x0003 if leds >= 3 else 0)
    return [
        *(R(0x09, 0x00), W(0x09, 0x40), R(0x09, 0x00)),
        *(R(0x08, 0x00), W(0x08, 0x90)),
        *(R(0x0A, 0x00), W(0x0A, 0x6E)),
        *(R(0x0C, 0, 0, 0), W(0x0C, 32, 32, 32)),
        *(R(0x10, 0x00), W(0x10, 32)),  # reserved on a MAX30102: reads 0, ignores the write
        *(R(0x09, 0x00), W(0x09, mode)),
        *(R(0x11, 0, 0), W(0x11, slots >> 8, slots & 0xFF)),
        *(R(0x06, 0), W(0x06, 0), R(0x04, 0), W(0x04, 0), R(0x05, 0), W(0x05, 0)),
    ]


PIMORONI_TWIN = {
    "sample_rate_sps": 400,
    "averaging": 16,
    "pulse_width_us": 215,
    "adc_range_na": 16384,
    "led_red_ma": 6.4,
    "led_ir_ma": 6.4,
}


@pytest.mark.parametrize("leds", [1, 2, 3])
def test_pimoroni_setup_is_transaction_exact(leds):
    clock = Clock()
    sim = chip(clock)
    bus = RecordingBus(sim)
    Pimoroni(bus, leds).setup()
    assert bus.log == pimoroni_setup_log(leds)
    assert sim.bytes_per_sample == 3 * leds
    assert sim.reserved_writes == [0x0E, 0x10]


@pytest.mark.parametrize("leds", [1, 2, 3])
def test_pimoroni_reads_correct_samples_in_every_mode(leds):
    clock = Clock()
    bus = RecordingBus(chip(clock))
    driver = Pimoroni(bus, leds)
    driver.setup()
    bus.clear()
    clock.t = 0.45  # 400 sps / 16 -> 25 Hz: 11 samples
    values = driver.get_samples()
    assert values is not None
    n = 11 * 3 * leds
    reads = [min(32, n - k) for k in range(0, n, 32)]
    assert fifo_shape(bus.log) == [
        ("read", 0x06, 1),
        ("read", 0x04, 1),
        *(("read", FIFO_DATA, size) for size in reads),
        *(("read", 0x06, 1), ("write", 0x06, 1), ("read", 0x04, 1), ("write", 0x04, 1)),
        *(("read", 0x05, 1), ("write", 0x05, 1)),
    ]
    assert bus.log[:2] == [R(0x06, 0), R(0x04, 11)]
    red, ir = twin_samples(clock.t, **PIMORONI_TWIN)
    samples = np.array(values).reshape(11, leds)
    np.testing.assert_array_equal(samples[:, 0], red)
    if leds >= 2:
        np.testing.assert_array_equal(samples[:, 1], ir)
    if leds == 3:  # slot 3 is "None" on a MAX30102: the dark level, far below the LEDs
        assert samples[:, 2].max() < red.min() / 100


def test_pimoroni_multi_led_slots_set_the_order():
    clock = Clock()
    bus = RecordingBus(chip(clock))
    driver = Pimoroni(bus, 2)
    driver.setup()
    driver.rmw(0x09, 0x07, 0b111)  # set_mode('green_red_ir'): multi-LED
    driver.set_slots(slot1=0b010, slot2=0b001)  # IR first, then Red
    driver.clear_fifo()
    clock.t = 0.45
    values = driver.get_samples()
    assert values is not None
    red, ir = twin_samples(clock.t, **PIMORONI_TWIN)
    samples = np.array(values).reshape(11, 2)
    np.testing.assert_array_equal(samples[:, 0], ir)
    np.testing.assert_array_equal(samples[:, 1], red)


# --- SparkFun qwiic_max3010x ----------------------------------------------------------------


class SparkFun:
    """The bus traffic of ``qwiic_max3010x.QwiicMax3010x`` over ``qwiic_i2c.LinuxI2C``."""

    MODES: ClassVar[dict[int, int]] = {1: 0x02, 2: 0x03, 3: 0x07}

    def __init__(self, bus: RecordingBus, leds: int) -> None:
        self.bus, self.leds = bus, leds

    def bit_mask(self, reg: int, keep: int, thing: int) -> None:
        self.bus.write_byte_data(A, reg, (self.bus.read_byte_data(A, reg) & keep) | thing)

    def setup(self) -> None:  # defaults: 0x1F, average 4, 400 sps, 411 µs, 4096 nA
        self.bit_mask(0x09, 0xBF, 0x40)  # softReset, then poll RESET
        while self.bus.read_byte_data(A, 0x09) & 0x40:
            pass
        self.bit_mask(0x08, 0x1F, 0x40)  # average 4
        self.bit_mask(0x08, 0xEF, 0x10)  # rollover
        self.bit_mask(0x09, 0xF8, self.MODES[self.leds])
        self.bit_mask(0x0A, 0x9F, 0x20)  # 4096 nA
        self.bit_mask(0x0A, 0xE3, 0x0C)  # 400 sps
        self.bit_mask(0x0A, 0xFC, 0x03)  # 411 µs
        for reg in (0x0C, 0x0D, 0x0E, 0x10):  # Red, IR, Green, pilot
            self.bus.write_byte_data(A, reg, 0x1F)
        self.bit_mask(0x11, 0xF8, 0x01)  # slot 1 Red
        if self.leds > 1:
            self.bit_mask(0x11, 0x8F, 0x02 << 4)  # slot 2 IR
        if self.leds > 2:
            self.bit_mask(0x12, 0xF8, 0x03)  # slot 3 Green
        for reg in (0x04, 0x05, 0x06):  # clearFIFO
            self.bus.write_byte_data(A, reg, 0)

    def check(self) -> list[list[int]]:
        rd, wr = self.bus.read_byte_data(A, 0x06), self.bus.read_byte_data(A, 0x04)
        if rd == wr:
            return []
        n = (wr - rd) % 32
        left = n * self.leds * 3
        buff: list[int] = []
        while left > 0:
            size = min(left, 32)
            left -= size
            buff += self.bus.read_i2c_block_data(A, FIFO_DATA, size)
        out = []
        for s in range(n):
            i = s * self.leds * 3
            triplets = [buff[i + 3 * c : i + 3 * c + 3] for c in range(self.leds)]
            out.append([(b[0] << 16 | b[1] << 8 | b[2]) & 0x3FFFF for b in triplets])
        return out


def sparkfun_setup_log(leds: int) -> list[Transaction]:
    mode = SparkFun.MODES[leds]
    log = [
        *(R(0x09, 0x00), W(0x09, 0x40), R(0x09, 0x00)),
        *(R(0x08, 0x00), W(0x08, 0x40), R(0x08, 0x40), W(0x08, 0x50)),
        *(R(0x09, 0x00), W(0x09, mode)),
        *(R(0x0A, 0x00), W(0x0A, 0x20), R(0x0A, 0x20), W(0x0A, 0x2C)),
        *(R(0x0A, 0x2C), W(0x0A, 0x2F)),
        *(W(0x0C, 0x1F), W(0x0D, 0x1F), W(0x0E, 0x1F), W(0x10, 0x1F)),
        *(R(0x11, 0x00), W(0x11, 0x01)),
    ]
    if leds > 1:
        log += [R(0x11, 0x01), W(0x11, 0x21)]
    if leds > 2:
        log += [R(0x12, 0x00), W(0x12, 0x03)]
    return [*log, W(0x04, 0), W(0x05, 0), W(0x06, 0)]


SPARKFUN_TWIN = {
    "sample_rate_sps": 400,
    "averaging": 4,
    "pulse_width_us": 411,
    "adc_range_na": 4096,
    "led_red_ma": 6.2,
    "led_ir_ma": 6.2,
}


@pytest.mark.parametrize("leds", [1, 2, 3])
def test_sparkfun_setup_is_transaction_exact(leds):
    clock = Clock()
    sim = chip(clock)
    bus = RecordingBus(sim)
    SparkFun(bus, leds).setup()
    assert bus.log == sparkfun_setup_log(leds)
    assert sim.bytes_per_sample == 3 * leds


@pytest.mark.parametrize("leds", [1, 2, 3])
def test_sparkfun_reads_correct_samples_in_every_mode_across_a_pointer_wrap(leds):
    clock = Clock()
    twin_clock = Clock()
    bus = RecordingBus(chip(clock))
    driver = SparkFun(bus, leds)
    driver.setup()
    twin = chip(twin_clock)
    product = MAX30102(twin, **SPARKFUN_TWIN)  # type: ignore[arg-type]
    for t, n, pointers in ((0.25, 25, (0, 25)), (0.45, 20, (25, 13))):
        clock.t = twin_clock.t = t  # 400 sps / 4 -> 100 Hz
        bus.clear()
        samples = np.array(driver.check())
        nbytes = n * 3 * leds
        assert fifo_shape(bus.log) == [
            ("read", 0x06, 1),
            ("read", 0x04, 1),
            *(("read", FIFO_DATA, min(32, nbytes - k)) for k in range(0, nbytes, 32)),
        ]
        assert bus.log[:2] == [R(0x06, pointers[0]), R(0x04, pointers[1])]
        fifo = product.read_fifo()
        assert samples.shape == (n, leds)
        np.testing.assert_array_equal(samples[:, 0], fifo.red.astype(np.int64))
        if leds >= 2:
            np.testing.assert_array_equal(samples[:, 1], fifo.ir.astype(np.int64))
        if leds == 3:
            assert samples[:, 2].max() < fifo.red.min() / 100
