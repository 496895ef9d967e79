"""The simulated MAX30102 behaves as the data sheet says, at register level."""

from __future__ import annotations

import errno

import numpy as np
import pytest
import smbus2

from device.sim.max30102 import SimulatedMAX30102
from device.sim.pulse import PulseModel

A = 0x57


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def chip(clock) -> SimulatedMAX30102:
    return SimulatedMAX30102(clock, PulseModel(seed=5))


def start_spo2(chip: SimulatedMAX30102, fifo_config: int = 0x0F, spo2: int = 0x27) -> None:
    chip.write_byte_data(A, 0x08, fifo_config)
    chip.write_byte_data(A, 0x0A, spo2)
    chip.write_byte_data(A, 0x0C, 0x10)
    chip.write_byte_data(A, 0x0D, 0x10)
    chip.write_i2c_block_data(A, 0x04, [0, 0, 0])
    chip.write_byte_data(A, 0x09, 0x03)


def pointers(chip) -> tuple[int, int, int]:
    wr, ovf, rd = chip.read_i2c_block_data(A, 0x04, 3)
    return wr, ovf, rd


def read_samples(chip, n: int) -> np.ndarray:
    out = []
    for _ in range(n):
        b = chip.read_i2c_block_data(A, 0x07, 6)
        out.append(((b[0] << 16 | b[1] << 8 | b[2]) & 0x3FFFF, (b[3] << 16 | b[4] << 8 | b[5])))
    return np.array(out)


def test_identity_and_power_on_state(chip):
    assert chip.read_byte_data(A, 0xFF) == 0x15
    assert chip.read_byte_data(A, 0xFE) == 0x03
    assert chip.read_byte_data(A, 0x00) == 0x01  # PWR_RDY after power-up
    assert chip.read_byte_data(A, 0x00) == 0x00  # reading cleared it
    assert chip.read_byte_data(A, 0x09) == 0x00


def test_wrong_chip_reports_its_part_id(clock):
    chip = SimulatedMAX30102(clock, PulseModel(), part_id=0x11)
    assert chip.read_byte_data(A, 0xFF) == 0x11


def test_no_ack_at_another_address(chip):
    with pytest.raises(OSError) as info:
        chip.read_byte_data(0x58, 0xFF)
    assert info.value.errno == errno.EREMOTEIO


def test_samples_accrue_with_the_clock(chip, clock):
    start_spo2(chip)
    assert pointers(chip) == (0, 0, 0)
    clock.t = 0.105
    assert pointers(chip) == (10, 0, 0)
    clock.t = 0.2
    assert pointers(chip) == (20, 0, 0)


def test_fifo_pointers_wrap_at_32(chip, clock):
    start_spo2(chip)
    seen = 0
    for step in range(1, 9):
        clock.t = step * 0.1
        wr, _, rd = pointers(chip)
        available = (wr - rd) % 32
        read_samples(chip, available)
        seen += available
        assert pointers(chip)[2] == seen % 32
    assert seen == 80
    assert pointers(chip) == (80 % 32, 0, 80 % 32)


def test_overflow_counter_counts_dropped_samples_and_clears_on_pop(chip, clock):
    start_spo2(chip)
    clock.t = 0.405  # 40 samples due, 32 fit
    wr, ovf, rd = pointers(chip)
    assert (wr, ovf, rd) == (0, 8, 0)  # full: WR == RD
    assert chip.read_byte_data(A, 0x00) & 0x80  # A_FULL
    read_samples(chip, 1)
    assert pointers(chip) == (0, 0, 1)


def test_overflow_counter_saturates_at_31(chip, clock):
    start_spo2(chip)
    clock.t = 5.0
    assert pointers(chip)[1] == 31


def test_rollover_keeps_the_newest_samples(chip, clock):
    start_spo2(chip, fifo_config=0x1F)  # FIFO_ROLLOVER_EN
    clock.t = 0.505  # 50 samples: the oldest 18 are overwritten
    wr, ovf, rd = pointers(chip)
    assert wr == rd == 50 % 32 and ovf == 0
    assert chip.samples_produced == 50


def test_reset_self_clears_and_restores_power_on_values(chip, clock):
    start_spo2(chip)
    chip.read_byte_data(A, 0x00)
    clock.t = 0.1
    chip.write_byte_data(A, 0x09, 0x40)
    assert chip.read_byte_data(A, 0x09) == 0x00
    assert [chip.read_byte_data(A, r) for r in (0x08, 0x0A, 0x0C, 0x0D)] == [0, 0, 0, 0]
    assert pointers(chip) == (0, 0, 0)
    assert chip.read_byte_data(A, 0x00) & 0x01 == 0  # RESET does not raise PWR_RDY
    assert chip.read_byte_data(A, 0xFF) == 0x15


