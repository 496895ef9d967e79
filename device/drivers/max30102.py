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

import logging
import time
from collections.abc import Callable
from typing import Any

from device.drivers.i2c import Retrier
from device.drivers.max30102_io import FifoRead, Max30102Io
from device.drivers.max30102_regs import (
    A_FULL,
    A_FULL_EN,
    ADC_BITS,
    ADC_RANGES_NA,
    ADDRESS,
    ALC_OVF,
    ALC_OVF_EN,
    AVERAGING,
    BYTES_PER_SAMPLE,
    DIE_TEMP_RDY,
    DIE_TEMP_RDY_EN,
    FIFO_A_FULL,
    FIFO_DEPTH,
    FIFO_PTR,
    FIFO_ROLLOVER_EN,
    FULL_SCALE,
    LED_MA_PER_LSB,
    LED_MAX_MA,
    LED_PW,
    MODE,
    MODE_HR,
    MODE_MULTI_LED,
    MODE_SPO2,
    PART_ID,
    PART_ID_MAX30100,
    PPG_RDY,
    PPG_RDY_EN,
    PULSE_WIDTHS_US,
    PWR_RDY,
    RESET,
    RESET_TIMEOUT_S,
    SAMPLE_MASK,
    SAMPLE_RATES_SPS,
    SHDN,
    SMBUS_BLOCK_MAX,
    SMP_AVE,
    SPO2_ADC_RGE,
    SPO2_ALLOWED_PW_US,
    SPO2_SR,
    TEMP_EN,
    TEMP_TIMEOUT_S,
    Field,
    Reg,
    check_settings,
    led_code,
    led_ma,
)
from device.exc import SettingError

#: Everything the driver module has always offered (the register map lives in max30102_regs).
__all__ = [
    "ADC_BITS",
    "ADC_RANGES_NA",
    "ADDRESS",
    "ALC_OVF",
    "ALC_OVF_EN",
    "AVERAGING",
    "A_FULL",
    "A_FULL_EN",
    "BYTES_PER_SAMPLE",
    "DIE_TEMP_RDY",
    "DIE_TEMP_RDY_EN",
    "FIFO_A_FULL",
    "FIFO_DEPTH",
    "FIFO_PTR",
    "FIFO_ROLLOVER_EN",
    "FULL_SCALE",
    "LED_MAX_MA",
    "LED_MA_PER_LSB",
    "LED_PW",
    "MAX30102",
    "MODE",
    "MODE_HR",
    "MODE_MULTI_LED",
    "MODE_SPO2",
    "PART_ID",
    "PART_ID_MAX30100",
    "PPG_RDY",
    "PPG_RDY_EN",
    "PULSE_WIDTHS_US",
    "PWR_RDY",
    "RESET",
    "RESET_TIMEOUT_S",
    "SAMPLE_MASK",
    "SAMPLE_RATES_SPS",
    "SHDN",
    "SMBUS_BLOCK_MAX",
    "SMP_AVE",
    "SPO2_ADC_RGE",
    "SPO2_ALLOWED_PW_US",
    "SPO2_SR",
    "TEMP_EN",
    "TEMP_TIMEOUT_S",
    "Field",
    "FifoRead",
    "Max30102Io",
    "Reg",
    "check_settings",
    "led_code",
    "led_ma",
]

log = logging.getLogger(__name__)


class MAX30102(Max30102Io):
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
    :param announce: log the chip found at INFO (a caller retrying every second passes
        ``False`` after its first try, so the journal says it once).
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
        announce: bool = True,
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
        log.log(
            logging.INFO if announce else logging.DEBUG,
            "MAX30102 rev 0x%02X found at %s",
            self.rev_id,
            self._where(),
        )
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

    # --- configuration (identity and reset: Max30102Io) -----------------------------------

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
