"""Personalisation: learn which sounds work for this listener, one bandit per option.

For each listener profile and each option a program allows (pad preset, noise colour,
entrainment kind) a :class:`Chooser` keeps, per choice, how often it was played and the
rewards it earned. A reward comes from the session's physiological response in its first
10 minutes (heart rate falling, coherence rising) and from explicit ratings (like = +1,
skip = -1). Choosing is Thompson sampling over a Gaussian posterior (or UCB1), seeded from
the chooser's seed, the profile and a draw counter, so the same state and seed choose the
same. The state is a JSON-able dict (:meth:`Chooser.to_state` / :meth:`Chooser.from_state`)
that the box keeps in its store.

Every explicit rating is also kept per profile on its own (whatever it rated: a preset, a
track, a program without options), as the listener's *enjoyment*. A listener who enjoys
little gets more low-frequency warmth (:meth:`Chooser.warmth`): listeners who enjoyed
little enjoyed more, and responded more, when low-frequency sound was added.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Version of the state dict layout.
STATE_VERSION = 1

#: Methods a chooser can use.
METHODS = ("thompson", "ucb")

#: Reward of an explicit rating.
RATING_REWARD = {"like": 1.0, "skip": -1.0}

#: Heart-rate fall (bpm) worth a reward of 1.
HR_FALL_SCALE_BPM = 4.0

#: Coherence rise worth a reward of 1 (HeartMath-style ratio).
COHERENCE_RISE_SCALE = 4.0

#: Pseudo-ratings at 0 (neither like nor skip) the enjoyment starts from: one skip alone
#: is an enjoyment of -1/3, not -1.
ENJOYMENT_PRIOR_N = 2.0

_SHORT = {"pad_preset": "pad", "noise_colour": "noise", "entrain_kind": "entrain"}


@dataclass(frozen=True, slots=True)
class Choice:
    """What a chooser chose: ``values`` (option -> choice) and ``why`` (a short string)."""

    values: dict[str, str] = field(default_factory=dict)
    why: str = "program defaults"
    profile: str = "default"


def session_reward(
    hr_start_bpm: float, hr_end_bpm: float, coherence_start: float, coherence_end: float
) -> float:
    """Reward of one session's response: HR fall and coherence rise, each clipped to +-3."""
    hr_part = max(-3.0, min(3.0, (hr_start_bpm - hr_end_bpm) / HR_FALL_SCALE_BPM))
    coh_part = max(-3.0, min(3.0, (coherence_end - coherence_start) / COHERENCE_RISE_SCALE))
    return hr_part + coh_part


