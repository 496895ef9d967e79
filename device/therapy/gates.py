"""The closed loop's gates: each one condition on the listener and what it does to the pacer.

:class:`~device.therapy.closed_loop.ClosedLoop` asks these every control tick (the table of
gate, condition and action is in docs/programs.md, "The closed loop as gates"). Rates are
breaths/min (pacer) or Hz (entrainment), times seconds. Each gate is a small object (when it
remembers something between ticks) or a pure function:

* :class:`MeetGate`: meet the first breathing estimate, once, only up, only a lagging
  listener's, only once the estimate has stopped coming down;
* :class:`LagGate`: hold while the listener lags the pacer, with hysteresis;
* :func:`settles`: at the goal with coherence high long enough, follow the listener;
* :func:`floor_step`: a step never leaves the listener more than ``lag_resume`` behind;
* :func:`glide_step`, :func:`rise_step`, :func:`settle_step`: where the pacer moves when no
  gate holds it (toward the plan, back up to a candidate rate, or with the listener);
* :class:`ReleaseGate`: let go of a listener who has not followed for minutes;
* :func:`entrain_step`: the entrainment follows the program's timeline;
* :class:`SignalGate`: with no contact or low quality freeze at once, after a while glide
  back to the plain timeline; :func:`plan_lead`: how far the plan is shifted to the target.

The coherence and heart-rate gates are questions to the loop's
:class:`~device.therapy.loop_signal.SignalWatch` (``coherence_falling``,
``heart_rising``), which also says since when the signal is good or bad.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from device.therapy.timeline import curve_weight

if TYPE_CHECKING:
    from device.sound.targets import SoundTargets
    from device.therapy.assessment import Assessment

#: Hard rate limit of any adapted tempo: 1 per 15 s, in units per second.
MAX_TEMPO_RATE_PER_S = 1.0 / 15.0

#: The lowest rate the loop ever paces, breaths/min (the target range's bottom).
LOWEST_BPM = 4.5

#: The first breathing estimate is met only once it has stopped coming down: over this
#: long, s, it fell by less than :data:`ANCHOR_CLOSING` of its distance to the pacer.
ANCHOR_SETTLE_S = 10.0
ANCHOR_CLOSING = 0.1

#: The program's slow part: where its plan is within this of its slowest rate, /min. A
#: session with a resonance plan paces its slowest rate (the estimate) all through it.
SLOW_PART_BPM = 0.5

#: How far above the loop's plan the pacer counts as behind it, and how far it must fall to
#: count as followed, breaths/min.
BEHIND_BPM = 0.5


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the holding gates say this tick.

    ``lag``: breathing minus pacer (``None`` unknown); ``lagging``: the lag gate holds;
    ``falling``: coherence falls; ``unknown``: paced with no breathing estimate;
    ``settled``: the settle gate lets the pacer follow the listener.
    """

    lag: float | None
    lagging: bool
    falling: bool
    unknown: bool
    settled: bool

    @property
    def hold(self) -> bool:
        """Some gate holds the pacer where it is."""
        return self.lagging or self.falling or self.unknown

    @property
    def free(self) -> bool:
        """No gate holds the pacer and it is not settled: it may glide."""
        return not self.hold and not self.settled


class MeetGate:
    """Meeting the listener's first breathing estimate: once, only up, 1/min per 15 s.

    ``until``: while set, the first breathing estimate before it is met; ``goal``: the rate
    the pacer glides to meet it (``None`` when there is nothing to meet).

    The first estimate is stale: its 64-s window still covers the breathing before the
    pacer took hold, so a listener who already follows shows a rate well above where they
    breathe now (#23.16: 10.94 while breathing 10.5). So the estimate is met only once it
    has stopped coming down toward the pacer (over ``ANCHOR_SETTLE_S`` it fell by less
    than ``ANCHOR_CLOSING`` of the gap) and then only if the listener lags the pacer by
    more than ``lag_hold``: one within that is left to the gated glide, which waits for them.
    """

    __slots__ = ("_seen", "goal", "until")

    def __init__(self) -> None:
        self.until: float | None = None
        self.goal: float | None = None
        self._seen: deque[tuple[float, float]] = deque()

    def check(
        self, t: float, breathing: float | None, pacer: float, cap: float, lag_hold: float
    ) -> str | None:
        """Look at the estimate ``breathing`` at ``t``; the event detail when it is to be met."""
        if t > (self.until or t):
            self.until = None
            return None
        if breathing is None or not self._settled(t, breathing, pacer):
            return None
        self.until = None
        # Only ever up to meet them, and only when they lag: a slower first estimate is
        # left to the gated glide, so one noisy low estimate cannot drop the pacer.
        goal = min(breathing, cap)
        if breathing - pacer > lag_hold and goal > pacer:
            self.goal = goal
            return f"pacer meets the breathing: {goal:.1f}/min"
        return None

    def _settled(self, t: float, breathing: float, pacer: float) -> bool:
        """The estimate has been seen for ``ANCHOR_SETTLE_S`` and no longer comes down."""
        seen = self._seen
        seen.append((t, breathing))
        while len(seen) > 1 and seen[1][0] <= t - ANCHOR_SETTLE_S:
            seen.popleft()
        since, first = seen[0]
        if t - since < ANCHOR_SETTLE_S:
            return False
        return first - breathing <= ANCHOR_CLOSING * max(breathing - pacer, 0.0)

    def step(self, pacer: float, dt: float) -> float:
        """The pacer ``dt`` s further toward :attr:`goal`, at the hard rate limit."""
        assert self.goal is not None
        goal, step = self.goal, MAX_TEMPO_RATE_PER_S * dt
        pacer = min(goal, pacer + step) if goal > pacer else max(goal, pacer - step)
        if pacer == goal:
            self.goal = None
        return pacer


