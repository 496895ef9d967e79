"""The closed loop assessing the resonance rate: stepping, the gates, learning over sessions."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pytest

from device.heart.analysis import HeartAnalyzer
from device.heart.samples import SampleBlock
from device.sim.listener import KINDS, IdealHeart, Listener
from device.sim.pulse import PulseModel
from device.sound.targets import SoundTargets
from device.therapy.closed_loop import ClosedLoop
from device.therapy.program import load_program
from device.therapy.resonance import DWELL_S, FIRST_BPM, ResonanceEstimate, SessionPlan
from device.therapy.session import TherapySession

DT = 0.25


def follower(resonance: float) -> dict[str, float]:
    return {
        **KINDS["compliant"],
        "sleep_per_h": 0.0,
        "lag_s": 10.0,
        "compliance": 0.98,
        "resonance_bpm": resonance,
    }


def play(listener: Listener, estimate: ResonanceEstimate | None, contact_off=None):
    """A wind-down session; returns the session and per tick (t, pacer, goal, state)."""
    session = TherapySession(load_program("wind-down", []), resonance=estimate)
    heart = IdealHeart(listener)
    ticks = []
    t = 0.0
    while t < session.timeline.duration_s:
        if contact_off is not None:
            heart.contact = not (contact_off[0] <= t < contact_off[1])
        targets = session.update(t, heart.snapshot(t))
        assert session.loop is not None
        ticks.append((t, targets.pacer_bpm, session.loop.goal_bpm, session.loop.state))
        listener.step(t + DT, DT, targets.pacer_bpm, targets)
        t += DT
    return session, ticks


def test_a_follower_is_stepped_down_half_a_breath_at_a_time_for_2_minutes_each() -> None:
    session, ticks = play(Listener(follower(5.0), seed=3), ResonanceEstimate())
    goals = [g for g, _ in itertools.groupby(g for _, _, g, _ in ticks)]
    assert goals[:4] == [FIRST_BPM, 6.0, 5.5, 5.0]
    for a, b in itertools.pairwise(goals):
        assert b == pytest.approx(a - 0.5) or 0.0 < b - a <= 0.5 + 1e-9
    # At least 2 minutes of following at each candidate before the next.
    for goal in goals[:-1]:
        at = [t for t, p, g, s in ticks if g == goal and p == pytest.approx(goal, abs=0.01)]
        assert at[-1] - at[0] >= DWELL_S - 2 * DT  # first and last tick of the dwell
    measured = session.measurements()
    assert measured is not None and len(measured.steps) >= 4
    swings = {s.paced_bpm: s.swing_bpm for s in measured.steps}
    assert swings[5.5] > swings[6.0] > swings[6.5]  # rising toward the resonance at 5
    kinds = [(k, d) for _, k, d in session.drain_events() if k == "resonance"]
    assert sum(d.startswith("step paced=") for _, d in kinds) == len(measured.steps)


def test_a_slow_follower_reaches_the_first_candidate_by_minute_8_and_steps_all_five() -> None:
    # Lag 13 s, compliance 0.96: the gates once took the minute-old breathing peak for
    # their lag and glided at half speed, reaching 6.5/min only at 11.5 min.
    spec = {**follower(5.0), "lag_s": 13.0, "compliance": 0.96}
    session, ticks = play(Listener(spec, seed=3), ResonanceEstimate())
    first = next(t for t, p, _, _ in ticks if p == pytest.approx(FIRST_BPM, abs=0.01))
    assert first <= 8.0 * 60.0
    measured = session.measurements()
    assert measured is not None
    assert [s.paced_bpm for s in measured.steps] == [6.5, 6.0, 5.5, 5.0, 4.5]


@pytest.mark.parametrize("seed", [7, 8])
def test_through_the_real_heart_analysis_a_compliant_listener_is_stepped_from_minute_9(
    seed: int,
) -> None:
    # The simulated PPG (50 Hz) through the product's heart analysis, whose breathing
    # estimate is a 64-s spectral peak: the gates once reached 6.5/min only at 12.5 min.
    pulse = PulseModel(seed)
    listener = Listener({**KINDS["compliant"], "sleep_per_h": 0.0}, seed=seed, pulse=pulse)
    analyzer = HeartAnalyzer(50.0)
    session = TherapySession(load_program("wind-down", []), resonance=ResonanceEstimate())
    t, done, first = 0.0, 0, None
    while t < session.timeline.duration_s:
        n = round(t * 50.0) - done
        if n > 0:
            ir, red = pulse.render((done + 1 + np.arange(n)) / 50.0)
            analyzer.feed(SampleBlock(done, 50.0, ir * 1000.0, red * 1000.0))
            done += n
        targets = session.update(t, analyzer.snapshot())
        if first is None and targets.pacer_bpm == pytest.approx(FIRST_BPM, abs=0.01):
            first = t
        listener.step(t + DT, DT, targets.pacer_bpm, targets)
        t += DT
    assert first is not None and first <= 9.0 * 60.0
    measured = session.measurements()
    assert measured is not None and len(measured.steps) >= 4


def test_the_pacer_never_rises_but_between_candidates_and_stays_rate_limited() -> None:
    _, ticks = play(Listener(follower(7.0), seed=5), ResonanceEstimate())
    rises = 0
    for (_, p0, g0, _), (_, p1, g1, _) in itertools.pairwise(ticks):
        assert abs(p1 - p0) <= 1.0 / 60.0 * DT + 1e-9  # the loop's glide limit
        if p1 > p0 + 1e-12:
            rises += 1
            assert p1 <= g1 + 1e-9 and g1 <= 7.0  # only up to a candidate rate ...
            assert g1 - min(g0, p0) <= 0.5 + 1e-9  # ... at most half a breath above
    assert rises > 0  # it did step back up to the best rate


@pytest.mark.parametrize("kind", ["non-compliant", "restless"])
def test_a_listener_who_does_not_follow_is_never_stepped_nor_estimated(kind: str) -> None:
    estimate = ResonanceEstimate()
    for seed in range(2):
        listener = Listener({**KINDS[kind], "sleep_per_h": 0.0, "resonance_bpm": 5.0}, seed=seed)
        session, ticks = play(listener, estimate)
        assert {g for _, _, g, _ in ticks} == {FIRST_BPM}
        for (_, p0, _, _), (_, p1, _, _) in itertools.pairwise(ticks):
            if kind == "restless" and ticks[0][0] > 80.0:
                assert p1 <= p0 + 1e-12
        measured = session.measurements()
        assert measured is not None and measured.steps == ()
        estimate.update(measured)
    assert estimate.confidence < 0.3 and estimate.sessions_measured == 0


def test_lost_contact_freezes_falls_back_and_restarts_the_step() -> None:
    session, ticks = play(Listener(follower(5.0), seed=3), ResonanceEstimate(), (660.0, 720.0))
    by_t = {t: (p, g, s) for t, p, g, s in ticks}
    assert by_t[665.0][2] == "frozen" and by_t[700.0][2] == "fallback"
    assert by_t[665.0][0] == by_t[659.75][0]  # held where it was
    # No step finishes with less than 2 minutes of following since the signal came back.
    ends = [t for t, k, d in session.drain_events() if k == "resonance" and "paced=" in d]
    assert ends and not [t for t in ends if 720.0 < t < 730.0 + DWELL_S]


@dataclass
class Heart:
    hr_bpm: float | None = 62.0
    hr_beat_bpm: float | None = 62.0
    coherence: float | None = 1.0
    breathing_bpm: float | None = 7.0
    quality: float = 0.9
    contact: bool = True


def test_a_rising_heart_holds_the_step_back_up() -> None:
    loop = ClosedLoop(
        resonance=SessionPlan("narrow", (6.5, 6.0, 5.5), 6.0), program_min_pacer_bpm=6.0
    )
    plain = SoundTargets(pacer_bpm=6.0, entrain_hz=6.0)
    heart, t, phase = Heart(breathing_bpm=6.5), 0.0, 0.0
    amp = {6.5: 6.0, 6.0: 3.0, 5.5: 2.0}
    rise_from = None
    while loop.assessment is not None and loop.assessment.stepping and t < 2000.0:
        p = loop.pacer_bpm or 6.5
        phase += p / 60.0 * DT
        heart.breathing_bpm = p + 0.2
        heart.hr_beat_bpm = 62.0 + amp.get(loop.goal_bpm, 1.0) * math.sin(2 * math.pi * phase)
        if loop.goal_bpm == 5.5 and rise_from is None:
            rise_from = t  # the heart speeds up during the last step: 1 bpm every 10 s
        if rise_from is not None:
            heart.hr_bpm = 62.0 + (t - rise_from) / 10.0
        loop.update(t, heart, plain)
        t += DT
    assert loop.goal_bpm == 6.0 and loop.pacer_bpm == pytest.approx(5.5)  # back up to 6.0 ...
    start = loop.pacer_bpm
    assert rise_from is not None
    for _ in range(400):  # ... but not while the heart speeds up
        heart.hr_bpm = 62.0 + (t - rise_from) / 10.0
        loop.update(t, heart, plain)
        t += DT
    assert loop.pacer_bpm == start
    for _ in range(1200):  # steady again: it goes on up
        loop.update(t, heart, plain)
        t += DT
    assert loop.pacer_bpm == pytest.approx(6.5)  # the best rate, 6.0 then 6.5


def test_after_two_sessions_the_third_paces_at_the_estimate() -> None:
    estimate = ResonanceEstimate("erin")
    for seed in (1, 2):
        session, _ = play(Listener(follower(4.8), seed=seed), estimate)
        measured = session.measurements()
        assert measured is not None and estimate.update(measured)
    assert estimate.resonance_bpm == pytest.approx(4.8, abs=0.5)
    assert estimate.confidence >= 0.6
    session, ticks = play(Listener(follower(4.8), seed=3), estimate)
    assert session.loop is not None and session.loop.assessment is not None
    assert session.loop.assessment.plan.kind == "pace"
    assert {g for _, _, g, _ in ticks} == {estimate.pace_bpm}
    assert min(p for _, p, _, _ in ticks) == pytest.approx(estimate.pace_bpm, abs=0.01)


@pytest.mark.parametrize("rate", [5.0, 6.0, 6.8])
def test_a_paced_session_paces_the_estimate_all_through_the_programs_slow_part(
    rate: float,
) -> None:
    # The wind-down's slow part: its plan within 0.5/min of its end (6.5 -> 6.0/min from
    # minute 12 to 18). The plan once was shifted only to end there: the estimate was
    # reached at minute 18, as the fade began.
    estimate = SessionPlan("pace", (rate,), rate)
    loop = ClosedLoop(resonance=estimate, program_min_pacer_bpm=6.0)
    session = TherapySession(load_program("wind-down", []))
    session.loop = loop
    listener = Listener(follower(5.5), seed=4)
    heart = IdealHeart(listener)
    t, paced = 0.0, []
    while t < 18 * 60.0:
        targets = session.update(t, heart.snapshot(t))
        if t >= 12.5 * 60.0:
            paced.append(targets.pacer_bpm)
        listener.step(t + DT, DT, targets.pacer_bpm, targets)
        t += DT
    assert paced and all(p == pytest.approx(rate, abs=0.01) for p in paced)


def test_a_candidate_counts_only_the_time_the_listener_follows_it() -> None:
    loop = ClosedLoop(resonance=SessionPlan("assess", (7.0, 6.5)), program_min_pacer_bpm=6.0)
    plain = SoundTargets(pacer_bpm=6.0, entrain_hz=6.0)
    heart, t, phase = Heart(breathing_bpm=7.4), 0.0, 0.0

    def run(seconds: float, lag: float) -> None:
        nonlocal t, phase
        for _ in range(int(seconds / DT)):
            p = loop.pacer_bpm or 7.0
            phase += p / 60.0 * DT
            heart.breathing_bpm = p + lag
            heart.hr_beat_bpm = 62.0 + 3.0 * math.sin(2 * math.pi * phase)
            loop.update(t, heart, plain)
            t += DT

    run(60.0, 0.2)
    assert loop.pacer_bpm == pytest.approx(7.0) and loop.goal_bpm == 7.0
    run(400.0, 1.8)  # they fall behind: the loop holds and the candidate waits
    assert loop.state == "holding" and loop.goal_bpm == 7.0
    # Following again once the held breathing peak (60 s) has passed: < 2 min in all yet ...
    run(100.0, 0.2)
    assert loop.goal_bpm == 7.0
    run(80.0, 0.2)  # ... and now more
    assert loop.goal_bpm == 6.5
