"""The heart-aware closed loop: pace the listener's breathing down as fast as they follow.

:class:`ClosedLoop` takes the plain timeline's :class:`~device.sound.targets.SoundTargets`
and the latest heart state each control tick and returns adapted targets:

* The breath pacer starts at the listener's breathing rate, capped at 11/min. While their
  breathing is not known yet it starts at the program's rate and holds; a faster first
  estimate (within ``anchor_s``, 3 min) raises it once to meet them, at 1/min per 15 s.
* It then glides toward the target (6/min by default, 4.5-7 allowed), never faster than the
  program's plan nor than ``glide_bpm_per_min``, and only while the listener follows: it
  holds while their breathing is more than 1.5/min faster than the pacer, or while
  coherence falls, and resumes once they are within ``lag_resume_bpm`` (1/min). A glide
  step never takes the pacer further than that below their breathing, so breathing's own
  wander has room; "their breathing" is the highest estimate of the last ``breath_hold_s``
  (60 s), so a momentary dip never lets the pacer pull ahead, lowered by as much as the
  pacer itself fell meanwhile as the estimate (a 64-s spectral window, 32 s behind) would
  show it, never below the latest estimate: a listener who breathes with the glide is not
  taken for one a minute's glide behind (``device.therapy.loop_signal``).
* Once the pacer has reached the target, coherence high for 60 s lets it settle at the
  listener's own rate (following them down to 4.5/min, never up).
* The entrainment rate follows the program's descent behind the same gate.
* Nothing adapted ever speeds up because the heart speeds up: the loop's pacer and
  entrainment only fall, each rate-limited; rises come only from the program itself (a wake
  ramp), from gliding back to it, from meeting the first breathing estimate, or from a
  resonance assessment's step back up between candidate rates (below). Levels are
  always the timeline's: the loop never makes anything louder.
* With no contact or low quality the loop freezes at once; after 10 s it falls back, gliding
  to the plain timeline over 30 s; 10 s of good signal resume adaptation from where the
  sound is.
* Given the profile's ``resonance`` (``device.therapy.resonance``) the target becomes the
  candidate rate of the session's assessment (``device.therapy.assessment``): the first
  (6.5/min with no estimate; where an unfinished descent stopped, one rate on) reached
  behind all the same gates, the plan shifted to reach the lowest (or the estimate)
  where it comes within 0.5/min of its own end (the program's slow part, so the estimate
  is paced all through it, not only at its end); each held until
  followed for 2 min (its last 70 s measured), the next 0.5/min slower; past the peak,
  steps back up 0.5/min at a time at the glide rate, never while the heart speeds up
  (20 s mean 1 bpm over the 90 s mean); a lost signal restarts the candidate; a confident
  estimate is paced straight at; no settling meanwhile.

The loop's view of the heart (signal quality, coherence and heart-rate means, the held
breathing peak) is a :class:`~device.therapy.loop_signal.SignalWatch`; only ``hr_bpm``,
``hr_beat_bpm``, ``coherence``, ``breathing_bpm``, ``quality`` and ``contact`` are read of
the heart state (:class:`~device.therapy.loop_signal.HeartLike`).
"""

from __future__ import annotations

import math
from typing import Any

from device.sound.targets import SoundTargets
from device.therapy.assessment import Assessment
from device.therapy.loop_signal import HeartLike, SignalWatch
from device.therapy.loop_signal import finite as _finite
from device.therapy.resonance import ResonanceEstimate, SessionMeasurements, SessionPlan
from device.therapy.timeline import curve_weight

#: Allowed range of the pacer target, breaths/min.
TARGET_RANGE_BPM = (4.5, 7.0)

#: Loop states, as shown in the status.
STATES = ("open-loop", "adapting", "holding", "settled", "frozen", "fallback")

#: Hard rate limit of any adapted tempo: 1 per 15 s, in units per second.
MAX_TEMPO_RATE_PER_S = 1.0 / 15.0

#: The program's slow part: where its plan is within this of its slowest rate, /min. A
#: session with a resonance plan paces its slowest rate (the estimate) all through it.
SLOW_PART_BPM = 0.5


def _check(name: str, value: float, low: float, high: float, unit: str) -> float:
    value = float(value)
    if not low <= value <= high or math.isnan(value):
        raise ValueError(f"{name} must be {low:g}..{high:g} {unit}, not {value!r}")
    return value


