"""Breath swell: a slow loudness and brightness envelope at the breathing pacer's rate.

One breath is an inhale (the sound rises over ``inhale_fraction`` of the cycle) and a
longer exhale (it falls over the rest: 1 : 1.5 at 0.4), both raised-cosine. The swell dips
the bed by ``depth_db`` at the bottom of each breath and brightens the pad a little at
the top, so the listener can breathe along. It moves over seconds, so the engine samples
it at segment boundaries and interpolates linearly in between.
"""

from __future__ import annotations

import math

from device.dsp.ramps import Glide

#: Pacer glide speed in breaths/min per second.
PACER_RATE = 1.0
#: Depth glide speed in dB per second.
DEPTH_RATE = 3.0
#: Brightness offset of the pad at the top of a breath, per 6 dB of depth.
BRIGHTNESS_PER_6DB = 0.12


def breath_shape(phase: float, inhale: float) -> float:
    """Swell height 0..1 at breath ``phase`` (cycles): rises over ``inhale``, falls after."""
    p = phase % 1.0
    if p < inhale:
        return 0.5 - 0.5 * math.cos(math.pi * p / inhale)
    return 0.5 + 0.5 * math.cos(math.pi * (p - inhale) / (1.0 - inhale))


class BreathSwell:
    """Breath phase and depth; gives the bed gain and pad brightness offset at any point."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = int(sample_rate)
        self.phase = 0.0
        self.bpm = Glide(10.0, PACER_RATE)
        self.depth = Glide(0.0, DEPTH_RATE)
        self.inhale = Glide(0.4, 0.05)
        self.on = False
        self._end_phase = 0.0
        self._frames = 0
        #: Bed gains and pad brightness offsets at the start and end of the planned segment.
        self.gain0 = self.gain1 = 1.0
        self.bright0 = self.bright1 = 0.0

    def set(self, pacer_bpm: float | None, inhale: float, depth_db: float) -> None:
        """Set the pacer (``None`` = swell off), inhale share and depth; all ramped."""
        self.on = pacer_bpm is not None
        if pacer_bpm is not None:
            self.bpm.target = float(pacer_bpm)
        self.inhale.target = float(inhale)
        self.depth.target = float(depth_db) if self.on else 0.0

    def plan(self, frames: int) -> tuple[float, float, float, float]:
        """Plan a segment: (gain start, gain end, brightness start, brightness end)."""
        self._frames = frames
        seconds = frames / self.sample_rate
        b0, b1 = self.bpm.value, self.bpm.plan(seconds)
        d0, d1 = self.depth.value, self.depth.plan(seconds)
        i0, i1 = self.inhale.value, self.inhale.plan(seconds)
        self._end_phase = self.phase + 0.5 * (b0 + b1) / 60.0 * seconds
        if d0 == 0.0 and d1 == 0.0:
            self.gain0 = self.gain1 = 1.0
            self.bright0 = self.bright1 = 0.0
        else:
            h0 = breath_shape(self.phase, i0)
            h1 = breath_shape(self._end_phase, i1)
            self.gain0 = 10.0 ** (-d0 * (1.0 - h0) / 20.0)
            self.gain1 = 10.0 ** (-d1 * (1.0 - h1) / 20.0)
            self.bright0 = BRIGHTNESS_PER_6DB * d0 / 6.0 * (h0 - 0.5)
            self.bright1 = BRIGHTNESS_PER_6DB * d1 / 6.0 * (h1 - 0.5)
        return self.gain0, self.gain1, self.bright0, self.bright1

    def commit(self, played: int) -> None:
        """Advance the breath by ``played`` frames of the last segment."""
        frac = played / self._frames if self._frames else 1.0
        self.phase = (self.phase + (self._end_phase - self.phase) * frac) % 1.0
        self.bpm.commit(frac)
        self.depth.commit(frac)
        self.inhale.commit(frac)
