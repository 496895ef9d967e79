"""PulseSensor over the simulated chip: LED control, contact, recovery, gaps, light."""

from __future__ import annotations

import errno
import itertools

import numpy as np
import pytest

from device.drivers.max30102 import FULL_SCALE
from device.drivers.pulse_sensor import NoSensor, PulseSensor
from device.exc import SensorNotFound, SettingError
from device.heart.samples import SampleBlock
from device.sim.max30102 import SimulatedMAX30102
from device.sim.pulse import PulseModel

#: What the console's SENSOR? shows, from either kind of sensor.
SENSOR_KEYS = {
    "present",
    "part",
    "rev",
    "rate_hz",
    "led_red_ma",
    "led_ir_ma",
    "ir_dc",
    "red_dc",
    "contact",
    "overflows",
    "bus_errors",
    "reinits",
    "temperature_c",
    "light_exposed",
}


class Rig:
    """A simulated chip and a PulseSensor sharing one clock, polled every 0.1 s."""

    def __init__(self, *, ir_gain: float = 450.0, seed: int = 3, hr: float = 70.0, **kwargs):
        self.t = 0.0
        self.model = PulseModel(seed)
        self.model.set_heart(hr, 4.0)
        self.model.ir_gain, self.model.red_gain = ir_gain, 0.7 * ir_gain
        self.chip = SimulatedMAX30102(self.clock, self.model)
        self.opened = 0
        self.sensor = PulseSensor(self.open_bus, clock=self.clock, sleep=lambda s: None, **kwargs)
        self.blocks: list[SampleBlock] = []
        self.polls: list[SampleBlock | None] = []

    def clock(self) -> float:
        return self.t

    def open_bus(self) -> SimulatedMAX30102:
        self.opened += 1
        return self.chip

    def run(self, seconds: float, period: float = 0.1) -> list[SampleBlock]:
        new = []
        for _ in range(round(seconds / period)):
            self.t = round(self.t + period, 9)
            block = self.sensor.poll()
            self.polls.append(block)
            if block is not None:
                new.append(block)
        self.blocks += new
        return new

    def sample_time(self, index: int) -> float:
        """Chip time of a sample index (valid while the stream was not re-anchored)."""
        return self.chip.sampling_since + (index + 1) / self.chip.output_rate_hz


def ends(blocks: list[SampleBlock]) -> list[tuple[int, int]]:
    return [(b.start_index, b.start_index + len(b)) for b in blocks]


def test_blocks_are_contiguous_and_indexed_by_sample():
    rig = Rig()
    blocks = rig.run(3.0)
    assert all(b.rate_hz == 100.0 and b.ir.dtype == np.float64 for b in blocks)
    spans = ends(blocks)
    assert spans[0][0] == 0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert spans[-1][1] == 300
    assert not any(b.gap_before for b in blocks)


def test_400_sps_with_averaging_4_gives_100_hz():
    rig = Rig(sample_rate_sps=400, averaging=4)
    assert rig.sensor.rate_hz == 100.0
    assert sum(len(b) for b in rig.run(1.0)) == 100


def test_forbidden_settings_are_refused_before_the_bus_is_opened():
    with pytest.raises(SettingError, match="forbids 800 sps with 411 µs"):
        PulseSensor(lambda: pytest.fail("bus opened"), sample_rate_sps=800)
    with pytest.raises(SettingError, match="led_ir_ma"):
        PulseSensor(lambda: pytest.fail("bus opened"), led_ir_ma=60.0)


def led_history(rig: Rig, seconds: float) -> list[tuple[float, float]]:
    history = []
    for _ in range(round(seconds / 0.1)):
        rig.run(0.1)
        history.append((rig.t, rig.sensor.info()["led_ir_ma"]))
    return history


def ir_dc_share(rig: Rig) -> float:
    return rig.sensor.info()["ir_dc"] / FULL_SCALE


