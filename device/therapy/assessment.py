"""The resonance assessment inside one session: step through candidate rates, measure each.

:class:`Assessment` runs a :class:`~device.therapy.resonance.SessionPlan`, ticked by the
closed loop (``device.therapy.closed_loop``): it names the candidate rate the pacer is to
reach, counts the time the listener follows it and measures per breath of the pacer the
heart's peak-to-trough swing, the power of the interval series at the breathing rate (a
one-breath DFT) and the phase of the heart rate against the pacer. Each tick is a few sums:
no arrays, one small result per finished breath.
"""

from __future__ import annotations

import math

from device.therapy.resonance import (
    DWELL_S,
    EARLY_STOP_SHARE,
    MIN_CYCLE_SAMPLES,
    MIN_CYCLES,
    PLANS,
    RETURN_PAUSE_S,
    SETTLE_IN_S,
    STEP_BPM,
    SessionMeasurements,
    SessionPlan,
    StepResult,
    fmt_bpm,
)


class _Breaths:
    """Per breath of the pacer: HR high and low, one-cycle DFTs of HR and of the intervals."""

    __slots__ = (
        "_c",
        "_hi",
        "_hr",
        "_hr_im",
        "_hr_re",
        "_ibi",
        "_ibi_im",
        "_ibi_re",
        "_index",
        "_lo",
        "_n",
        "_ok",
        "_s",
    )

    def __init__(self) -> None:
        self._index: int | None = None
        self._ok = False
        self._clear()

    def _clear(self) -> None:
        self._n = 0
        self._hi, self._lo = -math.inf, math.inf
        self._hr_re = self._hr_im = self._ibi_re = self._ibi_im = 0.0
        self._hr = self._ibi = self._c = self._s = 0.0

    def spoil(self) -> None:
        """The breath under way does not count (the listener stopped following)."""
        self._ok = False

    def add(self, phase: float, hr: float) -> tuple[float, complex, float] | None:
        """Add a heart-rate sample at pacer ``phase`` (cycles); a finished breath's figures.

        Returns ``(swing_bpm, hr_dft, ibi_power_ms2)`` when ``phase`` begins a new breath and
        the previous one was whole and followed throughout.
        """
        index = math.floor(phase)
        out = None
        if index != self._index:
            n = self._n
            if self._index is not None and self._ok and n >= MIN_CYCLE_SAMPLES:
                # The samples never cover a breath exactly: take the mean out of the DFT.
                basis = complex(self._c, -self._s)
                hr_dft = complex(self._hr_re, self._hr_im) - self._hr / n * basis
                ibi_dft = complex(self._ibi_re, self._ibi_im) - self._ibi / n * basis
                out = (
                    self._hi - self._lo,
                    hr_dft * (2.0 / n),
                    0.5 * abs(ibi_dft * (2.0 / n)) ** 2,
                )
            self._index, self._ok = index, True
            self._clear()
        angle = 2.0 * math.pi * (phase - index)
        c, s = math.cos(angle), math.sin(angle)
        ibi_ms = 60000.0 / hr
        self._n += 1
        self._hi, self._lo = max(self._hi, hr), min(self._lo, hr)
        self._hr += hr
        self._ibi += ibi_ms
        self._c += c
        self._s += s
        self._hr_re += hr * c
        self._hr_im -= hr * s
        self._ibi_re += ibi_ms * c
        self._ibi_im -= ibi_ms * s
        return out


class _Step:
    """Running sums of the breaths measured at one candidate rate."""

    __slots__ = ("breath_n", "breath_sum", "cycles", "dft", "dft_abs", "paced", "power", "swing")

    def __init__(self, paced: float) -> None:
        self.paced = paced
        self.cycles = 0
        self.swing = self.power = self.dft_abs = self.breath_sum = 0.0
        self.breath_n = 0
        self.dft = 0j

    def add(self, swing: float, dft: complex, power: float, breathing: float | None) -> None:
        self.cycles += 1
        self.swing += float(swing)
        self.power += float(power)
        self.dft += dft
        self.dft_abs += abs(dft)
        if breathing is not None:
            self.breath_sum += float(breathing)
            self.breath_n += 1

    def result(self) -> StepResult | None:
        if self.cycles < MIN_CYCLES or self.breath_n == 0:
            return None
        n = self.cycles
        # HR ~ sin(2 pi phase + theta) has the one-cycle DFT -i e^(i theta).
        theta = math.degrees(math.atan2(self.dft.imag, self.dft.real)) + 90.0
        theta = (theta + 180.0) % 360.0 - 180.0
        locking = abs(self.dft) / self.dft_abs if self.dft_abs > 0.0 else 0.0
        return StepResult(
            paced_bpm=self.paced,
            breathing_bpm=self.breath_sum / self.breath_n,
            swing_bpm=self.swing / n,
            ibi_power_ms2=self.power / n,
            phase_deg=theta,
            locking=locking,
            cycles=n,
        )


