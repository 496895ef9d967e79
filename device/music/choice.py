"""Choosing the next track: the listener's learned taste, steered by tempo.

A :class:`TrackChooser` keeps one bandit arm per track and profile in a
:class:`~device.therapy.bandit.Chooser` (option ``"track"``, so its state saves and loads
with the presets' state format): like = +1, skip = -1 and the heart's response while the
track played (heart rate falling, coherence rising; :func:`track_reward`) credit the track.
Choosing is Thompson sampling over each track's posterior plus a tempo term:

* the calm band: a track whose tempo lies in :data:`CALM_BAND_BPM` (60-80) loses nothing,
  one outside loses :data:`TEMPO_WEIGHT` per 10 BPM of distance (a track without a clear
  beat counts as calm);
* the wind-down: once the session's progress passes :data:`WIND_DOWN_FROM`, a track faster
  than the listener's heart rate loses a further :data:`TEMPO_WEIGHT` per 5 BPM above it.

Tempi are octave-folded into 50-100 BPM for the band (a 130 BPM half-time ballad is felt at
65). The track just played is not chosen again unless it is the only one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from device.therapy.bandit import HR_FALL_SCALE_BPM, RATING_REWARD, Choice, Chooser

#: Tempo band that calms, BPM.
CALM_BAND_BPM = (60.0, 80.0)
#: Score lost per 10 BPM outside the band (per 5 BPM above the heart while winding down).
TEMPO_WEIGHT = 1.0
#: Session progress (0..1) from which tracks no faster than the heart are preferred.
WIND_DOWN_FROM = 0.6
_OPTION = "track"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A track the chooser may pick: its key (the file's path) and tempo (``None``: no beat)."""

    key: str
    tempo_bpm: float | None = None


def felt_tempo(bpm: float) -> float:
    """``bpm`` folded by octaves into 50-100 BPM."""
    while bpm > 100.0:
        bpm /= 2.0
    while bpm < 50.0:
        bpm *= 2.0
    return bpm


def tempo_score(tempo_bpm: float | None, *, progress: float, heart_bpm: float | None) -> float:
    """Tempo term of a track's score (0 best, negative worse)."""
    if tempo_bpm is None:
        return 0.0
    felt = felt_tempo(tempo_bpm)
    lo, hi = CALM_BAND_BPM
    score = -TEMPO_WEIGHT * max(0.0, lo - felt, felt - hi) / 10.0
    if progress >= WIND_DOWN_FROM and heart_bpm is not None and felt > heart_bpm:
        score -= TEMPO_WEIGHT * (felt - heart_bpm) / 5.0
    return score


def track_reward(hr_start_bpm: float, hr_end_bpm: float, coh_start: float, coh_end: float) -> float:
    """Reward of the heart's response over one track: HR fall and coherence rise, +-2 at most."""
    hr = (hr_start_bpm - hr_end_bpm) / HR_FALL_SCALE_BPM
    coh = (coh_end - coh_start) / 4.0
    return max(-2.0, min(2.0, hr + coh))


class TrackChooser:
    """Per-profile taste over tracks with tempo steering. Deterministic for a seed and state."""

    def __init__(
        self, *, seed: int = 0, profile: str = "default", state: Mapping[str, Any] | None = None
    ) -> None:
        self.bandit = Chooser(seed=seed, profile=profile, state=state)
        self.seed = int(seed)
        self.last: str | None = None
        self._draws = 0

    @property
    def profile(self) -> str:
        """The listener profile being learnt."""
        return self.bandit.profile

    def to_state(self) -> dict[str, Any]:
        """JSON-able learnt state (the bandit's format)."""
        return self.bandit.to_state()

    def choose(
        self,
        tracks: Sequence[Candidate],
        *,
        progress: float = 0.0,
        heart_bpm: float | None = None,
    ) -> tuple[Candidate, str] | None:
        """The next track and why, or ``None`` when there is none.

        ``progress`` is the session's progress 0..1 and ``heart_bpm`` the listener's heart
        rate now (``None`` without a pulse).
        """
        if not tracks:
            return None
        pool = [t for t in tracks if t.key != self.last] or list(tracks)
        rng = random.Random(f"{self.seed}|{self.profile}|track|{self._draws}")
        self._draws += 1
        best: tuple[float, Candidate, float, float, float] | None = None
        for t in pool:
            mean, sd, n = self.bandit.posterior(_OPTION, t.key)
            taste = rng.gauss(mean, sd)
            tempo = tempo_score(t.tempo_bpm, progress=progress, heart_bpm=heart_bpm)
            score = taste + tempo
            if best is None or score > best[0]:
                best = (score, t, mean, n, tempo)
        assert best is not None
        _, chosen, mean, n, tempo = best
        self.last = chosen.key
        bpm = "no beat" if chosen.tempo_bpm is None else f"{chosen.tempo_bpm:.0f} BPM"
        taste_text = "untried" if n == 0 else f"taste {mean:+.2f} over {n:g}"
        return chosen, f"{taste_text}; {bpm} (tempo {tempo:+.2f})"

    def _choice(self, key: str) -> Choice:
        return Choice(values={_OPTION: key}, why="track", profile=self.profile)

    def rate(self, key: str, kind: str) -> float:
        """Credit a like or a skip of track ``key``; return the reward."""
        if kind not in RATING_REWARD:
            raise ValueError(f"rating must be one of {', '.join(RATING_REWARD)}, not {kind!r}")
        return self.bandit.rate(self._choice(key), kind)

    def credit(self, key: str, reward: float) -> None:
        """Credit track ``key`` with a physiological ``reward`` (see :func:`track_reward`)."""
        if not math.isfinite(reward):
            raise ValueError(f"reward must be a finite number, not {reward!r}")
        self.bandit.record(self._choice(key), reward)

    def taste(self, key: str) -> tuple[float, float]:
        """``(mean reward, plays credited)`` of track ``key`` in this profile."""
        mean, _, n = self.bandit.posterior(_OPTION, key)
        return mean, n
