"""Each of the closed loop's gates on its own (device.therapy.gates, #21.3)."""

from __future__ import annotations

import pytest

from device.sound.targets import SoundTargets
from device.therapy.gates import (
    BEHIND_BPM,
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
)
from device.therapy.loop_settings import LoopSettings


def test_lag_gate_holds_beyond_hold_and_resumes_only_within_resume() -> None:
    gate = LagGate(hold_bpm=1.5, resume_bpm=1.0)
    assert [gate.update(lag) for lag in (1.4, 1.6, 1.2, 1.01, 1.0, 1.2, None)] == [
        False, True, True, True, False, False, False,
    ]  # fmt: skip


def test_verdict_holds_on_any_holding_gate_and_frees_only_without_one() -> None:
    free = Verdict(lag=0.2, lagging=False, falling=False, unknown=False, settled=False)
    assert free.free and not free.hold
    for field in ("lagging", "falling", "unknown"):
        held = Verdict(**{**dict(lag=0.2, lagging=False, falling=False, unknown=False,
                                 settled=False), field: True})  # fmt: skip
        assert held.hold and not held.free
    settled = Verdict(lag=0.2, lagging=False, falling=False, unknown=False, settled=True)
    assert not settled.hold and not settled.free


def test_settle_gate_needs_the_goal_a_breathing_estimate_and_60_s_of_high_coherence() -> None:
    assert settles(100.0, 6.0, 6.05, 6.0, 40.0, 60.0)
    assert not settles(100.0, 6.0, 6.06, 6.0, 40.0, 60.0)  # not at the goal
    assert not settles(100.0, 6.0, 6.0, 6.0, 41.0, 60.0)  # high only 59 s
    assert not settles(100.0, None, 6.0, 6.0, 0.0, 60.0)  # no estimate
    assert not settles(100.0, 6.0, 6.0, 6.0, None, 60.0)  # coherence not high


def test_steps_where_no_gate_holds() -> None:
    # Settled: down toward the listener, never up, never below 4.5.
    assert settle_step(6.0, 0.1, 5.0) == pytest.approx(5.9)
    assert settle_step(6.0, 0.1, 5.95) == pytest.approx(5.95)
    assert settle_step(6.0, 0.1, 7.0) == 6.0 and settle_step(4.55, 0.1, 3.0) == 4.5
    # Gliding: a step down, never below the goal nor ahead of the plan.
    assert glide_step(8.0, 0.1, 6.0, 7.0) == pytest.approx(7.9)
    assert glide_step(8.0, 0.1, 6.0, 7.95) == 7.95 and glide_step(6.05, 0.1, 6.0, 5.0) == 6.0
    # Back up to a candidate: a step, not while the heart rises.
    assert rise_step(5.5, 0.1, 6.0, False) == pytest.approx(5.6)
    assert rise_step(5.95, 0.1, 6.0, False) == 6.0 and rise_step(5.5, 0.1, 6.0, True) == 5.5


def test_floor_gate_never_leaves_the_listener_more_than_resume_behind() -> None:
    assert floor_step(9.0, 8.9, 10.0, 1.0, free=True) == (9.0, True)  # waits for them
    assert floor_step(9.0, 8.9, 9.8, 1.0, free=True) == (pytest.approx(8.9), False)
    new, waiting = floor_step(9.0, 8.9, 9.95, 1.0, free=True)
    assert new == pytest.approx(8.95) and waiting
    assert floor_step(9.0, 9.0, 12.0, 1.0, free=False) == (9.0, False)  # another gate held


def test_entrainment_follows_the_plan_rate_limited_rising_four_times_faster() -> None:
    assert entrain_step(10.0, 2.0, 0.025) == pytest.approx(9.975)
    assert entrain_step(2.01, 2.0, 0.025) == 2.0
    assert entrain_step(6.0, 10.0, 0.025) == pytest.approx(6.1)
    assert entrain_step(6.0, 6.0, 0.025) == 6.0


