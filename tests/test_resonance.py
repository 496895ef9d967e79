"""The resonance estimate (learned across sessions) and the in-session assessment, by hand."""

from __future__ import annotations

import math

import pytest

from device.store.sessions import Store
from device.therapy.assessment import Assessment
from device.therapy.resonance import (
    CONFIDENT,
    DWELL_S,
    RETURN_PAUSE_S,
    SETTLE_IN_S,
    ResonanceEstimate,
    SessionMeasurements,
    SessionPlan,
    StepResult,
    session_peak,
)


def step(paced: float, swing: float, offset: float = 0.3) -> StepResult:
    return StepResult(paced, paced + offset, swing, 100.0 * swing, 0.0, 0.9, 6)


def assessed(*pairs: tuple[float, float], kind: str = "assess") -> SessionMeasurements:
    return SessionMeasurements(kind, tuple(step(p, s) for p, s in pairs))


# --- one session's peak ------------------------------------------------------------------------


def test_the_peak_between_two_rates_is_the_parabolas_vertex() -> None:
    record = session_peak(tuple(step(p, s) for p, s in [(6.5, 8.0), (6.0, 10.0), (5.5, 9.0)]))
    assert record is not None and record.bracketed and record.weight == 1.0
    # Symmetric swings 8, 10, 9 around 6.3 (breathing): the vertex lies a little below it.
    assert 5.8 + 0.3 - 0.25 < record.rate < 6.0 + 0.3
    assert record.offset == pytest.approx(0.3)


def test_a_descent_cut_short_only_bounds_the_rate() -> None:
    record = session_peak(tuple(step(p, s) for p, s in [(7.0, 5.0), (6.5, 6.0), (6.0, 8.0)]))
    assert record is not None and not record.bracketed and record.edge == "low"
    assert record.weight == pytest.approx(0.4)
    at_limit = session_peak(tuple(step(p, s) for p, s in [(5.5, 5.0), (5.0, 6.0), (4.5, 8.0)]))
    assert at_limit is not None and at_limit.bracketed and at_limit.weight == pytest.approx(0.9)


def test_one_rate_or_a_flat_curve_says_little() -> None:
    assert session_peak((step(6.0, 9.0), step(6.0, 9.5))) is None
    flat = session_peak(tuple(step(p, s) for p, s in [(6.5, 10.0), (6.0, 10.1), (5.5, 10.0)]))
    assert flat is not None and flat.weight < 0.25  # a 1 % rise: a fifth of the weight


def test_a_best_edge_step_its_neighbour_matches_within_the_noise_is_a_peak_between_them() -> None:
    # 12.8 at 5.5 and 12.6 at 6.0 (breathing 5.8 and 6.3): within 5 %, the swing's noise.
    flat = session_peak(tuple(step(p, s) for p, s in [(6.5, 9.9), (6.0, 12.6), (5.5, 12.8)]))
    assert flat is not None and flat.bracketed and flat.edge == "" and flat.weight == 1.0
    assert 5.8 <= flat.rate <= 6.3
    est = ResonanceEstimate()
    est.update(assessed((6.5, 9.9), (6.0, 12.6), (5.5, 12.8)))
    assert est.ladder == ()  # not a descent to carry on down
    rising = session_peak(tuple(step(p, s) for p, s in [(6.5, 9.9), (6.0, 12.0), (5.5, 12.8)]))
    assert rising is not None and rising.edge == "low"  # 6.7 % more: still rising


# --- the estimate across sessions -------------------------------------------------------------


def test_a_fresh_profile_assesses_the_clinics_ladder_from_6_5_down() -> None:
    est = ResonanceEstimate("anna")
    assert est.resonance_bpm is None and est.confidence == 0.0 and est.sessions_measured == 0
    assert est.plan() == SessionPlan("assess", (6.5, 6.0, 5.5, 5.0, 4.5), None)


def test_a_swing_highest_at_6_5_assesses_7_next_and_finds_the_peak_over_both() -> None:
    est = ResonanceEstimate()
    assert est.update(assessed((6.5, 9.0), (6.0, 8.0), (5.5, 7.0)))
    assert est.plan() == SessionPlan("assess", (7.0,), pytest.approx(6.5))
    assert est.update(assessed((7.0, 8.5)))
    assert est.ladder == ()
    rate = est.resonance_bpm
    # Between 7.0 and 6.0 (+0.3 breathing), nearer 6.5 than 7.0 (8.5 at 7 > 8.0 at 6).
    assert rate is not None and 6.8 - 0.01 < rate < 7.05
    assert est.confidence >= CONFIDENT and est.plan().kind == "pace"