class Chooser:
    """A per-profile bandit over a program's options.

    ``prior_n`` is how many pseudo-observations of the option's pooled mean reward (0 before
    anything was learnt) every choice starts with;
    ``noise_sd`` the spread of one reward assumed before the rewards themselves show it;
    ``ucb_c`` the UCB exploration weight.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        profile: str = "default",
        method: str = "thompson",
        state: Mapping[str, Any] | None = None,
        prior_n: float = 1.0,
        noise_sd: float = 1.0,
        ucb_c: float = 1.0,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        if not profile or not isinstance(profile, str):
            raise ValueError(f"profile must be a non-empty string, not {profile!r}")
        if not prior_n > 0.0 or not noise_sd > 0.0 or not ucb_c >= 0.0:
            raise ValueError("prior_n and noise_sd must be > 0 and ucb_c >= 0")
        self.seed = int(seed)
        self.profile = profile
        self.method = method
        self.prior_n = float(prior_n)
        self.noise_sd = float(noise_sd)
        self.ucb_c = float(ucb_c)
        self._profiles: dict[str, dict[str, Any]] = {}
        if state is not None:
            self._profiles = _parse_state(state)

    # --- state -------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The learnt state as a JSON-able dict (every profile)."""
        return {
            "version": STATE_VERSION,
            "profiles": {
                name: {
                    "draws": prof["draws"],
                    "sessions": prof["sessions"],
                    "ratings": dict(prof["ratings"]),
                    "arms": {
                        option: {
                            value: {"n": arm["n"], "sum": arm["sum"], "sq": arm["sq"]}
                            for value, arm in arms.items()
                        }
                        for option, arms in prof["arms"].items()
                    },
                }
                for name, prof in self._profiles.items()
            },
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], **kwargs: Any) -> Chooser:
        """A chooser continuing from ``state`` (as :meth:`to_state` made it).

        Raises ``ValueError`` naming what is wrong when the state is malformed.
        """
        return cls(state=state, **kwargs)

    def _profile(self) -> dict[str, Any]:
        return self._profiles.setdefault(
            self.profile, {"draws": 0, "sessions": 0, "ratings": {"n": 0.0, "sum": 0.0}, "arms": {}}
        )

    def _arm(self, option: str, value: str) -> dict[str, float]:
        arms = self._profile()["arms"].setdefault(option, {})
        return arms.setdefault(value, {"n": 0.0, "sum": 0.0, "sq": 0.0})

    # --- choosing ----------------------------------------------------------------------------

    def posterior(self, option: str, value: str) -> tuple[float, float, float]:
        """``(mean, sd, n)`` of the reward of ``value`` for ``option`` in this profile."""
        arms = self._profile()["arms"].get(option, {})
        arm = arms.get(value, {"n": 0.0, "sum": 0.0, "sq": 0.0})
        # The prior is the pooled mean of every choice of this option: an untried choice is
        # expected to do as well as the average, so it gets explored.
        pooled_n = sum(a["n"] for a in arms.values())
        prior = sum(a["sum"] for a in arms.values()) / pooled_n if pooled_n else 0.0
        n = arm["n"] + self.prior_n
        return (arm["sum"] + self.prior_n * prior) / n, self._spread(arms) / math.sqrt(n), arm["n"]

    def tally(self, option: str, value: str) -> tuple[float, float]:
        """``(n, sum)`` of the rewards credited to ``value`` for ``option`` in this profile."""
        arm = self._profile()["arms"].get(option, {}).get(value)
        return (0.0, 0.0) if arm is None else (arm["n"], arm["sum"])

    def _spread(self, arms: Mapping[str, Mapping[str, float]]) -> float:
        """Spread of one reward: the pooled within-choice spread, starting from noise_sd."""
        scatter, dof = 2.0 * self.noise_sd**2, 2.0
        for arm in arms.values():
            if arm["n"] >= 2.0:
                scatter += max(0.0, arm["sq"] - arm["sum"] ** 2 / arm["n"])
                dof += arm["n"] - 1.0
        return math.sqrt(scatter / dof)

    def choose(self, options: Mapping[str, Sequence[str]]) -> Choice:
        """Choose one value per option; say what was chosen and why."""
        prof = self._profile()
        draw = prof["draws"]
        prof["draws"] = draw + 1
        values: dict[str, str] = {}
        reasons: list[str] = []
        for option in sorted(options):
            allowed = list(options[option])
            if not allowed:
                continue
            rng = random.Random(f"{self.seed}|{self.profile}|{draw}|{option}")
            total_n = sum(self.posterior(option, v)[2] for v in allowed)
            scores = []
            for value in allowed:
                mean, sd, n = self.posterior(option, value)
                if self.method == "thompson":
                    score = rng.gauss(mean, sd)
                else:
                    bonus = math.sqrt(2.0 * math.log(total_n + 2.0) / (n + self.prior_n))
                    score = mean + self.ucb_c * self.noise_sd * bonus
                scores.append(score)
            best = max(range(len(allowed)), key=lambda i: (scores[i], -i))
            value = allowed[best]
            values[option] = value
            mean, _, n = self.posterior(option, value)
            best_mean = max(self.posterior(option, v)[0] for v in allowed)
            label = _SHORT.get(option, option)
            if n == 0:
                reasons.append(f"{label}={value} untried")
            elif mean >= best_mean:
                reasons.append(f"{label}={value} best so far ({mean:+.2f} over {n:g})")
            else:
                reasons.append(f"{label}={value} exploring ({mean:+.2f} over {n:g})")
        why = f"{self.method}: " + "; ".join(reasons) if reasons else "no options to choose"
        return Choice(values=values, why=why, profile=self.profile)

    def enjoyment(self) -> tuple[float, float]:
        """``(mean, n)`` of this profile's explicit ratings (like +1, skip -1), the mean
        shrunk towards 0 by :data:`ENJOYMENT_PRIOR_N` pseudo-ratings (so -1 < mean < 1)."""
        r = self._profile()["ratings"]
        return r["sum"] / (r["n"] + ENJOYMENT_PRIOR_N), r["n"]

    def warmth(self, base: float) -> float:
        """The warmth (0-1) to play where a program asks for ``base``: raised towards 1 in
        proportion to how little this listener enjoys what plays (never lowered)."""
        mean, _ = self.enjoyment()
        base = min(1.0, max(0.0, float(base)))
        return base + (1.0 - base) * max(0.0, -mean)

    # --- learning ----------------------------------------------------------------------------

    def record(self, choice: Choice, reward: float) -> None:
        """Credit ``reward`` to every value ``choice`` chose."""
        if not math.isfinite(reward):
            raise ValueError(f"reward must be a finite number, not {reward!r}")
        for option, value in choice.values.items():
            arm = self._arm(option, value)
            arm["n"] += 1.0
            arm["sum"] += float(reward)
            arm["sq"] += float(reward) ** 2

    def record_session(
        self,
        choice: Choice,
        *,
        hr_start_bpm: float,
        hr_end_bpm: float,
        coherence_start: float,
        coherence_end: float,
    ) -> float:
        """Credit a session's physiological response; return the reward given."""
        reward = session_reward(hr_start_bpm, hr_end_bpm, coherence_start, coherence_end)
        self.record(choice, reward)
        self._profile()["sessions"] += 1
        return reward

    def rate(self, choice: Choice, kind: str) -> float:
        """Credit an explicit rating ``kind`` ("like" or "skip") to what ``choice`` chose and
        to the profile's enjoyment (also when it chose nothing); return the reward given."""
        if kind not in RATING_REWARD:
            raise ValueError(f"rating must be one of {', '.join(RATING_REWARD)}, not {kind!r}")
        reward = RATING_REWARD[kind]
        self.record(choice, reward)
        ratings = self._profile()["ratings"]
        ratings["n"] += 1.0
        ratings["sum"] += reward
        return reward

    def __repr__(self) -> str:
        prof = self._profiles.get(self.profile, {"sessions": 0})
        return (
            f"<Chooser {self.method} profile={self.profile!r} seed={self.seed} "
            f"sessions={prof['sessions']}>"
        )


