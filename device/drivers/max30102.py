"""Driver for the Maxim MAX30102 pulse-oximetry sensor over an injected I2C bus.

Data sheet 19-7740 Rev 1 (10/18): register map pp.10-22, FIFO pp.13-17, SpO2 configuration
Tables 5-8, allowed sample-rate / pulse-width combinations Tables 11/12 (p.23).

The bus is anything smbus2-compatible (``smbus2.SMBus`` on a Pi, the simulated chip of
:mod:`device.sim.max30102` elsewhere). Every transfer goes through a
:class:`~device.drivers.i2c.Retrier`, so a flaky wire costs a retry, not an exception; what
still fails becomes a :class:`~device.exc.BusError`. Settings are public properties in
physical units (sps, µs, nA, mA); a value or combination the data sheet forbids raises
:class:`~device.exc.SettingError` before anything is written, and every write is read back
(the chip silently clamps a sample rate too high for the pulse width).

Samples stay as the chip gives them: 18-bit, left-justified (bit 17 is always the MSB, so
full scale is 262143 at every pulse width), Red then IR.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from device.config_schema import PULSE_WIDTHS_AT_RATE_US
from device.drivers.i2c import Retrier, msg_factory
from device.exc import BusError, HardwareError, SensorNotFound, SensorTimeout, SettingError

log = logging.getLogger(__name__)

#: 7-bit I2C address (p.29, Table 17).
ADDRESS = 0x57
#: PART_ID of a MAX30102 (also of the MAX30101/MAX30105, which share its register set).
PART_ID = 0x15
#: PART_ID of the older MAX30100, whose registers and FIFO differ.
PART_ID_MAX30100 = 0x11


class Reg(IntEnum):
    """Register addresses (p.10). 0x0B, 0x0E-0x10 and 0x30 are reserved on the MAX30102."""

    INT_STATUS_1 = 0x00
    INT_STATUS_2 = 0x01
    INT_ENABLE_1 = 0x02
    INT_ENABLE_2 = 0x03
    FIFO_WR_PTR = 0x04
    OVF_COUNTER = 0x05
    FIFO_RD_PTR = 0x06
    FIFO_DATA = 0x07
    FIFO_CONFIG = 0x08
    MODE_CONFIG = 0x09
    SPO2_CONFIG = 0x0A
    LED1_PA = 0x0C
    LED2_PA = 0x0D
    MULTI_LED_CTRL1 = 0x11
    MULTI_LED_CTRL2 = 0x12
    TINT = 0x1F
    TFRAC = 0x20
    TEMP_CONFIG = 0x21
    REV_ID = 0xFE
    PART_ID = 0xFF


@dataclass(frozen=True, slots=True)
class Field:
    """A bit field of a register: ``width`` bits starting at bit ``shift``."""

    reg: Reg
    shift: int
    width: int

    @property
    def mask(self) -> int:
        """The field's bits within the register byte."""
        return ((1 << self.width) - 1) << self.shift

    def get(self, byte: int) -> int:
        """The field's value in a register byte."""
        return (byte & self.mask) >> self.shift

    def put(self, byte: int, value: int) -> int:
        """The register byte with the field set to ``value``."""
        if not 0 <= value < (1 << self.width):
            raise ValueError(f"{value} does not fit a {self.width}-bit field")
        return (byte & ~self.mask & 0xFF) | (value << self.shift)


