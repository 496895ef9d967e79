"""Form over minutes: sections of phrases, periods with cadences, the theme's returns.

The piece is a chain of sections of :data:`SECTION_PHRASES` phrases (one phrase per
breath, so a section lasts a minute or two): A, B, A', C, A'', B', ... An A section opens
with the listener's theme as it was first heard and states it again half-way, each time
leading to another chord of the tonic's area (:data:`THEME_CHORDS`), and its other phrases
open on chords that change with them (:data:`A_FOLLOW`), so the returns are the same
tune newly harmonised, never the same 30 s; B
sections work a contrasting motif over the relative minor's area, C sections the theme
slowed down over the subdominant's. Phrases pair into periods: the first ends on a half
cadence, the second on a full one. Every section draws its choices from its own random
stream (``seed`` and the section's number), so no two sections, and no two minutes, are
the same, while the same seed always makes the same piece.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Phrases per section.
SECTION_PHRASES = 8
#: Chords (degrees) the theme's two statements in an A section lead to, section after
#: section: the tonic, the relative minor and the mediant (the theme starts on the third
#: degree, a tone of all three) in all six orders, so two A sections are alike only 12
#: sections (about 16 minutes at 6 breaths a minute) apart.
THEME_CHORDS = ((0, 5), (2, 0), (5, 2), (0, 2), (5, 0), (2, 5))
#: The phrases after a statement in its half of an A section: (the next antecedent's first
#: chord, the consequents' first chord, whether their chords change a beat after the top of
#: the breath instead of at it), taken in turn by the statements that lead to the same chord,
#: so no two statements in the cycle of six A sections are harmonised alike. (Consequents
#: opening on V or vi instead were tried: the 30-s key correlation fell to 0.68.)
A_FOLLOW = ((0, 3, False), (5, 3, False), (0, 3, True), (5, 3, True))


def _statements() -> dict[tuple[int, int], tuple[int, int, bool]]:
    """(A section in the cycle, half) -> :data:`A_FOLLOW` entry."""
    seen: dict[int, int] = {}
    out = {}
    for k, pair in enumerate(THEME_CHORDS):
        for half, chord in enumerate(pair):
            n = seen[chord] = seen.get(chord, -1) + 1
            out[k, half] = A_FOLLOW[n % len(A_FOLLOW)]
    return out


_FOLLOW = _statements()


@dataclass(frozen=True, slots=True)
class PhraseRole:
    """What one phrase does in the form."""

    #: Phrase number since the piece began, its section's number and letter, and its
    #: place in the section.
    index: int
    section: int
    letter: str
    position: int
    #: True: the phrase opens with the theme exactly (its first hearing or a return).
    theme: bool
    #: ``half`` (ends on the dominant), ``plagal`` (ends on the subdominant) or ``full``
    #: (ends on the tonic).
    cadence: str
    #: Degree of the chord the phrase starts on.
    start_degree: int
    #: True: its chords change a beat after the top of the breath (else at it).
    late: bool = False


def letter_of(section: int) -> str:
    """The letter of section ``section`` (0-based): A, B, A', C, A'', B', ..."""
    if section % 2 == 0:
        return "A" + "'" * min(section // 2, 3)
    k = section // 2
    base = "B" if k % 2 == 0 else "C"
    return base + "'" * min(k // 2, 3)


def role(index: int) -> PhraseRole:
    """The role of phrase ``index`` (0-based) in the form."""
    section, position = divmod(index, SECTION_PHRASES)
    letter = letter_of(section)
    a_section = letter.startswith("A")
    theme = a_section and position in (0, SECTION_PHRASES // 2)
    # antecedents end open: on the dominant, every other one on the subdominant (a calm
    # piece leans on I-IV-I; the dominant's pull is kept for the period's middle)
    cadence = "full" if position % 2 else ("half" if position % 4 == 0 else "plagal")
    k, half = section // 2 % len(THEME_CHORDS), position // 4
    late = a_section and _FOLLOW[k, half][2]
    if theme:
        start = THEME_CHORDS[k][half]
    elif a_section:
        start = _FOLLOW[k, half][position % 2]
    elif position % 2 == 1:
        start = 0 if position % 2 == 0 else 3
    else:
        start = 5 if letter.startswith("B") else 3
    return PhraseRole(index, section, letter, position, theme, cadence, start, late)


def section_rng(seed: int, section: int, stream: str) -> random.Random:
    """The random stream ``stream`` of section ``section`` (independent of the others)."""
    return random.Random(f"{seed}|{section}|{stream}")
