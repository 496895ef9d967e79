"""Choosing the next track: calm music the listener likes, never what keeps them awake.

Two stages. :func:`judge` decides from what the scan *heard* (``device.music.analysis``)
whether a track may play at all and how calm it is; :class:`TrackChooser` then draws among
the tracks that may play with a softmax over their score:

``score = calm + taste (+ the wind-down term)``

* **calm** (:func:`judge`, 0 calm .. negative tense): event density (onsets a minute), a
  beat-level tempo only when its confidence is high (an uncertain tempo never calls a track
  calm, and tempi are never octave-folded: a 120 BPM march is a 120 BPM march), loudness
  surges above the track's own loudness, crest (peak to loudness) and brightness. A track
  whose penalties reach :data:`TENSE_AT` is left out, as is one below the loudness gate
  :data:`AUDIBLE_LUFS` (nothing to hear) or shorter than the crossfade plus
  :data:`MIN_PLAY_S`.
* **taste**: likes and skips as log-odds, ``RATING_WEIGHT * ln((likes + 1) / (skips + 1))``
  (a like always raises it, a skip always lowers it, whatever came before), plus the heart's
  response (:func:`track_reward`) shrunk towards 0 and weighted by :data:`HEART_WEIGHT`, so
  that one like outweighs any heart credit.
* **wind-down**: once the session passes :data:`WIND_DOWN_FROM`, a track whose confident
  tempo is above the listener's heart rate loses :data:`TEMPO_WEIGHT` per 5 BPM above it.

The chance of each track is ``exp(score / TEMPERATURE)`` normalised (:meth:`TrackChooser.
chances`): unlike Thompson sampling over many arms, a like can only make its track more
likely and a skip only less. The track just played is not chosen again unless it is the only
one; a track skipped :data:`SKIPS_PER_NIGHT` times does not come back until
:meth:`TrackChooser.new_night`.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from device.therapy.bandit import HR_FALL_SCALE_BPM, RATING_REWARD, Choice, Chooser

#: Integrated loudness below which a track has nothing to hear, LUFS.
AUDIBLE_LUFS = -50.0
#: A track must play at least this long besides its crossfade, seconds.
MIN_PLAY_S = 60.0
#: Below this tempo confidence the tempo says nothing about calm (it is reported, flagged).
CONFIDENT_BEAT = 0.3
#: Beat-level tempo above which a confident beat counts against calm, BPM.
CALM_MAX_BPM = 85.0
#: Onsets a minute above which the surface is busy.
CALM_MAX_ONSETS = 90.0
#: Loudest 3-s stretch above the integrated loudness that still counts as calm, LU.
CALM_MAX_SURGE_LU = 6.0
#: Sample peak above the integrated loudness that still counts as calm, dB.
CALM_MAX_CREST_DB = 20.0
#: Spectral centroid above which a track counts as bright, Hz.
CALM_MAX_CENTROID_HZ = 2000.0
#: Penalty at which a track is tense and left out.
TENSE_AT = 2.0
#: Score lost per 5 BPM of confident tempo above the heart while winding down.
TEMPO_WEIGHT = 1.0
#: Session progress (0..1) from which tracks no faster than the heart are preferred.
WIND_DOWN_FROM = 0.6
#: Weight of the likes' log-odds and of the heart's mean response in the taste.
RATING_WEIGHT = 1.0
HEART_WEIGHT = 0.25
#: Pseudo-credits at 0 the heart's mean starts from.
HEART_PRIOR_N = 2.0
#: Softmax temperature of the draw (score units).
TEMPERATURE = 0.5
#: Skips of one track that keep it away for the rest of the night.
SKIPS_PER_NIGHT = 2
_CREDIT = "track"
_RATING = "track.rating"
_PULSE = "music.pulse"
#: Each net skip made under the pulse on the music scales its modulation index by this.
PULSE_STEP = 0.75


class Heard(Protocol):
    """What the scan measured of a track (a ``device.music.index.Track`` is one)."""

    @property
    def duration_s(self) -> float | None:
        """As ``device.music.index.Track``."""

    @property
    def lufs(self) -> float | None:
        """As ``device.music.index.Track``."""

    @property
    def peak(self) -> float | None:
        """As ``device.music.index.Track``."""

    @property
    def tempo_bpm(self) -> float | None:
        """As ``device.music.index.Track``."""

    @property
    def tempo_confidence(self) -> float | None:
        """As ``device.music.index.Track``."""

    @property
    def onsets_per_min(self) -> float | None:
        """As ``device.music.index.Track``."""

    @property
    def surge_lu(self) -> float | None:
        """As ``device.music.index.Track``."""

    @property
    def centroid_hz(self) -> float | None:
        """As ``device.music.index.Track``."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """:func:`judge`'s answer: may the track play, its calm score (<= 0) and why."""

    ok: bool
    calm: float
    why: str