A_FULL = Field(Reg.INT_STATUS_1, 7, 1)
PPG_RDY = Field(Reg.INT_STATUS_1, 6, 1)
ALC_OVF = Field(Reg.INT_STATUS_1, 5, 1)
PWR_RDY = Field(Reg.INT_STATUS_1, 0, 1)
DIE_TEMP_RDY = Field(Reg.INT_STATUS_2, 1, 1)
A_FULL_EN = Field(Reg.INT_ENABLE_1, 7, 1)
PPG_RDY_EN = Field(Reg.INT_ENABLE_1, 6, 1)
ALC_OVF_EN = Field(Reg.INT_ENABLE_1, 5, 1)
DIE_TEMP_RDY_EN = Field(Reg.INT_ENABLE_2, 1, 1)
FIFO_PTR = Field(Reg.FIFO_WR_PTR, 0, 5)  # the same 5 bits in WR_PTR, OVF_COUNTER, RD_PTR
SMP_AVE = Field(Reg.FIFO_CONFIG, 5, 3)
FIFO_ROLLOVER_EN = Field(Reg.FIFO_CONFIG, 4, 1)
FIFO_A_FULL = Field(Reg.FIFO_CONFIG, 0, 4)
SHDN = Field(Reg.MODE_CONFIG, 7, 1)
RESET = Field(Reg.MODE_CONFIG, 6, 1)
MODE = Field(Reg.MODE_CONFIG, 0, 3)
SPO2_ADC_RGE = Field(Reg.SPO2_CONFIG, 5, 2)
SPO2_SR = Field(Reg.SPO2_CONFIG, 2, 3)
LED_PW = Field(Reg.SPO2_CONFIG, 0, 2)
TEMP_EN = Field(Reg.TEMP_CONFIG, 0, 1)

#: MODE codes: heart rate (Red only), SpO2 (Red + IR), multi-LED. Others: "do not use".
MODE_HR, MODE_SPO2, MODE_MULTI_LED = 0b010, 0b011, 0b111

#: Table 6: SPO2_SR code -> samples per second.
SAMPLE_RATES_SPS = (50, 100, 200, 400, 800, 1000, 1600, 3200)
#: SMP_AVE code -> samples averaged per FIFO sample (codes 6 and 7 also mean 32).
AVERAGING = (1, 2, 4, 8, 16, 32, 32, 32)
#: Table 7: LED_PW code -> pulse width in µs (68.95, 117.78, 215.44, 410.75 rounded).
PULSE_WIDTHS_US = (69, 118, 215, 411)
#: Table 7: LED_PW code -> ADC resolution in bits.
ADC_BITS = (15, 16, 17, 18)
#: Table 5: SPO2_ADC_RGE code -> ADC full scale in nA.
ADC_RANGES_NA = (2048, 4096, 8192, 16384)
#: Table 11 (SpO2 mode): the pulse widths allowed at each sample rate (none at 3200 sps).
#: The config schema holds the table, so that checking a file needs no numpy.
SPO2_ALLOWED_PW_US = PULSE_WIDTHS_AT_RATE_US
#: Table 8: LED current per LSB of LED1_PA / LED2_PA, mA (0xFF = 51.0 mA typical).
LED_MA_PER_LSB = 0.2
LED_MAX_MA = 51.0

FIFO_DEPTH = 32
#: SpO2 mode: one sample is 3 bytes Red then 3 bytes IR.
BYTES_PER_SAMPLE = 6
#: Left-justified 18-bit samples: full scale at every pulse width.
SAMPLE_MASK = 0x3FFFF
FULL_SCALE = SAMPLE_MASK
#: Largest read smbus2 allows in one SMBus block transfer; longer reads use i2c_rdwr.
SMBUS_BLOCK_MAX = 32
#: RESET self-clears within this time or the chip is not working (p.18).
RESET_TIMEOUT_S = 0.1
#: A die-temperature conversion takes about 29 ms (Figure 4, p.26).
TEMP_TIMEOUT_S = 0.1