@pytest.mark.parametrize(
    ("mode", "spo2", "back"),
    [
        (0x03, 0b0_01_110_11, 0b0_01_011_11),  # SpO2: 1600 sps at 411 µs -> 400 sps
        (0x03, 0b0_01_101_10, 0b0_01_100_10),  # SpO2: 1000 sps at 215 µs -> 800 sps
        (0x03, 0b0_01_111_00, 0b0_01_110_00),  # SpO2: 3200 sps never -> 1600 at 69 µs
        (0x02, 0b0_01_110_11, 0b0_01_101_11),  # HR: 1600 sps at 411 µs -> 1000 sps
        (0x03, 0b0_01_001_11, 0b0_01_001_11),  # allowed: kept
    ],
)
def test_forbidden_rate_is_clamped_to_the_highest_allowed(chip, mode, spo2, back):
    chip.write_byte_data(A, 0x09, mode)
    chip.write_byte_data(A, 0x0A, spo2)
    assert chip.read_byte_data(A, 0x0A) == back


def test_injected_bus_errors_then_recovery(chip):
    chip.inject_bus_errors(2)
    for _ in range(2):
        with pytest.raises(OSError) as info:
            chip.read_byte_data(A, 0xFF)
        assert info.value.errno == errno.EIO
    assert chip.read_byte_data(A, 0xFF) == 0x15


def test_unplug_and_replug_power_cycles(chip, clock):
    start_spo2(chip)
    chip.read_byte_data(A, 0x00)
    chip.unplug()
    with pytest.raises(OSError) as info:
        chip.write_byte_data(A, 0x0D, 1)
    assert info.value.errno == errno.EREMOTEIO
    chip.replug()
    assert chip.read_byte_data(A, 0x09) == 0x00  # settings gone: not sampling
    assert chip.read_byte_data(A, 0x00) == 0x01  # PWR_RDY
    clock.t = 1.0
    assert pointers(chip) == (0, 0, 0)


def test_force_overflow_fills_and_drops(chip, clock):
    start_spo2(chip)
    clock.t = 0.05
    chip.force_overflow(lost=7)
    wr, ovf, rd = pointers(chip)
    assert wr == rd and ovf == 7
    assert chip.samples_produced == 5 + 27 + 7
    clock.t = 0.3  # 30 samples due: the chip is ahead until 0.39 s
    assert pointers(chip)[1] == 7 and chip.samples_produced == 39


def test_block_reads_are_limited_to_32_bytes(chip):
    with pytest.raises(ValueError, match="32"):
        chip.read_i2c_block_data(A, 0x07, 33)


def test_i2c_rdwr_with_smbus2_messages(chip, clock):
    start_spo2(chip)
    clock.t = 0.1
    write, read = smbus2.i2c_msg.write(A, [0x07]), smbus2.i2c_msg.read(A, 60)
    chip.i2c_rdwr(write, read)
    data = bytes(read)
    assert len(data) == 60 and data != bytes(60)
    assert pointers(chip) == (10, 0, 10)


def test_i2c_rdwr_with_the_packaged_messages(chip):
    write, read = chip.i2c_msg.write(A, [0xFE]), chip.i2c_msg.read(A, 2)
    chip.i2c_rdwr(write, read)
    assert bytes(read) == bytes([0x03, 0x15])  # auto-increment from REV_ID to PART_ID


def test_register_0xff_does_not_wrap(chip):
    assert chip.read_i2c_block_data(A, 0xFF, 3) == [0x15, 0x15, 0x15]


def test_temperature_conversion_self_clears(chip, clock):
    chip.die_temp_c = -5.25
    chip.write_byte_data(A, 0x21, 0x01)
    assert chip.read_byte_data(A, 0x21) == 0x01
    clock.t = 0.03
    assert chip.read_byte_data(A, 0x21) == 0x00
    assert chip.read_byte_data(A, 0x01) == 0x02  # DIE_TEMP_RDY
    assert chip.read_i2c_block_data(A, 0x1F, 2) == [0xFA, 12]  # -6 + 12/16


def test_reserved_registers_ignore_writes_and_are_counted(chip):
    chip.write_byte_data(A, 0x10, 0x7F)
    chip.write_byte_data(A, 0x30, 0x01)
    assert chip.read_byte_data(A, 0x10) == 0
    assert chip.reserved_writes == [0x10, 0x30]


