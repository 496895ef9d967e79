"""MAX30102 register map as data: addresses, bit fields, code tables and setting checks.

Data sheet 19-7740 Rev 1 (10/18): register map pp.10-22, FIFO pp.13-17, SpO2 configuration
Tables 5-8, allowed sample-rate / pulse-width combinations Tables 11/12 (p.23).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from device.config.schema import PULSE_WIDTHS_AT_RATE_US
from device.exc import SettingError

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
