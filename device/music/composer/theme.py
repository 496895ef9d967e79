"""Motifs and the listener's own theme.

A :class:`Motif` is a short melodic cell: scale-degree steps and durations in beats. Each
listener profile gets its own theme, made from a hash of the profile's name: the same
profile gets the same theme in every session (so it becomes familiar: familiarity raised
the benefit of music in the research behind the box), two profiles almost never the same.
The theme opens the piece and every return of its A section; the other sections are built
from its variations (:func:`vary`).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

#: Rhythm cells of a theme (beats; each sums to 4): calm, mostly even, one long note.
RHYTHMS = (
    (1.0, 1.0, 2.0),
    (2.0, 1.0, 1.0),
    (1.5, 0.5, 2.0),
    (1.0, 1.0, 1.0, 1.0),
    (1.0, 0.5, 0.5, 2.0),
    (0.5, 0.5, 1.0, 2.0),
    (3.0, 1.0),
)
#: Contours of a theme (scale-degree steps from the note before; the first step is 0).
CONTOURS = (
    (0, 2, -1, -1),
    (0, 1, 1, -2),
    (0, 3, -1, -1),
    (0, -1, 2, 1),
    (0, 2, 1, -1),
    (0, 4, -1, -2),
    (0, 1, 2, -1),
    (0, -2, 3, -1),
)
#: Variations :func:`vary` makes.
VARIANTS = ("exact", "inverted", "retrograde", "rhythm", "augmented", "ornament")


@dataclass(frozen=True, slots=True)
class Motif:
    """Scale-degree steps (the first from the cell's starting degree) and beats per note."""

    steps: tuple[int, ...]
    durs: tuple[float, ...]

    @property
    def beats(self) -> float:
        """Length in beats."""
        return sum(self.durs)

    @property
    def span(self) -> int:
        """Net motion in scale degrees from the first note to the last."""
        return sum(self.steps[1:])


def theme_seed(profile: str) -> int:
    """The theme number of ``profile`` (stable across sessions, versions and machines)."""
    digest = hashlib.sha256(f"bedside-theme|{profile}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def make_theme(seed: int) -> Motif:
    """The theme with number ``seed`` (see :func:`theme_seed`)."""
    rng = random.Random(seed)
    durs = rng.choice(RHYTHMS)
    contour = list(rng.choice(CONTOURS))
    n = len(durs)
    while len(contour) < n:
        contour.append(rng.choice((-1, 1)))
    steps = [0, *contour[1:n]]
    if rng.random() < 0.5:  # mirror half the themes: a falling opening
        steps = [0, *(-s for s in steps[1:])]
    return Motif(tuple(steps), tuple(durs))


def vary(motif: Motif, kind: str, rng: random.Random) -> Motif:
    """A variation of ``motif``: ``exact``, ``inverted`` (steps mirrored), ``retrograde``
    (backwards), ``rhythm`` (durations rotated), ``augmented`` (twice as slow) or
    ``ornament`` (a long note split by an upper neighbour)."""
    steps, durs = list(motif.steps), list(motif.durs)
    if kind == "inverted":
        steps = [0, *(-s for s in steps[1:])]
    elif kind == "retrograde":
        rev = [-s for s in reversed(steps[1:])]
        steps, durs = [0, *rev], list(reversed(durs))
    elif kind == "rhythm":
        durs = durs[1:] + durs[:1]
    elif kind == "augmented":
        durs = [2.0 * d for d in durs]
    elif kind == "ornament":
        _ornament(steps, durs)
    elif kind != "exact":
        raise ValueError(f"unknown variation {kind!r} (one of {', '.join(VARIANTS)})")
    del rng  # the variations are deterministic; the caller's stream chose the kind
    return Motif(tuple(steps), tuple(durs))


def _ornament(steps: list[int], durs: list[float]) -> None:
    """Split the longest note (the first of the longest, if at least a beat) in two halves,
    the second an upper neighbour, in place; the next step is one less to land as before."""
    i = max(range(len(durs)), key=lambda j: (durs[j], -j))
    if durs[i] >= 1.0:
        half = durs[i] / 2.0
        steps[i + 1 : i + 1] = [1]
        durs[i : i + 1] = [half, half]
        if i + 2 < len(steps):
            steps[i + 2] -= 1
        else:
            steps[i + 1] = 1


def second_theme(theme: Motif, seed: int) -> Motif:
    """A contrasting motif for B sections: the theme's contour inverted on another rhythm."""
    rng = random.Random(seed ^ 0x5EC0)
    durs = rng.choice([r for r in RHYTHMS if r != theme.durs] or list(RHYTHMS))
    steps = [0, *(-s for s in theme.steps[1:])]
    while len(steps) < len(durs):
        steps.append(rng.choice((-1, 1)))
    return Motif(tuple(steps[: len(durs)]), tuple(durs))
