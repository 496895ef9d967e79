"""Harmony: modes in just intonation on the pad's root, chords that never beat, voice leading.

The composer plays on the tuning the pad and the carrier share (``device/sound/tuning.py``):
every note is a 5-limit ratio of the pad preset's root (:data:`JUST`), and the synthesiser
is retuned key by key to those ratios (``device/music/composer/synth.py``). In 5-limit just
intonation some triads of a mode are not pure (ii of the major mode: 9/8-4/3-5/3, whose
fifth is a comma flat: its partials beat about 5 Hz at C3), so a mode keeps only the triads
whose harmonic partials pass the pad's own test (:func:`device.sound.tuning.conflicts`), and
a voicing is taken only if its partials also leave the carrier's partials alone
(:func:`device.sound.tuning.clashes_with_tones`). Among the voicings that pass, the one that
moves the voices least from the last chord wins (smooth voice leading: the sum of the
semitone moves, common tones held).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

from device.sound.tuning import clashes_with_tones, conflicts

#: Just ratio of each semitone above the tonic (5-limit; the b7 is 9/5, the tritone 45/32).
JUST = (1.0, 16 / 15, 9 / 8, 6 / 5, 5 / 4, 4 / 3, 45 / 32, 3 / 2, 8 / 5, 5 / 3, 9 / 5, 15 / 8)

#: Modes as semitones above the tonic (seven degrees each).
MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
}
#: Degrees a melody may use in each mode (a pentatonic style uses five of the seven).
PENTATONIC = (0, 1, 2, 4, 5)
#: Harmonics checked for beating, with amplitudes 1/n (a plucked or bowed tone's partials).
HARMONICS = 3
#: Texture notes per chord, and how strongly a voicing is drawn to its register's centre
#: (per semitone of the mean's distance, against one semitone of voice movement).
TEXTURE_NOTES = 3
CENTRE_PULL = 0.75


def key_hz(tonic_key: int, tonic_hz: float, key: int) -> float:
    """Frequency (Hz) of MIDI ``key`` in the just tuning on ``tonic_key`` = ``tonic_hz``."""
    octave, pc = divmod(key - tonic_key, 12)
    return tonic_hz * JUST[pc] * 2.0**octave


def tonic_key_of(tonic_hz: float) -> int:
    """The MIDI key nearest ``tonic_hz`` (equal temperament, A4 = 440 Hz)."""
    return round(69 + 12 * math.log2(tonic_hz / 440.0))


def partials(freqs: tuple[float, ...]) -> list[tuple[float, float]]:
    """Strong partials ``(Hz, amplitude)`` of harmonic tones at ``freqs``."""
    return [(f * n, 1.0 / n) for f in freqs for n in range(1, HARMONICS + 1)]


@dataclass(frozen=True, slots=True)
class Chord:
    """A triad on ``degree`` (0 = tonic) of a mode, as semitones above the tonic."""

    degree: int
    semis: tuple[int, int, int]


@lru_cache(maxsize=16)
def pure_chords(mode: str) -> dict[int, Chord]:
    """The triads of ``mode`` whose close position at the tonic octave does not beat."""
    steps = MODES[mode]
    out: dict[int, Chord] = {}
    for d in range(7):
        semis = tuple(steps[(d + k) % 7] + 12 * ((d + k) // 7) for k in (0, 2, 4))
        freqs = tuple(130.81 * 2.0 ** (s // 12) * JUST[s % 12] for s in semis)
        quality = (semis[1] - semis[0], semis[2] - semis[1])
        if quality in ((4, 3), (3, 4)) and not conflicts(partials(freqs)):
            out[d] = Chord(d, semis)  # type: ignore[arg-type]
    return out


def _voicings(
    chord: Chord, tonic_key: int, register: tuple[int, int]
) -> list[tuple[int, ...]]:
    """Every TEXTURE_NOTES-note voicing (MIDI keys, ascending) of ``chord`` in ``register``."""
    lo, hi = register
    pcs = sorted({s % 12 for s in chord.semis})
    keys = [k for k in range(lo, hi + 1) if (k - tonic_key) % 12 in pcs]
    out = []
    for combo in itertools.combinations(keys, TEXTURE_NOTES):
        if {(k - tonic_key) % 12 for k in combo} == set(pcs) and combo[-1] - combo[0] <= 19:
            out.append(combo)
    return out


class Voicer:
    """Voices chords on the tuning of ``tonic_hz`` with the smallest moves that never beat."""

    def __init__(self, tonic_key: int, tonic_hz: float) -> None:
        self.tonic_key = tonic_key
        self.tonic_hz = tonic_hz
        self.last: tuple[int, ...] | None = None

    def hz(self, key: int) -> float:
        """Frequency of MIDI ``key`` on this tuning."""
        return key_hz(self.tonic_key, self.tonic_hz, key)

    def clean(self, keys: tuple[int, ...], carrier_hz: float | None) -> bool:
        """True when the notes ``keys`` beat neither each other nor the carrier's partials."""
        ps = partials(tuple(self.hz(k) for k in keys))
        if conflicts(ps):
            return False
        return carrier_hz is None or not clashes_with_tones(carrier_hz, ps)

    def voice(
        self, chord: Chord, register: tuple[int, int], bass_register: tuple[int, int],
        carrier_hz: float | None,
    ) -> tuple[int | None, tuple[int, ...]]:
        """The bass and the voicing of ``chord`` that move least from the last chord and
        beat neither each other nor the carrier (fewer notes where nothing else is clean:
        the root and third, the bass an octave up, no bass, at worst silence)."""
        centre = 0.5 * (register[0] + register[1])

        def cost(v: tuple[int, ...]) -> float:
            # small moves first; a pull to the register's centre lets the chords follow a
            # register that moves (lower towards sleep) instead of staying where they were
            pull = CENTRE_PULL * abs(sum(v) / max(len(v), 1) - centre)
            if self.last is None or len(v) != len(self.last):
                return 100.0 * (TEXTURE_NOTES - len(v)) + pull
            return sum(abs(a - b) for a, b in zip(v, self.last, strict=True)) + pull

        low = self.bass(chord, bass_register)
        options = _voicings(chord, self.tonic_key, register)
        options += [v[:2] for v in options] + [()]
        for bass in (low, low + 12, None):
            below = () if bass is None else (bass,)
            for v in sorted(set(options), key=lambda v: (cost(v), v)):
                if v + below and self.clean(below + v, carrier_hz):
                    if len(v) == TEXTURE_NOTES:
                        self.last = v
                    return bass, v
        return None, ()

    def bass(self, chord: Chord, register: tuple[int, int]) -> int:
        """The chord's root in the bass register (the lowest such key)."""
        root = (self.tonic_key + chord.semis[0]) % 12
        return next(k for k in range(register[0], register[1] + 12) if k % 12 == root)


#: Chord functions by degree: tonic, subdominant and dominant areas (a degree missing from
#: a mode's pure chords is skipped).
TONIC = (0, 5, 2)
SUBDOMINANT = (3, 1, 5)
DOMINANT = (4, 6, 2)


def cadence_degree(mode: str, kind: str) -> int:
    """The last chord of a phrase: ``half`` ends on the dominant (or the subdominant where
    the mode has no pure dominant), ``plagal`` on the subdominant, ``full`` on the tonic."""
    chords = pure_chords(mode)
    if kind == "full":
        return 0
    for d in (3, 4) if kind == "plagal" else (4, 3, 6):
        if d in chords:
            return d
    return 0


def approach_degree(mode: str, target: int) -> int:
    """The chord before a cadence on ``target``: a dominant before the tonic (plagal where
    there is none), a subdominant before a half cadence."""
    chords = pure_chords(mode)
    options = (4, 3) if target == 0 else (3, 5, 1)
    for d in options:
        if d in chords and d != target:
            return d
    return 0
