"""One tuning for the pad and the carrier: chords, voicings and carriers that never beat.

Two steady partials ``d`` Hz apart are heard as one tone beating at ``d`` Hz when
0.5 <= d <= 20 (slower is a slow phase drift, faster is roughness or two tones). The box
asks for one beat only, the entrainment's; any other beat between strong partials competes
with it. So:

* every pad preset is a just-intonation scale on its root; its chords are voiced so that
  no two strong partials of a chord (fundamentals and upper partials) lie 0.5-20 Hz apart
  (:func:`conflicts`);
* the carrier is a note of the same tuning (a 5-limit ratio of the root,
  :func:`carrier_on_grid`), chosen among the notes for which every chord of the preset has
  a voicing whose partials are either exactly on a tone partial (carrier x 1, 1.5, 2, 3) or
  at least 20 Hz from it; the pad picks that voicing (:func:`voicing_for`);
* each note's chorus twin is a quiet sine (:data:`TWIN_AMP`, so the pair's envelope dips
  at most ``20 log10((1 + a) / (1 - a))`` = 5.4 dB) less than 0.5 Hz above it: chorus, not
  tremolo, and never a beat against a carrier on the same note.

Chord changes crossfade note by note (``device/sound/voices/pad.py``): a note both chords share
stays coherent, a note that moves fades out before its successor fades in, so partials of
two chords never sound together at strength.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from device.sound.targets import CARRIER_RANGE, PAD_PRESETS

#: Beats between two partials this far apart (Hz) are heard as beats.
BEAT_BAND = (0.5, 20.0)
#: Two partials count as strong together when the weaker is above this share of the other
#: (a weaker pair's envelope moves less than 6 dB).
STRONG_RATIO = 1.0 / 3.0
#: The chorus twin: amplitude relative to its note, offset above it in Hz.
TWIN_AMP = 0.3
TWIN_HZ = (0.2, 0.45)
#: Tone partials: ratios to the carrier (the tone voice's harmonics).
TONE_RATIOS = (1.0, 1.5, 2.0, 3.0)
#: Upper partial weight used for the checks (the brightest any preset gets).
CHECK_UPPER = 0.8
#: Carrier candidates: root x 3**b x 5**c x 2**k for these exponents.
_EXP_3 = range(-2, 3)
_EXP_5 = range(-1, 2)


@dataclass(frozen=True)
class PadPreset:
    """One pad sound: register, chords, timbre and movement."""

    #: Root of the scale in Hz.
    root_hz: float
    #: Chords as three frequency ratios to the root (just intonation), as voiced by default.
    chords: tuple[tuple[float, float, float], ...]
    #: Lowest and highest note the voicings may use, Hz.
    register: tuple[float, float]
    #: Harmonic number of each note's upper partial.
    partial: int
    #: Upper partial weight at brightness 0 and 1.
    dark: float
    bright: float
    #: Stereo width 0..1.
    width: float
    #: Seconds each chord lasts and seconds of crossfade into the next.
    chord_s: float
    xfade_s: float


PRESETS: dict[str, PadPreset] = {
    # C major: I, vi, IV, V (V in place of the old Cadd9, whose 9th beat 16 Hz on the root)
    "warm": PadPreset(
        130.81,
        ((1.0, 5 / 4, 3 / 2), (5 / 6, 1.0, 5 / 4), (1.0, 4 / 3, 5 / 3), (3 / 4, 15 / 16, 9 / 8)),
        (70.0, 500.0),
        2,
        0.15,
        0.6,
        0.8,
        30.0,
        8.0,
    ),
    "glass": PadPreset(
        261.63,
        ((1.0, 9 / 8, 3 / 2), (5 / 6, 1.0, 3 / 2), (1.0, 5 / 4, 5 / 3), (9 / 8, 3 / 2, 5 / 3)),
        (150.0, 1000.0),
        3,
        0.05,
        0.35,
        1.0,
        24.0,
        6.0,
    ),
    # D minor in open voicings (close triads at 73 Hz are 10-15 Hz apart: they beat)
    "deep": PadPreset(
        73.42,
        ((1.0, 3 / 2, 12 / 5), (4 / 5, 6 / 5, 2.0), (1.0, 8 / 5, 8 / 3), (3 / 4, 9 / 8, 9 / 5)),
        (45.0, 330.0),
        2,
        0.3,
        0.7,
        0.6,
        40.0,
        12.0,
    ),
    "choir": PadPreset(
        196.0,
        ((1.0, 5 / 4, 3 / 2), (1.0, 4 / 3, 5 / 3), (5 / 6, 1.0, 5 / 4), (9 / 8, 3 / 2, 2.0)),
        (110.0, 700.0),
        2,
        0.35,
        0.8,
        1.0,
        28.0,
        10.0,
    ),
}
if tuple(PRESETS) != PAD_PRESETS:
    raise ImportError("pad presets and device.sound.targets.PAD_PRESETS differ")

Voicing = tuple[float, float, float]


def twin_offset_hz(freq: float) -> float:
    """The chorus twin's offset above a note of ``freq`` Hz (the same for the same note)."""
    u = (freq * 0.6180339887498949) % 1.0
    return TWIN_HZ[0] + (TWIN_HZ[1] - TWIN_HZ[0]) * u