def _blend(frozen: tuple[float | None, float], plain: SoundTargets, w: float) -> SoundTargets:
    """``plain`` with pacer and entrainment ``w`` (0..1) of the way from ``frozen`` to it."""
    p_frozen, e_frozen = frozen
    if plain.pacer_bpm is None or p_frozen is None:
        pacer = plain.pacer_bpm
    else:
        pacer = p_frozen + (plain.pacer_bpm - p_frozen) * w
    entrain = e_frozen + (plain.entrain_hz - e_frozen) * w
    return plain.with_changes(pacer_bpm=pacer, entrain_hz=entrain)


def _hold_reason(lagging: bool, waiting: bool, breathing: float | None) -> str:
    """Why the pacer holds, for the status line."""
    if lagging:
        return f"breathing {breathing:.1f}/min lags the pacer"
    if waiting:
        return f"waiting for breathing ({breathing:.1f}/min) to follow"
    if breathing is None:
        return "waiting for a breathing estimate"
    return "coherence falling"


def _entrain_step(e: float, plan_hz: float, step: float, hold: bool) -> float:
    """The entrainment rate ``e`` one tick (of at most ``step`` Hz) toward ``plan_hz``."""
    if plan_hz < e:
        return e if hold else max(plan_hz, e - step)
    # Only the program raises it (a wake ramp), four times faster; the heart never does.
    return min(plan_hz, e + 4.0 * step) if plan_hz > e else e


def _plan_shift(program_min: float | None, target: float, assessment: Assessment | None) -> float:
    """How far below the program's plan (slowest rate ``program_min``) the pacer may glide.

    The plan is shifted to end at the slowest rate the session paces: ``target``; with a
    resonance ``assessment`` its lowest candidate (or the estimate), reached already where
    the plan comes within ``SLOW_PART_BPM`` of its own end (the program's slow part).
    """
    if program_min is None:
        return 0.0
    if assessment is None:
        return program_min - target
    return program_min + SLOW_PART_BPM - assessment.lowest_bpm


class _Anchor:
    """Meeting the listener's first breathing estimate: once, only up, 1/min per 15 s.

    ``until``: while set, the first breathing estimate before it is met; ``goal``: the rate
    the pacer glides to meet it (``None`` when there is nothing to meet).
    """

    __slots__ = ("goal", "until")

    def __init__(self) -> None:
        self.until: float | None = None
        self.goal: float | None = None

    def check(self, t: float, breathing: float | None, pacer: float, cap: float) -> str | None:
        """Look at the breathing at ``t``; the event detail when the pacer is to meet it."""
        if t > (self.until or t):
            self.until = None
        elif breathing is not None:
            self.until = None
            # Only ever up to meet them: a slower first estimate is left to the gated glide,
            # so one noisy low estimate cannot drop the pacer.
            goal = min(breathing, cap)
            if goal > pacer:
                self.goal = goal
                return f"pacer meets the breathing: {goal:.1f}/min"
        return None

    def step(self, pacer: float, dt: float) -> float:
        """The pacer ``dt`` s further toward :attr:`goal`, at the hard rate limit."""
        assert self.goal is not None
        goal, step = self.goal, MAX_TEMPO_RATE_PER_S * dt
        pacer = min(goal, pacer + step) if goal > pacer else max(goal, pacer - step)
        if pacer == goal:
            self.goal = None
        return pacer