def judge(t: Heard, crossfade_s: float = 6.0) -> Verdict:
    """How calm ``t`` sounds, from what was heard; ``ok`` False: never play it."""
    if t.lufs is None or t.lufs < AUDIBLE_LUFS:
        return Verdict(False, -math.inf, "nothing to hear")
    if (t.duration_s or 0.0) < crossfade_s + MIN_PLAY_S:
        return Verdict(False, -math.inf, f"shorter than {crossfade_s + MIN_PLAY_S:.0f} s")
    parts = _penalties(t, t.lufs)
    penalties = [(name, p) for name, p in parts if p > 0.0]
    total = sum(p for _, p in penalties)
    why = ", ".join(f"{name} {p:.1f}" for name, p in penalties) or "calm"
    return Verdict(bool(total < TENSE_AT), -float(total), why)


def _penalties(t: Heard, lufs: float) -> list[tuple[str, float]]:
    """Each calm measure's penalty (positive: less calm), by name."""
    parts: list[tuple[str, float]] = []
    if (t.tempo_confidence or 0.0) >= CONFIDENT_BEAT and t.tempo_bpm is not None:
        parts.append(("tempo", (t.tempo_bpm - CALM_MAX_BPM) / 15.0))
    if t.onsets_per_min is None:  # measured by an older scan: judged once it is measured again
        parts.append(("unmeasured", TENSE_AT))
    else:
        parts.append(("busy", (t.onsets_per_min - CALM_MAX_ONSETS) / 40.0))
    parts.append(("surges", ((t.surge_lu or 0.0) - CALM_MAX_SURGE_LU) / 3.0))
    crest = 20.0 * math.log10(max(t.peak or 0.0, 1e-9)) - lufs
    parts.append(("peaks", (crest - CALM_MAX_CREST_DB) / 4.0))
    parts.append(("bright", ((t.centroid_hz or 0.0) - CALM_MAX_CENTROID_HZ) / 1000.0))
    return parts


@dataclass(frozen=True, slots=True)
class Candidate:
    """A track the chooser may pick: its key (the file's path), a tempo the wind-down may use
    (``None``: no confident beat) and its calm score from :func:`judge` (0 calm)."""

    key: str
    tempo_bpm: float | None = None
    calm: float = 0.0


def wind_down_score(tempo_bpm: float | None, *, progress: float, heart_bpm: float | None) -> float:
    """Score lost late in a session by a confident tempo above the heart (0 best)."""
    if tempo_bpm is None or progress < WIND_DOWN_FROM or heart_bpm is None:
        return 0.0
    return -TEMPO_WEIGHT * max(0.0, tempo_bpm - heart_bpm) / 5.0


def track_reward(hr_start_bpm: float, hr_end_bpm: float, coh_start: float, coh_end: float) -> float:
    """Reward of the heart's response over one track: HR fall and coherence rise, +-2 at most."""
    hr = (hr_start_bpm - hr_end_bpm) / HR_FALL_SCALE_BPM
    coh = (coh_end - coh_start) / 4.0
    return max(-2.0, min(2.0, hr + coh))