def mean_ir(chip, clock, led: int, spo2: int = 0x27) -> float:
    start_spo2(chip, spo2=spo2)
    chip.write_byte_data(A, 0x0D, led)
    clock.t += 0.2
    return float(read_samples(chip, 20)[:, 1].mean())


def test_led_current_and_range_scale_the_counts(clock):
    model = PulseModel(seed=1)
    model.ir_gain = 300.0
    chip = SimulatedMAX30102(clock, model)
    low = mean_ir(chip, clock, 10)  # 2 mA
    high = mean_ir(chip, clock, 20)  # 4 mA
    wide = mean_ir(chip, clock, 20, spo2=0b0_11_001_11)  # 16384 nA full scale
    assert high / low == pytest.approx(2.0, rel=0.03)
    assert high / wide == pytest.approx(4.0, rel=0.03)
    assert high == pytest.approx(300 * 4 / 4096 * 262144, rel=0.05)


def test_pulse_width_sets_resolution(chip, clock):
    start_spo2(chip, spo2=0b0_01_001_00)  # 69 µs: 15 bits, left-justified
    clock.t = 0.1
    samples = read_samples(chip, 10)
    assert np.all(samples % 8 == 0) and samples.min() > 0


def test_bright_light_sets_alc_ovf(chip, clock):
    start_spo2(chip)
    chip.read_byte_data(A, 0x00)
    chip.set_light(True)
    clock.t = 0.1
    assert chip.read_byte_data(A, 0x00) & 0x20
    chip.set_light(False)
    clock.t = 0.2
    assert not chip.read_byte_data(A, 0x00) & 0x20


def test_shutdown_stops_sampling_and_clears_interrupts(chip, clock):
    start_spo2(chip)
    clock.t = 0.1
    chip.write_byte_data(A, 0x09, 0x83)
    assert chip.read_byte_data(A, 0x00) == 0
    clock.t = 1.0
    assert pointers(chip) == (10, 0, 0)


def test_fifo_bytes_are_the_same_whatever_the_read_sizes(clock):
    chips = [SimulatedMAX30102(clock, PulseModel(seed=8), seed=1) for _ in range(2)]
    for chip in chips:
        start_spo2(chip)
    clock.t = 0.2  # 20 samples = 120 bytes
    one_by_one = [chips[0].read_byte_data(A, 0x07) for _ in range(120)]
    mixed = []
    for size in (4, 30, 1, 32, 29, 24):
        mixed += chips[1].read_i2c_block_data(A, 0x07, size)
    assert mixed == one_by_one
    assert pointers(chips[0]) == pointers(chips[1]) == (20, 0, 20)
    assert chips[1].read_i2c_block_data(A, 0x07, 6) == [0] * 6  # empty: nothing moves


# --- modes and the FIFO's sample size (p.14, p.18, p.21) -------------------------------------


def start_mode(chip: SimulatedMAX30102, mode: int, ctrl1: int = 0, ctrl2: int = 0) -> None:
    chip.write_byte_data(A, 0x08, 0x0F)
    chip.write_byte_data(A, 0x0A, 0x27)  # 100 sps, 411 µs
    chip.write_i2c_block_data(A, 0x0C, [0x10, 0x10])
    chip.write_i2c_block_data(A, 0x11, [ctrl1, ctrl2])
    chip.write_i2c_block_data(A, 0x04, [0, 0, 0])
    chip.write_byte_data(A, 0x09, mode)


@pytest.mark.parametrize(
    ("mode", "ctrl1", "ctrl2", "size"),
    [
        (0x02, 0x21, 0x00, 3),  # HR: Red only, the slots do not matter
        (0x03, 0x00, 0x00, 6),  # SpO2: Red then IR, the slots do not matter
        (0x07, 0x01, 0x00, 3),  # multi-LED, slot 1 Red
        (0x07, 0x12, 0x00, 6),  # slot 1 IR, slot 2 Red
        (0x07, 0x21, 0x43, 12),  # four slots: Red, IR, None, None
        (0x07, 0x00, 0x00, 0),  # every slot disabled: nothing is converted
    ],
)
def test_sample_size_is_3_bytes_per_active_channel(chip, mode, ctrl1, ctrl2, size):
    start_mode(chip, mode, ctrl1, ctrl2)
    assert chip.bytes_per_sample == size


