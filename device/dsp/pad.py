"""Ambient pad: six detuned voices on a slowly moving chord progression.

A chord is three notes of a just-intonation (consonant) scale; each note is played by two
voices detuned a few cents apart and spread to opposite sides of the stereo image (the
slow beating between them is the pad's movement). Every voice has a fundamental and one
upper partial whose weight is the warmth/brightness control. Chords change every
``chord_s`` seconds, crossfaded (equal power) over ``xfade_s`` seconds: the incoming chord
is set up on a second, silent, set of oscillators, so nothing ever jumps.

The pad only computes gain matrices; the oscillators live in an :class:`OscillatorBank`
(24 rows: 2 chord slots x 6 voices x 2 partials) and are mixed to stereo by one matrix
product in the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from device.dsp.oscillators import OscillatorBank
from device.dsp.ramps import Glide
from device.dsp.swell import BreathSwell
from device.dsp.targets import PAD_PRESETS, SoundTargets

VOICES = 6
#: Oscillator rows per chord slot (fundamental + upper partial per voice).
SLOT_ROWS = 2 * VOICES
ROWS = 2 * SLOT_ROWS
#: Unweighted RMS per channel of the pad at 0 dB (-12 dBFS).
REF_RMS = 0.25
#: Brightness control speed in units per second.
BRIGHTNESS_RATE = 0.2
#: Stereo position of each voice (times the preset's width): detuned pairs go opposite ways.
PANS = (-1.0, 1.0, 0.35, -0.35, -0.7, 0.7)


@dataclass(frozen=True)
class PadPreset:
    """One pad sound: register, chords, timbre and movement."""

    #: Root of the scale in Hz.
    root_hz: float
    #: Chords as three frequency ratios to the root (just intonation).
    chords: tuple[tuple[float, float, float], ...]
    #: Harmonic number of each voice's upper partial.
    partial: int
    #: Upper partial weight at brightness 0 and 1.
    dark: float
    bright: float
    #: Detune between the two voices of a note, in cents.
    detune_cents: float
    #: Stereo width 0..1.
    width: float
    #: Seconds each chord lasts and seconds of crossfade into the next.
    chord_s: float
    xfade_s: float


PRESETS: dict[str, PadPreset] = {
    "warm": PadPreset(
        130.81,
        ((1.0, 5 / 4, 3 / 2), (5 / 6, 1.0, 5 / 4), (1.0, 4 / 3, 5 / 3), (1.0, 9 / 8, 3 / 2)),
        2,
        0.15,
        0.6,
        6.0,
        0.8,
        30.0,
        8.0,
    ),
    "glass": PadPreset(
        261.63,
        ((1.0, 9 / 8, 3 / 2), (5 / 6, 1.0, 3 / 2), (1.0, 5 / 4, 5 / 3), (9 / 8, 3 / 2, 5 / 3)),
        3,
        0.05,
        0.35,
        3.0,
        1.0,
        24.0,
        6.0,
    ),
    "deep": PadPreset(
        73.42,
        ((1.0, 6 / 5, 3 / 2), (4 / 5, 1.0, 6 / 5), (1.0, 4 / 3, 8 / 5), (2 / 3, 1.0, 6 / 5)),
        2,
        0.3,
        0.7,
        8.0,
        0.6,
        40.0,
        12.0,
    ),
    "choir": PadPreset(
        196.0,
        ((1.0, 5 / 4, 3 / 2), (1.0, 4 / 3, 5 / 3), (5 / 6, 1.0, 5 / 4), (9 / 8, 3 / 2, 2.0)),
        2,
        0.35,
        0.8,
        10.0,
        1.0,
        28.0,
        10.0,
    ),
}
assert tuple(PRESETS) == PAD_PRESETS


def chord_frequencies(preset: PadPreset, chord: int, jitter: np.ndarray) -> np.ndarray:
    """Frequencies in Hz of one slot's rows: 6 fundamentals, then 6 upper partials."""
    notes = np.repeat(np.array(preset.chords[chord % len(preset.chords)]) * preset.root_hz, 2)
    cents = np.tile([-0.5, 0.5], 3) * preset.detune_cents + jitter
    f = notes * 2.0 ** (cents / 1200.0)
    return np.concatenate([f, f * preset.partial])