class LagGate:
    """Hold while the listener's breathing lags the pacer by more than ``hold_bpm``.

    Hysteresis: once holding, it holds until they are within ``resume_bpm`` (<= hold).
    """

    __slots__ = ("hold_bpm", "lagging", "resume_bpm")

    def __init__(self, hold_bpm: float, resume_bpm: float) -> None:
        self.hold_bpm, self.resume_bpm = hold_bpm, resume_bpm
        #: The gate holds now.
        self.lagging = False

    def update(self, lag: float | None) -> bool:
        """Take in the lag (breathing minus pacer, ``None`` unknown); True while it holds."""
        self.lagging = lag is not None and (
            lag > self.hold_bpm or (self.lagging and lag > self.resume_bpm)
        )
        return self.lagging


def settles(
    t: float,
    breathing: float | None,
    pacer: float | None,
    goal: float,
    high_since: float | None,
    settle_s: float,
) -> bool:
    """The settle gate: the pacer at ``goal`` (within 0.05) and coherence high since
    ``high_since`` for ``settle_s``, with a breathing estimate: follow the listener.
    """
    return (
        breathing is not None
        and pacer is not None
        and pacer <= goal + 0.05
        and high_since is not None
        and t - high_since >= settle_s
    )


def settle_step(pacer: float, step: float, breathing: float) -> float:
    """Settled: one ``step`` down toward the listener's own rate, never up, never below 4.5."""
    own = min(max(breathing, LOWEST_BPM), pacer)
    return max(own, pacer - step)


def glide_step(pacer: float, step: float, goal: float, plan: float) -> float:
    """Free: one ``step`` down, never below the ``goal`` nor ahead of the (shifted) ``plan``."""
    return max(pacer - step, goal, plan)


def rise_step(pacer: float, step: float, goal: float, heart_rising: bool) -> float:
    """Back up to an assessment's candidate ``goal`` by a ``step``; not while the heart rises."""
    return pacer if heart_rising else min(goal, pacer + step)


def floor_step(
    before: float, new: float, breathing: float, resume_bpm: float, free: bool
) -> tuple[float, bool]:
    """Never leave the listener behind: a step from ``before`` to ``new`` stays within
    ``resume_bpm`` of their ``breathing``. Returns the pacer and whether it waits for
    them (``free``: no other gate held it, and this one did).
    """
    floor = min(before, breathing - resume_bpm)
    waiting = free and floor > new and new < before
    return max(new, floor), waiting


def entrain_step(e: float, plan_hz: float, step: float) -> float:
    """The entrainment rate ``e`` one tick (of at most ``step`` Hz) toward ``plan_hz``.

    The entrainment follows the program's timeline whatever the breathing does (only a lost
    pulse freezes it): the listener who does not do the breathing, or who fell asleep, is
    the one a descent is for.
    """
    if plan_hz < e:
        return max(plan_hz, e - step)
    # Only the program raises it (a wake ramp), four times faster; the heart never does.
    return min(plan_hz, e + 4.0 * step) if plan_hz > e else e


