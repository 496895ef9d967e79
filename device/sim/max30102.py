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

The sampling lives in :mod:`device.sim.max30102_adc`, the register map's rules in
:mod:`device.sim.max30102_regs`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from typing import Any

from device.drivers.i2c import I2C_M_RD, I2CMsg, fill_read_msg, msg_bytes
from device.drivers.max30102 import (
    ADDRESS,
    FIFO_DEPTH,
    PART_ID,
    PPG_RDY,
    PWR_RDY,
    RESET,
    SHDN,
    TEMP_EN,
    Reg,
)
from device.sim.max30102_adc import SampleSource, output_rate
from device.sim.max30102_fifo import BYTES_PER_CHANNEL, SampleFifo, active_channels
from device.sim.max30102_regs import (
    READ_ONLY,
    WRITABLE,
    clamp_sample_rate,
    finish_temperature,
    read_register,
    write_slot,
)
from device.sim.pulse import PulseModel

#: A die-temperature conversion takes about 29 ms (Figure 4, p.26).
TEMP_CONVERSION_S = 0.029


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
        self._source = SampleSource(seed)
        #: Die temperature the chip measures, °C.
        self.die_temp_c = 31.5
        #: Register addresses written that the MAX30102 reserves (a driver bug if not empty).
        self.reserved_writes: list[int] = []
        #: Bus transfers attempted (including failed ones).
        self.transfers = 0
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
        self._source.restart(0.0)
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

    @property
    def samples_produced(self) -> int:
        """Samples the ADC has produced since power-up, including those dropped."""
        return self._source.samples_produced

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
        return output_rate(self._regs)

    def _reanchor(self, now: float) -> None:
        self._source.restart(now)
        self.sampling_since = now if self._sampling() else None

    def _advance(self) -> None:
        now = self._clock()
        if self._temp_done_at is not None and now >= self._temp_done_at:
            self._finish_temperature()
        if self.sampling_since is None:
            return
        due = self._source.due(now, self.output_rate_hz)
        if due > 0:
            self._produce(due)

    def _produce(self, n: int) -> None:
        self._source.produce(n, self._regs, self._fifo, self.model, self.swapped_leds)

    def _finish_temperature(self) -> None:
        self._temp_done_at = None
        finish_temperature(self._regs, self.die_temp_c)

    # --- register access --------------------------------------------------------------------

    def _read_reg(self, reg: int) -> int:
        if reg == Reg.FIFO_DATA:
            return self._read_fifo(1)[0]
        return read_register(self._regs, reg)

    def _write_reg(self, reg: int, value: int) -> None:
        if reg in READ_ONLY:
            return
        if reg not in WRITABLE:
            self.reserved_writes.append(reg)
            return
        value &= WRITABLE[reg]
        now = self._clock()
        if reg == Reg.MODE_CONFIG:
            self._write_mode(value, now)
        elif reg == Reg.SPO2_CONFIG:
            self._regs[reg] = clamp_sample_rate(value, len(self.channels))
            self._reanchor(now)
        elif reg == Reg.FIFO_CONFIG:
            self._regs[reg] = value
            self._reanchor(now)
        elif reg in (Reg.FIFO_WR_PTR, Reg.OVF_COUNTER, Reg.FIFO_RD_PTR):
            self._regs[reg] = value
            self._fifo.pointers_written()
        elif reg in (Reg.MULTI_LED_CTRL1, Reg.MULTI_LED_CTRL2):
            self._write_slots(reg, value, now)
        elif reg == Reg.TEMP_CONFIG:
            self._regs[reg] = value
            if TEMP_EN.get(value) and self._temp_done_at is None:
                self._temp_done_at = now + TEMP_CONVERSION_S
        else:
            self._regs[reg] = value

    def _write_mode(self, value: int, now: float) -> None:
        """MODE_CONFIG: a reset (self-clearing, PWR_RDY kept), or a mode and shutdown bit
        (shutdown clears every interrupt)."""
        if RESET.get(value):
            keep = self._regs[Reg.INT_STATUS_1] & PWR_RDY.mask  # RESET does not raise it
            self._power_on()
            self._regs[Reg.INT_STATUS_1] = keep
            return  # RESET self-clears at once: the reset is done
        self._regs[Reg.MODE_CONFIG] = value
        if SHDN.get(value):
            self._regs[Reg.INT_STATUS_1] = 0  # shutdown clears every interrupt
            self._regs[Reg.INT_STATUS_2] = 0
        self._reanchor(now)

    def _write_slots(self, reg: int, value: int, now: float) -> None:
        """MULTI_LED_CTRL1/2: the LED slots (a newly made gap, a disabled slot before an
        enabled one, is counted as a driver bug); sampling starts or stops with them."""
        if write_slot(self._regs, reg, value):
            self._fifo.slot_gaps += 1
        if self._sampling() != (self.sampling_since is not None):
            self._reanchor(now)  # the first slot enabled (or the last disabled)

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
