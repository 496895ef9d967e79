"""Tempo from the heart, beats on a gliding grid, phrases on the breath.

* Tempo: about 30 % below the listener's heart rate (van Dyck et al. 2017: music 30 % and
  45 % below the heart rate lowered it, music at the heart rate raised it), down to 45 %
  below as the energy falls towards sleep, always within 50-80 beats/min (the calm range).
  The tempo glides to that target by at most :data:`TEMPO_STEP` per beat: never a jump.
* Phrases: one per breath. A phrase starts on a beat at an inhale's start and lasts the
  whole beats nearest to the next inhale's start, so the grid stays steady and each phrase
  boundary is within half a beat of the breath's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The calm tempo range, beats/min.
TEMPO_RANGE = (50.0, 80.0)
#: Tempo / heart rate at energy 1 (awake) and 0 (sleep).
AWAKE_RATIO = 0.70
SLEEP_RATIO = 0.55
#: Heart rate assumed until one is known, beats/min.
DEFAULT_HEART_BPM = 72.0
#: Largest tempo change from one beat to the next, beats/min.
TEMPO_STEP = 0.25
#: Phrase length in beats with no pacer (no breath to follow), and the shortest phrase.
FREE_PHRASE_BEATS = 8
MIN_PHRASE_BEATS = 4


def tempo_target(heart_bpm: float | None, energy: float) -> float:
    """The tempo (beats/min) to play for ``heart_bpm`` (``None``: unknown) at ``energy``."""
    hr = DEFAULT_HEART_BPM if heart_bpm is None else float(heart_bpm)
    e = min(1.0, max(0.0, energy))
    ratio = SLEEP_RATIO + (AWAKE_RATIO - SLEEP_RATIO) * e
    return min(TEMPO_RANGE[1], max(TEMPO_RANGE[0], hr * ratio))


def glide(tempo: float, target: float) -> float:
    """The next beat's tempo: ``tempo`` moved towards ``target`` by at most one step."""
    d = target - tempo
    return target if abs(d) <= TEMPO_STEP else tempo + math.copysign(TEMPO_STEP, d)


@dataclass(frozen=True, slots=True)
class Breath:
    """The breath as the audio path last saw it: at frame ``frame`` the pacer's phase was
    ``phase`` (cycles, 0 = an inhale starts) at ``bpm`` breaths/min (``None``: no pacer)."""

    frame: int
    phase: float
    bpm: float | None
    inhale: float = 0.4


def next_inhale(breath: Breath, after: float, rate: int) -> float:
    """The frame of the first inhale start at or after frame ``after`` (predicted)."""
    assert breath.bpm is not None
    period = 60.0 / breath.bpm * rate
    first = breath.frame + (1.0 - breath.phase % 1.0) % 1.0 * period
    if first >= after:
        n = math.floor((first - after) / period)
        return first - n * period
    return first + math.ceil((after - first) / period) * period


def phrase_beats(
    breath: Breath, start: float, beat_frames: float, rate: int, *, first: bool = False
) -> int:
    """Whole beats from a phrase starting at frame ``start`` to the next inhale start.

    The next inhale is the first more than half a breath after ``start`` (the phrase's own
    inhale is the one at ``start``); for the ``first`` phrase of a piece, which starts at
    once wherever the breath is, the first at least :data:`MIN_PHRASE_BEATS` beats on.
    """
    if breath.bpm is None:
        return FREE_PHRASE_BEATS
    period = 60.0 / breath.bpm * rate
    gap = MIN_PHRASE_BEATS * beat_frames if first else 0.5 * period
    nxt = next_inhale(breath, start + gap, rate)
    return max(MIN_PHRASE_BEATS, round((nxt - start) / beat_frames))


class BeatClock:
    """The beat grid: the frame of the next beat and the tempo gliding beat by beat."""

    def __init__(self, rate: int, tempo: float) -> None:
        self.rate = rate
        self.tempo = tempo
        #: Frame of the next beat to be placed (fractional: no rounding error builds up).
        self.frame = 0.0

    def beats(self, n: int, target: float) -> list[float]:
        """Frames of the next ``n + 1`` beats (the last is where the phrase after starts),
        gliding the tempo towards ``target``; the clock moves past the first ``n``."""
        out = [self.frame]
        t = self.frame
        for _ in range(n):
            self.tempo = glide(self.tempo, target)
            t += 60.0 / self.tempo * self.rate
            out.append(t)
        self.frame = t
        return out

    @property
    def beat_frames(self) -> float:
        """Frames per beat at the present tempo."""
        return 60.0 / self.tempo * self.rate
