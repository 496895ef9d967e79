"""A register-level MAX30102 behind an smbus2-compatible bus: the box's sensor in simulation.

It behaves as the data sheet (19-7740 Rev 1) describes, so the real driver runs against it
unchanged: a 256-byte register map with auto-increment (not on FIFO_DATA, no wrap past 0xFF),
5-bit FIFO pointers over a 32-sample FIFO, OVF_COUNTER saturating at 31 and cleared when a
sample is popped, optional rollover, samples of 3 bytes per active channel (HR mode Red only,
SpO2 mode Red then IR, multi-LED mode the enabled slots; see :mod:`device.sim.max30102_fifo`),
A_FULL / PPG_RDY / ALC_OVF / PWR_RDY flags cleared by reading INT_STATUS_1, a self-clearing
RESET, TEMP_EN that self-clears after a 29 ms conversion, PART_ID 0x15, and a sample rate
clamped to what the pulse width allows (Tables 11/12). Reserved registers ignore writes (and
count them in ``reserved_writes``).

Samples accrue in the FIFO as ``clock()`` advances, at SPO2_SR / SMP_AVE per second, from
the :class:`~device.sim.pulse.PulseModel`'s photocurrent times the LED current, over the ADC
range, at the pulse width's resolution, so LED and range settings change the counts as on
the real part. Faults: :meth:`~SimulatedMAX30102.unplug` / :meth:`~SimulatedMAX30102.replug`,
:meth:`~SimulatedMAX30102.inject_bus_errors`, :meth:`~SimulatedMAX30102.force_overflow`,
:meth:`~SimulatedMAX30102.set_light`.
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from device.drivers.i2c import I2C_M_RD, I2CMsg, fill_read_msg, msg_bytes
from device.drivers.max30102 import (
    A_FULL,
    ADC_BITS,
    ADC_RANGES_NA,
    ADDRESS,
    ALC_OVF,
    AVERAGING,
    DIE_TEMP_RDY,
    FIFO_A_FULL,
    FIFO_DEPTH,
    FIFO_ROLLOVER_EN,
    FULL_SCALE,
    LED_MA_PER_LSB,
    LED_PW,
    PART_ID,
    PPG_RDY,
    PULSE_WIDTHS_US,
    PWR_RDY,
    RESET,
    SAMPLE_RATES_SPS,
    SHDN,
    SMP_AVE,
    SPO2_ADC_RGE,
    SPO2_ALLOWED_PW_US,
    SPO2_SR,
    TEMP_EN,
    Reg,
)
from device.sim.max30102_fifo import (
    BYTES_PER_CHANNEL,
    DARK,
    HR_ALLOWED_PW_US,
    IR,
    RED,
    SampleFifo,
    active_channels,
    has_slot_gap,
    sample_bytes,
)
from device.sim.pulse import PulseModel

#: Writable bits of each writable register; every other address is read-only or reserved.
_WRITABLE: dict[int, int] = {
    Reg.INT_ENABLE_1: 0xE0,
    Reg.INT_ENABLE_2: 0x02,
    Reg.FIFO_WR_PTR: 0x1F,
    Reg.OVF_COUNTER: 0x1F,
    Reg.FIFO_RD_PTR: 0x1F,
    Reg.FIFO_CONFIG: 0xFF,
    Reg.MODE_CONFIG: 0xC7,
    Reg.SPO2_CONFIG: 0x7F,
    Reg.LED1_PA: 0xFF,
    Reg.LED2_PA: 0xFF,
    Reg.MULTI_LED_CTRL1: 0x77,
    Reg.MULTI_LED_CTRL2: 0x77,
    Reg.TEMP_CONFIG: 0x01,
}
_READ_ONLY = frozenset(
    [
        Reg.INT_STATUS_1,
        Reg.INT_STATUS_2,
        Reg.FIFO_DATA,
        Reg.TINT,
        Reg.TFRAC,
        Reg.REV_ID,
        Reg.PART_ID,
    ]
)
#: A die-temperature conversion takes about 29 ms (Figure 4, p.26).
TEMP_CONVERSION_S = 0.029
#: ADC input noise at 411 µs pulses, nA rms (shorter pulses integrate less light).
_ADC_NOISE_NA = 0.25
#: Light a bright lamp adds beyond what the ambient cancellation removes, as a share of range.
_LAMP_SHARE = 0.6


def _bus_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class SimulatedMAX30102:
    """A MAX30102 on its own simulated I2C bus.

    :param clock: returns the time in seconds (the loop's clock); samples accrue as it runs.
    :param model: the pulse the sensor sees.
    :param address: the 7-bit address the chip answers at; any other address gets no ACK.
    :param part_id: PART_ID to report (0x11 simulates a MAX30100 fitted by mistake).
    :param rev_id: REV_ID to report.
    :param seed: seeds the ADC noise.
    :param swapped_leds: a clone board whose Red and IR LEDs are swapped.
    """

    #: Message class for :meth:`i2c_rdwr` (smbus2's ``i2c_msg`` objects work too).
    i2c_msg = I2CMsg

    def __init__(
        self,
        clock: Callable[[], float],
        model: PulseModel,
        address: int = ADDRESS,
        *,
        part_id: int = PART_ID,
        rev_id: int = 0x03,
        seed: int = 0,
        swapped_leds: bool = False,
    ) -> None:
        self._clock = clock
        self.swapped_leds = swapped_leds
        self.model = model
        self.address = address
        self.part_id = part_id
        self.rev_id = rev_id
        noise_seed, dark_seed = np.random.SeedSequence(seed).spawn(2)
        self._rng = np.random.default_rng(noise_seed)
        self._rng_dark = np.random.default_rng(dark_seed)  # LED-off slots: Red/IR unchanged
        #: Die temperature the chip measures, °C.
        self.die_temp_c = 31.5
        #: Register addresses written that the MAX30102 reserves (a driver bug if not empty).
        self.reserved_writes: list[int] = []
        #: Bus transfers attempted (including failed ones).
        self.transfers = 0
        #: Samples the ADC has produced since power-up, including those dropped.
        self.samples_produced = 0
        self._unplugged = False
        self._fail_next = 0
        self._power_on()

    # --- power and faults ------------------------------------------------------------------

    def _power_on(self) -> None:
        self._regs = bytearray(256)
        self._fifo = SampleFifo(self._regs)
        self._regs[Reg.PART_ID] = self.part_id
        self._regs[Reg.REV_ID] = self.rev_id
        self._regs[Reg.INT_STATUS_1] = PWR_RDY.mask
        self._reset_state()

    def _reset_state(self) -> None:
        self._fifo.clear_memory()
        self._anchor_t = 0.0
        self._anchor_n = 0
        self._temp_done_at: float | None = None
        #: When sampling last (re)started, in clock seconds; ``None`` while not sampling.
        self.sampling_since: float | None = None

    def unplug(self) -> None:
        """Disconnect the module: every transfer fails with EREMOTEIO (no ACK)."""
        self._unplugged = True

    def replug(self) -> None:
        """Reconnect the module: it powers up afresh (registers at POR, PWR_RDY set)."""
        self._unplugged = False
        self._power_on()

    @property
    def plugged(self) -> bool:
        """``False`` between :meth:`unplug` and :meth:`replug`."""
        return not self._unplugged

    def inject_bus_errors(self, n: int) -> None:
        """Make the next ``n`` transfers fail with EIO (a noisy wire)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, not {n}")
        self._fail_next = n

    def force_overflow(self, lost: int = 8) -> None:
        """Fill the FIFO and drop ``lost`` more samples, as if the host had stalled.

        The samples come from the chip's next sample times; it then pauses until its clock
        catches up, so sample index and time stay in step (the dropped ones included).
        """
        if lost < 1:
            raise ValueError(f"lost must be >= 1, not {lost}")
        self._advance()
        if self.sampling_since is None:
            return
        self._produce(FIFO_DEPTH - self._fifo.unread + lost)

    def set_light(self, bright: bool) -> None:
        """Switch a bright lamp on or off near the sensor (sets ALC_OVF while on)."""
        self.model.set_light(bright)

    # --- sampling -------------------------------------------------------------------------

    @property
    def channels(self) -> tuple[int, ...]:
        """What one sample holds, in FIFO order (``RED``, ``IR``, ``DARK`` of
        :mod:`device.sim.max30102_fifo`), from MODE and the multi-LED slots."""
        regs = self._regs
        return active_channels(
            regs[Reg.MODE_CONFIG], regs[Reg.MULTI_LED_CTRL1], regs[Reg.MULTI_LED_CTRL2]
        )

    @property
    def bytes_per_sample(self) -> int:
        """Bytes one FIFO sample takes in the present mode (3 per active channel)."""
        return BYTES_PER_CHANNEL * len(self.channels)

    @property
    def slot_gaps(self) -> int:
        """Times a slot write left a disabled slot before an enabled one (a driver bug)."""
        return self._fifo.slot_gaps

    def _sampling(self) -> bool:
        return not SHDN.get(self._regs[Reg.MODE_CONFIG]) and bool(self.channels)

    @property
    def output_rate_hz(self) -> float:
        """Samples per second entering the FIFO (SPO2_SR / SMP_AVE)."""
        rate = SAMPLE_RATES_SPS[SPO2_SR.get(self._regs[Reg.SPO2_CONFIG])]
        return rate / AVERAGING[SMP_AVE.get(self._regs[Reg.FIFO_CONFIG])]

    def _reanchor(self, now: float) -> None:
        self._anchor_t = now
        self._anchor_n = 0
        self.sampling_since = now if self._sampling() else None

    def _advance(self) -> None:
        now = self._clock()
        if self._temp_done_at is not None and now >= self._temp_done_at:
            self._finish_temperature()
        if self.sampling_since is None:
            return
        due = math.floor((now - self._anchor_t) * self.output_rate_hz + 1e-9) - self._anchor_n
        if due > 0:
            self._produce(due)

    def _produce(self, n: int) -> None:
        """Produce the next ``n`` samples; keep what fits, count the rest as dropped."""
        rate = self.output_rate_hz
        first = self._anchor_n + 1
        rollover = FIFO_ROLLOVER_EN.get(self._regs[Reg.FIFO_CONFIG])
        if rollover:
            keep_from, keep = max(0, n - FIFO_DEPTH), min(n, FIFO_DEPTH)
        else:
            keep_from, keep = 0, min(n, FIFO_DEPTH - self._fifo.unread)
        times = self._anchor_t + (first + keep_from + np.arange(keep)) / rate
        self._anchor_n += n
        self.samples_produced += n
        dropped = n - keep
        if rollover and keep_from:
            # Every slot is overwritten: the pointers move on by all the samples written.
            self._fifo.overwrite_all(keep_from)
        if keep:
            self._push(self._counts(times))
        if dropped and not rollover:
            ovf = self._regs[Reg.OVF_COUNTER]
            self._regs[Reg.OVF_COUNTER] = min(0x1F, ovf + dropped)

    def _counts(self, times: np.ndarray) -> list[bytes]:
        spo2 = self._regs[Reg.SPO2_CONFIG]
        full_scale_na = ADC_RANGES_NA[SPO2_ADC_RGE.get(spo2)]
        pw_code = LED_PW.get(spo2)
        averaging = AVERAGING[SMP_AVE.get(self._regs[Reg.FIFO_CONFIG])]
        ir_per_ma, red_per_ma = self.model.render(times)
        if self.swapped_leds:
            ir_per_ma, red_per_ma = red_per_ma, ir_per_ma
        red_na = red_per_ma * self._regs[Reg.LED1_PA] * LED_MA_PER_LSB
        ir_na = ir_per_ma * self._regs[Reg.LED2_PA] * LED_MA_PER_LSB
        sigma = _ADC_NOISE_NA * math.sqrt(411.0 / PULSE_WIDTHS_US[pw_code] / averaging)
        noise = self._rng.standard_normal((times.size, 2)) * sigma
        na = np.stack([red_na, ir_na], axis=1) + noise
        lamp = np.zeros((times.size, 1))
        if self.model.light_bright:
            lamp = _LAMP_SHARE * full_scale_na * (1.0 + 0.2 * self._rng.random((times.size, 1)))
            na += lamp
            self._regs[Reg.INT_STATUS_1] |= ALC_OVF.mask
        channels = self.channels
        dark = [i for i, c in enumerate(channels) if c == DARK]
        columns = np.empty((times.size, len(channels)))
        columns[:, [i for i, c in enumerate(channels) if c == RED]] = na[:, :1]
        columns[:, [i for i, c in enumerate(channels) if c == IR]] = na[:, 1:]
        if dark:  # an LED-off slot still converts: only noise and uncancelled light remain
            columns[:, dark] = (
                self._rng_dark.standard_normal((times.size, len(dark))) * sigma + lamp
            )
        counts = np.clip(np.rint(columns / full_scale_na * (FULL_SCALE + 1)), 0, FULL_SCALE)
        unused_bits = 18 - ADC_BITS[pw_code]  # left-justified: low bits are zero
        counts = (counts.astype(np.int64) >> unused_bits) << unused_bits
        return [sample_bytes(row) for row in counts.tolist()]

    def _push(self, samples: list[bytes]) -> None:
        self._fifo.push(samples)
        status = self._regs[Reg.INT_STATUS_1] | PPG_RDY.mask
        if self._fifo.unread >= FIFO_DEPTH - FIFO_A_FULL.get(self._regs[Reg.FIFO_CONFIG]):
            status |= A_FULL.mask
        self._regs[Reg.INT_STATUS_1] = status

    def _finish_temperature(self) -> None:
        self._temp_done_at = None
        self._regs[Reg.TEMP_CONFIG] = 0
        sixteenths = round(self.die_temp_c * 16)
        whole, frac = divmod(sixteenths, 16)  # TFRAC is always added as a positive fraction
        self._regs[Reg.TINT] = whole & 0xFF
        self._regs[Reg.TFRAC] = frac
        self._regs[Reg.INT_STATUS_2] |= DIE_TEMP_RDY.mask

    # --- register access --------------------------------------------------------------------

    def _read_reg(self, reg: int) -> int:
        if reg == Reg.FIFO_DATA:
            return self._read_fifo(1)[0]
        value = self._regs[reg]
        if reg == Reg.INT_STATUS_1:
            self._regs[reg] = 0
        elif reg in (Reg.INT_STATUS_2, Reg.TFRAC):
            self._regs[Reg.INT_STATUS_2] = 0
        return value

    def _write_reg(self, reg: int, value: int) -> None:
        if reg in _READ_ONLY:
            return
        if reg not in _WRITABLE:
            self.reserved_writes.append(reg)
            return
        value &= _WRITABLE[reg]
        now = self._clock()
        if reg == Reg.MODE_CONFIG:
            if RESET.get(value):
                keep = self._regs[Reg.INT_STATUS_1] & PWR_RDY.mask  # RESET does not raise it
                self._power_on()
                self._regs[Reg.INT_STATUS_1] = keep
                return  # RESET self-clears at once: the reset is done
            self._regs[reg] = value
            if SHDN.get(value):
                self._regs[Reg.INT_STATUS_1] = 0  # shutdown clears every interrupt
                self._regs[Reg.INT_STATUS_2] = 0
            self._reanchor(now)
        elif reg == Reg.SPO2_CONFIG:
            self._regs[reg] = self._clamp_rate(value)
            self._reanchor(now)
        elif reg == Reg.FIFO_CONFIG:
            self._regs[reg] = value
            self._reanchor(now)
        elif reg in (Reg.FIFO_WR_PTR, Reg.OVF_COUNTER, Reg.FIFO_RD_PTR):
            self._regs[reg] = value
            self._fifo.pointers_written()
        elif reg in (Reg.MULTI_LED_CTRL1, Reg.MULTI_LED_CTRL2):
            had_gap = has_slot_gap(self._regs[Reg.MULTI_LED_CTRL1], self._regs[Reg.MULTI_LED_CTRL2])
            self._regs[reg] = value
            if not had_gap and has_slot_gap(
                self._regs[Reg.MULTI_LED_CTRL1], self._regs[Reg.MULTI_LED_CTRL2]
            ):
                self._fifo.slot_gaps += 1
            if self._sampling() != (self.sampling_since is not None):
                self._reanchor(now)  # the first slot enabled (or the last disabled)
        elif reg == Reg.TEMP_CONFIG:
            self._regs[reg] = value
            if TEMP_EN.get(value) and self._temp_done_at is None:
                self._temp_done_at = now + TEMP_CONVERSION_S
        else:
            self._regs[reg] = value

    def _clamp_rate(self, value: int) -> int:
        # p.19: a rate too high for the pulse width is replaced by the highest allowed one.
        # Table 12 covers one LED per sample (HR mode), Table 11 two.
        table = HR_ALLOWED_PW_US if len(self.channels) == 1 else SPO2_ALLOWED_PW_US
        width = PULSE_WIDTHS_US[LED_PW.get(value)]
        code = SPO2_SR.get(value)
        while code > 0 and width not in table.get(SAMPLE_RATES_SPS[code], ()):
            code -= 1
        return SPO2_SR.put(value, code)

    # --- the smbus2-compatible bus ----------------------------------------------------------

    def _begin(self, i2c_addr: int) -> None:
        self.transfers += 1
        if self._unplugged or i2c_addr != self.address:
            raise _bus_error(errno.EREMOTEIO)
        if self._fail_next:
            self._fail_next -= 1
            raise _bus_error(errno.EIO)
        self._advance()

    def _read_fifo(self, length: int) -> list[int]:
        """Bytes read from FIFO_DATA in one transfer (reading it clears PPG_RDY, p.13)."""
        self._regs[Reg.INT_STATUS_1] &= ~PPG_RDY.mask & 0xFF
        return self._fifo.read(length, self.bytes_per_sample)

    def _read_seq(self, reg: int, length: int) -> list[int]:
        if reg == Reg.FIFO_DATA:
            return self._read_fifo(length)
        out = []
        for _ in range(length):
            out.append(self._read_reg(reg))
            if reg not in (Reg.FIFO_DATA, 0xFF):  # FIFO_DATA stays put; 0xFF does not wrap
                reg += 1
        return out

    def _write_seq(self, reg: int, data: Iterable[int]) -> None:
        for value in data:
            self._write_reg(reg, value)
            if reg not in (Reg.FIFO_DATA, 0xFF):
                reg += 1

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        """Read one register."""
        self._begin(i2c_addr)
        return self._read_reg(register & 0xFF)

    def write_byte_data(self, i2c_addr: int, register: int, value: int) -> None:
        """Write one register."""
        self._begin(i2c_addr)
        self._write_reg(register & 0xFF, value & 0xFF)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        """Read ``length`` (<= 32) bytes from ``register`` on, auto-incrementing."""
        if length > 32:
            raise ValueError("Desired block length over 32 bytes")
        self._begin(i2c_addr)
        return self._read_seq(register & 0xFF, length)

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None:
        """Write up to 32 bytes from ``register`` on, auto-incrementing."""
        if len(data) > 32:
            raise ValueError("Data length cannot exceed 32 bytes")
        self._begin(i2c_addr)
        self._write_seq(register & 0xFF, [v & 0xFF for v in data])

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        """Run messages as one transfer: a write sets the register pointer (and writes on),
        a read reads from the pointer on. Accepts ``I2CMsg`` and ``smbus2.i2c_msg`` alike."""
        if not i2c_msgs:
            return
        self._begin(i2c_msgs[0].addr)
        if any(m.addr != self.address for m in i2c_msgs):
            raise _bus_error(errno.EREMOTEIO)
        pointer = 0
        for msg in i2c_msgs:
            if msg.flags & I2C_M_RD:
                fill_read_msg(msg, bytes(self._read_seq(pointer, msg.len)))
                if pointer not in (Reg.FIFO_DATA, 0xFF):
                    pointer = min(0xFF, pointer + msg.len)
            else:
                data = msg_bytes(msg)
                if data:
                    pointer = data[0]
                    self._write_seq(pointer, data[1:])

    def close(self) -> None:
        """Nothing to release: the simulated chip stays, as a wired module would."""

    def __enter__(self) -> SimulatedMAX30102:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._unplugged:
            state = "unplugged"
        else:
            state = "idle" if self.sampling_since is None else "sampling"
        return (
            f"<SimulatedMAX30102 at 0x{self.address:02X} {state} {self._fifo.unread} unread "
            f"ovf={self._regs[Reg.OVF_COUNTER]}>"
        )