def test_meet_gate_meets_only_a_settled_lagging_estimate_once() -> None:
    gate = MeetGate()
    gate.until = 180.0
    # Falling toward the pacer (a stale window over a follower): not met.
    for i in range(20):
        assert gate.check(60.0 + i, 13.0 - 0.1 * i, 10.0, 11.0, 1.5) is None
    # Steady 12.5 for 10 s: met at the cap.
    details = [gate.check(80.0 + i, 12.5, 10.0, 11.0, 1.5) for i in range(11)]
    assert details[-1] == "pacer meets the breathing: 11.0/min" and gate.goal == 11.0
    assert gate.until is None  # once
    assert gate.step(10.0, 7.5) == pytest.approx(10.5) and gate.step(10.5, 15.0) == 11.0
    assert gate.goal is None


def test_meet_gate_leaves_a_listener_within_reach_and_expires() -> None:
    near = MeetGate()
    near.until = 180.0
    for i in range(12):
        assert near.check(60.0 + i, 11.2, 10.0, 11.0, 1.5) is None
    assert near.until is None and near.goal is None  # decided: left to the glide
    late = MeetGate()
    late.until = 180.0
    assert late.check(181.0, 14.0, 10.0, 11.0, 1.5) is None and late.until is None


def test_release_gate_lets_go_after_minutes_behind_and_unfollowed() -> None:
    gate = ReleaseGate(after_s=300.0, fade_s=60.0)
    assert not gate.due(0.0, 10.0, 10.0 - BEHIND_BPM)  # not behind
    assert not gate.due(10.0, 10.0, 9.0)  # behind from here
    assert not gate.due(200.0, 9.6, 8.0)  # it fell 0.4: not yet followed
    assert not gate.due(250.0, 9.5, 8.0)  # fell 0.5: followed, the clock restarts
    assert not gate.due(549.0, 9.5, 7.0) and gate.due(550.0, 9.5, 7.0)
    gate.let_go()
    gate.fade(30.0)
    assert gate.gain == pytest.approx(0.5)
    gate.fade(40.0)
    assert gate.gain == 0.0
    assert not gate.back(6.5, 6.0, 6.8, 1.0)  # the pacer is not at the plan yet
    assert not gate.back(6.0, 6.0, 7.5, 1.0)  # they breathe too fast
    assert gate.back(6.04, 6.0, 6.9, 1.0)
    gate.rejoin()
    gate.fade(60.0)
    assert gate.gain == 1.0 and not gate.released


def test_signal_gate_holds_then_glides_to_the_timeline() -> None:
    gate = SignalGate(freeze_s=10.0, glide_s=30.0, recover_s=10.0)
    gate.freeze(SoundTargets(pacer_bpm=8.0, entrain_hz=9.0))
    plain = SoundTargets(pacer_bpm=6.0, entrain_hz=5.0)
    assert gate.blend(plain, gate.weight(5.0, False)).pacer_bpm == 8.0
    assert not gate.falls_back(9.0, 0.0) and gate.falls_back(10.0, 0.0)
    half = gate.blend(plain, gate.weight(25.0, True))
    assert half.pacer_bpm == pytest.approx(7.0) and half.entrain_hz == pytest.approx(7.0)
    assert gate.weight(40.0, True) == 1.0
    assert not gate.recovered(50.0, True, 41.0) and gate.recovered(51.0, True, 41.0)
    gate.clear()
    assert gate.frozen is None and gate.fallback_t is None


def test_plan_lead_shifts_the_plan_to_the_target() -> None:
    assert plan_lead(None, 6.0, None) == 0.0
    assert plan_lead(6.0, 5.0, None) == 1.0 and plan_lead(6.0, 7.0, None) == -1.0


def test_hold_reasons_name_the_gate() -> None:
    assert hold_reason(True, False, 9.04) == "breathing 9.0/min lags the pacer"
    assert hold_reason(False, True, 9.0) == "waiting for breathing (9.0/min) to follow"
    assert hold_reason(False, False, None) == "waiting for a breathing estimate"
    assert hold_reason(False, False, 9.0) == "coherence falling"


def test_loop_settings_are_range_checked_with_their_unit() -> None:
    assert LoopSettings().release_after_s == 300.0
    with pytest.raises(ValueError, match=r"release_after_s must be 30..3600 s, not 10.0"):
        LoopSettings(release_after_s=10.0)
    with pytest.raises(ValueError, match=r"start_cap_bpm must be 7..12 /min"):
        LoopSettings(pacer_target_bpm=7.0, start_cap_bpm=6.5)
    with pytest.raises(TypeError):
        LoopSettings(nonsense=1.0)  # type: ignore[call-arg]