def test_a_peak_at_the_slowest_rate_may_lie_up_to_half_a_step_beyond_its_breathing() -> None:
    steep = session_peak(tuple(step(p, s) for p, s in [(5.5, 7.5), (5.0, 9.25), (4.5, 10.0)]))
    assert steep is not None and steep.bracketed
    # Still rising at 4.8 (breathing) but flattening: the parabola's vertex is 4.675.
    assert steep.rate == pytest.approx(4.675)
    far = session_peak(tuple(step(p, s) for p, s in [(5.5, 6.0), (5.0, 8.5), (4.5, 10.0)]))
    assert far is not None and far.rate == pytest.approx(4.8 - 0.25)  # trusted 0.25 at most
    linear = session_peak(tuple(step(p, s) for p, s in [(5.5, 6.0), (5.0, 8.0), (4.5, 10.0)]))
    assert linear is not None and linear.rate == pytest.approx(4.8)  # no curve: no guess


def test_a_cut_short_descent_goes_on_down_next_time_then_the_peak_is_found() -> None:
    est = ResonanceEstimate()
    assert est.update(assessed((7.0, 5.0), (6.5, 6.0), (6.0, 8.0)))
    plan = est.plan()
    # Carried on from the rate below the slowest one measured, not measured again.
    assert plan.kind == "assess" and plan.candidates == (5.5, 5.0, 4.5)
    assert est.confidence < CONFIDENT
    # The next descent falls from where the last one ended: the peak is found over both.
    assert est.update(assessed((5.5, 7.5), (5.0, 6.0)))
    assert est.ladder == ()
    rate = est.resonance_bpm
    assert rate is not None and 6.0 + 0.3 - 0.25 < rate < 6.0 + 0.3 + 0.25
    assert est.confidence >= CONFIDENT
    assert est.plan() == SessionPlan(
        "pace", (pytest.approx(rate - 0.3),), pytest.approx(rate - 0.3)
    )


def test_two_agreeing_sessions_make_it_confident_then_it_paces_and_checks_a_narrow_band() -> None:
    est = ResonanceEstimate()
    est.update(assessed((6.0, 8.0), (5.5, 10.0), (5.0, 9.0)))
    assert est.confidence < CONFIDENT
    assert est.plan().kind == "assess" and est.plan().candidates == (6.0, 5.5, 5.0)
    est.update(assessed((6.0, 8.2), (5.5, 10.1), (5.0, 9.1)))
    assert est.confidence >= CONFIDENT and est.sessions_measured == 2
    pace = est.plan()
    assert pace.kind == "pace" and pace.candidates == (pace.pace_bpm,)
    assert pace.pace_bpm == pytest.approx(est.resonance_bpm - 0.3)  # type: ignore[operator]
    # A paced session moves only the schedule; the next one checks a band around it.
    assert est.update(SessionMeasurements("pace", (step(pace.pace_bpm or 0.0, 10.0),)))
    narrow = est.plan()
    assert narrow.kind == "narrow" and len(narrow.candidates) == 3
    assert narrow.candidates[1] == pytest.approx(pace.pace_bpm, abs=1e-3)
    est.update(assessed((5.9, 9.0), (5.4, 10.0), (4.9, 9.2), kind="narrow"))
    assert est.plan().kind == "pace" and est.sessions_measured == 3


def test_recent_sessions_weigh_more_and_disagreement_lowers_the_confidence() -> None:
    agree, drift = ResonanceEstimate(), ResonanceEstimate()
    for est, later in ((agree, 5.5), (drift, 6.5)):
        est.update(assessed((6.0, 8.0), (5.5, 10.0), (5.0, 8.0)))
        est.update(assessed((later + 0.5, 8.0), (later, 10.0), (later - 0.5, 8.0)))
    assert agree.resonance_bpm == pytest.approx(5.8)
    assert drift.resonance_bpm is not None and drift.resonance_bpm > 5.8 + 0.5  # nearer 6.8
    assert drift.confidence < agree.confidence


def test_the_confidence_is_that_of_the_mean_so_two_sessions_0_6_apart_may_pace() -> None:
    # Each session's peak is noisy (+-0.3/min); the estimate is their mean, whose error
    # shrinks with more sessions: two bracketed peaks 0.6 apart (5.8 and 5.2) pace next.
    est = ResonanceEstimate()
    est.update(assessed((6.0, 8.0), (5.5, 10.0), (5.0, 8.0)))
    est.update(assessed((5.5, 7.0), (5.0, 10.0), (4.5, 9.0)))
    first, second = (r.rate for r in est._records)
    assert first - second == pytest.approx(0.625, abs=0.01)
    assert est.confidence >= CONFIDENT and est.plan().kind == "pace"
    far = ResonanceEstimate()  # 1.1/min apart: not sure
    far.update(assessed((6.5, 8.0), (6.0, 10.0), (5.5, 7.0)))
    far.update(assessed((5.5, 7.0), (5.0, 10.0), (4.5, 8.0)))
    assert far.confidence < CONFIDENT