def pad_partials(preset: PadPreset, voicing: Voicing, upper: float) -> list[tuple[float, float]]:
    """The strong partials ``(Hz, amplitude)`` of one voiced chord (twins excluded)."""
    out = []
    for r in voicing:
        f = preset.root_hz * r
        out.append((f, 1.0))
        out.append((f * preset.partial, upper))
    return out


def conflicts(partials: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Pairs of strong partials (Hz, Hz) that beat 0.5-20 Hz apart."""
    lo, hi = BEAT_BAND
    bad = []
    for (f1, a1), (f2, a2) in itertools.combinations(partials, 2):
        if lo <= abs(f1 - f2) <= hi and min(a1, a2) > STRONG_RATIO * max(a1, a2):
            bad.append((f1, f2))
    return bad


def clashes_with_tones(carrier_hz: float, partials: list[tuple[float, float]]) -> bool:
    """True if a tone partial of ``carrier_hz`` and a pad partial beat 0.5-20 Hz apart."""
    lo, hi = BEAT_BAND
    return any(lo <= abs(t * carrier_hz - f) <= hi for t in TONE_RATIOS for f, _ in partials)


@lru_cache(maxsize=64)
def voicings(name: str, chord: int) -> tuple[Voicing, ...]:
    """Every voicing of chord ``chord`` of preset ``name`` inside its register without
    conflicts of its own, the default voicing first, then by distance from it."""
    p = PRESETS[name]
    base = p.chords[chord % len(p.chords)]
    lo, hi = p.register
    options = []
    for r in base:
        opts = [r * 2.0**k for k in range(-4, 5) if lo <= p.root_hz * r * 2.0**k <= hi]
        options.append(opts)
    found = set()
    for combo in itertools.product(*options):
        v = tuple(sorted(combo))
        if len(set(v)) == 3 and not conflicts(pad_partials(p, v, CHECK_UPPER)):  # type: ignore[arg-type]
            found.add(v)

    def distance(v: tuple[float, ...]) -> float:
        return sum(abs(math.log2(a / b)) for a, b in zip(v, sorted(base), strict=True))

    return tuple(sorted(found, key=lambda v: (distance(v), v)))  # type: ignore[arg-type]


def voicing_for(name: str, chord: int, carrier_hz: float | None) -> Voicing:
    """The voicing of a chord to play with ``carrier_hz`` (``None``: no carrier to avoid)."""
    options = voicings(name, chord)
    p = PRESETS[name]
    if carrier_hz is not None:
        for v in options:
            if not clashes_with_tones(carrier_hz, pad_partials(p, v, CHECK_UPPER)):
                return v
    base = p.chords[chord % len(p.chords)]
    return options[0] if options else base


@lru_cache(maxsize=8)
def carrier_grid(name: str) -> tuple[float, ...]:
    """Carriers of preset ``name``'s tuning (Hz, ascending) that every chord can avoid."""
    p = PRESETS[name]
    cands = set()
    for b in _EXP_3:
        for c in _EXP_5:
            ratio = Fraction(3) ** b * Fraction(5) ** c
            for k in range(-6, 7):
                f = p.root_hz * float(ratio * Fraction(2) ** k)
                if CARRIER_RANGE[0] <= f <= CARRIER_RANGE[1]:
                    cands.add(round(f, 6))
    good = []
    for f in sorted(cands):
        ok = True
        for chord in range(len(p.chords)):
            if not any(
                not clashes_with_tones(f, pad_partials(p, v, CHECK_UPPER))
                for v in voicings(name, chord)
            ):
                ok = False
                break
        if ok:
            good.append(f)
    return tuple(good)


def carrier_on_grid(carrier_hz: float, name: str) -> float:
    """The carrier of preset ``name``'s grid nearest ``carrier_hz`` (in pitch).

    Cheap (a bisection): the closed loop calls it with every target it sends.
    """
    grid = carrier_grid(name)
    if not grid:
        return carrier_hz
    i = bisect.bisect_left(grid, carrier_hz)
    if i == 0:
        return grid[0]
    if i == len(grid):
        return grid[-1]
    lo, hi = grid[i - 1], grid[i]
    # nearer in pitch: compare ratios, not differences
    return lo if carrier_hz * carrier_hz <= lo * hi else hi
