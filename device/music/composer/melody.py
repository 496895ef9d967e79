"""Melody: one phrase per breath, built from the theme's cells along an arc.

A phrase lasts one breath. Its cells (the theme, or a variation of it) follow each other
along an arc: they rise over the inhale to a peak where the exhale begins, then fall to the
cadence note, held, and a rest closes the phrase (the listener breathes in again with the
next one). A cell that moves against the arc is played inverted. Low energy plays the cells
augmented (half as many notes) and drops ornaments: density falls as sleep nears.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from device.music.composer.theme import VARIANTS, Motif, vary

#: Beats of rest at the end of every phrase (the breath between phrases).
TAIL_BEATS = 1.0
#: Shortest cadence note, beats.
CADENCE_BEATS = 1.5


@dataclass(frozen=True, slots=True)
class Note:
    """A melody note: start and length in beats from the phrase start, scale degree (0 =
    tonic, 7 = the octave above, negative below) and its height on the arc (0..1)."""

    beat: float
    beats: float
    degree: int
    height: float


@dataclass(frozen=True, slots=True)
class PhraseShape:
    """The arc of one phrase, in beats and scale degrees."""

    beats: int
    inhale_beats: float
    start: int
    peak: int
    end: int
    energy: float


def arc(shape: PhraseShape, beat: float) -> float:
    """The arc's degree (fractional) at ``beat``: up over the inhale, down over the exhale."""
    top = max(shape.inhale_beats, 1.0)
    if beat <= top:
        return shape.start + (shape.peak - shape.start) * beat / top
    rest = max(shape.beats - TAIL_BEATS - CADENCE_BEATS - top, 1.0)
    u = min(1.0, (beat - top) / rest)
    return shape.peak + (shape.end - shape.peak) * u


def _cells(theme: Motif, rng: random.Random, energy: float, exact_first: bool) -> list[Motif]:
    """Eight cells of the phrase: variations of ``theme`` (no ornaments when calm, slowed
    down when very calm); with ``exact_first`` the first is the theme itself."""
    kinds = [k for k in VARIANTS if energy >= 0.4 or k != "ornament"]
    out = []
    for i in range(8):
        exact = i == 0 and exact_first
        out.append(
            vary(theme, "exact", rng) if exact else _cell(theme, rng.choice(kinds), energy, rng)
        )
    return out


def _cell(theme: Motif, kind: str, energy: float, rng: random.Random) -> Motif:
    """One variation of ``theme``, twice as slow below energy 0.35."""
    cell = vary(theme, kind, rng)
    if energy < 0.35 and kind != "augmented":
        cell = vary(cell, "augmented", rng)
    return cell


def phrase(theme: Motif, shape: PhraseShape, rng: random.Random, exact: bool) -> list[Note]:
    """The melody notes of one phrase (``exact``: the first cell is the theme itself)."""
    body_end = shape.beats - TAIL_BEATS - CADENCE_BEATS
    notes: list[Note] = []
    t = 0.0
    for i, cell in enumerate(_cells(theme, rng, shape.energy, exact)):
        if t >= body_end - 0.5:
            break
        cell, first = _place(cell, shape, t, rng, exact and i == 0)
        t = _add_notes(cell, first, t, body_end, shape, notes)
        if rng.random() < 0.3 * (1.0 - shape.energy):
            t += 1.0  # a rest inside the phrase (more of them when calm)
    t = min(max(t, 0.0), body_end)
    cad = shape.beats - TAIL_BEATS - t
    notes.append(Note(t, cad, shape.end, _height(t, shape)))
    return notes


def _height(beat: float, shape: PhraseShape) -> float:
    """0..1: where ``beat`` is on the breath (1 at the top of the inhale)."""
    top = max(shape.inhale_beats, 1.0)
    if beat <= top:
        return beat / top
    return max(0.0, 1.0 - (beat - top) / max(shape.beats - top, 1.0))


def fit(degree: int, chord_degrees: tuple[int, ...], strong: bool, previous: int | None) -> int:
    """``degree`` moved to the nearest chord tone when it falls on a strong or long note.

    ``chord_degrees`` are the chord's scale degrees modulo 7. A move that would repeat the
    ``previous`` note is taken only when nothing else is near (the line keeps moving).
    """
    if not strong or degree % 7 in chord_degrees:
        return degree
    options = [degree + d for d in (-1, 1, -2, 2) if (degree + d) % 7 in chord_degrees]
    options.sort(key=lambda d: (d == previous, abs(d - degree)))
    return options[0] if options else degree


def snap_pentatonic(degree: int, allowed: tuple[int, ...]) -> int:
    """``degree`` moved down to the nearest degree of ``allowed`` (modulo 7)."""
    for d in (0, -1, 1):
        if (degree + d) % 7 in allowed:
            return degree + d
    return degree


def _place(
    cell: Motif, shape: PhraseShape, t: float, rng: random.Random, exact: bool
) -> tuple[Motif, int]:
    """The cell as it is sung from beat ``t`` and its first degree: the theme itself from the
    phrase's start (``exact``), else turned to follow the arc and centred on it."""
    if exact:
        return cell, shape.start  # the theme itself, from where the phrase starts
    slope = arc(shape, t + cell.beats) - arc(shape, t)
    if cell.span * slope < 0:
        cell = vary(cell, "inverted", rng)  # the cell follows the arc's direction
    return cell, round(arc(shape, t + 0.5 * cell.beats) - 0.5 * cell.span)


def _add_notes(
    cell: Motif, first: int, t: float, body_end: float, shape: PhraseShape, notes: list[Note]
) -> float:
    """Append the cell's notes from beat ``t`` (cut at ``body_end``); return the beat after."""
    degree = first
    for step, dur in zip(cell.steps, cell.durs, strict=True):
        degree += step
        if t >= body_end:
            break
        length = min(dur, body_end - t)
        height = _height(t, shape)
        notes.append(Note(t, length, degree, height))
        t += dur
    return t