class TrackChooser:
    """Per-profile taste over tracks. Deterministic for a seed and state."""

    def __init__(
        self, *, seed: int = 0, profile: str = "default", state: Mapping[str, Any] | None = None
    ) -> None:
        self.bandit = Chooser(seed=seed, profile=profile, state=state)
        self.seed = int(seed)
        self.last: str | None = None
        #: Skips tonight per track (:meth:`new_night` clears them).
        self.skipped: Counter[str] = Counter()
        self._draws = 0

    @property
    def profile(self) -> str:
        """The listener profile being learnt."""
        return self.bandit.profile

    def to_state(self) -> dict[str, Any]:
        """JSON-able learnt state (the bandit's format)."""
        return self.bandit.to_state()

    def new_night(self) -> None:
        """Forget tonight's skips (a track skipped twice may come back)."""
        self.skipped.clear()

    def taste(self, key: str) -> tuple[float, float]:
        """``(taste score, ratings and credits)`` of track ``key`` in this profile."""
        rated, net = self.bandit.tally(_RATING, key)
        likes, skips = 0.5 * (rated + net), 0.5 * (rated - net)
        credited, heart = self.bandit.tally(_CREDIT, key)
        score = RATING_WEIGHT * math.log((likes + 1.0) / (skips + 1.0))
        score += HEART_WEIGHT * heart / (credited + HEART_PRIOR_N)
        return score, rated + credited

    def _pool(self, tracks: Sequence[Candidate]) -> list[Candidate]:
        fresh = [t for t in tracks if self.skipped[t.key] < SKIPS_PER_NIGHT]
        return [t for t in fresh if t.key != self.last] or fresh

    def chances(
        self,
        tracks: Sequence[Candidate],
        *,
        progress: float = 0.0,
        heart_bpm: float | None = None,
    ) -> dict[str, float]:
        """The chance of each track of ``tracks`` to be chosen next (0 for those left out)."""
        pool = self._pool(tracks)
        scores = {
            t.key: t.calm
            + self.taste(t.key)[0]
            + wind_down_score(t.tempo_bpm, progress=progress, heart_bpm=heart_bpm)
            for t in pool
        }
        out = dict.fromkeys((t.key for t in tracks), 0.0)
        if not scores:
            return out
        top = max(scores.values())
        weights = {k: math.exp((s - top) / TEMPERATURE) for k, s in scores.items()}
        total = sum(weights.values())
        out.update({k: w / total for k, w in weights.items()})
        return out

    def choose(
        self,
        tracks: Sequence[Candidate],
        *,
        progress: float = 0.0,
        heart_bpm: float | None = None,
    ) -> tuple[Candidate, str] | None:
        """The next track and why, or ``None`` when there is none to play.

        ``progress`` is the session's progress 0..1 and ``heart_bpm`` the listener's heart
        rate now (``None`` without a pulse).
        """
        p = self.chances(tracks, progress=progress, heart_bpm=heart_bpm)
        keyed = [t for t in tracks if p.get(t.key, 0.0) > 0.0]
        if not keyed:
            return None
        rng = random.Random(f"{self.seed}|{self.profile}|track|{self._draws}")
        self._draws += 1
        chosen = rng.choices(keyed, weights=[p[t.key] for t in keyed])[0]
        self.last = chosen.key
        score, n = self.taste(chosen.key)
        bpm = "no clear beat" if chosen.tempo_bpm is None else f"{chosen.tempo_bpm:.0f} BPM"
        taste_text = "untried" if n == 0 else f"taste {score:+.2f} over {n:g}"
        return chosen, f"{taste_text}; {bpm}; calm {chosen.calm:+.2f}; chance {p[chosen.key]:.2f}"

    def _choice(self, option: str, key: str) -> Choice:
        return Choice(values={option: key}, why="track", profile=self.profile)

    def rate(self, key: str, kind: str) -> float:
        """Credit a like or a skip of track ``key``; return the reward."""
        if kind not in RATING_REWARD:
            raise ValueError(f"rating must be one of {', '.join(RATING_REWARD)}, not {kind!r}")
        if kind == "skip":
            self.skipped[key] += 1
        return self.bandit.rate(self._choice(_RATING, key), kind)

    def rate_pulse(self, kind: str) -> None:
        """A like or skip made while the pulse was on the music (the learner of its depth)."""
        self.bandit.record(self._choice(_PULSE, "on"), RATING_REWARD[kind])

    def pulse_scale(self) -> float:
        """Factor (0..1] on the program's ``music_pulse_index`` for this listener:
        :data:`PULSE_STEP` per skip under the pulse not won back by a like under it."""
        _, net = self.bandit.tally(_PULSE, "on")
        return float(PULSE_STEP ** max(0.0, -net))

    def credit(self, key: str, reward: float) -> None:
        """Credit track ``key`` with a physiological ``reward`` (see :func:`track_reward`)."""
        if not math.isfinite(reward):
            raise ValueError(f"reward must be a finite number, not {reward!r}")
        self.bandit.record(self._choice(_CREDIT, key), reward)
