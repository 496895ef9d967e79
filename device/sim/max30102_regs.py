"""The simulated MAX30102's register map rules: which bits take writes, what a read clears,
how the sample rate is clamped and how a temperature conversion ends (data sheet 19-7740)."""

from __future__ import annotations

from device.drivers.max30102 import (
    DIE_TEMP_RDY,
    LED_PW,
    PULSE_WIDTHS_US,
    SAMPLE_RATES_SPS,
    SPO2_ALLOWED_PW_US,
    SPO2_SR,
    Reg,
)
from device.sim.max30102_fifo import HR_ALLOWED_PW_US, has_slot_gap

#: Writable bits of each writable register; every other address is read-only or reserved.
WRITABLE: dict[int, int] = {
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
#: Registers that ignore writes without being reserved.
READ_ONLY = frozenset(
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


def read_register(regs: bytearray, reg: int) -> int:
    """Read ``reg`` (not FIFO_DATA) from ``regs``: reading INT_STATUS_1 clears it; reading
    INT_STATUS_2 or TFRAC clears INT_STATUS_2 (DIE_TEMP_RDY)."""
    value = regs[reg]
    if reg == Reg.INT_STATUS_1:
        regs[reg] = 0
    elif reg in (Reg.INT_STATUS_2, Reg.TFRAC):
        regs[Reg.INT_STATUS_2] = 0
    return value


def clamp_sample_rate(value: int, leds: int) -> int:
    """SPO2_CONFIG ``value`` with a rate too high for its pulse width replaced by the highest
    allowed one (p.19), for ``leds`` LEDs per sample (Table 12 covers one, Table 11 two)."""
    table = HR_ALLOWED_PW_US if leds == 1 else SPO2_ALLOWED_PW_US
    width = PULSE_WIDTHS_US[LED_PW.get(value)]
    code = SPO2_SR.get(value)
    while code > 0 and width not in table.get(SAMPLE_RATES_SPS[code], ()):
        code -= 1
    return SPO2_SR.put(value, code)


def write_slot(regs: bytearray, reg: int, value: int) -> bool:
    """Write a MULTI_LED_CTRL register; ``True`` if that left a disabled slot before an
    enabled one where there was no such gap before (a driver bug)."""
    had_gap = has_slot_gap(regs[Reg.MULTI_LED_CTRL1], regs[Reg.MULTI_LED_CTRL2])
    regs[reg] = value
    return not had_gap and has_slot_gap(regs[Reg.MULTI_LED_CTRL1], regs[Reg.MULTI_LED_CTRL2])


def finish_temperature(regs: bytearray, die_temp_c: float) -> None:
    """End a conversion: TEMP_EN clears, TINT/TFRAC hold ``die_temp_c`` (°C) in 1/16 °C
    steps, and DIE_TEMP_RDY is set."""
    regs[Reg.TEMP_CONFIG] = 0
    sixteenths = round(die_temp_c * 16)
    whole, frac = divmod(sixteenths, 16)  # TFRAC is always added as a positive fraction
    regs[Reg.TINT] = whole & 0xFF
    regs[Reg.TFRAC] = frac
    regs[Reg.INT_STATUS_2] |= DIE_TEMP_RDY.mask