def _parse_state(state: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The profiles of a saved chooser state, checked; ``ValueError`` naming what is wrong."""
    if not isinstance(state, Mapping):
        raise ValueError(f"chooser state must be a dict, not {type(state).__name__}")
    version = state.get("version")
    if version != STATE_VERSION:
        raise ValueError(f"chooser state version {version!r} is not {STATE_VERSION}")
    profiles = state.get("profiles")
    if not isinstance(profiles, Mapping):
        raise ValueError("chooser state: 'profiles' must be a dict")
    return {str(name): _parse_profile(name, prof) for name, prof in profiles.items()}


def _parse_profile(name: object, prof: object) -> dict[str, Any]:
    """One saved profile: its arms, draws, sessions and ratings, checked."""
    where = f"chooser state: profile {name!r}"
    if not isinstance(prof, Mapping) or not isinstance(prof.get("arms"), Mapping):
        raise ValueError(f"{where}: must be a dict with 'arms'")
    arms: dict[str, dict[str, dict[str, float]]] = {}
    for option, values in prof["arms"].items():
        if not isinstance(values, Mapping):
            raise ValueError(f"{where}: option {option!r} must be a dict")
        arms[option] = {
            value: _parse_arm(where, option, value, arm) for value, arm in values.items()
        }
    try:
        draws, sessions = int(prof.get("draws", 0)), int(prof.get("sessions", 0))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: 'draws' and 'sessions' must be integers") from None
    return {
        "draws": draws,
        "sessions": sessions,
        "ratings": _parse_ratings(prof.get("ratings"), where),
        "arms": arms,
    }


def _parse_arm(where: str, option: object, value: object, arm: Any) -> dict[str, float]:
    """One arm's tally (``n``, ``sum``, ``sq``): finite numbers, ``n`` and ``sq`` not negative."""
    try:
        n, total, sq = float(arm["n"]), float(arm["sum"]), float(arm["sq"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{where}: {option}={value} needs numbers 'n', 'sum' and 'sq', got {arm!r}"
        ) from None
    if n < 0.0 or sq < 0.0 or not all(map(math.isfinite, (n, total, sq))):
        raise ValueError(f"{where}: {option}={value} has n={n!r}, sum={total!r}, sq={sq!r}")
    return {"n": n, "sum": total, "sq": sq}


def _parse_ratings(raw: object, where: str) -> dict[str, float]:
    """A profile's rating tally; absent in states saved before it was kept (no ratings)."""
    if raw is None:
        return {"n": 0.0, "sum": 0.0}
    try:
        n, total = float(raw["n"]), float(raw["sum"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: 'ratings' needs numbers 'n' and 'sum', got {raw!r}") from None
    if not (math.isfinite(n) and math.isfinite(total)) or n < 0.0 or abs(total) > n:
        raise ValueError(f"{where}: 'ratings' has n={n!r}, sum={total!r}")
    return {"n": n, "sum": total}