def test_hr_mode_fifo_holds_32_three_byte_samples_and_counts_samples(clock):
    spo2, chip = (SimulatedMAX30102(clock, PulseModel(seed=8), seed=1) for _ in range(2))
    start_mode(spo2, 0x03)
    start_mode(chip, 0x02)
    clock.t = 0.405  # 40 samples due, 32 fit
    assert pointers(chip) == (0, 8, 0)
    data = chip.read_i2c_block_data(A, 0x07, 30)  # 10 samples
    assert pointers(chip) == (0, 0, 10)
    data += chip.read_i2c_block_data(A, 0x07, 32) + chip.read_i2c_block_data(A, 0x07, 32)
    data += chip.read_i2c_block_data(A, 0x07, 2)  # 96 bytes = 32 samples, split anywhere
    assert pointers(chip) == (0, 0, 0)
    red = [(data[i] << 16 | data[i + 1] << 8 | data[i + 2]) for i in range(0, 96, 3)]
    assert red == read_samples(spo2, 32)[:, 0].tolist()  # the twin's Red, sample for sample


def test_multi_led_slots_decide_channels_and_order(clock):
    chips = [SimulatedMAX30102(clock, PulseModel(seed=8), seed=1) for _ in range(2)]
    start_spo2(chips[0], fifo_config=0x0F, spo2=0x27)
    chips[0].write_i2c_block_data(A, 0x0C, [0x10, 0x10])
    start_mode(chips[1], 0x07, ctrl1=0x12)  # slot 1 IR, slot 2 Red
    clock.t = 0.05
    spo2 = read_samples(chips[0], 5)
    swapped = read_samples(chips[1], 5)
    np.testing.assert_array_equal(swapped[:, ::-1], spo2)


def test_a_disabled_slot_is_skipped_and_counted_as_a_gap(chip, clock):
    start_mode(chip, 0x07, ctrl1=0x20, ctrl2=0x01)  # slot 1 off, slot 2 IR, slot 3 Red
    assert chip.slot_gaps == 1
    assert chip.bytes_per_sample == 6
    start_mode(chip, 0x07, ctrl1=0x21)
    assert chip.slot_gaps == 1  # in order: no new gap


def test_multi_led_with_no_slot_converts_nothing_until_a_slot_is_enabled(chip, clock):
    start_mode(chip, 0x07)
    clock.t = 0.5
    assert pointers(chip) == (0, 0, 0)
    chip.write_byte_data(A, 0x11, 0x01)
    clock.t = 0.6
    assert pointers(chip) == (10, 0, 0)


def test_one_slot_multi_led_uses_the_hr_rate_table(chip):
    start_mode(chip, 0x07, ctrl1=0x01)
    chip.write_byte_data(A, 0x0A, 0b0_01_110_10)  # 1600 sps at 215 µs: allowed for one LED
    assert chip.read_byte_data(A, 0x0A) == 0b0_01_110_10
    chip.write_byte_data(A, 0x11, 0x21)  # two LEDs now
    chip.write_byte_data(A, 0x0A, 0b0_01_110_10)
    assert chip.read_byte_data(A, 0x0A) == 0b0_01_100_10  # Table 11: 800 sps


def test_read_pointer_moves_at_the_first_byte_of_a_sample(clock):
    chip, twin = (SimulatedMAX30102(clock, PulseModel(seed=8), seed=1) for _ in range(2))
    start_spo2(chip)
    start_spo2(twin)
    clock.t = 0.405  # 40 samples due, 32 fit
    assert pointers(chip) == (0, 8, 0)
    first = chip.read_byte_data(A, 0x07)
    assert pointers(chip) == (0, 0, 1)  # popped: RD_PTR on, OVF_COUNTER cleared
    rest = chip.read_i2c_block_data(A, 0x07, 5)  # the latched sample, in a later transfer
    assert pointers(chip) == (0, 0, 1)
    assert [first, *rest] == twin.read_i2c_block_data(A, 0x07, 6)


def test_reads_past_the_data_repeat_the_addressed_slot_and_move_nothing(chip, clock):
    start_mode(chip, 0x02)
    clock.t = 0.325  # 32 samples: every slot written once
    data = chip.read_i2c_block_data(A, 0x07, 32) + chip.read_i2c_block_data(A, 0x07, 32)
    data += chip.read_i2c_block_data(A, 0x07, 32)
    assert pointers(chip) == (0, 0, 0)  # empty again
    past = chip.read_i2c_block_data(A, 0x07, 7)
    assert past == data[:3] * 2 + data[:1]  # slot 0 holds the first sample still
    assert pointers(chip) == (0, 0, 0)
    clock.t = 0.335
    assert chip.read_i2c_block_data(A, 0x07, 3) != data[:3]  # a new sample starts afresh
    assert pointers(chip) == (1, 0, 1)
