"""Benchmark: does the box find each listener's own resonance rate, and does pacing there pay?

Simulated listeners with a resonance rate drawn in 4.5-7.0/min (width 0.8-1.5/min), who
follow the pacer (compliance 0.95-1.0, lag 8-14 s), each have five 20-minute wind-down
sessions in a row through the closed loop, the ideal heart analysis and the simulated
listener (no Box), their profile's :class:`ResonanceEstimate` carried from one to the next
as the Box does. Printed: the estimate after each session against the truth; the plan each
session ran; the heart's breathing swing (the listener's true peak-to-trough, minutes 12-18:
the wind-down's slow part) in the sessions paced at the estimate against the same session
(same listener, same seed, same loop and plan) paced at a fixed 6.0/min instead, and against
the plain closed loop's glide to 6.0/min (no resonance plan: it reaches 6.0 only at the
program's end, minute 18); listeners who do not follow; and the measurement's cost per
second of session. ``--detail`` prints each session's steps (when the first candidate was
reached; per step the paced and breathing rate and the swing measured and true).

    .venv/bin/python bench/resonance.py [--listeners 24] [--seed 1] [--detail]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from device.sim.listener import KINDS, IdealHeart, Listener
from device.sound.targets import SoundTargets
from device.therapy.assessment import Assessment
from device.therapy.program import load_program
from device.therapy.resonance import ResonanceEstimate, SessionPlan
from device.therapy.session import TherapySession

DT = 0.25
#: Window of the session whose mean swing is compared, s (the slow part, before the fade).
SWING_WINDOW_S = (12 * 60.0, 18 * 60.0)
SESSIONS = 5


@dataclass
class Outcome:
    """One session: the plan it ran, rate changes, swing, the estimate afterwards."""

    plan: str
    goals: list[float]
    swing_bpm: float
    paced_bpm: float
    estimate: float | None
    confidence: float
    stepped: int = 0
    events: list[str] = field(default_factory=list)
    #: Minute the pacer first reached the session's first goal (``None``: never).
    first_goal_min: float | None = None


class FixedRate(ResonanceEstimate):
    """An estimate that always paces at ``rate``: the same loop and plan as pacing at an
    estimate, only the rate differs (the fair comparison for the swing)."""

    def __init__(self, rate: float) -> None:
        super().__init__("fixed")
        self.rate = rate

    def plan(self) -> SessionPlan:
        """Pace at :attr:`rate`."""
        return SessionPlan("pace", (self.rate,), self.rate)


def make_listener(spec: dict[str, float], seed: int) -> Listener:
    """A listener who stays awake through the session (sleep would stop the following)."""
    return Listener({**spec, "sleep_per_h": 0.0}, seed=seed)


class RealHeart:
    """The real heart analysis of the listener's simulated PPG (``PulseModel``, 50 Hz)."""

    RATE_HZ = 50.0

    def __init__(self, listener: Listener, pulse: Any) -> None:
        from device.heart.analysis import HeartAnalyzer

        self.listener, self.pulse = listener, pulse
        self.analyzer = HeartAnalyzer(self.RATE_HZ)
        self._index = 0

    def snapshot(self, t: float) -> Any:
        """Render the PPG up to ``t`` s, feed it to the analysis, return its state."""
        from device.heart.samples import SampleBlock

        n = round(t * self.RATE_HZ) - self._index
        if n > 0:
            times = (self._index + 1 + np.arange(n)) / self.RATE_HZ
            ir, red = self.pulse.render(times)
            # nA per mA of LED drive -> counts at 10 mA and about 100 counts per nA.
            self.analyzer.feed(SampleBlock(self._index, self.RATE_HZ, ir * 1000.0, red * 1000.0))
            self._index += n
        return self.analyzer.snapshot()


def run_session(
    listener: Listener, estimate: ResonanceEstimate | None, heart: Any = None
) -> Outcome:
    """One wind-down session; folds its measurements into ``estimate`` as the Box does."""
    session = TherapySession(load_program("wind-down", []), resonance=estimate)
    heart = IdealHeart(listener) if heart is None else heart
    swings: list[float] = []
    paced: list[float] = []
    goals: list[float] = []
    t = 0.0
    stepped = 0
    first_goal: float | None = None
    events: list[str] = []
    while t < session.timeline.duration_s:
        targets = session.update(t, heart.snapshot(t))
        loop = session.loop
        assert loop is not None
        if not goals or goals[-1] != loop.goal_bpm:
            goals.append(loop.goal_bpm)
        pacer = targets.pacer_bpm
        if first_goal is None and pacer is not None and abs(pacer - goals[0]) < 0.01:
            first_goal = t / 60.0
        for when, kind, detail in session.drain_events():
            if kind == "resonance":
                events.append(f"{when / 60.0:4.1f} min {detail}")
            if kind == "resonance" and detail.startswith("next rate"):
                stepped += 1
        if SWING_WINDOW_S[0] <= t < SWING_WINDOW_S[1]:
            swings.append(listener.rsa_bpm)
            if targets.pacer_bpm is not None:
                paced.append(targets.pacer_bpm)
        listener.step(t + DT, DT, targets.pacer_bpm, targets)
        t += DT
    plan = "fixed" if session.loop is None or session.loop.assessment is None else ""
    if estimate is not None and not isinstance(estimate, FixedRate):
        assert session.loop is not None and session.loop.assessment is not None
        plan = session.loop.assessment.plan.kind
        measured = session.measurements()
        if measured is not None:
            estimate.update(measured)
            for step in measured.steps:
                true = listener.resting_swing_bpm(step.breathing_bpm)
                events.append(
                    f"  paced {step.paced_bpm:5.3f} breathing {step.breathing_bpm:5.2f}"
                    f" swing {step.swing_bpm:5.2f} (true {true:5.2f})"
                )
    return Outcome(
        plan=plan or "fixed",
        goals=goals,
        swing_bpm=statistics.fmean(swings),
        paced_bpm=statistics.fmean(paced) if paced else float("nan"),
        estimate=None if estimate is None else estimate.resonance_bpm,
        confidence=0.0 if estimate is None else estimate.confidence,
        stepped=stepped,
        events=events,
        first_goal_min=first_goal,
    )


