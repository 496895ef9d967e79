"""Ambient pad: three chord notes, each with an upper partial and a chorus twin.

The chords, their voicings and the carrier they leave room for come from one tuning
(``device/sound/tuning.py``): no two strong partials beat 0.5-20 Hz apart, and each note's
twin (a quiet sine less than 0.5 Hz above it) gives a slow chorus whose envelope dips by at
most 5.4 dB. A note and its twin share one stereo position (so neither channel nor the mono
sum sees a deeper dip); the three notes spread across the image. The upper partial's weight
is the brightness control. ``warmth`` adds a soft sub-bass below 120 Hz under each chord
(``device/sound/voices/pad_sub.py``: its own two sine rows, on the same tuning, never rendered at
warmth 0).

Chords change every ``chord_s`` seconds over ``xfade_s`` seconds on a second, silent set of
oscillators (a *slot*), note by note: a note both chords share carries on coherently (its
phase is copied, the two slots' gains sum to one), a note that moves fades out over the
first half of the crossfade and its successor fades in over the second half, so the
partials of two chords never sound together at strength.

The pad only computes gain matrices; the oscillators live in an :class:`OscillatorBank`
(18 rows: 2 slots x 3 notes x main, upper partial, twin) mixed to stereo by one product.
"""

from __future__ import annotations

import math

import numpy as np

from device.dsp.oscillators import OscillatorBank
from device.dsp.ramps import Glide
from device.sound.swell import BreathSwell
from device.sound.targets import OFF_DB, SoundTargets
from device.sound.tuning import (
    PRESETS,
    TWIN_AMP,
    PadPreset,
    carrier_on_grid,
    twin_offset_hz,
    voicing_for,
)
from device.sound.voices.pad_sub import SubBass, sub_bass_for

__all__ = ["PRESETS", "ROWS", "Pad", "PadPreset", "PadVoice"]

NOTES = 3
#: Oscillator rows per slot: main sines, upper partials, twins (``NOTES`` each).
SLOT_ROWS = 3 * NOTES
ROWS = 2 * SLOT_ROWS
#: Unweighted RMS per channel of the pad at 0 dB (-12 dBFS).
REF_RMS = 0.25
#: Brightness control speed in units per second.
BRIGHTNESS_RATE = 0.2
#: Stereo position of each note of a chord, lowest first (times the preset's width).
PANS = (0.0, -0.8, 0.8)


def slot_frequencies(preset: PadPreset, voicing: tuple[float, ...], out: np.ndarray) -> None:
    """Write the ``SLOT_ROWS`` frequencies (Hz) of one voiced chord into ``out``."""
    for j, r in enumerate(voicing):
        f = preset.root_hz * r
        out[j] = f
        out[NOTES + j] = f * preset.partial
        out[2 * NOTES + j] = f + twin_offset_hz(f)


