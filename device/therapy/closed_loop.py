"""The heart-aware closed loop: pace the listener's breathing down as fast as they follow.

:class:`ClosedLoop` takes the plain timeline's :class:`~device.sound.targets.SoundTargets`
and the latest heart state each control tick and returns adapted targets. Each tick it asks
its gates (``device.therapy.gates``; the table of gate, condition and action is in
docs/programs.md, "The closed loop as gates"):

* signal: no contact or low quality freezes the sound at once; after 10 s it glides to the
  plain timeline over 30 s; 10 s of good signal resume adaptation from where the sound is;
* start and meet: the pacer starts at the listener's breathing (capped at 11/min), or at the
  program's rate while it is unknown, and meets a lagging first estimate once it settles;
* lag, coherence, estimate: the pacer holds while the listener lags (1.5/min, resuming
  within 1/min), while coherence falls, or while there is no breathing estimate;
* floor: a step never leaves the listener more than 1/min behind;
* glide: otherwise it glides toward the goal (the target, 6/min; or the resonance
  assessment's candidate, ``device.therapy.assessment``), never ahead of the program's
  plan shifted to the goal, at ``glide_bpm_per_min``; rise: it steps back up only to an
  assessment's candidate, never while the heart speeds up;
* settle: at the target with coherence high for 60 s, it follows the listener down;
* release: not followed for 5 min, the swell fades and the pacer plays the plan;
* entrainment: follows the program's timeline; only the signal gate freezes it.

Nothing adapted ever speeds up because the heart speeds up, every adapted rate is
rate-limited, and levels are always the timeline's (the swell only ever fades). The loop's
view of the heart is a :class:`~device.therapy.loop_signal.SignalWatch`; only ``hr_bpm``,
``hr_beat_bpm``, ``coherence``, ``breathing_bpm``, ``quality`` and ``contact`` are read of
the heart state (:class:`~device.therapy.loop_signal.HeartLike`).
"""

from __future__ import annotations

from typing import Any

from device.sound.targets import SoundTargets
from device.therapy.assessment import Assessment
from device.therapy.gates import (
    LagGate,
    MeetGate,
    ReleaseGate,
    SignalGate,
    Verdict,
    entrain_step,
    floor_step,
    glide_step,
    hold_reason,
    plan_lead,
    rise_step,
    settle_step,
    settles,
    toward,
)
from device.therapy.loop_settings import LoopSettings
from device.therapy.loop_signal import HeartLike, SignalWatch
from device.therapy.loop_signal import finite as _finite
from device.therapy.resonance import ResonanceEstimate, SessionMeasurements, SessionPlan

#: Loop states, as shown in the status.
STATES = ("open-loop", "adapting", "holding", "settled", "released", "frozen", "fallback")