def test_led_control_steps_down_out_of_saturation():
    rig = Rig(ir_gain=900.0)  # 6.3 µA at 7 mA: far beyond the 4096 nA range
    rig.run(1.0)
    assert rig.blocks[0].ir.max() == FULL_SCALE
    rig.run(15.0)
    assert 0.35 <= ir_dc_share(rig) <= 0.75
    assert rig.sensor.info()["led_ir_ma"] < 4.0
    assert rig.chip.read_byte_data(0x57, 0x0D) == round(rig.sensor.info()["led_ir_ma"] / 0.2)
    assert rig.sensor.contact


def test_led_control_raises_a_weak_signal_slowly():
    rig = Rig(ir_gain=130.0)  # 0.9 µA at 7 mA: 22 % of the range
    history = led_history(rig, 30.0)
    assert 0.35 <= ir_dc_share(rig) <= 0.75
    changes = [now for before, now in itertools.pairwise(history) if now[1] != before[1]]
    assert changes
    assert all(b[0] - a[0] >= 2.0 for a, b in itertools.pairwise(changes))
    levels = [7.0] + [ma for _, ma in changes]
    assert all(b / a <= 1.4 + 1e-9 for a, b in itertools.pairwise(levels))


def test_led_steps_fall_between_beats_and_are_marked():
    rig = Rig(ir_gain=130.0, hr=70.0)
    rig.run(30.0)
    marked = np.concatenate(
        [b.led_step if b.led_step is not None else np.zeros(len(b), bool) for b in rig.blocks]
    )
    starts = np.flatnonzero(marked & ~np.concatenate(([False], marked[:-1])))
    assert len(starts) >= 2 and rig.sensor.led_steps == len(starts)
    assert marked.sum() == 20 * len(starts)  # 0.2 s after each step
    firsts = starts.tolist()
    beats = np.array(rig.model.beat_times)
    for index in firsts:
        t_step = rig.sample_time(index) - 0.5 / 100  # between the two samples
        before = beats[beats <= t_step][-1]
        after = beats[beats > t_step][0]
        assert t_step - before >= 0.1, "step in a systolic upstroke or peak"
        assert after - t_step >= 0.25, "step too close to the next beat"


def test_no_led_steps_without_a_finger():
    rig = Rig(ir_gain=130.0)
    rig.model.set_contact(False)
    rig.run(10.0)
    assert rig.sensor.info()["led_ir_ma"] == 7.0 and rig.sensor.led_steps == 0
    assert not rig.sensor.contact


def contact_times(rig: Rig, seconds: float) -> list[tuple[float, bool]]:
    out = []
    for _ in range(round(seconds / 0.1)):
        block = rig.run(0.1)[-1]
        out.append((rig.t, block.contact))
    return out


def first_time(series: list[tuple[float, bool]], value: bool) -> float:
    return next(t for t, c in series if c == value)


def test_contact_comes_on_after_a_second_of_pulse_and_goes_when_the_finger_lifts():
    rig = Rig()
    series = contact_times(rig, 4.0)
    assert 2.0 <= first_time(series, True) <= 3.0  # 2 s of history + 1 s of hold
    assert rig.sensor.contact
    rig.model.set_contact(False)
    series = contact_times(rig, 1.0)
    # The light fades over ~0.4 s as the finger lifts; then DC < 5 % turns contact off
    # without waiting for the 1.5 s hold.
    assert first_time(series, False) - 4.0 <= 0.7
    rig.model.set_contact(True)
    series = contact_times(rig, 5.0)
    assert not series[0][1] and series[-1][1]


def test_contact_hysteresis_on_pulsatility():
    weak = Rig()
    weak.model.set_perfusion(0.1)  # between PI_OFF and PI_ON
    weak.run(6.0)
    assert not weak.sensor.contact  # too weak to turn contact on

    rig = Rig()
    rig.run(4.0)
    assert rig.sensor.contact
    rig.model.set_perfusion(0.1)
    rig.run(6.0)
    assert rig.sensor.contact  # ... but not weak enough to turn it off

    rig.model.set_perfusion(0.01)  # a pulseless object on the sensor
    series = contact_times(rig, 6.0)
    off_after = first_time(series, False) - 10.0
    assert off_after >= 1.5  # the off hold time
    assert off_after <= 4.5


