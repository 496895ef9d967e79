"""One therapy session: program timeline + closed loop + personalisation.

The box creates a :class:`TherapySession` when a session starts and calls
:meth:`TherapySession.update` every control tick with the loop time and the latest heart
state; it sends the returned :class:`~device.sound.targets.SoundTargets` to the engine, shows
:meth:`TherapySession.status` and stores :meth:`TherapySession.drain_events`. An event of
kind ``"chime"`` asks the box to ring ``engine.chime(detail)`` (the wake chime).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from device.music.composer.theme import theme_seed
from device.sound.targets import OFF_DB, SoundTargets
from device.therapy.bandit import Choice, Chooser
from device.therapy.closed_loop import ClosedLoop, HeartLike
from device.therapy.program import Program
from device.therapy.resonance import ResonanceEstimate, SessionMeasurements
from device.therapy.timeline import Timeline

#: Window at the start of a session whose mean HR/coherence is the baseline, s.
BASELINE_WINDOW_S = (0.0, 120.0)
#: Window whose mean is the response, s (the first 10 minutes' last 2 minutes).
RESPONSE_WINDOW_S = (480.0, 600.0)
#: The wake chime rings this long before the end of a wake ramp, s (at most one tick).
CHIME_LEAD_S = 0.5
#: Time constant of the recent HR/coherence mean used when a session stops early, s.
RECENT_TAU_S = 60.0
#: A session stopped earlier than this earns no physiological reward, s.
MIN_REWARD_SESSION_S = 300.0
#: Fewest good samples a window needs to count.
MIN_WINDOW_SAMPLES = 20


class _Window:
    """Running means of HR and coherence over one time window (no per-tick storage)."""

    __slots__ = ("coh_n", "coh_sum", "high", "hr_n", "hr_sum", "low")

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high
        self.hr_n = self.coh_n = 0
        self.hr_sum = self.coh_sum = 0.0

    def add(self, t: float, hr: float | None, coherence: float | None) -> None:
        if not self.low <= t < self.high:
            return
        if hr is not None:
            self.hr_n += 1
            self.hr_sum += hr
        if coherence is not None:
            self.coh_n += 1
            self.coh_sum += coherence

    def means(self) -> tuple[float, float] | None:
        if self.hr_n < MIN_WINDOW_SAMPLES:
            return None
        coherence = self.coh_sum / self.coh_n if self.coh_n else 0.0
        return self.hr_sum / self.hr_n, coherence


class TherapySession:
    """A program played from the first :meth:`update` on, adapted to the listener.

    ``pacer_target_bpm`` is the breathing target (4.5-7/min); ``chooser`` a
    :class:`~device.therapy.bandit.Chooser` that picks the program's options and learns
    from the session (``None``: the program's own choices), and raises the targets'
    ``warmth`` for a listener whose ratings are low (:meth:`Chooser.warmth`);
    ``closed_loop=False`` plays the
    plain timeline; ``loop_settings`` passes keyword settings to
    :class:`~device.therapy.closed_loop.ClosedLoop` (for example ``glide_bpm_per_min``).
    ``seed`` seeds a chooser made here when ``chooser`` is ``None`` and
    ``personalise`` is true. ``resonance`` is the profile's
    :class:`~device.therapy.resonance.ResonanceEstimate`: the loop then assesses or paces
    at the listener's resonance rate as its plan says, and :meth:`measurements` returns
    what to fold into it when the session ends. Times are loop seconds.
    """

    def __init__(
        self,
        program: Program,
        *,
        pacer_target_bpm: float = 6.0,
        seed: int = 0,
        chooser: Chooser | None = None,
        closed_loop: bool = True,
        personalise: bool = False,
        loop_settings: Mapping[str, float] | None = None,
        resonance: ResonanceEstimate | None = None,
    ) -> None:
        self.program = program
        self.seed = seed
        if chooser is None and personalise:
            chooser = Chooser(seed=seed)
        self.chooser = chooser
        if chooser is not None and program.options:
            self.choice = chooser.choose(program.options)
        else:
            self.choice = Choice(values={}, why="program defaults")
        self.timeline = Timeline(program, self.choice.values)
        #: The listener's own theme for the composer (the same in every session).
        self.theme = theme_seed(self.choice.profile)
        self.loop: ClosedLoop | None = None
        if closed_loop:
            self.loop = ClosedLoop(
                pacer_target_bpm=pacer_target_bpm,
                program_min_pacer_bpm=self.timeline.min_pacer_bpm,
                resonance=resonance,
                **dict(loop_settings or {}),
            )
        self.pacer_target_bpm = pacer_target_bpm
        self.t0: float | None = None
        self._t: float = 0.0
        self._section: str | None = None
        self._events: list[tuple[float, str, str]] = []
        self._targets: SoundTargets | None = None
        self._heart: HeartLike | None = None
        self._remaining_s = self.timeline.duration_s
        self._section_remaining_s = 0.0
        self._stopped = False
        self._chimed = False
        self._baseline = _Window(*BASELINE_WINDOW_S)
        self._response = _Window(*RESPONSE_WINDOW_S)
        self._rewarded = False
        self._recent: tuple[float, float] | None = None
        self._t_prev = 0.0
        #: Reward credited to the chooser for this session (``None`` until it was).
        self.reward: float | None = None

    # --- the control tick --------------------------------------------------------------------

    def update(self, t: float, heart: HeartLike | None) -> SoundTargets:
        """Targets for loop time ``t`` s given the latest heart state (or ``None``)."""
        if self.t0 is None:
            self._begin(t)
        assert self.t0 is not None
        local = t - self.t0
        self._t = local
        point = self.timeline.at(local)
        if point.section != self._section:
            self._event(t, "section", point.section)
            self._section = point.section
        targets = point.targets
        if self.loop is not None:
            targets = self.loop.update(local, heart, targets)
            for when, kind, detail in self.loop.drain_events():
                self._event(self.t0 + when, kind, detail)
        targets = self._personal(targets, heart)
        self._targets = targets
        self._heart = heart
        self._remaining_s = point.remaining_s
        self._section_remaining_s = point.section_remaining_s
        self._measure(local, heart, local - self._t_prev)
        self._t_prev = local
        self._ring_wake_chime(t, point.phase, point.remaining_s)
        if point.phase == "done":
            self._finish(t, "program complete")
        return targets

    def _begin(self, t: float) -> None:
        """The first update, at loop time ``t``: the session starts (start, preset events)."""
        self.t0 = t
        chosen = ", ".join(f"{k}={v}" for k, v in sorted(self.choice.values.items()))
        self._event(t, "start", f"{self.program.name} ({self.timeline.duration_s / 60:.0f} min)")
        if self.choice.values:
            self._event(t, "preset", f"{chosen}: {self.choice.why}")

    def _personal(self, targets: SoundTargets, heart: HeartLike | None) -> SoundTargets:
        """``targets`` made the listener's: warmth, the composer's heart tempo and theme."""
        if self.chooser is not None:
            # a listener who rates what plays low gets more low-frequency warmth
            warmth = self.chooser.warmth(targets.warmth)
            if warmth != targets.warmth:
                targets = targets.with_changes(warmth=warmth)
        hr = heart.hr_bpm if heart is not None and heart.contact else None
        if hr is not None and not 25.0 <= hr <= 240.0:
            hr = None
        # the composer's tempo follows the heart; its theme is the listener's own
        if hr != targets.heart_bpm:
            targets = targets.with_changes(heart_bpm=hr)
        if targets.composer_db > OFF_DB and targets.composer_theme != self.theme:
            targets = targets.with_changes(composer_theme=self.theme)
        return targets

    def _ring_wake_chime(self, t: float, phase: str, remaining_s: float) -> None:
        """A wake ending with a chime asks for it (once) just before its end."""
        ending = self.program.ending
        if (
            ending.kind == "wake"
            and ending.chime
            and not self._chimed
            and phase != "section"
            and remaining_s <= CHIME_LEAD_S
        ):
            self._chimed = True
            self._event(t, "chime", "wake")

    def _measure(self, local: float, heart: HeartLike | None, dt: float) -> None:
        if self._rewarded or self.chooser is None or not self.choice.values:
            return
        if heart is not None and heart.contact and heart.hr_bpm is not None:
            hr, coherence = heart.hr_bpm, heart.coherence
            self._baseline.add(local, hr, coherence)
            self._response.add(local, hr, coherence)
            coh = 0.0 if coherence is None else coherence
            if self._recent is None:
                self._recent = (hr, coh)
            else:
                k = min(1.0, max(dt, 0.0) / RECENT_TAU_S)
                self._recent = (
                    self._recent[0] + (hr - self._recent[0]) * k,
                    self._recent[1] + (coh - self._recent[1]) * k,
                )
        if local >= RESPONSE_WINDOW_S[1]:
            self._credit(local)

    def _credit(self, local: float, end: tuple[float, float] | None = None) -> None:
        self._rewarded = True
        start = self._baseline.means()
        if end is None:
            end = self._response.means()
        if start is None or end is None or self.chooser is None:
            self._event((self.t0 or 0.0) + local, "reward", "not enough heart data: no reward")
            return
        self.reward = self.chooser.record_session(
            self.choice,
            hr_start_bpm=start[0],
            hr_end_bpm=end[0],
            coherence_start=start[1],
            coherence_end=end[1],
        )
        self._event(
            (self.t0 or 0.0) + local,
            "reward",
            f"{self.reward:+.2f} (HR {start[0]:.1f} -> {end[0]:.1f} bpm, "
            f"coherence {start[1]:.2f} -> {end[1]:.2f})",
        )

    # --- control -----------------------------------------------------------------------------

    def stop(self, t: float, reason: str = "stopped") -> None:
        """End the session early (the box fades out); idempotent."""
        if self._stopped:
            return
        if (
            not self._rewarded
            and self.t0 is not None
            and t - self.t0 >= MIN_REWARD_SESSION_S
            and self._recent is not None
        ):
            # Stopped inside the first 10 minutes: the response is the recent (~1 min) mean.
            self._credit(t - self.t0, end=self._recent)
        self._finish(t, reason)

    def _finish(self, t: float, reason: str) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._event(t, "stop", reason)

    def rate(self, kind: str, t: float | None = None) -> None:
        """Record an explicit rating ("like" or "skip") for this session's choices and the
        listener's enjoyment (which sets the warmth from the next :meth:`update`).

        ``t`` is the loop time of the rating (default: the latest update's).
        """
        if t is None:
            t = (self.t0 or 0.0) + self._t
        reward = None
        if self.chooser is not None:
            # the chooser keeps every rating as the listener's enjoyment, even with no options
            given = self.chooser.rate(self.choice, kind)
            reward = given if self.choice.values else None
        elif kind not in ("like", "skip"):
            raise ValueError(f"rating must be 'like' or 'skip', not {kind!r}")
        detail = kind if reward is None else f"{kind} ({reward:+.0f})"
        self._event(t, "rating", detail)

    def finished(self, t: float) -> bool:
        """True once the program (including its ending) is over or the session was stopped."""
        if self._stopped:
            return True
        if self.t0 is not None and t - self.t0 >= self.timeline.duration_s:
            self._finish(t, "program complete")
            return True
        return False

    # --- reporting ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Section, remaining_s, pacer_bpm, entrain_hz, loop_state, chosen and why."""
        targets = self._targets
        loop = self.loop.status() if self.loop is not None else {}
        return {
            "program": self.program.name,
            "section": self._section or self.program.sections[0].name,
            "elapsed_s": self._t,
            "remaining_s": self._remaining_s,
            "section_remaining_s": self._section_remaining_s,
            "pacer_bpm": None if targets is None else targets.pacer_bpm,
            "pacer_target_bpm": self.pacer_target_bpm,
            "entrain_hz": None if targets is None else targets.entrain_hz,
            "entrain_kind": None if targets is None else targets.entrain_kind,
            "loop_state": loop.get("loop_state", "open-loop"),
            "loop_reason": loop.get("loop_reason", "closed loop off"),
            "chosen": dict(self.choice.values),
            "why": self.choice.why,
            "profile": self.choice.profile,
            "reward": self.reward,
            "warmth": None if targets is None else targets.warmth,
        }

    def measurements(self) -> SessionMeasurements | None:
        """The resonance measurements so far (``None`` without an estimate or a loop)."""
        return None if self.loop is None else self.loop.measurements()

    def drain_events(self) -> list[tuple[float, str, str]]:
        """Return and forget the events ``(t, kind, detail)`` since the last call.

        Kinds: start, preset, section, adapt, settled, release (the listener has not
        followed for 5 min: the swell fades), rejoin, fallback, recovery, reward, rating,
        resonance (a rate measured: ``step paced=...``, or the next rate), chime (ring
        ``engine.chime(detail)``), stop.
        """
        events, self._events = self._events, []
        return events

    def _event(self, t: float, kind: str, detail: str) -> None:
        self._events.append((t, kind, detail))

    def __repr__(self) -> str:
        state = self.status()["loop_state"]
        return f"<TherapySession {self.program.name!r} t={self._t:.0f}s loop={state}>"