class Assessment:
    """Runs a :class:`SessionPlan` inside one session, ticked by the closed loop.

    The loop glides to :attr:`goal_bpm` with all its gates and calls :meth:`tick` every
    control tick, saying whether the listener follows the pacer there. A candidate is done
    after ``DWELL_S`` of following (the breaths after ``SETTLE_IN_S`` are measured); the
    next is ``STEP_BPM`` lower. Descending stops early once the swing has clearly peaked;
    then the pacer steps back up to the best rate, ``STEP_BPM`` at a time.
    """

    def __init__(self, plan: SessionPlan) -> None:
        if plan.kind not in PLANS or not plan.candidates:
            raise ValueError(f"a plan needs a kind of {PLANS} and candidates, not {plan!r}")
        self.plan = plan
        self._index = 0
        self._dwell = 0.0
        #: The last tick followed too: the time since counts as followed.
        self._followed = False
        self._phase = 0.0
        self._breaths = _Breaths()
        self._step = _Step(plan.candidates[0])
        self._results: list[StepResult] = []
        #: Rate stepped back up to (after the descent), ``None`` until then.
        self._returning: float | None = None
        self._best: float | None = None
        self._pause = 0.0

    @property
    def goal_bpm(self) -> float:
        """The rate the pacer is to reach now, breaths/min."""
        if self._returning is not None:
            return self._returning
        return self.plan.candidates[min(self._index, len(self.plan.candidates) - 1)]

    @property
    def stepping(self) -> bool:
        """True while candidates remain to be measured (the loop does not settle)."""
        return self.plan.kind != "pace" and self._returning is None

    @property
    def lowest_bpm(self) -> float:
        """The slowest rate this plan paces."""
        return min(self.plan.candidates)

    @property
    def results(self) -> tuple[StepResult, ...]:
        """The steps measured so far."""
        return tuple(self._results)

    def interrupt(self) -> None:
        """The signal was lost: the candidate under way starts again."""
        if self.stepping:
            self._dwell = 0.0
            self._step = _Step(self.goal_bpm)
        self._followed = False
        self._breaths.spoil()

    def tick(
        self,
        dt: float,
        pacer_bpm: float,
        hr_bpm: float | None,
        breathing: float | None,
        following: bool,
    ) -> list[str]:
        """Advance by ``dt`` s at ``pacer_bpm``; event details of steps finished or begun."""
        self._phase += pacer_bpm / 60.0 * dt
        at_goal = abs(pacer_bpm - self.goal_bpm) < 0.01
        following = following and at_goal and hr_bpm is not None
        if not following:
            self._breaths.spoil()
        if self._returning is not None:
            return self._tick_return(dt, at_goal)
        if hr_bpm is not None:
            self._measure(hr_bpm, breathing, following and self._dwell >= SETTLE_IN_S)
        if not following:
            self._followed = False
            return []
        if self._followed:
            self._dwell += dt
        self._followed = True
        if self.plan.kind == "pace" or self._dwell < DWELL_S:
            return []
        return self._next_step()

    def _measure(self, hr_bpm: float, breathing: float | None, measuring: bool) -> None:
        """Add a heart-rate sample to the breath being gathered; a finished breath counts
        for the step while ``measuring`` (settled in and followed), else it is spoiled."""
        breath = self._breaths.add(self._phase, hr_bpm)
        if breath is not None and measuring:
            self._step.add(*breath, breathing)
        elif not measuring:
            self._breaths.spoil()

    def _next_step(self) -> list[str]:
        """Close the step (its result kept): the next rate, or the return to the best one."""
        events: list[str] = []
        result = self._step.result()
        if result is not None:
            self._results.append(result)
            events.append(result.detail())
        self._index += 1
        self._dwell = 0.0
        if self._index >= len(self.plan.candidates) or self._peaked():
            self._begin_return()
            events.append(
                f"assessed {len(self._results)} rates: pacing at {fmt_bpm(self.goal_bpm)}/min"
            )
        else:
            self._step = _Step(self.goal_bpm)
            events.append(f"next rate {fmt_bpm(self.goal_bpm)}/min")
        return events

    def _peaked(self) -> bool:
        """Whether the swing peaked: at least two rates after the largest swung clearly less."""
        swings = [r.swing_bpm for r in self._results]
        if len(swings) < 3:
            return False
        best = max(range(len(swings)), key=swings.__getitem__)
        after = swings[best + 1 :]
        return len(after) >= 2 and all(s <= EARLY_STOP_SHARE * swings[best] for s in after)

    def _begin_return(self) -> None:
        here = self.plan.candidates[min(self._index, len(self.plan.candidates)) - 1]
        if self._results:
            best = max(self._results, key=lambda r: r.swing_bpm).paced_bpm
        else:
            best = self.plan.pace_bpm if self.plan.pace_bpm is not None else here
        self._best = best
        self._returning = min(best, here + STEP_BPM) if best > here else best
        self._pause = 0.0

    def _tick_return(self, dt: float, at_goal: bool) -> list[str]:
        assert self._returning is not None and self._best is not None
        if not at_goal or self._returning >= self._best - 1e-9:
            self._pause = 0.0
            return []
        self._pause += dt
        if self._pause < RETURN_PAUSE_S:
            return []
        self._returning = min(self._best, self._returning + STEP_BPM)
        self._pause = 0.0
        return [f"back up to {fmt_bpm(self._returning)}/min"]

    def finish(self) -> SessionMeasurements:
        """The session's measurements; a step under way counts if it has enough breaths."""
        results = list(self._results)
        if self._returning is None:
            partial = self._step.result()
            if partial is not None:
                results.append(partial)
        return SessionMeasurements(self.plan.kind, tuple(results))

    def __repr__(self) -> str:
        return (
            f"<Assessment {self.plan.kind} goal={self.goal_bpm:g}/min "
            f"steps={len(self._results)}/{len(self.plan.candidates)}>"
        )