def test_unplug_and_replug_while_polling():
    rig = Rig()
    rig.run(2.0)
    rig.chip.unplug()
    rig.run(2.0)  # poll never raises
    assert not rig.sensor.present
    assert all(p is None for p in rig.polls[-17:])
    info = rig.sensor.info()
    assert info["bus_errors"] >= 3 and "Remote I/O error" in info["error"]
    assert info["ir_dc"] is None and not info["contact"]
    rig.chip.replug()
    rig.run(2.0)
    assert rig.sensor.present and rig.sensor.reinits == 1
    after = [b for b in rig.blocks if b.start_index >= 200]
    assert after[0].gap_before and not any(b.gap_before for b in after[1:])
    # Indices follow the clock across the missing time, and then run on contiguously.
    first = after[0]
    assert abs(first.start_index + len(first) - rig.chip.sampling_since * 100) <= 15
    assert rig.chip.read_byte_data(0x57, 0x09) == 0x03  # re-initialised to SpO2 mode
    assert rig.chip.read_byte_data(0x57, 0x0D) == round(info["led_ir_ma"] / 0.2)


def test_transient_bus_errors_cost_retries_not_samples():
    rig = Rig()
    rig.run(1.0)
    rig.chip.inject_bus_errors(2)
    rig.run(0.1)
    assert rig.sensor.info()["bus_errors"] == 0 and rig.sensor.info()["bus_retries"] == 2
    rig.chip.inject_bus_errors(3)  # one poll fails after its retries
    rig.run(1.0)
    info = rig.sensor.info()
    assert info["bus_errors"] == 1 and rig.sensor.present and info["reinits"] == 0
    spans = ends(rig.blocks)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert spans[-1][1] == 210 and not any(b.gap_before for b in rig.blocks)


def test_overflow_is_marked_as_a_gap_with_exact_indices():
    rig = Rig()
    rig.run(1.0)
    rig.run(0.45, period=0.45)  # 45 samples: 32 fit, 13 dropped
    rig.run(0.2)
    full, after = rig.blocks[-3], rig.blocks[-2]
    assert len(full) == 32 and not full.gap_before
    assert after.gap_before and after.start_index == full.start_index + 32 + 13
    assert rig.sensor.info()["overflows"] == 1 and rig.sensor.samples_lost == 13
    # The sample after the gap really is the one taken at its index's time.
    assert rig.sample_time(after.start_index) == pytest.approx(rig.t - 0.2 + 0.01)


def test_forced_overflow_on_the_chip():
    rig = Rig()
    rig.run(1.0)
    rig.chip.force_overflow(lost=5)
    rig.run(1.0)
    gaps = [b for b in rig.blocks if b.gap_before]
    assert len(gaps) == 1
    previous = rig.blocks[rig.blocks.index(gaps[0]) - 1]
    assert gaps[0].start_index == previous.start_index + len(previous) + 5


def test_long_stall_reanchors_indices_by_the_clock():
    rig = Rig()
    rig.run(1.0)
    rig.run(3.0, period=3.0)  # OVF_COUNTER saturates: the loss is unknown
    rig.run(0.1)
    block = rig.blocks[-1]
    assert block.gap_before
    assert block.start_index + len(block) == pytest.approx(rig.t * 100, abs=2)


def test_brownout_reinitialises_at_once():
    rig = Rig()
    rig.run(1.0)
    rig.chip.replug()  # power cycle: PWR_RDY, every register back to its power-on value
    rig.run(0.3)
    assert rig.sensor.reinits == 1 and rig.sensor.present
    assert rig.blocks[-2].gap_before or rig.blocks[-1].gap_before