class ClosedLoop:
    """Adapts the plain timeline to the listener's heart and breathing.

    All rates are in breaths/min (pacer) or Hz (entrainment); times in seconds.
    ``program_min_pacer_bpm`` is the slowest rate the program itself paces (its plan's end),
    used to shift the plan so that it ends at ``pacer_target_bpm``.
    """

    def __init__(
        self,
        *,
        pacer_target_bpm: float = 6.0,
        program_min_pacer_bpm: float | None = None,
        start_cap_bpm: float = 11.0,
        lag_hold_bpm: float = 1.5,
        lag_resume_bpm: float = 1.0,
        glide_bpm_per_min: float = 1.0,
        entrain_hz_per_min: float = 1.5,
        coherence_high: float = 1.8,
        settle_s: float = 60.0,
        quality_min: float = 0.6,
        freeze_to_fallback_s: float = 10.0,
        fallback_glide_s: float = 30.0,
        recover_s: float = 10.0,
        breath_hold_s: float = 60.0,
        anchor_s: float = 180.0,
        resonance: ResonanceEstimate | SessionPlan | None = None,
    ) -> None:
        self.pacer_target_bpm = _check(
            "pacer_target_bpm", pacer_target_bpm, *TARGET_RANGE_BPM, "/min"
        )
        self.start_cap_bpm = _check("start_cap_bpm", start_cap_bpm, pacer_target_bpm, 12.0, "/min")
        self.lag_hold_bpm = _check("lag_hold_bpm", lag_hold_bpm, 0.5, 4.0, "/min")
        self.lag_resume_bpm = _check("lag_resume_bpm", lag_resume_bpm, 0.1, lag_hold_bpm, "/min")
        glide_max = 60.0 * MAX_TEMPO_RATE_PER_S
        self.glide_bpm_per_min = _check(
            "glide_bpm_per_min", glide_bpm_per_min, 0.05, glide_max, "/min per min"
        )
        self.entrain_hz_per_min = _check(
            "entrain_hz_per_min", entrain_hz_per_min, 0.05, 6.0, "Hz/min"
        )
        self.coherence_high = _check("coherence_high", coherence_high, 0.1, 16.0, "")
        self.settle_s = _check("settle_s", settle_s, 10.0, 600.0, "s")
        self.quality_min = _check("quality_min", quality_min, 0.0, 1.0, "")
        self.freeze_to_fallback_s = _check(
            "freeze_to_fallback_s", freeze_to_fallback_s, 0.0, 120.0, "s"
        )
        self.fallback_glide_s = _check("fallback_glide_s", fallback_glide_s, 1.0, 300.0, "s")
        self.recover_s = _check("recover_s", recover_s, 0.0, 120.0, "s")
        self.breath_hold_s = _check("breath_hold_s", breath_hold_s, 0.0, 300.0, "s")
        self.anchor_s = _check("anchor_s", anchor_s, 0.0, 600.0, "s")
        self.program_min_pacer_bpm = program_min_pacer_bpm
        if isinstance(resonance, ResonanceEstimate):
            resonance = resonance.plan()
        #: The resonance assessment of this session (``None``: pace at ``pacer_target_bpm``).
        self.assessment = None if resonance is None else Assessment(resonance)
        #: Present loop state, one of :data:`STATES`.
        self.state = "open-loop"
        #: Why the loop is in its state (a short phrase for the status line).
        self.reason = "no heart signal yet"
        self._p: float | None = None
        self._lagging = False
        self._watch = SignalWatch(self.quality_min, self.coherence_high, self.breath_hold_s)
        self._anchor = _Anchor()
        self._e: float | None = None
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._frozen: tuple[float | None, float] | None = None
        self._fallback_t: float | None = None
        self._out: SoundTargets | None = None
        self._events: list[tuple[float, str, str]] = []

    # --- public -------------------------------------------------------------------------

    @property
    def pacer_bpm(self) -> float | None:
        """The pacer rate last sent, breaths/min (``None`` while the swell is off)."""
        return None if self._out is None else self._out.pacer_bpm

    @property
    def entrain_hz(self) -> float | None:
        """The entrainment rate last sent, Hz."""
        return None if self._out is None else self._out.entrain_hz

    @property
    def goal_bpm(self) -> float:
        """The rate the pacer glides to now: the assessment's candidate, or the target."""
        return self.pacer_target_bpm if self.assessment is None else self.assessment.goal_bpm

    def measurements(self) -> SessionMeasurements | None:
        """What the resonance assessment measured so far (``None`` without one)."""
        return None if self.assessment is None else self.assessment.finish()

    def drain_events(self) -> list[tuple[float, str, str]]:
        """Return and forget the loop's events ``(t, kind, detail)`` since the last call."""
        events, self._events = self._events, []
        return events

    def update(self, t: float, heart: HeartLike | None, plain: SoundTargets) -> SoundTargets:
        """Adapt the plain targets at ``t`` s to ``heart`` (or ``None``: no sensor)."""
        if self._t_first is None:
            self._t_first = t
        dt = 0.0 if self._t_last is None else min(max(t - self._t_last, 0.0), 5.0)
        self._t_last = t
        # The pacer played since the last tick, as the breathing estimate will show it.
        self._watch.see_pacer(t, dt, self.pacer_bpm)
        good = self._watch.observe(t, dt, heart)

        if self.state == "open-loop":
            if not good:
                return self._emit(plain)
            assert heart is not None
            self._engage(t, heart, plain)
        elif self.state in ("frozen", "fallback"):
            since = self._watch.good_since
            if good and since is not None and t - since >= self.recover_s:
                self._resume(t)
            else:
                return self._emit(self._hold_or_fall_back(t, plain))
        elif not good:
            self._freeze(t)
            return self._emit(self._hold_or_fall_back(t, plain))
        assert heart is not None
        return self._emit(self._adapt(t, dt, heart, plain))

    def status(self) -> dict[str, Any]:
        """State, reason, pacer and entrainment rates for the status line."""
        return {
            "loop_state": self.state,
            "loop_reason": self.reason,
            "pacer_bpm": self.pacer_bpm,
            "entrain_hz": self.entrain_hz,
            "pacer_target_bpm": self.goal_bpm,
            "resonance_plan": None if self.assessment is None else self.assessment.plan.kind,
        }

    def __repr__(self) -> str:
        pacer = "off" if self.pacer_bpm is None else f"{self.pacer_bpm:.2f}/min"
        return f"<ClosedLoop {self.state} pacer={pacer} target={self.goal_bpm:g}/min>"

    # --- transitions ------------------------------------------------------------------------

    def _set_state(self, t: float, state: str, reason: str, event: str | None = None) -> None:
        if event is not None:
            self._events.append((t, event, reason))
        self.state, self.reason = state, reason

    def _engage(self, t: float, heart: HeartLike, plain: SoundTargets) -> None:
        breathing = _finite(heart.breathing_bpm)
        at_start = t - (self._t_first or t) < 5.0
        if plain.pacer_bpm is None:
            self._p = None
        elif at_start and breathing is not None:
            self._p = min(max(breathing, self.goal_bpm), self.start_cap_bpm)
        else:
            self._p = plain.pacer_bpm if self._out is None else self._out.pacer_bpm
            if self._p is not None:
                self._p = min(self._p, self.start_cap_bpm)
        self._e = plain.entrain_hz
        if self._p is not None and not (at_start and breathing is not None):
            # Their breathing is not known yet: meet it when the first estimate arrives.
            self._anchor.until = t + self.anchor_s
        start = "off" if self._p is None else f"{self._p:.1f}/min"
        known = "unknown" if breathing is None else f"{breathing:.1f}/min"
        self._set_state(t, "adapting", f"pacer starts at {start} (breathing {known})", "adapt")

    def _freeze(self, t: float) -> None:
        out = self._out
        # Nothing sent yet: nothing to hold, the plain timeline plays.
        self._frozen = None if out is None else (out.pacer_bpm, out.entrain_hz)
        self._watch.high_since = None
        if self.assessment is not None:
            self.assessment.interrupt()
        self._set_state(t, "frozen", "no contact or low signal quality")

    def _resume(self, t: float) -> None:
        out = self._out
        if out is not None:
            self._p = out.pacer_bpm if out.pacer_bpm is not None else self._p
            self._e = out.entrain_hz
        self._frozen, self._fallback_t = None, None
        self._watch.restart_coherence()
        self._set_state(t, "adapting", f"{self.recover_s:g} s of good signal", "recovery")

    def _hold_or_fall_back(self, t: float, plain: SoundTargets) -> SoundTargets:
        if self._frozen is None:
            return plain
        bad_since = self._watch.bad_since
        bad_for = 0.0 if bad_since is None else t - bad_since
        if self.state == "frozen" and bad_for >= self.freeze_to_fallback_s:
            self._fallback_t = t
            self._set_state(
                t, "fallback", f"no good signal for {self.freeze_to_fallback_s:g} s", "fallback"
            )
        into = (t - (self._fallback_t or t)) / self.fallback_glide_s
        w = 0.0 if self.state == "frozen" else curve_weight(into, "S")
        if w >= 1.0:
            self._p = plain.pacer_bpm if plain.pacer_bpm is not None else self._p
            self._e = plain.entrain_hz
        return _blend(self._frozen, plain, w)

    # --- adaptation -------------------------------------------------------------------------

    def _adapt(self, t: float, dt: float, heart: HeartLike, plain: SoundTargets) -> SoundTargets:
        # The slowest-to-fall view of their breathing: the highest estimate of the last
        # breath_hold_s, so a momentary dip never lets the pacer pull ahead.
        breathing = self._watch.track_breathing(t, _finite(heart.breathing_bpm))
        paced = plain.pacer_bpm is not None
        if self._anchor.until is not None and self._p is not None:
            met = self._anchor.check(t, breathing if paced else None, self._p, self.start_cap_bpm)
            if met is not None:
                self._events.append((t, "adapt", met))
        if self._anchor.goal is not None and paced and self._p is not None:
            return self._anchor_step(t, dt, plain)
        falling = self._watch.coherence_falling()
        lag = None if breathing is None or self._p is None or not paced else breathing - self._p
        # Hysteresis: hold beyond lag_hold, resume once they are within lag_resume.
        self._lagging = lag is not None and (
            lag > self.lag_hold_bpm or (self._lagging and lag > self.lag_resume_bpm)
        )
        lagging = self._lagging
        goal = self.goal_bpm
        settled = (
            breathing is not None
            and self.assessment is None
            and self._p is not None
            and self._p <= goal + 0.05
            and self._watch.high_since is not None
            and t - self._watch.high_since >= self.settle_s
        )
        if self._p is None and plain.pacer_bpm is not None:
            # The program switched the pacer on (it was off when the loop engaged).
            self._p = min(plain.pacer_bpm, self.start_cap_bpm)
        hold = lagging or falling or (paced and breathing is None)
        waiting = False
        if plain.pacer_bpm is not None and self._p is not None:
            p_prev = self._p
            step = self.glide_bpm_per_min / 60.0 * dt
            # Only the assessment's step back up to a candidate rate may rise, and not
            # while the heart speeds up.
            up = not hold and not settled and goal > p_prev + 1e-9
            if settled:
                assert breathing is not None
                own = min(max(breathing, TARGET_RANGE_BPM[0]), p_prev)
                new = max(own, p_prev - step)
            elif hold:
                new = p_prev
            elif up:
                new = p_prev if self._watch.heart_rising() else min(goal, p_prev + step)
            else:
                lead = _plan_shift(
                    self.program_min_pacer_bpm, self.pacer_target_bpm, self.assessment
                )
                new = max(p_prev - step, goal, plain.pacer_bpm - lead)
            if breathing is not None:
                # Never leave the listener behind: a step stays within lag_resume of them.
                floor = min(p_prev, breathing - self.lag_resume_bpm)
                waiting = not hold and not settled and floor > new and new < p_prev
                new = max(new, floor)
            self._p = new if up else min(new, p_prev)
        self._e = self._adapt_entrainment(dt, plain.entrain_hz, (hold or waiting) and not settled)
        if self.assessment is not None and self._p is not None and paced:
            # Following: none of the loop's gates holds the pacer back. The step records
            # the breathing estimate itself, not the held peak the gates use.
            following = not (hold or waiting or settled) and lag is not None
            for detail in self.assessment.tick(
                dt, self._p, _finite(heart.hr_beat_bpm), _finite(heart.breathing_bpm), following
            ):
                self._events.append((t, "resonance", detail))
        if settled:
            event = None if self.state == "settled" else "settled"
            self._set_state(t, "settled", "coherence high for 60 s: following the listener", event)
        elif hold or waiting:
            self._set_state(t, "holding", _hold_reason(lagging, waiting, breathing))
        else:
            self._set_state(t, "adapting", "listener follows")
        pacer = None if plain.pacer_bpm is None else self._p
        return plain.with_changes(pacer_bpm=pacer, entrain_hz=self._e)

    def _anchor_step(self, t: float, dt: float, plain: SoundTargets) -> SoundTargets:
        """Glide to the breathing first estimated after the start (see :class:`_Anchor`)."""
        assert self._p is not None and self._anchor.goal is not None
        goal = self._anchor.goal
        self._p = self._anchor.step(self._p, dt)
        self._e = self._adapt_entrainment(dt, plain.entrain_hz, True)
        self._set_state(t, "adapting", f"meeting the listener's breathing ({goal:.1f}/min)")
        return plain.with_changes(pacer_bpm=self._p, entrain_hz=self._e)

    def _adapt_entrainment(self, dt: float, plan_hz: float, hold: bool) -> float:
        e = plan_hz if self._e is None else self._e
        return _entrain_step(e, plan_hz, self.entrain_hz_per_min / 60.0 * dt, hold)

    def _emit(self, targets: SoundTargets) -> SoundTargets:
        self._out = targets
        return targets
