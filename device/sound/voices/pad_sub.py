"""The pad's sub-bass: a soft sine below 120 Hz on the pad's root, as loud as ``warmth`` asks.

Warmth (``SoundTargets.warmth``, 0-1) adds one centred sine under each chord of the pad
(the music's half of warmth is the low shelf in ``device/music/feed.py``). Its level is
``warmth`` times :data:`SUB_DB` (its RMS per channel against the pad's own at the same
pad level), ramped at :data:`WARMTH_RATE` per second and riding the pad's level, swell and
chord crossfades; at warmth 0 it is not rendered at all, so the pad is exactly what it was.

Its frequency comes from the pad's tuning, chosen per chord and carrier
(:func:`sub_bass_for`) so that it never beats with a strong partial:

1. the root folded into :data:`SUB_RANGE` (the highest octave first), if it lies at least
   :data:`CLEAR_HZ` from every partial of the voiced chord (notes, upper partials, chorus
   twins) and at least that far below the carrier (every tone partial lies at or above the
   carrier);
2. else the chord's lowest note, if it lies in :data:`SUB_RANGE`: the sub *doubles* it, on
   the same frequency and in phase (a louder bass note, not a second line that could beat);
3. else another note of the scale (:data:`OTHER_RATIOS`, folded) that is clear as in 1.

Chord changes treat the sub as a fourth note: it carries on coherently (phase kept, the
slots' gains sum to one) when both chords have it on the same frequency in the same phase,
otherwise the old one fades out over the first half of the crossfade and the new one in
over the second half.
"""

from __future__ import annotations

import math

import numpy as np

from device.dsp.oscillators import OscillatorBank
from device.dsp.ramps import Glide
from device.sound.tuning import BEAT_BAND, PadPreset, twin_offset_hz

#: The sub-bass lies in this band, Hz.
SUB_RANGE = (40.0, 120.0)
#: A clear sub-bass lies at least this far (Hz) from every partial: beats stop at 20 Hz.
CLEAR_HZ = BEAT_BAND[1]
#: Sub-bass RMS per channel at warmth 1, dB against the pad's at the same pad level.
SUB_DB = -10.0
#: Warmth control speed in units per second (0 -> 1 in 4 s).
WARMTH_RATE = 0.25
#: Other notes of the scale a sub-bass may take when neither the root nor the bass will do.
OTHER_RATIOS = (3 / 2, 4 / 3, 5 / 4, 5 / 3, 6 / 5, 8 / 5)
#: Equal gain in both channels (the sub is centred: low frequencies carry no image).
_PAN = math.cos(math.pi / 4.0)
_HALF_PI = 0.5 * math.pi


def _octaves(freq: float) -> list[float]:
    """``freq`` folded into :data:`SUB_RANGE` by octaves, highest first."""
    lo, hi = SUB_RANGE
    return sorted((freq * 2.0**k for k in range(-8, 3) if lo <= freq * 2.0**k <= hi), reverse=True)


def sub_bass_for(
    preset: PadPreset, voicing: tuple[float, ...], carrier_hz: float | None
) -> tuple[float, int]:
    """The sub-bass of one voiced chord: ``(Hz, index of the doubled note or -1)``.

    ``carrier_hz`` is the carrier the chord leaves room for (``None``: no tones).
    ``(0.0, -1)`` when no note of the tuning fits (the sub is then silent for the chord).
    """
    partials = []
    for r in voicing:
        f = preset.root_hz * r
        partials += [f, f * preset.partial, f + twin_offset_hz(f)]

    def clear(s: float) -> bool:
        if carrier_hz is not None and s > carrier_hz - CLEAR_HZ:
            return False
        return all(abs(s - f) >= CLEAR_HZ for f in partials)

    for s in _octaves(preset.root_hz):
        if clear(s):
            return s, -1
    j = min(range(len(voicing)), key=lambda i: voicing[i])
    low = preset.root_hz * voicing[j]
    if SUB_RANGE[0] <= low <= SUB_RANGE[1]:
        return low, j
    for r in OTHER_RATIOS:
        for s in _octaves(preset.root_hz * r):
            if clear(s):
                return s, -1
    return 0.0, -1