def test_light_exposure_is_reported(caplog):
    rig = Rig()
    rig.run(3.0)
    rig.chip.set_light(True)
    rig.run(0.5)
    assert rig.sensor.info()["light_exposed"]
    assert "sensor exposed to light" in caplog.text
    assert rig.sensor.contact  # readings are invalid, the verdict is kept
    rig.chip.set_light(False)
    rig.run(2.5)
    assert not rig.sensor.info()["light_exposed"]


def test_missing_sensor_at_start_is_found_later():
    t = [0.0]
    chip = SimulatedMAX30102(lambda: t[0], PulseModel(1))
    chip.unplug()
    sensor = PulseSensor(lambda: chip, clock=lambda: t[0], sleep=lambda s: None)
    assert not sensor.present and sensor.poll() is None
    assert "no MAX30102 answered at 0x57 on /dev/i2c-1" in sensor.info()["error"]
    chip.replug()
    for k in range(1, 16):
        t[0] = k * 0.1
        sensor.poll()
    assert sensor.present and sensor.reinits == 0 and sensor.info()["error"] is None


def test_bus_that_cannot_be_opened_is_retried():
    calls = []

    def factory():
        calls.append(1)
        raise SensorNotFound(errno.ENOENT, "I2C bus /dev/i2c-1 does not exist")

    t = [0.0]
    sensor = PulseSensor(factory, clock=lambda: t[0])
    for k in range(1, 31):
        t[0] = k * 0.1
        assert sensor.poll() is None
    assert not sensor.present and len(calls) == 4  # at start, then once a second
    assert "does not exist" in sensor.info()["error"]


def test_max30100_is_reported_not_raised():
    t = [0.0]
    chip = SimulatedMAX30102(lambda: t[0], PulseModel(), part_id=0x11)
    sensor = PulseSensor(lambda: chip, clock=lambda: t[0])
    assert sensor.poll() is None and not sensor.present
    assert "MAX30100 not supported" in sensor.info()["error"]