class Pad:
    """Chord progression, crossfades and stereo gain matrices of the ambient pad."""

    def __init__(self, bank: OscillatorBank, sample_rate: int, seed: int, preset: str = "warm"):
        if preset not in PRESETS:
            raise ValueError(f"pad preset {preset!r} is not one of {', '.join(PRESETS)}")
        self.bank = bank
        self.sample_rate = int(sample_rate)
        rng = np.random.default_rng([seed, 0x9AD])
        self._jitter = rng.uniform(-1.5, 1.5, VOICES)
        self.preset_name = preset
        self.preset = PRESETS[preset]
        self.pending_preset: str | None = None
        self.chord = 0
        self.slot = 0
        #: Crossfade progress from the other slot (0) into ``slot`` (1).
        self.xfade = Glide(1.0, 1.0 / self.preset.xfade_s)
        self.brightness = Glide(0.5, BRIGHTNESS_RATE)
        self.changes = 0
        self._until_change = round(self.preset.chord_s * self.sample_rate)
        self._frames = 0
        # each chord slot keeps the preset it was set up with until it has faded out
        self._slot_preset = [self.preset, self.preset]
        self._pan_l = np.empty((2, SLOT_ROWS))
        self._pan_r = np.empty((2, SLOT_ROWS))
        self._row_amp = np.empty(SLOT_ROWS)
        self.select(preset)

    def select(self, name: str) -> None:
        """Switch to preset ``name`` at once (only while the pad is silent: at start-up)."""
        if name not in PRESETS:
            raise ValueError(f"pad preset {name!r} is not one of {', '.join(PRESETS)}")
        self.preset_name = name
        self.preset = PRESETS[name]
        self.pending_preset = None
        self.chord = 0
        self.xfade.rate = 1.0 / self.preset.xfade_s
        self.xfade.value = self.xfade.end = 1.0
        self._until_change = round(self.preset.chord_s * self.sample_rate)
        self._set_slot(0)
        self._set_slot(1)
        f = chord_frequencies(self.preset, 0, self._jitter)
        self.bank.reset_rows(0, ROWS, np.concatenate([f, f]))

    def _set_slot(self, slot: int) -> None:
        self._slot_preset[slot] = self.preset
        theta = (np.tile(PANS, 2) * self.preset.width + 1.0) * (math.pi / 4.0)
        self._pan_l[slot] = np.cos(theta)
        self._pan_r[slot] = np.sin(theta)

    def set_preset(self, name: str) -> None:
        """Ask for a preset; its first chord crossfades in as soon as no crossfade is running."""
        if name not in PRESETS:
            raise ValueError(f"pad preset {name!r} is not one of {', '.join(PRESETS)}")
        self.pending_preset = None if name == self.preset_name else name

    def _change_chord(self) -> None:
        if self.pending_preset is not None:
            self.preset_name = self.pending_preset
            self.preset = PRESETS[self.pending_preset]
            self.pending_preset = None
            self.chord = 0
            self.xfade.rate = 1.0 / self.preset.xfade_s
        else:
            self.chord = (self.chord + 1) % len(self.preset.chords)
        self.slot = 1 - self.slot
        self._set_slot(self.slot)
        lo = self.slot * SLOT_ROWS
        self.bank.reset_rows(
            lo, lo + SLOT_ROWS, chord_frequencies(self.preset, self.chord, self._jitter)
        )
        self.xfade.value = self.xfade.end = 0.0
        self._until_change = round(self.preset.chord_s * self.sample_rate)
        self.changes += 1

    def _weights(self, slot: int, brightness: float) -> float:
        """Fill the per-row amplitudes of ``slot`` for ``brightness``; return the normaliser."""
        p = self._slot_preset[slot]
        upper = p.dark + (p.bright - p.dark) * min(1.0, max(0.0, brightness))
        self._row_amp[:VOICES] = 1.0
        self._row_amp[VOICES:] = upper
        # RMS of 6 voices' fundamentals + partials (uncorrelated sines), per channel
        power = 0.25 * VOICES * (1.0 + upper * upper)
        return REF_RMS / math.sqrt(power)

    def plan(
        self, gains: np.ndarray, frames: int, amp0: float, amp1: float, bright_offset: tuple
    ) -> tuple[int, int]:
        """Fill ``gains`` (4, 24): rows L/R at the segment start then L/R at its end.

        ``amp0``/``amp1`` are the layer amplitudes at the start and end; ``bright_offset``
        the swell's brightness offsets. Returns the bank row range that must be rendered.
        """
        self._frames = frames
        if (self.pending_preset is not None or self._until_change <= 0) and self.xfade.value >= 1:
            self._change_chord()
        seconds = frames / self.sample_rate
        self.xfade.target = 1.0
        x0, x1 = self.xfade.value, self.xfade.plan(seconds)
        b0, b1 = self.brightness.value, self.brightness.plan(seconds)
        if amp0 == 0.0 and amp1 == 0.0:
            return 0, 0
        gains.fill(0.0)
        cur_slot, old_slot = self.slot, 1 - self.slot
        cur, old = cur_slot * SLOT_ROWS, old_slot * SLOT_ROWS
        ends = ((x0, amp0, b0 + bright_offset[0]), (x1, amp1, b1 + bright_offset[1]))
        for i, (x, amp, b) in enumerate(ends):
            row_l, row_r = gains[2 * i], gains[2 * i + 1]
            wc = math.sin(0.5 * math.pi * x) * amp * self._weights(cur_slot, b)
            row_l[cur : cur + SLOT_ROWS] = self._row_amp * self._pan_l[cur_slot] * wc
            row_r[cur : cur + SLOT_ROWS] = self._row_amp * self._pan_r[cur_slot] * wc
            if x < 1.0:
                wo = math.cos(0.5 * math.pi * x) * amp * self._weights(old_slot, b)
                row_l[old : old + SLOT_ROWS] = self._row_amp * self._pan_l[old_slot] * wo
                row_r[old : old + SLOT_ROWS] = self._row_amp * self._pan_r[old_slot] * wo
        if x0 >= 1.0 and x1 >= 1.0:
            return cur, cur + SLOT_ROWS
        return 0, ROWS

    def commit(self, played: int) -> None:
        """Advance the progression by ``played`` frames of the last segment."""
        frac = played / self._frames if self._frames else 1.0
        self.xfade.commit(frac)
        self.brightness.commit(frac)
        self._until_change -= played