def test_a_descent_still_rising_below_the_estimate_contradicts_it() -> None:
    est = ResonanceEstimate()
    est.update(assessed((7.0, 8.0), (6.5, 10.0), (6.0, 8.0)))  # a peak at 6.8 (breathing)
    assert est.confidence < CONFIDENT
    # The next band, around it, still rises at its slowest rate (breathing 5.8): the peak
    # is not where the estimate says. It supports nothing; the descent is carried on.
    est.update(assessed((6.0, 8.0), (5.5, 9.0), (5.0, 11.0)))
    assert est.ladder and est.confidence < 0.5
    assert est.plan().kind == "assess" and est.plan().candidates[0] == 4.5


def test_nothing_measured_changes_nothing() -> None:
    est = ResonanceEstimate()
    assert not est.update(SessionMeasurements("assess", ()))
    assert not est.update(SessionMeasurements("pace", ()))
    assert est.sessions_measured == 0 and est.confidence == 0.0


def test_the_state_round_trips_and_garbage_gives_a_fresh_estimate() -> None:
    est = ResonanceEstimate("bob")
    est.update(assessed((7.0, 5.0), (6.5, 6.0), (6.0, 8.0)))
    est.update(assessed((6.0, 9.0), (5.5, 7.5), (5.0, 6.0)))
    back = ResonanceEstimate.from_state(est.to_state(), "bob")
    assert back.summary() == est.summary()
    for bad in (None, [], {"version": 2}, {"version": 1, "records": "x"}, {"version": 1}):
        assert ResonanceEstimate.from_state(bad).sessions_measured == 0


def test_saved_with_the_profiles_preferences_and_read_back(tmp_path) -> None:
    est = ResonanceEstimate("carol")
    est.update(assessed((6.0, 8.0), (5.5, 10.0), (5.0, 9.0)))
    with Store(tmp_path / "sessions.db") as store:
        est.save(store)
        assert ResonanceEstimate.load(store, "carol").summary() == est.summary()
        assert ResonanceEstimate.load(store, "dave").sessions_measured == 0
        store.flush()
    with Store(tmp_path / "sessions.db", readonly=True) as store:
        summary = ResonanceEstimate.load(store, "carol").summary()
    assert summary["profile"] == "carol" and summary["sessions_measured"] == 1
    assert 0.0 < summary["resonance_confidence"] < 1.0


def test_a_step_reads_back_from_its_event_detail() -> None:
    s = StepResult(6.5, 6.83, 9.125, 2100.5, -12.0, 0.91, 7)
    assert StepResult.parse(s.detail()) == StepResult(6.5, 6.83, 9.125, 2100.5, -12.0, 0.91, 7)
    assert StepResult.parse("next rate 6/min") is None
    assert StepResult.parse("step paced=x") is None


# --- the assessment inside a session ------------------------------------------------------------

DT = 0.25


def drive(a: Assessment, seconds: float, amp: dict[float, float], following: bool = True):
    """Tick ``a`` at its goal with a heart swinging +-amp[goal] bpm with the pacer."""
    events: list[str] = []
    phase = 0.0
    for _ in range(int(seconds / DT)):
        goal = a.goal_bpm
        phase += goal / 60.0 * DT
        hr = 62.0 + amp.get(goal, 1.0) * math.sin(2.0 * math.pi * phase)
        events += a.tick(DT, goal, hr, goal + 0.2, following)
    return events


def test_each_candidate_is_followed_for_2_minutes_and_its_swing_measured() -> None:
    a = Assessment(SessionPlan("assess", (7.0, 6.5, 6.0, 5.5, 5.0, 4.5)))
    events = drive(a, DWELL_S - 1.0, {7.0: 3.0})
    assert a.goal_bpm == 7.0 and events == []
    events = drive(a, 2.0, {7.0: 3.0})
    assert a.goal_bpm == 6.5 and events[-1] == "next rate 6.5/min"
    (first,) = a.results
    assert first.paced_bpm == 7.0 and first.breathing_bpm == pytest.approx(7.2)
    assert first.swing_bpm == pytest.approx(6.0, rel=0.03)  # peak to trough of +-3
    assert first.locking > 0.99 and abs(first.phase_deg) < 5.0
    # Only the breaths after the settle-in count: (120 - 50) s at 7/min.
    assert (DWELL_S - SETTLE_IN_S) / 60.0 * 7.0 - 2 <= first.cycles <= 9
    assert first.ibi_power_ms2 > 0.0


