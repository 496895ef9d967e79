"""The composer's styles: instruments (General MIDI programs), mode, registers, texture.

A style is what the personalisation chooses for a listener (``composer_style``, one of
:data:`~device.sound.targets.COMPOSER_STYLES`, learnt by the same bandit as the pad presets).
Registers are MIDI keys at full energy; the composer lowers them by up to
:data:`SLEEP_DROP` semitones as the energy falls towards sleep (darker, lower).
"""

from __future__ import annotations

from dataclasses import dataclass

from device.sound.targets import COMPOSER_STYLES

#: Semitones every register drops between energy 1 and energy 0.
SLEEP_DROP = 7
#: The roles of a style, in channel order.
ROLES = ("melody", "texture", "bass")


@dataclass(frozen=True, slots=True)
class Style:
    """One composer style."""

    #: General MIDI program (0-127) of the melody, the texture and the bass.
    programs: tuple[int, int, int]
    #: Mode name (``device.music.composer.harmony.MODES``) and whether the melody keeps to
    #: the pentatonic degrees.
    mode: str
    pentatonic: bool
    #: Registers (lowest, highest MIDI key) of melody, texture and bass at energy 1.
    melody: tuple[int, int]
    texture: tuple[int, int]
    bass: tuple[int, int]
    #: ``sustain`` (held chords) or ``arpeggio`` (broken chords).
    texture_kind: str
    #: Relative levels (MIDI channel volume 0-127) of melody, texture, bass.
    volumes: tuple[int, int, int]
    #: Reverb send (MIDI CC 91, 0-127).
    reverb: int


STYLES: dict[str, Style] = {
    # grand piano over strings, piano bass: major (GM 48, not 49 "slow strings": the slow
    # attack peaked 100-200 ms after its beat, heard as notes off the beat grid)
    "piano": Style((0, 48, 0), "major", False, (60, 84), (53, 72), (36, 50), "sustain",
                   (100, 70, 80), 70),
    # harp over a choir, pentatonic: the generative.fm / Eno kind of calm
    "harp": Style((46, 52, 46), "major", True, (60, 86), (55, 74), (36, 50), "sustain",
                  (105, 62, 85), 80),
    # flute over strings (GM 48, as the piano's), cello bass: Dorian
    "strings": Style((73, 48, 42), "dorian", False, (62, 84), (53, 72), (36, 50), "sustain",
                     (82, 75, 78), 72),
    # nylon guitar broken chords, warm pad, acoustic bass: Mixolydian
    "guitar": Style((24, 89, 32), "mixolydian", False, (60, 81), (52, 71), (36, 50),
                    "arpeggio", (100, 60, 85), 65),
}
if set(STYLES) != set(COMPOSER_STYLES) - {"pad"}:
    raise ImportError("composer styles and device.sound.targets.COMPOSER_STYLES differ")


def channel(style: str, role: int) -> int:
    """The synthesiser channel of ``role`` (0 melody, 1 texture, 2 bass) of ``style``.

    Every style has its own channels (preset selected once, at load): a style change never
    loads samples on the audio path. Channel 9 (GM drums) is never used.
    """
    base = sorted(STYLES).index(style) * len(ROLES) + role
    return base if base < 9 else base + 1