class SubBass:
    """Two sine rows (one per chord slot of the pad), their gains and the warmth glide.

    ``ref_rms`` is the pad's RMS per channel at gain 1; the sub's is :data:`SUB_DB` under it
    at warmth 1.
    """

    def __init__(self, sample_rate: int, max_frames: int, ref_rms: float) -> None:
        self.bank = OscillatorBank(2, max_frames, sample_rate)
        #: Sine amplitude at warmth 1 and pad gain 1, before the centre pan.
        self.amp = ref_rms * 10.0 ** (SUB_DB / 20.0) * math.sqrt(2.0) / _PAN
        self.warmth = Glide(0.0, WARMTH_RATE)
        #: The sub carries on coherently through the present chord crossfade.
        self.coherent = True
        #: Per slot: 1 when the slot's chord has a sub-bass, 0 when none fits.
        self._on = [0.0, 0.0]
        #: Gain of each slot's row at the segment's start and end (the pan included).
        self._g = [[0.0, 0.0], [0.0, 0.0]]
        #: Bank rows the present segment renders (``lo == hi``: nothing).
        self.lo = self.hi = 0

    def hz(self, slot: int) -> float:
        """Frequency of slot ``slot``'s sub-bass (Hz; 0.0 when its chord has none)."""
        return float(self.bank.freq[slot]) * self._on[slot]

    def select(self, freq: float, note_phases: tuple[float, float] | None) -> None:
        """Both slots on ``freq`` at once (while the pad is silent).

        ``note_phases`` are the phases of the doubled note in slot 0 and 1, or ``None``.
        """
        self.bank.reset_rows(0, 2, freq)
        if note_phases is not None:
            self.bank.phase[0], self.bank.phase[1] = note_phases
        self._on = [1.0 if freq > 0.0 else 0.0] * 2
        self.coherent = True

    def change(self, slot: int, freq: float, note_phase: float | None, note_kept: bool) -> None:
        """Slot ``slot`` takes the next chord's sub-bass ``freq`` (the other fades out).

        ``note_phase`` is the doubled note's phase (``None``: the sub doubles no note);
        ``note_kept`` says that note carries on coherently from the outgoing chord.
        """
        old = 1 - slot
        same = freq > 0.0 and abs(float(self.bank.freq[old]) - freq) < 1e-6
        self.coherent = same and (note_phase is None or note_kept)
        self.bank.reset_rows(slot, slot + 1, freq)
        if note_phase is not None:
            self.bank.phase[slot] = note_phase
        elif self.coherent:
            self.bank.phase[slot] = self.bank.phase[old]
        self._on[slot] = 1.0 if freq > 0.0 else 0.0

    def _gain(self, x: float, incoming: bool) -> float:
        if incoming:
            return x if self.coherent else math.sin(_HALF_PI * max(0.0, 2.0 * x - 1.0))
        return 1.0 - x if self.coherent else math.cos(_HALF_PI * min(1.0, 2.0 * x))

    def plan(self, slot: int, ends: tuple[tuple[float, float], ...], w0: float, w1: float) -> None:
        """Gains for the segment: ``ends`` the (crossfade progress, pad amplitude) at its
        start and end, ``w0``/``w1`` the warmth there; sets :attr:`lo`/:attr:`hi`."""
        self.lo = self.hi = 0
        if w0 <= 0.0 and w1 <= 0.0:
            return
        g = self._g
        for i, ((x, amp), w) in enumerate(zip(ends, (w0, w1), strict=True)):
            for s, incoming in ((slot, True), (1 - slot, False)):
                a = 0.0
                if incoming or x < 1.0:
                    a = self.amp * amp * w * self._on[s] * self._gain(x, incoming) * _PAN
                g[i][s] = a
        both = ends[0][0] < 1.0 or ends[1][0] < 1.0
        self.lo, self.hi = (0, 2) if both else (slot, slot + 1)

    def render(self, out: np.ndarray, frames: int, ramp: np.ndarray, acc: np.ndarray) -> bool:
        """Add the planned sub-bass into ``out[:, :frames]``; ``ramp`` runs 0 -> 1 over the
        segment, ``acc`` is a scratch buffer of at least 2 rows (the pad's).

        The sub is centred, so one mono sum (each row times its linear gain ramp) is added
        to both channels: half the work of a stereo gain matrix.
        """
        lo, hi = self.lo, self.hi
        if hi <= lo:
            self.bank.skip(frames)
            return False
        rows = self.bank.render(frames, lo, hi, glide=False)
        gain, mono = acc[0, :frames], acc[1, :frames]
        g0, g1 = self._g
        for k in range(hi - lo):
            s = lo + k
            np.multiply(ramp[:frames], g1[s] - g0[s], out=gain)
            gain += g0[s]
            if k == 0:
                np.multiply(rows[0], gain, out=mono)
            else:
                gain *= rows[k]
                mono += gain
        out[0, :frames] += mono
        out[1, :frames] += mono
        return True