def check_settings(
    sample_rate_sps: int, averaging: int, pulse_width_us: int, adc_range_na: int
) -> None:
    """Check a SpO2-mode configuration against the data sheet's tables.

    :raises SettingError: naming the value and what is allowed (Tables 5-7, 11).
    """
    if sample_rate_sps not in SAMPLE_RATES_SPS:
        raise SettingError(
            f"sample_rate_sps {sample_rate_sps!r} is not one of {SAMPLE_RATES_SPS} (Table 6)"
        )
    if averaging not in AVERAGING[:6]:
        raise SettingError(f"averaging {averaging!r} is not one of {AVERAGING[:6]}")
    if pulse_width_us not in PULSE_WIDTHS_US:
        raise SettingError(
            f"pulse_width_us {pulse_width_us!r} is not one of {PULSE_WIDTHS_US} (Table 7)"
        )
    if adc_range_na not in ADC_RANGES_NA:
        raise SettingError(f"adc_range_na {adc_range_na!r} is not one of {ADC_RANGES_NA} (Table 5)")
    allowed = SPO2_ALLOWED_PW_US.get(sample_rate_sps, ())
    if pulse_width_us not in allowed:
        ok = ", ".join(map(str, allowed)) if allowed else "none"
        raise SettingError(
            f"SpO2 mode forbids {sample_rate_sps} sps with {pulse_width_us} µs pulses "
            f"(Table 11: at {sample_rate_sps} sps the allowed pulse widths are {ok} µs)"
        )


def led_code(ma: float, name: str = "LED current") -> int:
    """The LEDx_PA code for a current in mA (0.2 mA steps, rounded to the nearest step).

    :raises SettingError: for a current outside 0-51 mA or not a number.
    """
    if not isinstance(ma, int | float) or not math.isfinite(ma) or not 0.0 <= ma <= LED_MAX_MA:
        raise SettingError(f"{name} must be 0-{LED_MAX_MA:g} mA (Table 8), not {ma!r}")
    return min(0xFF, round(ma / LED_MA_PER_LSB))


def led_ma(code: int) -> float:
    """The LED current in mA for a LEDx_PA code."""
    return round(code * LED_MA_PER_LSB, 1)


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