class ClosedLoop:
    """Adapts the plain timeline to the listener's heart and breathing.

    All rates are in breaths/min (pacer) or Hz (entrainment); times in seconds.
    ``program_min_pacer_bpm`` is the slowest rate the program itself paces (its plan's end),
    used to shift the plan so that it ends at ``pacer_target_bpm``.
    """

    def __init__(
        self,
        *,
        program_min_pacer_bpm: float | None = None,
        resonance: ResonanceEstimate | SessionPlan | None = None,
        **settings: float,
    ) -> None:
        #: The loop's settings (``device.therapy.loop_settings``), each range-checked.
        self.cfg = LoopSettings(**settings)
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
        self._lag = LagGate(self.cfg.lag_hold_bpm, self.cfg.lag_resume_bpm)
        self._watch = SignalWatch(
            self.cfg.quality_min, self.cfg.coherence_high, self.cfg.breath_hold_s
        )
        self._anchor = MeetGate()
        self._release = ReleaseGate(self.cfg.release_after_s, self.cfg.release_fade_s)
        self._e: float | None = None
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._signal = SignalGate(
            self.cfg.freeze_to_fallback_s, self.cfg.fallback_glide_s, self.cfg.recover_s
        )
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
        return self.cfg.pacer_target_bpm if self.assessment is None else self.assessment.goal_bpm

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
            if self._signal.recovered(t, good, self._watch.good_since):
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
        met = breathing if at_start else None
        self._p = self._start_pacer(plain, met)
        self._e = plain.entrain_hz
        if self._p is not None and met is None:
            # Their breathing is not known yet: meet it when the first estimate arrives.
            self._anchor.until = t + self.cfg.anchor_s
        start = "off" if self._p is None else f"{self._p:.1f}/min"
        known = "unknown" if breathing is None else f"{breathing:.1f}/min"
        self._set_state(t, "adapting", f"pacer starts at {start} (breathing {known})", "adapt")

    def _start_pacer(self, plain: SoundTargets, met: float | None) -> float | None:
        """The pacer rate the loop starts from (breaths/min, at most the start cap): the
        breathing ``met`` at the session's start (not below the goal), else what was sent
        or the plain timeline's; ``None`` when the timeline has no pacer."""
        if plain.pacer_bpm is None:
            return None
        if met is not None:
            return min(max(met, self.goal_bpm), self.cfg.start_cap_bpm)
        p = plain.pacer_bpm if self._out is None else self._out.pacer_bpm
        return None if p is None else min(p, self.cfg.start_cap_bpm)

    def _freeze(self, t: float) -> None:
        self._signal.freeze(self._out)
        self._watch.high_since = None
        if self.assessment is not None:
            self.assessment.interrupt()
        self._set_state(t, "frozen", "no contact or low signal quality")

    def _resume(self, t: float) -> None:
        out = self._out
        if out is not None:
            self._p = out.pacer_bpm if out.pacer_bpm is not None else self._p
            self._e = out.entrain_hz
        self._signal.clear()
        self._watch.restart_coherence()
        self._set_state(t, "adapting", f"{self.cfg.recover_s:g} s of good signal", "recovery")

    def _hold_or_fall_back(self, t: float, plain: SoundTargets) -> SoundTargets:
        """The signal gate: hold what was sent, then glide to the plain timeline."""
        if self._signal.frozen is None:
            return plain
        if self.state == "frozen" and self._signal.falls_back(t, self._watch.bad_since):
            reason = f"no good signal for {self.cfg.freeze_to_fallback_s:g} s"
            self._set_state(t, "fallback", reason, "fallback")
        w = self._signal.weight(t, self.state != "frozen")
        if w >= 1.0:
            self._p = plain.pacer_bpm if plain.pacer_bpm is not None else self._p
            self._e = plain.entrain_hz
        return self._signal.blend(plain, w)

    # --- adaptation -------------------------------------------------------------------------

    def _adapt(self, t: float, dt: float, heart: HeartLike, plain: SoundTargets) -> SoundTargets:
        """One tick of adaptation: ask the gates (``device.therapy.gates``), move the pacer."""
        # The slowest-to-fall view of their breathing: the highest estimate of the last
        # breath_hold_s, so a momentary dip never lets the pacer pull ahead.
        breathing = self._watch.track_breathing(t, _finite(heart.breathing_bpm))
        paced = plain.pacer_bpm is not None
        self._meet_first_estimate(t, heart, paced)
        if self._anchor.goal is not None and paced and self._p is not None:
            return self._anchor_step(t, dt, plain)
        self._release.fade(dt)
        if self._release.released:
            return self._released_step(t, dt, plain, breathing)
        verdict = self._verdict(t, breathing, paced)
        if self._p is None and plain.pacer_bpm is not None:
            # The program switched the pacer on (it was off when the loop engaged).
            self._p = min(plain.pacer_bpm, self.cfg.start_cap_bpm)
        waiting = self._pace(dt, plain, breathing, verdict)
        self._e = self._adapt_entrainment(dt, plain.entrain_hz)
        self._assess(t, dt, heart, paced, verdict, waiting)
        self._report(t, plain, breathing, verdict, waiting)
        pacer = None if plain.pacer_bpm is None else self._p
        return plain.with_changes(pacer_bpm=pacer, entrain_hz=self._e)

    def _meet_first_estimate(self, t: float, heart: HeartLike, paced: bool) -> None:
        """The meet gate (:class:`~device.therapy.gates.MeetGate`) looks at the estimate."""
        if self._anchor.until is None or self._p is None:
            return
        estimate = _finite(heart.breathing_bpm) if paced else None
        met = self._anchor.check(
            t, estimate, self._p, self.cfg.start_cap_bpm, self.cfg.lag_hold_bpm
        )
        if met is not None:
            self._events.append((t, "adapt", met))

    def _verdict(self, t: float, breathing: float | None, paced: bool) -> Verdict:
        """Ask the holding gates: lag, coherence, estimate, settle."""
        p = self._p
        lag = None if breathing is None or p is None or not paced else breathing - p
        high_since = self._watch.high_since
        settled = self.assessment is None and settles(
            t, breathing, p, self.goal_bpm, high_since, self.cfg.settle_s
        )
        return Verdict(
            lag=lag,
            lagging=self._lag.update(lag),
            falling=self._watch.coherence_falling(),
            unknown=paced and breathing is None,
            settled=settled,
        )

    def _pace(
        self, dt: float, plain: SoundTargets, breathing: float | None, verdict: Verdict
    ) -> bool:
        """Move the pacer one tick as the ``verdict`` allows; True if it waits for them."""
        if plain.pacer_bpm is None or self._p is None:
            return False
        before, goal = self._p, self.goal_bpm
        step = self.cfg.glide_bpm_per_min / 60.0 * dt
        # Only the assessment's step back up to a candidate rate may rise.
        up = verdict.free and goal > before + 1e-9
        if verdict.settled:
            assert breathing is not None
            new = settle_step(before, step, breathing)
        elif verdict.hold:
            new = before
        elif up:
            new = rise_step(before, step, goal, self._watch.heart_rising())
        else:
            lead = plan_lead(self.program_min_pacer_bpm, self.cfg.pacer_target_bpm, self.assessment)
            new = glide_step(before, step, goal, plain.pacer_bpm - lead)
        waiting = False
        if breathing is not None:
            new, waiting = floor_step(before, new, breathing, self.cfg.lag_resume_bpm, verdict.free)
        self._p = new if up else min(new, before)
        return waiting

    def _assess(
        self,
        t: float,
        dt: float,
        heart: HeartLike,
        paced: bool,
        verdict: Verdict,
        waiting: bool,
    ) -> None:
        """Tell the resonance assessment where the pacer is and whether they follow it."""
        if self.assessment is None or self._p is None or not paced:
            return
        # Following: none of the loop's gates holds the pacer back. The step records the
        # breathing estimate itself, not the held peak the gates use.
        following = verdict.free and not waiting and verdict.lag is not None
        hr, breathing = _finite(heart.hr_beat_bpm), _finite(heart.breathing_bpm)
        for detail in self.assessment.tick(dt, self._p, hr, breathing, following):
            self._events.append((t, "resonance", detail))

    def _report(
        self,
        t: float,
        plain: SoundTargets,
        breathing: float | None,
        verdict: Verdict,
        waiting: bool,
    ) -> None:
        """The state after this tick: released, settled, holding or adapting."""
        paced = plain.pacer_bpm is not None
        if paced and self._release.due(t, self._p, self._plan_pace(plain)):
            self._release.let_go()
            if self.assessment is not None:
                self.assessment.interrupt()
            minutes = self.cfg.release_after_s / 60.0
            self._set_state(t, "released", f"not followed for {minutes:g} min", "release")
        elif verdict.settled:
            event = None if self.state == "settled" else "settled"
            self._set_state(t, "settled", "coherence high for 60 s: following the listener", event)
        elif verdict.hold or waiting:
            self._set_state(t, "holding", hold_reason(verdict.lagging, waiting, breathing))
        else:
            self._set_state(t, "adapting", "listener follows")

    def _plan_pace(self, plain: SoundTargets) -> float | None:
        """Where the plan (shifted to the target, never below the goal) has the pacer now."""
        if plain.pacer_bpm is None:
            return None
        lead = plan_lead(self.program_min_pacer_bpm, self.cfg.pacer_target_bpm, self.assessment)
        return max(self.goal_bpm, plain.pacer_bpm - lead)

    def _released_step(
        self, t: float, dt: float, plain: SoundTargets, breathing: float | None
    ) -> SoundTargets:
        """Released (:class:`~device.therapy.gates.ReleaseGate`): the pacer glides to the
        plan at the glide rate; the listener rejoins once they breathe within reach of it.
        """
        plan = self._plan_pace(plain)
        self._e = self._adapt_entrainment(dt, plain.entrain_hz)
        if plan is not None and self._p is not None:
            self._p = toward(self._p, plan, self.cfg.glide_bpm_per_min / 60.0 * dt)
            if self._release.back(self._p, plan, breathing, self.cfg.lag_resume_bpm):
                assert breathing is not None
                self._release.rejoin()
                detail = f"breathing {breathing:.1f}/min follows the plan again"
                self._set_state(t, "adapting", detail, "rejoin")
        if self._release.released:
            minutes = self.cfg.release_after_s / 60.0
            reason = f"not followed for {minutes:g} min: the swell fades, the pacer plays the plan"
            self._set_state(t, "released", reason)
        pacer = None if plain.pacer_bpm is None else self._p
        return plain.with_changes(pacer_bpm=pacer, entrain_hz=self._e)

    def _anchor_step(self, t: float, dt: float, plain: SoundTargets) -> SoundTargets:
        """Glide to the breathing first estimated after the start (see :class:`_Anchor`)."""
        assert self._p is not None and self._anchor.goal is not None
        goal = self._anchor.goal
        self._p = self._anchor.step(self._p, dt)
        self._e = self._adapt_entrainment(dt, plain.entrain_hz)
        self._set_state(t, "adapting", f"meeting the listener's breathing ({goal:.1f}/min)")
        return plain.with_changes(pacer_bpm=self._p, entrain_hz=self._e)

    def _adapt_entrainment(self, dt: float, plan_hz: float) -> float:
        e = plan_hz if self._e is None else self._e
        return entrain_step(e, plan_hz, self.cfg.entrain_hz_per_min / 60.0 * dt)

    def _emit(self, targets: SoundTargets) -> SoundTargets:
        if self._release.gain < 1.0:
            targets = targets.with_changes(swell_db=targets.swell_db * self._release.gain)
        self._out = targets
        return targets