class Pad:
    """Chord progression, note-by-note crossfades and stereo gain matrices of the pad."""

    def __init__(self, bank: OscillatorBank, sample_rate: int, preset: str = "warm"):
        if preset not in PRESETS:
            raise ValueError(f"pad preset {preset!r} is not one of {', '.join(PRESETS)}")
        self.bank = bank
        self.sample_rate = int(sample_rate)
        self.preset_name = preset
        self.preset = PRESETS[preset]
        self.pending_preset: str | None = None
        self.chord = 0
        self.slot = 0
        #: Crossfade progress from the other slot (0) into ``slot`` (1).
        self.xfade = Glide(1.0, 1.0 / self.preset.xfade_s)
        self.brightness = Glide(0.5, BRIGHTNESS_RATE)
        self.changes = 0
        #: The carrier (Hz, on the tuning's grid) the voicings leave room for, or None.
        self.carrier_hz: float | None = None
        self._until_change = round(self.preset.chord_s * self.sample_rate)
        self._frames = 0
        # each slot keeps the preset it was set up with until it has faded out
        self._slot_preset = [self.preset, self.preset]
        self._pan_l = np.empty((2, SLOT_ROWS))
        self._pan_r = np.empty((2, SLOT_ROWS))
        self._row_amp = np.empty((2, SLOT_ROWS))
        #: Per note of the incoming slot: index of the same note in the outgoing slot, or -1.
        self._common = [-1] * NOTES
        self._old_kept = [False] * NOTES
        # frequencies of every chord of every preset, voiced for the carrier (written on the
        # control side when the carrier moves; a chord change only copies a row)
        self._rows = {n: np.empty((len(p.chords), SLOT_ROWS)) for n, p in PRESETS.items()}
        #: Per preset and chord: the sub-bass (Hz) and the index of the note it doubles, or -1.
        self._subs = {n: [(0.0, -1)] * len(p.chords) for n, p in PRESETS.items()}
        self.sub = SubBass(self.sample_rate, bank.out.shape[1], REF_RMS)
        for n in PRESETS:
            self._voice(n)
        self._freq = np.empty(SLOT_ROWS)
        self.select(preset)

    # --- control side -----------------------------------------------------------------

    def set_carrier(self, carrier_hz: float | None) -> None:
        """Voice the chords to leave room for ``carrier_hz`` from the next chord change."""
        if carrier_hz == self.carrier_hz:
            return
        self.carrier_hz = carrier_hz
        for name in PRESETS:
            self._voice(name)

    def _voice(self, name: str) -> np.ndarray:
        """Write the voiced frequencies of every chord of ``name`` into its table (in place)."""
        rows = self._rows[name]
        for i in range(len(rows)):
            voicing = voicing_for(name, i, self.carrier_hz)
            slot_frequencies(PRESETS[name], voicing, rows[i])
            self._subs[name][i] = sub_bass_for(PRESETS[name], voicing, self.carrier_hz)
        return rows

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
        f = self._rows[name][0]
        self.bank.reset_rows(0, SLOT_ROWS, f)
        self.bank.reset_rows(SLOT_ROWS, ROWS, f)
        self._common = list(range(NOTES))
        sub_hz, j = self._subs[name][0]
        phases = None if j < 0 else (self.bank.phase[j], self.bank.phase[SLOT_ROWS + j])
        self.sub.select(sub_hz, phases)

    def set_preset(self, name: str) -> None:
        """Ask for a preset; its first chord crossfades in as soon as no crossfade is running."""
        if name not in PRESETS:
            raise ValueError(f"pad preset {name!r} is not one of {', '.join(PRESETS)}")
        self.pending_preset = None if name == self.preset_name else name

    # --- audio side -------------------------------------------------------------------

    def _set_slot(self, slot: int) -> None:
        self._slot_preset[slot] = p = self.preset
        for j in range(NOTES):
            theta = (PANS[j] * p.width + 1.0) * (math.pi / 4.0)
            for k in (j, NOTES + j, 2 * NOTES + j):
                self._pan_l[slot, k] = math.cos(theta)
                self._pan_r[slot, k] = math.sin(theta)

    def _change_chord(self) -> None:
        if self.pending_preset is not None:
            self.preset_name = self.pending_preset
            self.preset = PRESETS[self.pending_preset]
            self.pending_preset = None
            self.chord = 0
            self.xfade.rate = 1.0 / self.preset.xfade_s
        else:
            self.chord = (self.chord + 1) % len(self.preset.chords)
        old = self.slot
        self.slot = new = 1 - old
        self._set_slot(new)
        lo, olo = new * SLOT_ROWS, old * SLOT_ROWS
        f = self._freq
        np.copyto(f, self._rows[self.preset_name][self.chord])
        self.bank.reset_rows(lo, lo + SLOT_ROWS, f)
        bank = self.bank
        for j in range(NOTES):
            self._common[j] = -1
            self._old_kept[j] = False
        for j in range(NOTES):
            for i in range(NOTES):
                if not self._old_kept[i] and abs(bank.freq[olo + i] - f[j]) < 1e-6:
                    # the same note in both chords: carry its phase, it stays coherent
                    self._common[j] = i
                    self._old_kept[i] = True
                    for k in (0, NOTES, 2 * NOTES):
                        bank.phase[lo + k + j] = bank.phase[olo + k + i]
                    break
        sub_hz, j = self._subs[self.preset_name][self.chord]
        if j < 0:
            self.sub.change(new, sub_hz, None, False)
        else:
            self.sub.change(new, sub_hz, float(bank.phase[lo + j]), self._common[j] >= 0)
        self.xfade.value = self.xfade.end = 0.0
        self._until_change = round(self.preset.chord_s * self.sample_rate)
        self.changes += 1

    def _weights(self, slot: int, brightness: float, row_amp: np.ndarray) -> float:
        """Fill the per-row amplitudes of ``slot`` for ``brightness``; return the normaliser."""
        p = self._slot_preset[slot]
        upper = p.dark + (p.bright - p.dark) * min(1.0, max(0.0, brightness))
        row_amp[:NOTES] = 1.0
        row_amp[NOTES : 2 * NOTES] = upper
        row_amp[2 * NOTES :] = TWIN_AMP
        # RMS per channel of 3 notes' sines (each panned, average pan power 1/2)
        power = 0.25 * NOTES * (1.0 + upper * upper + TWIN_AMP * TWIN_AMP)
        return REF_RMS / math.sqrt(power)

    def _note_gain(self, j: int, x: float, incoming: bool) -> float:
        """Crossfade gain of note ``j`` at progress ``x``: coherent or one after the other."""
        if incoming:
            if self._common[j] >= 0:
                return x
            return math.sin(0.5 * math.pi * max(0.0, 2.0 * x - 1.0))
        if self._old_kept[j]:
            return 1.0 - x
        return math.cos(0.5 * math.pi * min(1.0, 2.0 * x))

    def plan(
        self, gains: np.ndarray, frames: int, amp0: float, amp1: float, bright_offset: tuple
    ) -> tuple[int, int]:
        """Fill ``gains`` (4, ROWS): rows L/R at the segment start then L/R at its end.

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
        w0, w1 = self.sub.warmth.value, self.sub.warmth.plan(seconds)
        if amp0 == 0.0 and amp1 == 0.0:
            self.sub.lo = self.sub.hi = 0
            return 0, 0
        gains.fill(0.0)
        cur_slot, old_slot = self.slot, 1 - self.slot
        ends = ((x0, amp0, b0 + bright_offset[0]), (x1, amp1, b1 + bright_offset[1]))
        for i, (x, amp, b) in enumerate(ends):
            for slot, incoming in ((cur_slot, True), (old_slot, False)):
                if not incoming and x >= 1.0:
                    continue
                ra = self._row_amp[slot]
                w = amp * self._weights(slot, b, ra)
                base = slot * SLOT_ROWS
                for j in range(NOTES):
                    g = w * self._note_gain(j, x, incoming)
                    for k in (j, NOTES + j, 2 * NOTES + j):
                        a = ra[k] * g
                        gains[2 * i, base + k] = a * self._pan_l[slot, k]
                        gains[2 * i + 1, base + k] = a * self._pan_r[slot, k]
        self.sub.plan(cur_slot, ((x0, amp0), (x1, amp1)), w0, w1)
        if x0 >= 1.0 and x1 >= 1.0:
            return cur_slot * SLOT_ROWS, (cur_slot + 1) * SLOT_ROWS
        return 0, ROWS

    def commit(self, played: int) -> None:
        """Advance the progression by ``played`` frames of the last segment."""
        frac = played / self._frames if self._frames else 1.0
        self.xfade.commit(frac)
        self.brightness.commit(frac)
        self.sub.warmth.commit(frac)
        self._until_change -= played

    @property
    def sub_hz(self) -> float:
        """The sub-bass of the chord playing (Hz; 0.0 when it has none), heard at warmth > 0."""
        return self.sub.hz(self.slot)


class PadVoice:
    """The ambient pad as a :class:`~device.sound.voice.Voice` (a bed voice).

    ``swell`` gives the brightness offset of the breath swell for the segment being
    rendered (the engine plans the swell before the voices render).
    """

    name = "pad"
    bed = True

    def __init__(self, swell: BreathSwell, seed: int = 0) -> None:
        self.swell = swell
        self.seed = int(seed)
        self.bank: OscillatorBank | None = None
        self.pad: Pad | None = None
        self._gp = np.zeros((4, ROWS), np.float32)
        self._acc = np.zeros((4, 0), np.float32)
        self._ramp = np.zeros(0, np.float32)

    def prepare(self, sample_rate: int, segment_frames: int) -> None:
        """Allocate the 18-row oscillator bank and the mixing buffers."""
        s = segment_frames
        self.bank = OscillatorBank(ROWS, s, sample_rate)
        self.pad = Pad(self.bank, sample_rate)
        self._acc = np.zeros((4, s), np.float32)
        self._ramp = (np.arange(s, dtype=np.float64) / s).astype(np.float32)

    def _ready(self) -> Pad:
        assert self.pad is not None, "PadVoice.prepare() was not called"
        return self.pad

    def set_targets(self, targets: SoundTargets) -> None:
        """Ask for the preset (crossfaded in at the next chord), brightness, warmth (the
        sub-bass level) and carrier room."""
        pad = self._ready()
        pad.set_preset(targets.pad_preset)
        pad.brightness.target = targets.pad_brightness
        pad.sub.warmth.target = targets.warmth
        tones_on = targets.tones_db > OFF_DB
        pad.set_carrier(
            carrier_on_grid(targets.carrier_hz, targets.pad_preset) if tones_on else None
        )

    def jump(self) -> None:
        """Jump to the asked preset, brightness and warmth at once (only while nothing sounds)."""
        pad = self._ready()
        pad.brightness.value = pad.brightness.end = pad.brightness.target
        pad.sub.warmth.value = pad.sub.warmth.end = pad.sub.warmth.target
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
            pad.sub.bank.skip(frames)
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
        pad.sub.render(out, frames, self._ramp, self._acc)  # after the pad: acc is free
        self._commit(frames)
        return True

    def skip(self, frames: int) -> None:
        """Advance the chord progression and the phases by ``frames`` frames."""
        pad = self._ready()
        assert self.bank is not None
        pad.plan(self._gp, frames, 0.0, 0.0, (0.0, 0.0))
        self.bank.skip(frames)
        pad.sub.bank.skip(frames)
        self._commit(frames)

    def _commit(self, frames: int) -> None:
        assert self.bank is not None and self.pad is not None
        self.bank.commit(frames)
        self.pad.sub.bank.commit(frames)
        self.pad.commit(frames)