def draw_follower(rng: random.Random) -> dict[str, float]:
    """A listener who follows the pacer, with a resonance anywhere in 4.5-7.0/min."""
    return {
        **KINDS["compliant"],
        "resonance_bpm": round(rng.uniform(4.5, 7.0), 2),
        "resonance_width_bpm": round(rng.uniform(0.8, 1.5), 2),
        "compliance": round(rng.uniform(0.95, 1.0), 3),
        "lag_s": round(rng.uniform(8.0, 14.0), 1),
        "breathing_bpm": round(rng.uniform(11.0, 15.0), 1),
        "hr_bpm": round(rng.uniform(58.0, 76.0), 1),
        "rsa_bpm": round(rng.uniform(2.5, 4.0), 2),
    }


def measurement_cost(ticks: int = 20000) -> float:
    """Seconds of CPU the assessment takes per second of session (4 ticks a second)."""
    from device.therapy.resonance import SessionPlan

    plan = SessionPlan("assess", (7.0, 6.5, 6.0, 5.5, 5.0, 4.5))
    best = float("inf")
    for _ in range(5):
        a = Assessment(plan)
        start = time.process_time()
        for i in range(ticks):
            a.tick(DT, 7.0, 62.0 + 3.0 * ((i % 40) / 40.0), 7.1, True)
        best = min(best, (time.process_time() - start) / ticks)
    return best / DT