class Broken:
    """A bus that fails in a way no one planned for."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.broken = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def read_i2c_block_data(self, addr: int, reg: int, length: int) -> list[int]:
        if self.broken:
            raise RuntimeError("driver bug")
        return self.inner.read_i2c_block_data(addr, reg, length)


def test_poll_never_raises():
    t = [0.0]
    bus = Broken(SimulatedMAX30102(lambda: t[0], PulseModel()))
    sensor = PulseSensor(lambda: bus, clock=lambda: t[0])
    bus.broken = True
    t[0] = 0.1
    assert sensor.poll() is None
    assert sensor.errors == 1 and sensor.info()["error"] == "RuntimeError: driver bug"


def test_temperature_and_info():
    rig = Rig()
    rig.chip.die_temp_c = 33.25
    rig.run(3.0)
    info = rig.sensor.info()
    assert info.keys() >= SENSOR_KEYS
    assert info["present"] and info["part"] == 0x15 and info["rev"] == 3
    assert info["part_name"] == "MAX30102"
    assert info["temperature_c"] == 33.25 and info["rate_hz"] == 100.0
    assert 0 < info["ir_dc"] < FULL_SCALE and 0 < info["red_dc"] < info["ir_dc"]
    assert info["overflows"] == info["bus_errors"] == info["reinits"] == 0


def test_close_is_idempotent_and_shuts_the_chip_down():
    rig = Rig()
    rig.run(0.5)
    with rig.sensor as sensor:
        assert repr(sensor).startswith("<PulseSensor 0x57 on /dev/i2c-1 present 100 Hz")
    sensor.close()
    assert sensor.poll() is None
    assert rig.chip.read_byte_data(0x57, 0x09) & 0x80
    assert repr(sensor) == "<PulseSensor 0x57 on /dev/i2c-1 closed>"


def test_no_sensor_has_the_same_interface():
    with NoSensor(rate_hz=100) as sensor:
        assert sensor.poll() is None and not sensor.present and sensor.rate_hz == 100.0
        info = sensor.info()
    sensor.close()
    assert info.keys() >= SENSOR_KEYS and not info["present"] and info["backend"] == "none"
    assert repr(sensor) == "<NoSensor 100 Hz>"


def test_unexpected_failure_while_connecting_is_reported_not_raised():
    def factory():
        raise RuntimeError("bad wiring of the factory")

    sensor = PulseSensor(factory, clock=lambda: 0.0)
    assert not sensor.present and sensor.stream_start_s is None
    assert sensor.info()["error"] == "RuntimeError: bad wiring of the factory"


def test_stream_start_maps_indices_to_the_clock():
    rig = Rig()
    rig.t = 5.0
    rig.sensor = PulseSensor(rig.open_bus, clock=rig.clock)
    block = rig.run(1.0)[0]
    assert rig.sensor.stream_start_s == pytest.approx(5.01)
    assert rig.sensor.stream_start_s + block.start_index / 100 == pytest.approx(
        rig.sample_time(block.start_index)
    )


def test_motion_does_not_break_contact():
    rig = Rig(seed=2)
    rig.model.set_motion(1.0)
    rig.run(4.0)
    blocks = rig.run(30.0)
    assert all(b.contact for b in blocks)
    assert rig.sensor.led_steps <= 2


@pytest.mark.parametrize("swapped", [False, True])
def test_swapped_red_and_ir_are_noticed(swapped, caplog):
    t = [0.0]
    model = PulseModel(4)
    model.ir_gain, model.red_gain = 300.0, 180.0
    chip = SimulatedMAX30102(lambda: t[0], model, swapped_leds=swapped)
    sensor = PulseSensor(lambda: chip, clock=lambda: t[0])
    assert sensor.info()["channels_swapped"] is None
    for k in range(1, 51):
        t[0] = k * 0.1
        sensor.poll()
    assert sensor.contact and sensor.info()["channels_swapped"] is swapped
    assert ("Red and IR look swapped" in caplog.text) is swapped


def test_standby_darkens_the_chip_and_wakes_on_the_clocks_index():
    rig = Rig()
    rig.run(5.0)
    assert rig.sensor.contact
    rig.sensor.set_standby(True)
    assert rig.sensor.standby and not rig.sensor.contact
    assert rig.chip.read_byte_data(0x57, 0x09) & 0x80, "SHDN set: LEDs dark"
    produced = rig.chip.samples_produced
    assert rig.run(100.0) == []  # nothing is read (or made) while in standby
    assert rig.chip.samples_produced == produced
    rig.sensor.set_standby(True)  # idempotent
    rig.sensor.set_standby(False)
    assert not rig.chip.read_byte_data(0x57, 0x09) & 0x80
    blocks = rig.run(5.0)
    assert blocks[0].gap_before
    # Indices go on from the clock, so sample times stay true across the standby.
    assert abs(blocks[0].start_index / blocks[0].rate_hz - 105.0) < 0.5
    assert rig.sensor.contact and rig.sensor.info()["standby"] is False


class StuckInReset(SimulatedMAX30102):
    """A plain register file (as i2c-stub is): RESET is stored, never self-clears."""

    def _write_reg(self, reg: int, value: int) -> None:
        if reg == 0x09 and value & 0x40:
            self._regs[reg] = value & 0xC7
            return
        super()._write_reg(reg, value)


def test_a_chip_retried_every_second_is_announced_once(caplog):
    rig = Rig()
    rig.chip = StuckInReset(rig.clock, rig.model)
    caplog.set_level("INFO", logger="device.drivers")
    rig.sensor = PulseSensor(rig.open_bus, clock=rig.clock, sleep=lambda s: None)
    rig.run(6.0)
    assert not rig.sensor.present and rig.opened >= 3  # retried every second
    found = [r for r in caplog.records if "found at" in r.getMessage() and r.levelname == "INFO"]
    reset = [r for r in caplog.records if "did not finish its reset" in r.getMessage()]
    assert len(found) == 1 and len(reset) == 1
