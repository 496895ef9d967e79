"""A slow leveller for the composed music: steady short-term loudness, the piece's level kept.

Composed phrases breathe: a phrase swells over the inhale, thins to its cadence note and a
rest, and the next starts. Heard through a night, those swells are loudness steps of
several LU every ten seconds (measured 5 LU, p5-p95 of 3-s short-term loudness), and the
issue asks for short-term loudness steady within 1 LU. The leveller is the broadcast kind
(an automatic gain control with slow time constants, not a compressor's fast attack): it
compares the music's power over about the last segment (:data:`FAST_S`) with its power over
the last half minute (:data:`SLOW_S`) and moves the gain to close the gap, within
:data:`RANGE_DB` either way, one segment at a time (the voice ramps the gain across the
segment: no step, no click). The slow reference follows the program: when the music is
meant to get quieter (energy falling towards sleep) the reference falls with it, so only
the phrase-scale swings are levelled. Below :data:`GATE_DB` under the reference (a pause,
the music stopping) the gain holds where it is: a fading tail is brought up by the range at
most, and silence never further. When the voice stops playing it forgets its level.

The phrasing stays in the melody's arc, the chords and the brightness; only its loudness
swing is levelled. pedalboard's compressors would do this job but are not installed on the
box and allocate a new output array on every call (the audio path may not allocate), so
the leveller is these few lines of arithmetic on one number per segment.
"""

from __future__ import annotations

import math

#: Time constants (s) of the fast power estimate (what is heard now) and the slow one (the
#: piece's level, the reference). 0.2 s: about one segment (0.34 s at 48 kHz), so a phrase's
#: attack is levelled in the segment it sounds in (0.5 s left the attacks up: 1.28 LU of
#: 3-s loudness spread over 20 minutes, 0.92 LU at 0.2 s; 0.1 s simulated 0.96 LU).
FAST_S = 0.2
SLOW_S = 30.0
#: Largest cut or boost (dB).
RANGE_DB = 8.0
#: Below this (dB under the reference) the music counts as a pause: the gain holds.
GATE_DB = -30.0


class Leveller:
    """Gain (linear) for each segment from that segment's mean power (see the module doc)."""

    def __init__(self, rate: int) -> None:
        self.rate = int(rate)
        self.reset()

    def reset(self) -> None:
        """Forget the level (a new piece, or the music back after a pause)."""
        #: Power estimates (mean square) and the gain of the last segment.
        self.fast = 0.0
        self.slow = 0.0
        self.gain = 1.0
        #: Frames of sound measured so far (the reference is their plain mean at first).
        self.frames = 0

    def update(self, power: float, frames: int) -> float:
        """The gain for a segment of ``frames`` frames whose mean power is ``power``."""
        if power <= 0.0:
            return self.gain
        if self.slow <= 0.0:  # the first sound: both estimates start from it
            self.fast = self.slow = power
            self.frames = frames
            return self.gain
        self.frames += frames
        a_fast = 1.0 - math.exp(-frames / (FAST_S * self.rate))
        # the reference: the mean of all the sound so far until SLOW_S of it, then a
        # moving one (so the first half minute is levelled to the piece, not its opening)
        a_slow = max(1.0 - math.exp(-frames / (SLOW_S * self.rate)), frames / self.frames)
        self.fast += a_fast * (power - self.fast)
        if self.fast < self.slow * 10.0 ** (GATE_DB / 10.0):
            return self.gain  # a pause: hold (the reference is not pulled down by it)
        self.slow += a_slow * (power - self.slow)
        db = 10.0 * math.log10(self.slow / self.fast)
        self.gain = 10.0 ** (max(-RANGE_DB, min(RANGE_DB, db)) / 20.0)
        return self.gain