class MAX30102:
    """A MAX30102 on an I2C bus, set up in SpO2 mode (Red + IR) and sampling.

    :param bus: an smbus2-compatible bus.
    :param address: the chip's 7-bit address.
    :param bus_name: how error messages name the bus (e.g. ``"/dev/i2c-1"``).
    :param sample_rate_sps: ADC rate, sps (Table 6).
    :param averaging: samples averaged per FIFO sample; output rate = rate / averaging.
    :param pulse_width_us: LED pulse width, µs (sets the resolution, Table 7).
    :param adc_range_na: ADC full scale, nA (Table 5).
    :param led_red_ma: Red LED current, mA (0-51).
    :param led_ir_ma: IR LED current, mA (0-51).
    :param fifo_a_full: FIFO_A_FULL: empty slots left when A_FULL fires (0x0F = 17 unread).
    :param retrier: retry policy shared with the caller (a fresh one by default).
    :param monotonic: clock (s) timing the reset and temperature waits.
    :param sleep: sleep (s) between those polls and between retries of a fresh retrier.

    Construction checks the settings, the chip's identity (:class:`SensorNotFound` naming
    bus, address and what was read), resets it (:class:`SensorTimeout` after 100 ms), writes
    and reads back the configuration, clears the FIFO and starts sampling.
    """

    def __init__(
        self,
        bus: Any,
        address: int = ADDRESS,
        *,
        bus_name: str = "the I2C bus",
        sample_rate_sps: int = 100,
        averaging: int = 1,
        pulse_width_us: int = 411,
        adc_range_na: int = 4096,
        led_red_ma: float = 7.0,
        led_ir_ma: float = 7.0,
        fifo_a_full: int = 0x0F,
        retrier: Retrier | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._closed = True  # until the chip is identified: close() must not touch it
        self.bus = bus
        self.address = address
        self.bus_name = bus_name
        self.retrier = retrier if retrier is not None else Retrier(sleep=sleep)
        self._monotonic = monotonic
        self._sleep = sleep
        check_settings(sample_rate_sps, averaging, pulse_width_us, adc_range_na)
        red_code = led_code(led_red_ma, "led_red_ma")
        ir_code = led_code(led_ir_ma, "led_ir_ma")
        if not 0 <= fifo_a_full <= 0x0F:
            raise SettingError(f"fifo_a_full must be 0-15 empty slots, not {fifo_a_full!r}")
        #: Counters: FIFO overflows seen, samples the chip dropped.
        self.overflows = 0
        self.samples_lost = 0
        self.part_id, self.rev_id = self._identify()
        self._closed = False
        self._settings = (sample_rate_sps, averaging, pulse_width_us, adc_range_na)
        try:
            self.reset()
            self._configure(
                sample_rate_sps,
                averaging,
                pulse_width_us,
                adc_range_na,
                red_code,
                ir_code,
                fifo_a_full,
            )
        except BaseException:
            self.close()
            raise

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

    # --- identity, reset, configuration ---------------------------------------------------

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
        log.info("MAX30102 rev 0x%02X found at %s", rev, self._where())
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

    def _configure(
        self,
        rate: int,
        averaging: int,
        pulse_width: int,
        adc_range: int,
        red_code: int,
        ir_code: int,
        a_full: int,
    ) -> None:
        # Reading the status clears a pending PWR_RDY, so a later one means a brownout.
        self._read_block(Reg.INT_STATUS_1, 2)
        fifo = SMP_AVE.put(0, AVERAGING.index(averaging)) | FIFO_A_FULL.put(0, a_full)
        self._write_checked(Reg.FIFO_CONFIG, fifo)  # rollover off: overflow is counted
        self._write_checked(Reg.SPO2_CONFIG, self._spo2_byte(rate, pulse_width, adc_range))
        self._write_checked(Reg.LED1_PA, red_code)
        self._write_checked(Reg.LED2_PA, ir_code)
        self._write_checked(Reg.INT_ENABLE_1, A_FULL_EN.mask | ALC_OVF_EN.mask)
        self._clear_fifo()
        self._write_checked(Reg.MODE_CONFIG, MODE.put(0, MODE_SPO2))

    @staticmethod
    def _spo2_byte(rate: int, pulse_width: int, adc_range: int) -> int:
        byte = SPO2_ADC_RGE.put(0, ADC_RANGES_NA.index(adc_range))
        byte = SPO2_SR.put(byte, SAMPLE_RATES_SPS.index(rate))
        return LED_PW.put(byte, PULSE_WIDTHS_US.index(pulse_width))

    def _clear_fifo(self) -> None:
        # WR_PTR, OVF_COUNTER, RD_PTR are consecutive: one write clears all three (p.14).
        self.retrier.call(
            f"clear of the FIFO pointers at {self._where()}",
            self.bus.write_i2c_block_data,
            self.address,
            int(Reg.FIFO_WR_PTR),
            [0, 0, 0],
        )

    # --- settings in physical units ---------------------------------------------------------

    def _spo2(self) -> int:
        self._check_open()
        return self._read(Reg.SPO2_CONFIG)

    def _set_spo2(self, **change: int) -> None:
        """Change SPO2_CONFIG fields (``rate``, ``pulse_width``, ``adc_range``) at once."""
        self._check_open()
        byte = self._read(Reg.SPO2_CONFIG)
        values = {
            "rate": SAMPLE_RATES_SPS[SPO2_SR.get(byte)],
            "pulse_width": PULSE_WIDTHS_US[LED_PW.get(byte)],
            "adc_range": ADC_RANGES_NA[SPO2_ADC_RGE.get(byte)],
        }
        values.update(change)
        averaging = self._settings[1]
        check_settings(values["rate"], averaging, values["pulse_width"], values["adc_range"])
        self._write_checked(
            Reg.SPO2_CONFIG,
            self._spo2_byte(values["rate"], values["pulse_width"], values["adc_range"]),
        )
        self._settings = (values["rate"], averaging, values["pulse_width"], values["adc_range"])

    @property
    def sample_rate_sps(self) -> int:
        """ADC sample rate in samples/s (before averaging), read from the chip."""
        return SAMPLE_RATES_SPS[SPO2_SR.get(self._spo2())]

    @sample_rate_sps.setter
    def sample_rate_sps(self, value: int) -> None:
        if value not in SAMPLE_RATES_SPS:
            raise SettingError(f"sample_rate_sps {value!r} is not one of {SAMPLE_RATES_SPS}")
        self._set_spo2(rate=value)

    @property
    def pulse_width_us(self) -> int:
        """LED pulse width in µs (69, 118, 215, 411), read from the chip."""
        return PULSE_WIDTHS_US[LED_PW.get(self._spo2())]

    @pulse_width_us.setter
    def pulse_width_us(self, value: int) -> None:
        if value not in PULSE_WIDTHS_US:
            raise SettingError(f"pulse_width_us {value!r} is not one of {PULSE_WIDTHS_US}")
        self._set_spo2(pulse_width=value)

    @property
    def adc_range_na(self) -> int:
        """ADC full scale in nA (2048, 4096, 8192, 16384), read from the chip."""
        return ADC_RANGES_NA[SPO2_ADC_RGE.get(self._spo2())]

    @adc_range_na.setter
    def adc_range_na(self, value: int) -> None:
        if value not in ADC_RANGES_NA:
            raise SettingError(f"adc_range_na {value!r} is not one of {ADC_RANGES_NA}")
        self._set_spo2(adc_range=value)

    @property
    def adc_bits(self) -> int:
        """ADC resolution in bits at the present pulse width (15-18)."""
        return ADC_BITS[PULSE_WIDTHS_US.index(self.pulse_width_us)]

    @property
    def averaging(self) -> int:
        """Samples averaged on the chip per FIFO sample (1-32), read from the chip."""
        self._check_open()
        return AVERAGING[SMP_AVE.get(self._read(Reg.FIFO_CONFIG))]

    @averaging.setter
    def averaging(self, value: int) -> None:
        rate, _, pulse_width, adc_range = self._settings
        check_settings(rate, value, pulse_width, adc_range)
        self._update(SMP_AVE, AVERAGING.index(value))
        self._settings = (rate, value, pulse_width, adc_range)

    @property
    def output_rate_hz(self) -> float:
        """Samples per second arriving in the FIFO (sample rate / averaging)."""
        return self.sample_rate_sps / self.averaging

    @property
    def led_red_ma(self) -> float:
        """Red LED (LED1) current in mA, read from the chip."""
        self._check_open()
        return led_ma(self._read(Reg.LED1_PA))

    @led_red_ma.setter
    def led_red_ma(self, value: float) -> None:
        code = led_code(value, "led_red_ma")
        self._check_open()
        self._write_checked(Reg.LED1_PA, code)

    @property
    def led_ir_ma(self) -> float:
        """IR LED (LED2) current in mA, read from the chip."""
        self._check_open()
        return led_ma(self._read(Reg.LED2_PA))

    @led_ir_ma.setter
    def led_ir_ma(self, value: float) -> None:
        code = led_code(value, "led_ir_ma")
        self._check_open()
        self._write_checked(Reg.LED2_PA, code)

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

    def shutdown(self) -> None:
        """Put the chip in its 0.7 µA shutdown (registers kept, sampling stopped)."""
        self._update(SHDN, 1)

    def wake(self) -> None:
        """Leave shutdown and sample again."""
        self._update(SHDN, 0)

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` ran (or the chip was never identified)."""
        return self._closed

    def close(self) -> None:
        """Shut the chip down (best effort) and stop using it. Safe to call again."""
        if self._closed:
            return
        try:
            self.shutdown()
        except OSError as exc:
            log.debug("MAX30102 at %s: shutdown on close failed: %s", self._where(), exc)
        self._closed = True

    def __enter__(self) -> MAX30102:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return f"<MAX30102 at {self._where()} closed>"
        rate, averaging, pulse_width, adc_range = self._settings
        return (
            f"<MAX30102 rev 0x{self.rev_id:02X} at {self._where()} {rate} sps/{averaging} "
            f"{pulse_width} µs {adc_range} nA>"
        )