class ReleaseGate:
    """Letting go of a listener who has not followed the pacer for ``after_s`` (#23.14).

    The pacer is *behind* while it is more than :data:`BEHIND_BPM` above the loop's plan
    (the program's rate, shifted to the target); it is *followed* each time it falls by
    :data:`BEHIND_BPM` more. Behind and not followed for ``after_s``: the loop lets go (the
    swell fades over ``fade_s``, the pacer returns to the plan) until the listener breathes
    within reach of the plan again. :attr:`gain` is the swell's share (1: as the program says).
    """

    __slots__ = ("_ref", "_since", "after_s", "fade_s", "gain", "released")

    def __init__(self, after_s: float, fade_s: float) -> None:
        self.after_s, self.fade_s = after_s, fade_s
        self.released = False
        self.gain = 1.0
        self._since: float | None = None
        self._ref = 0.0

    def due(self, t: float, pacer: float | None, plan: float | None) -> bool:
        """True when the pacer at ``t`` has been behind ``plan`` and not followed long enough."""
        if pacer is None or plan is None or pacer - plan <= BEHIND_BPM:
            self._since = None
            return False
        if self._since is None or self._ref - pacer >= BEHIND_BPM:
            self._since, self._ref = t, pacer
            return False
        return t - self._since >= self.after_s

    def fade(self, dt: float) -> None:
        """Move the swell's :attr:`gain` ``dt`` s further toward 0 (released) or 1."""
        step = dt / self.fade_s
        self.gain = max(0.0, self.gain - step) if self.released else min(1.0, self.gain + step)

    def let_go(self) -> None:
        """Release the listener: the swell fades, the pacer returns to the plan."""
        self.released, self._since = True, None

    def rejoin(self) -> None:
        """The listener breathes within reach of the plan again: the swell returns."""
        self.released = False

    def back(self, pacer: float, plan: float, breathing: float | None, resume_bpm: float) -> bool:
        """Released, the pacer at the ``plan`` and their ``breathing`` within
        ``resume_bpm`` of it: the listener follows again.
        """
        near = pacer <= plan + 0.05
        return near and breathing is not None and breathing - pacer <= resume_bpm


def toward(value: float, goal: float, step: float) -> float:
    """``value`` moved by at most ``step`` toward ``goal``."""
    return min(goal, value + step) if goal > value else max(goal, value - step)


def plan_lead(program_min: float | None, target: float, assessment: Assessment | None) -> float:
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


def hold_reason(lagging: bool, waiting: bool, breathing: float | None) -> str:
    """Why the pacer holds, for the status line."""
    if lagging:
        return f"breathing {breathing:.1f}/min lags the pacer"
    if waiting:
        return f"waiting for breathing ({breathing:.1f}/min) to follow"
    if breathing is None:
        return "waiting for a breathing estimate"
    return "coherence falling"


class SignalGate:
    """No contact or low quality: freeze at once, after ``freeze_s`` fall back.

    Frozen, the sound holds the pacer and entrainment last sent (:attr:`frozen`); falling
    back, it glides from there to the plain timeline over ``glide_s`` (an S curve). The
    loop resumes adapting after ``recover_s`` of good signal (:meth:`recovered`).
    """

    __slots__ = ("fallback_t", "freeze_s", "frozen", "glide_s", "recover_s")

    def __init__(self, freeze_s: float, glide_s: float, recover_s: float) -> None:
        self.freeze_s, self.glide_s, self.recover_s = freeze_s, glide_s, recover_s
        #: Pacer and entrainment held since the freeze (``None``: nothing was sent yet).
        self.frozen: tuple[float | None, float] | None = None
        #: When the fallback began (``None`` while frozen or adapting).
        self.fallback_t: float | None = None

    def freeze(self, out: SoundTargets | None) -> None:
        """Hold what was last sent (``None``: nothing was, the plain timeline plays)."""
        self.frozen = None if out is None else (out.pacer_bpm, out.entrain_hz)

    def recovered(self, t: float, good: bool, good_since: float | None) -> bool:
        """The signal has been good since ``good_since`` for ``recover_s`` at ``t``."""
        return good and good_since is not None and t - good_since >= self.recover_s

    def clear(self) -> None:
        """Adapting again: nothing held."""
        self.frozen, self.fallback_t = None, None

    def falls_back(self, t: float, bad_since: float | None) -> bool:
        """Frozen at ``t``: True (once) when the signal has been bad for ``freeze_s``."""
        bad_for = 0.0 if bad_since is None else t - bad_since
        if bad_for >= self.freeze_s:
            self.fallback_t = t
            return True
        return False

    def weight(self, t: float, falling_back: bool) -> float:
        """How far (0..1) the sound has glided from the frozen rates to the timeline."""
        if not falling_back:
            return 0.0
        return curve_weight((t - (self.fallback_t or t)) / self.glide_s, "S")

    def blend(self, plain: SoundTargets, w: float) -> SoundTargets:
        """``plain`` with pacer and entrainment ``w`` (0..1) of the way from the frozen ones."""
        assert self.frozen is not None
        p_frozen, e_frozen = self.frozen
        if plain.pacer_bpm is None or p_frozen is None:
            pacer = plain.pacer_bpm
        else:
            pacer = p_frozen + (plain.pacer_bpm - p_frozen) * w
        entrain = e_frozen + (plain.entrain_hz - e_frozen) * w
        return plain.with_changes(pacer_bpm=pacer, entrain_hz=entrain)
