"""The simulated MAX30102's sampling: when samples are due and what counts they hold.

Samples accrue at SPO2_SR / SMP_AVE per second from the moment sampling (re)started, from
the :class:`~device.sim.pulse.PulseModel`'s photocurrent times the LED current, over the ADC
range, at the pulse width's resolution (left-justified, p.17), plus ADC noise and what a
bright lamp adds beyond the ambient cancellation. What does not fit the FIFO is dropped and
counted in OVF_COUNTER, or overwrites the oldest samples with rollover on.
"""

from __future__ import annotations

import math

import numpy as np

from device.drivers.max30102 import (
    A_FULL,
    ADC_BITS,
    ADC_RANGES_NA,
    ALC_OVF,
    AVERAGING,
    FIFO_A_FULL,
    FIFO_DEPTH,
    FIFO_ROLLOVER_EN,
    FULL_SCALE,
    LED_MA_PER_LSB,
    LED_PW,
    PPG_RDY,
    PULSE_WIDTHS_US,
    SAMPLE_RATES_SPS,
    SMP_AVE,
    SPO2_ADC_RGE,
    SPO2_SR,
    Reg,
)
from device.sim.max30102_fifo import DARK, IR, RED, SampleFifo, active_channels, sample_bytes
from device.sim.pulse import PulseModel

#: ADC input noise at 411 µs pulses, nA rms (shorter pulses integrate less light).
_ADC_NOISE_NA = 0.25
#: Light a bright lamp adds beyond what the ambient cancellation removes, as a share of range.
_LAMP_SHARE = 0.6


def output_rate(regs: bytearray) -> float:
    """Samples per second entering the FIFO (SPO2_SR / SMP_AVE) under the registers ``regs``."""
    rate = SAMPLE_RATES_SPS[SPO2_SR.get(regs[Reg.SPO2_CONFIG])]
    return rate / AVERAGING[SMP_AVE.get(regs[Reg.FIFO_CONFIG])]


class SampleSource:
    """The chip's ADC: counts samples due since sampling started and writes them to the FIFO.

    :param seed: seeds the ADC noise (the LED-off slots draw from a stream of their own, so
        enabling one leaves the Red and IR counts unchanged).
    """

    def __init__(self, seed: int) -> None:
        noise_seed, dark_seed = np.random.SeedSequence(seed).spawn(2)
        self._rng = np.random.default_rng(noise_seed)
        self._rng_dark = np.random.default_rng(dark_seed)
        self._anchor_t = 0.0
        self._anchor_n = 0
        #: Samples the ADC has produced since power-up, including those dropped.
        self.samples_produced = 0

    def restart(self, now: float) -> None:
        """Sampling (re)starts at clock time ``now`` (seconds): the first sample is one
        period later."""
        self._anchor_t = now
        self._anchor_n = 0

    def due(self, now: float, rate: float) -> int:
        """Samples due by clock time ``now`` at ``rate`` samples per second, not yet made."""
        return math.floor((now - self._anchor_t) * rate + 1e-9) - self._anchor_n

    def produce(
        self,
        n: int,
        regs: bytearray,
        fifo: SampleFifo,
        model: PulseModel,
        swapped_leds: bool,
    ) -> None:
        """Produce the next ``n`` samples of ``model``'s pulse under the registers ``regs``
        into ``fifo``; keep what fits, count the rest as dropped."""
        rate = output_rate(regs)
        channels = active_channels(
            regs[Reg.MODE_CONFIG], regs[Reg.MULTI_LED_CTRL1], regs[Reg.MULTI_LED_CTRL2]
        )
        first = self._anchor_n + 1
        rollover = FIFO_ROLLOVER_EN.get(regs[Reg.FIFO_CONFIG])
        if rollover:
            keep_from, keep = max(0, n - FIFO_DEPTH), min(n, FIFO_DEPTH)
        else:
            keep_from, keep = 0, min(n, FIFO_DEPTH - fifo.unread)
        times = self._anchor_t + (first + keep_from + np.arange(keep)) / rate
        self._anchor_n += n
        self.samples_produced += n
        dropped = n - keep
        if rollover and keep_from:
            # Every slot is overwritten: the pointers move on by all the samples written.
            fifo.overwrite_all(keep_from)
        if keep:
            fifo.push(self._counts(times, regs, channels, model, swapped_leds))
            status = regs[Reg.INT_STATUS_1] | PPG_RDY.mask
            if fifo.unread >= FIFO_DEPTH - FIFO_A_FULL.get(regs[Reg.FIFO_CONFIG]):
                status |= A_FULL.mask
            regs[Reg.INT_STATUS_1] = status
        if dropped and not rollover:
            regs[Reg.OVF_COUNTER] = min(0x1F, regs[Reg.OVF_COUNTER] + dropped)

    def _counts(
        self,
        times: np.ndarray,
        regs: bytearray,
        channels: tuple[int, ...],
        model: PulseModel,
        swapped_leds: bool,
    ) -> list[bytes]:
        spo2 = regs[Reg.SPO2_CONFIG]
        full_scale_na = ADC_RANGES_NA[SPO2_ADC_RGE.get(spo2)]
        pw_code = LED_PW.get(spo2)
        averaging = AVERAGING[SMP_AVE.get(regs[Reg.FIFO_CONFIG])]
        ir_per_ma, red_per_ma = model.render(times)
        if swapped_leds:
            ir_per_ma, red_per_ma = red_per_ma, ir_per_ma
        red_na = red_per_ma * regs[Reg.LED1_PA] * LED_MA_PER_LSB
        ir_na = ir_per_ma * regs[Reg.LED2_PA] * LED_MA_PER_LSB
        sigma = _ADC_NOISE_NA * math.sqrt(411.0 / PULSE_WIDTHS_US[pw_code] / averaging)
        noise = self._rng.standard_normal((times.size, 2)) * sigma
        na = np.stack([red_na, ir_na], axis=1) + noise
        lamp = np.zeros((times.size, 1))
        if model.light_bright:
            lamp = _LAMP_SHARE * full_scale_na * (1.0 + 0.2 * self._rng.random((times.size, 1)))
            na += lamp
            regs[Reg.INT_STATUS_1] |= ALC_OVF.mask
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