def test_time_not_following_does_not_count_and_lost_signal_restarts_the_step() -> None:
    a = Assessment(SessionPlan("assess", (7.0, 6.5)))
    drive(a, 600.0, {}, following=False)
    assert a.goal_bpm == 7.0 and a.results == ()
    drive(a, 100.0, {})
    a.interrupt()
    drive(a, 100.0, {})
    assert a.goal_bpm == 7.0  # 100 s since the restart: not yet 120
    drive(a, 25.0, {})
    assert a.goal_bpm == 6.5


def test_the_descent_stops_past_the_peak_and_steps_back_up_half_a_breath_at_a_time() -> None:
    a = Assessment(SessionPlan("assess", (7.0, 6.5, 6.0, 5.5, 5.0, 4.5)))
    amp = {7.0: 3.0, 6.5: 5.0, 6.0: 3.5, 5.5: 3.0}
    events = drive(a, 4 * (DWELL_S + 1.0), amp)
    assert [r.paced_bpm for r in a.results] == [7.0, 6.5, 6.0, 5.5]
    assert "assessed 4 rates: pacing at 6/min" in events
    assert not a.stepping and a.goal_bpm == 6.0  # one step up from 5.5 ...
    events = drive(a, RETURN_PAUSE_S + 1.0, amp)
    assert a.goal_bpm == 6.5 and events == ["back up to 6.5/min"]  # ... then the next
    drive(a, 300.0, amp)
    assert a.goal_bpm == 6.5
    assert a.finish().kind == "assess" and len(a.finish().steps) == 4


def test_a_paced_session_measures_its_one_rate_until_the_end() -> None:
    a = Assessment(SessionPlan("pace", (5.2,), 5.2))
    drive(a, 900.0, {5.2: 4.0})
    assert a.goal_bpm == 5.2 and a.results == ()
    (only,) = a.finish().steps
    assert only.paced_bpm == 5.2 and only.swing_bpm == pytest.approx(8.0, rel=0.03)
    with pytest.raises(ValueError, match="plan"):
        Assessment(SessionPlan("assess", ()))


# --- carrying an unfinished assessment on ---------------------------------------------------


def test_an_unfinished_descent_is_stored_and_carried_on_after_a_reload() -> None:
    est = ResonanceEstimate("cleo")
    est.update(assessed((6.5, 5.0), (6.0, 6.0), (5.5, 8.0)))
    back = ResonanceEstimate.from_state(est.to_state(), "cleo")
    assert [r.paced_bpm for r in back.ladder] == [6.5, 6.0, 5.5]
    assert back.plan().candidates == (5.0, 4.5)
    # A one-rate session (the listener followed only at the first candidate) goes on too.
    one = ResonanceEstimate()
    assert one.update(assessed((6.5, 5.0)))
    assert one.sessions_measured == 0 and one.plan().candidates == (6.0, 5.5, 5.0, 4.5)


def test_a_descent_ending_on_the_slowest_rate_is_finished() -> None:
    est = ResonanceEstimate()
    est.update(assessed((5.5, 6.0), (5.0, 8.0), (4.5, 10.0)))
    assert est.ladder == () and est.resonance_bpm == pytest.approx(4.8)


def test_a_narrow_band_peaking_at_its_edge_does_not_confirm_and_is_carried_on() -> None:
    est = ResonanceEstimate()
    est.update(assessed((6.5, 8.0), (6.0, 10.0), (5.5, 9.0)))
    est.update(assessed((6.5, 8.0), (6.0, 10.0), (5.5, 9.0)))
    pace = est.plan()
    assert pace.kind == "pace"
    est.update(SessionMeasurements("pace", (step(pace.pace_bpm or 0.0, 10.0),)))
    band = est.plan()
    assert band.kind == "narrow"
    # The swing is highest at the band's slowest rate: the peak lies lower than thought.
    est.update(assessed(*zip(band.candidates, (8.0, 9.0, 10.0), strict=True), kind="narrow"))
    assert est.ladder != ()
    nxt = est.plan()
    assert nxt.kind == "assess" and max(nxt.candidates) < min(band.candidates)


def test_time_counts_between_followed_ticks_only_and_not_across_a_lost_signal() -> None:
    a = Assessment(SessionPlan("assess", (7.0, 6.5)))
    drive(a, 60.0, {})
    a.interrupt()
    # The first followed tick after the gap starts the clock; the gap itself never counts.
    drive(a, DWELL_S, {})  # 480 ticks: 479 intervals between them followed
    assert a.goal_bpm == 7.0
    drive(a, DT, {})
    assert a.goal_bpm == 6.5
