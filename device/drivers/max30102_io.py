"""Register and FIFO transfers of the MAX30102: identity check, reset, bus helpers, FIFO reads,
die temperature.

:class:`Max30102Io` is the base of :class:`~device.drivers.max30102.MAX30102`: every transfer
goes through its :class:`~device.drivers.i2c.Retrier` and names register, address and bus.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from device.drivers.i2c import Retrier, msg_factory
from device.drivers.max30102_regs import (
    A_FULL,
    ALC_OVF,
    BYTES_PER_SAMPLE,
    FIFO_DEPTH,
    FIFO_PTR,
    PART_ID,
    PART_ID_MAX30100,
    PWR_RDY,
    RESET,
    RESET_TIMEOUT_S,
    SAMPLE_MASK,
    SMBUS_BLOCK_MAX,
    TEMP_EN,
    TEMP_TIMEOUT_S,
    Field,
    Reg,
)
from device.exc import BusError, HardwareError, SensorNotFound, SensorTimeout


@dataclass(slots=True)
class FifoRead:
    """What one :meth:`MAX30102.read_fifo` found."""

    #: Red samples, raw 18-bit counts (float64), oldest first.
    red: np.ndarray
    #: IR samples, raw 18-bit counts (float64), oldest first.
    ir: np.ndarray
    #: Samples the chip dropped because its FIFO was full (OVF_COUNTER; saturates at 31).
    lost: int
    #: ALC_OVF: ambient light overwhelmed the ambient cancellation ("sensor exposed to light").
    light: bool
    #: PWR_RDY: the chip powered up since the last read (a brownout reset all its registers).
    power_up: bool

    @property
    def overflow(self) -> bool:
        """Samples were lost after the ones read here."""
        return self.lost > 0


class Max30102Io:
    """Identity check, reset, bus helpers, FIFO reads and die temperature of a MAX30102 (the
    driver's base class)."""

    bus: Any
    address: int
    bus_name: str
    retrier: Retrier
    overflows: int
    samples_lost: int
    _closed: bool
    _monotonic: Callable[[], float]
    _sleep: Callable[[float], None]

    # --- identity and reset ------------------------------------------------------------------

    def _identify(self) -> tuple[int, int]:
        check = (
            f"check the wiring (SDA to pin 3, SCL to pin 5, 3V3, GND), that 'i2cdetect -y 1' "
            f"shows {self.address:02x}, and sensor.address"
        )
        try:
            part = self._read(Reg.PART_ID)
        except BusError as exc:
            raise SensorNotFound(
                exc.errno,
                f"no MAX30102 answered at {self._where()} (reading PART_ID gave nothing: "
                f"{exc.strerror}); {check}",
            ) from exc
        if part == PART_ID_MAX30100:
            raise SensorNotFound(
                errno.ENODEV,
                f"the sensor at {self._where()} is a MAX30100 (PART_ID 0x11): MAX30100 not "
                "supported, fit a MAX30102",
            )
        if part != PART_ID:
            raise SensorNotFound(
                errno.ENODEV,
                f"the device at {self._where()} is not a MAX30102: PART_ID (0xFF) reads "
                f"0x{part:02X}, expected 0x{PART_ID:02X}; {check}",
            )
        rev = self._read(Reg.REV_ID)
        return part, rev

    def reset(self) -> None:
        """Reset every register to its power-on value and wait for RESET to self-clear.

        :raises SensorTimeout: if RESET is still set after 100 ms.
        """
        self._check_open()
        self._write(Reg.MODE_CONFIG, RESET.put(0, 1))
        deadline = self._monotonic() + RESET_TIMEOUT_S
        while True:
            mode = self._read(Reg.MODE_CONFIG)
            if not RESET.get(mode):
                return
            if self._monotonic() >= deadline:
                raise SensorTimeout(
                    errno.ETIMEDOUT,
                    f"MAX30102 at {self._where()} did not finish its reset within "
                    f"{RESET_TIMEOUT_S * 1000:g} ms (MODE_CONFIG reads 0x{mode:02X})",
                )
            self._sleep(0.001)

    # --- bus helpers ---------------------------------------------------------------------

    def _where(self) -> str:
        return f"0x{self.address:02X} on {self.bus_name}"

    def _read(self, reg: Reg) -> int:
        return self.retrier.call(
            f"read of {reg.name} (0x{reg:02X}) at {self._where()}",
            self.bus.read_byte_data,
            self.address,
            int(reg),
        )

    def _read_block(self, reg: Reg, length: int) -> list[int]:
        return self.retrier.call(
            f"read of {length} bytes from {reg.name} (0x{reg:02X}) at {self._where()}",
            self.bus.read_i2c_block_data,
            self.address,
            int(reg),
            length,
        )

    def _write(self, reg: Reg, value: int) -> None:
        self.retrier.call(
            f"write of 0x{value:02X} to {reg.name} (0x{reg:02X}) at {self._where()}",
            self.bus.write_byte_data,
            self.address,
            int(reg),
            value,
        )

    def _write_checked(self, reg: Reg, value: int) -> None:
        self._write(reg, value)
        back = self._read(reg)
        if back != value:
            raise HardwareError(
                errno.EIO,
                f"MAX30102 at {self._where()}: wrote 0x{value:02X} to {reg.name} "
                f"(0x{reg:02X}) but read back 0x{back:02X}",
            )

    def _update(self, field: Field, value: int) -> None:
        self._check_open()
        self._write_checked(field.reg, field.put(self._read(field.reg), value))

    def _check_open(self) -> None:
        if self._closed:
            raise HardwareError(errno.EBADF, f"{self!r} is closed")

    def _clear_fifo(self) -> None:
        # WR_PTR, OVF_COUNTER, RD_PTR are consecutive: one write clears all three (p.14).
        self.retrier.call(
            f"clear of the FIFO pointers at {self._where()}",
            self.bus.write_i2c_block_data,
            self.address,
            int(Reg.FIFO_WR_PTR),
            [0, 0, 0],
        )

    # --- FIFO ----------------------------------------------------------------------------

    def read_fifo(self) -> FifoRead:
        """Read every sample waiting in the FIFO, with the status flags.

        One burst reads INT_STATUS_1/2 and the WR_PTR/OVF_COUNTER/RD_PTR triple together
        (0x00-0x06 auto-increment); the samples follow in one transfer of whole samples
        (``i2c_rdwr`` above 32 bytes). An overflow is counted in ``overflows`` and
        ``samples_lost``.
        """
        self._check_open()
        status = self._read_block(Reg.INT_STATUS_1, Reg.FIFO_RD_PTR + 1)
        flags = status[Reg.INT_STATUS_1]
        wr = FIFO_PTR.get(status[Reg.FIFO_WR_PTR])
        lost = FIFO_PTR.get(status[Reg.OVF_COUNTER])
        rd = FIFO_PTR.get(status[Reg.FIFO_RD_PTR])
        count = (wr - rd) % FIFO_DEPTH
        # WR == RD is empty or full; a full FIFO has dropped samples or raised A_FULL.
        if count == 0 and (lost or A_FULL.get(flags)):
            count = FIFO_DEPTH
        data = self._read_samples(count, rd) if count else b""
        raw = np.frombuffer(data, dtype=np.uint8).reshape(count, 2, 3).astype(np.int64)
        values = ((raw[..., 0] << 16) | (raw[..., 1] << 8) | raw[..., 2]) & SAMPLE_MASK
        if lost:
            self.overflows += 1
            self.samples_lost += lost
        return FifoRead(
            red=values[:, 0].astype(np.float64),
            ir=values[:, 1].astype(np.float64),
            lost=lost,
            light=bool(ALC_OVF.get(flags)),
            power_up=bool(PWR_RDY.get(flags)),
        )

    def _read_samples(self, count: int, rd: int) -> bytes:
        nbytes = count * BYTES_PER_SAMPLE
        try:
            if nbytes <= SMBUS_BLOCK_MAX:
                return bytes(self._read_block(Reg.FIFO_DATA, nbytes))
            msg = msg_factory(self.bus)
            write, read = msg.write(self.address, [Reg.FIFO_DATA]), msg.read(self.address, nbytes)
            self.retrier.call(
                f"read of {count} samples from FIFO_DATA (0x07) at {self._where()}",
                self.bus.i2c_rdwr,
                write,
                read,
            )
            return bytes(read)[:nbytes]
        except BusError:
            # p.16: after a failed transfer, put RD_PTR back so the samples are read again.
            with contextlib.suppress(BusError):
                self._write(Reg.FIFO_RD_PTR, rd)
            raise

    def clear_fifo(self) -> None:
        """Drop every sample in the FIFO and clear the overflow counter."""
        self._check_open()
        self._clear_fifo()

    # --- temperature, power --------------------------------------------------------------

    def start_temperature(self) -> None:
        """Start a die-temperature conversion (about 29 ms); see :meth:`read_temperature`."""
        self._check_open()
        self._write(Reg.TEMP_CONFIG, TEMP_EN.put(0, 1))

    def read_temperature(self) -> float | None:
        """The die temperature in °C once a started conversion is done, else ``None``."""
        self._check_open()
        if TEMP_EN.get(self._read(Reg.TEMP_CONFIG)):
            return None
        tint, tfrac = self._read_block(Reg.TINT, 2)
        whole = tint - 256 if tint & 0x80 else tint  # two's complement °C
        return whole + (tfrac & 0x0F) * 0.0625

    @property
    def temperature_c(self) -> float:
        """The die temperature in °C, measured now (blocks for about 30 ms).

        :raises SensorTimeout: if the conversion does not finish within 100 ms.
        """
        self.start_temperature()
        deadline = self._monotonic() + TEMP_TIMEOUT_S
        while True:
            value = self.read_temperature()
            if value is not None:
                return value
            if self._monotonic() >= deadline:
                raise SensorTimeout(
                    errno.ETIMEDOUT,
                    f"MAX30102 at {self._where()}: no temperature within "
                    f"{TEMP_TIMEOUT_S * 1000:g} ms",
                )
            self._sleep(0.005)