class PadVoice:
    """The ambient pad as a :class:`~device.dsp.voice.Voice` (a bed voice).

    ``swell`` gives the brightness offset of the breath swell for the segment being
    rendered (the engine plans the swell before the voices render).
    """

    name = "pad"
    bed = True

    def __init__(self, swell: BreathSwell, seed: int) -> None:
        self.swell = swell
        self.seed = int(seed)
        self.bank: OscillatorBank | None = None
        self.pad: Pad | None = None
        self._gp = np.zeros((4, ROWS), np.float32)
        self._acc = np.zeros((4, 0), np.float32)
        self._ramp = np.zeros(0, np.float32)

    def prepare(self, sample_rate: int, segment_frames: int) -> None:
        """Allocate the 24-row oscillator bank and the mixing buffers."""
        s = segment_frames
        self.bank = OscillatorBank(ROWS, s, sample_rate)
        self.pad = Pad(self.bank, sample_rate, self.seed)
        self._acc = np.zeros((4, s), np.float32)
        self._ramp = (np.arange(s, dtype=np.float64) / s).astype(np.float32)

    def _ready(self) -> Pad:
        assert self.pad is not None, "PadVoice.prepare() was not called"
        return self.pad

    def set_targets(self, targets: SoundTargets) -> None:
        """Ask for the preset (crossfaded in at the next chord) and the brightness."""
        pad = self._ready()
        pad.set_preset(targets.pad_preset)
        pad.brightness.target = targets.pad_brightness

    def jump(self) -> None:
        """Jump to the asked preset and brightness at once (only while nothing sounds)."""
        pad = self._ready()
        pad.brightness.value = pad.brightness.end = pad.brightness.target
        if pad.pending_preset is not None:
            pad.select(pad.pending_preset)

    def render(self, out: np.ndarray, frames: int, g0: float, g1: float) -> bool:
        """Add the pad into ``out[:, :frames]`` with gain ``g0`` -> ``g1``."""
        pad = self._ready()
        assert self.bank is not None
        offsets = (self.swell.bright0, self.swell.bright1)
        lo, hi = pad.plan(self._gp, frames, g0, g1, offsets)
        if hi <= lo:
            self.bank.skip(frames)
            self._commit(frames)
            return False
        rows = self.bank.render(frames, lo, hi, glide=False)  # chords never glide
        acc = self._acc[:, :frames]
        np.einsum("ij,jk->ik", self._gp[:, lo:hi], rows, out=acc)  # no BLAS: see tones.py
        d = acc[2:4]
        np.subtract(d, acc[0:2], out=d)
        np.multiply(d, self._ramp[:frames], out=d)
        out[:, :frames] += acc[0:2]
        out[:, :frames] += d
        self._commit(frames)
        return True

    def skip(self, frames: int) -> None:
        """Advance the chord progression and the phases by ``frames`` frames."""
        pad = self._ready()
        assert self.bank is not None
        pad.plan(self._gp, frames, 0.0, 0.0, (0.0, 0.0))
        self.bank.skip(frames)
        self._commit(frames)

    def _commit(self, frames: int) -> None:
        assert self.bank is not None and self.pad is not None
        self.bank.commit(frames)
        self.pad.commit(frames)