def loop_cost(ticks: int = 20000) -> tuple[float, float]:
    """CPU per second of session of the whole closed loop without and with an assessment."""
    from device.therapy.closed_loop import ClosedLoop

    @dataclass
    class Heart:
        hr_bpm: float | None = 62.0
        hr_beat_bpm: float | None = 62.0
        coherence: float | None = 1.0
        breathing_bpm: float | None = 7.2
        quality: float = 0.9
        contact: bool = True

    plain = SoundTargets(pacer_bpm=7.0, entrain_hz=7.0)
    out = []
    for resonance in (None, ResonanceEstimate("bench")):
        best = float("inf")
        for _ in range(3):
            loop = ClosedLoop(resonance=resonance, program_min_pacer_bpm=6.0)
            heart = Heart()
            start = time.process_time()
            for i in range(ticks):
                heart.hr_beat_bpm = 62.0 + 3.0 * ((i % 40) / 40.0)
                loop.update(i * DT, heart, plain)
            best = min(best, (time.process_time() - start) / ticks)
        out.append(best / DT)
    return out[0], out[1]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listeners", type=int, default=24)
    ap.add_argument("--non-followers", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--detail", action="store_true", help="print each session's steps")
    ap.add_argument(
        "--real", type=int, default=4, help="listeners run through the real heart analysis"
    )
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    wall = time.perf_counter()

    print(f"{args.listeners} following listeners, {SESSIONS} wind-down sessions each")
    print(
        "  #  truth width comp  lag | est1  est2  est3  est5 | conf2 | plans"
        "                            | swing@6 @est  ratio | plain@6 ratio"
    )
    within05_2 = within025_5 = paced3 = 0
    far_ratios: list[float] = []
    far_plain: list[float] = []
    for n in range(args.listeners):
        spec = draw_follower(rng)
        truth = spec["resonance_bpm"]
        estimate = ResonanceEstimate(f"listener-{n}")
        outcomes = [
            run_session(make_listener(spec, seed=1000 * n + k), estimate) for k in range(SESSIONS)
        ]
        # Each session paced at the estimate against its twin paced at 6.0 the same way.
        paced_k = [k for k, o in enumerate(outcomes) if o.plan == "pace"]
        at_est = [outcomes[k].swing_bpm for k in paced_k]
        at_six = [
            run_session(make_listener(spec, seed=1000 * n + k), FixedRate(6.0)).swing_bpm
            for k in paced_k
        ]
        glide = run_session(make_listener(spec, seed=1000 * n + 99), None)
        swing_est = statistics.fmean(at_est) if at_est else float("nan")
        swing_six = statistics.fmean(at_six) if at_six else float("nan")
        ratio = swing_est / swing_six
        plain_ratio = swing_est / glide.swing_bpm
        est = [o.estimate for o in outcomes]
        within05_2 += est[1] is not None and abs(est[1] - truth) <= 0.5
        within025_5 += est[4] is not None and abs(est[4] - truth) <= 0.25
        paced3 += outcomes[2].plan == "pace"
        if abs(truth - 6.0) >= 1.0:
            far_ratios.append(ratio)
            far_plain.append(plain_ratio)

        def show(x: float | None) -> str:
            return "  -  " if x is None else f"{x:5.2f}"

        plans = ",".join(o.plan for o in outcomes)
        print(
            f" {n:2d}  {truth:4.2f}  {spec['resonance_width_bpm']:4.2f} {spec['compliance']:4.2f}"
            f" {spec['lag_s']:4.1f} | {show(est[0])} {show(est[1])} {show(est[2])} {show(est[4])}"
            f" | {outcomes[1].confidence:4.2f}  | {plans:32s} | {swing_six:5.2f} {swing_est:5.2f}"
            f" {ratio:5.2f} | {glide.swing_bpm:5.2f}  {plain_ratio:5.2f}"
        )
        if args.detail:
            for k, o in enumerate(outcomes):
                first = "never" if o.first_goal_min is None else f"{o.first_goal_min:4.1f} min"
                print(f"      session {k + 1}: {o.plan}, first goal reached at {first}")
                for line in o.events:
                    print(f"        {line}")
    total = args.listeners
    print()
    print(f"within 0.5/min after <= 2 sessions : {within05_2}/{total} (target >= 4 in 5)")
    print(f"within 0.25/min after 5 sessions   : {within025_5}/{total}")
    print(f"third session paces at the estimate: {paced3}/{total}")
    if far_ratios:
        print(
            f"swing at the estimate / at 6.0, resonance >= 1/min from 6: "
            f"min {min(far_ratios):.2f}, mean {statistics.fmean(far_ratios):.2f} "
            f"over {len(far_ratios)} listeners (target >= 1.5)"
        )
        print(
            f"  (against the plain loop's glide to 6.0: min {min(far_plain):.2f}, "
            f"mean {statistics.fmean(far_plain):.2f})"
        )

    print()
    print(f"{args.non_followers} listeners who do not follow (non-compliant kind)")
    worst_conf = 0.0
    steps = 0
    for n in range(args.non_followers):
        spec = {**KINDS["non-compliant"], "resonance_bpm": round(rng.uniform(4.5, 7.0), 2)}
        estimate = ResonanceEstimate(f"stubborn-{n}")
        outs = [
            run_session(make_listener(spec, seed=5000 + 10 * n + k), estimate)
            for k in range(SESSIONS)
        ]
        worst_conf = max(worst_conf, *(o.confidence for o in outs))
        steps += sum(o.stepped for o in outs) + sum(len(o.goals) - 1 for o in outs)
        print(
            f" {n:2d}  truth {spec['resonance_bpm']:4.2f}: confidence "
            + " ".join(f"{o.confidence:.2f}" for o in outs)
            + f", rate changes {sum(len(o.goals) - 1 for o in outs)}"
        )
    print(f"highest confidence {worst_conf:.2f} (target < 0.3); candidate steps {steps} (target 0)")

    print()
    print(f"{args.real} listeners through the real heart analysis (PulseModel PPG, 50 Hz)")
    print("  #  truth: plan, estimate (confidence) after each of three sessions")
    for n in range(args.real):
        # The beat detector loses beats once the swing passes ~18 bpm peak to trough at
        # 5/min, so these listeners' resting RSA keeps it below (5x rest at resonance).
        spec = {**draw_follower(rng), "rsa_bpm": round(rng.uniform(2.0, 3.0), 2)}
        estimate = ResonanceEstimate(f"real-{n}")
        shown = []
        for k in range(3):
            from device.sim.pulse import PulseModel

            pulse = PulseModel(7000 + 10 * n + k)
            listener = Listener({**spec, "sleep_per_h": 0.0}, seed=7000 + 10 * n + k, pulse=pulse)
            out = run_session(listener, estimate, RealHeart(listener, pulse))
            after = "  -  " if out.estimate is None else f"{out.estimate:5.2f}"
            shown.append(f"{out.plan} {after} ({out.confidence:.2f})")
        print(f" {n:2d}  truth {spec['resonance_bpm']:4.2f}: " + ", ".join(shown))

    print()
    per_s = measurement_cost()
    plain, with_assessment = loop_cost()
    print(
        f"assessment alone: {per_s * 1e6:.1f} us CPU per s of session = "
        f"{per_s * 100:.4f} % of one core (target <= 0.05 %)"
    )
    print(
        f"closed loop: {plain * 100:.4f} % of a core without, {with_assessment * 100:.4f} % with"
        f" the assessment (+{(with_assessment - plain) * 100:.4f} %)"
    )
    print(f"(bench wall time {time.perf_counter() - wall:.0f} s, on this machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
