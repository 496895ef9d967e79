"""The closed loop, driven by the simulated listener through an ideal heart analysis."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from device.sim.listener import KINDS, IdealHeart, Listener
from device.sound.targets import SoundTargets
from device.therapy.closed_loop import ClosedLoop
from device.therapy.loop_signal import SignalWatch
from device.therapy.program import load_program
from device.therapy.session import TherapySession

DT = 0.25


@dataclass
class Tick:
    t: float
    targets: SoundTargets
    plain: SoundTargets
    state: str
    breathing: float
    estimate: float | None
    hr: float


def run(
    listener: Listener,
    program: str,
    *,
    until: float | None = None,
    contact_off: tuple[float, float] | None = None,
    session: TherapySession | None = None,
    warmup_s: float = 0.0,
) -> tuple[TherapySession, list[Tick]]:
    """Play ``program`` to ``listener`` every 0.25 s; lift the finger during ``contact_off``.

    ``warmup_s``: breathing and coherence are unknown for that long, as with the real analysis.
    """
    session = session or TherapySession(load_program(program, []))
    heart = IdealHeart(listener, warmup_s=warmup_s)
    ticks: list[Tick] = []
    t = 0.0
    end = until if until is not None else session.timeline.duration_s
    while t < end:
        if contact_off is not None:
            heart.contact = not (contact_off[0] <= t < contact_off[1])
        state = heart.snapshot(t)
        targets = session.update(t, state)
        plain = session.timeline.at(t).targets
        ticks.append(
            Tick(
                t,
                targets,
                plain,
                session.status()["loop_state"],
                listener.breathing_bpm,
                state.breathing_bpm,
                listener.hr_mean_bpm,
            )
        )
        listener.step(t + DT, DT, targets.pacer_bpm, targets)
        t += DT
    return session, ticks


def awake(kind: str) -> dict[str, float]:
    """A built-in listener kind that stays awake (sleep would stop them following)."""
    return {**KINDS[kind], "sleep_per_h": 0.0}


# --- the three listeners -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_compliant_listener_is_paced_down_to_the_6_per_min_target(seed: int) -> None:
    listener = Listener(awake("compliant"), seed=seed)
    _, ticks = run(listener, "sleep", until=30 * 60.0)
    paced = [k for k in ticks if k.targets.pacer_bpm is not None]
    assert paced[0].targets.pacer_bpm == pytest.approx(11.0)  # 13/min capped at 11
    assert min(k.targets.pacer_bpm for k in paced) <= 6.1
    assert paced[-1].breathing < 6.8  # they really breathe slowly now
    # ... and they were never pushed: after catching up they stay within 1.5/min.
    assert all(k.estimate - k.targets.pacer_bpm <= 1.5 for k in paced if k.t > 240.0)
    assert {"adapting"} <= {k.state for k in ticks}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_non_compliant_listener_is_never_left_behind_then_let_go(seed: int) -> None:
    listener = Listener(awake("non-compliant"), seed=seed)
    _, ticks = run(listener, "sleep", until=30 * 60.0)
    paced = [k for k in ticks if k.targets.pacer_bpm is not None and k.estimate is not None]
    # While the swell paces them, the pacer waits for them instead of following the program.
    heard = [k for k in paced if k.state != "released"]
    assert max(k.estimate - k.targets.pacer_bpm for k in heard) <= 1.5
    assert min(k.targets.pacer_bpm for k in heard) > 10.0
    assert "holding" in {k.state for k in ticks}
    # Not followed for 5 minutes: let go, the swell fades and the pacer plays the plan.
    released = next(k.t for k in ticks if k.state == "released")
    assert 5 * 60.0 <= released <= 10 * 60.0
    late = [k for k in ticks if k.t > released + 180.0]
    assert all(k.state == "released" and k.targets.swell_db == 0.0 for k in late)
    assert all(k.targets.pacer_bpm == pytest.approx(k.plain.pacer_bpm) for k in late)
    assert paced[-1].plain.pacer_bpm < 6.6


@pytest.mark.parametrize("seed", [0, 5])
def test_restless_listener_never_makes_anything_faster_or_louder(seed: int) -> None:
    listener = Listener(awake("restless"), seed=seed)
    _, ticks = run(listener, "wind-down")
    assert ticks[-1].hr > ticks[0].hr + 5.0  # the heart really does speed up
    for prev, now in itertools.pairwise(ticks):
        if now.targets.pacer_bpm is not None and prev.targets.pacer_bpm is not None:
            assert now.targets.pacer_bpm <= prev.targets.pacer_bpm + 1e-12
        assert now.targets.entrain_hz <= prev.targets.entrain_hz + 1e-12
    for k in ticks:
        for field in ("tones_db", "pad_db", "noise_db", "swell_db", "program_db"):
            assert getattr(k.targets, field) <= getattr(k.plain, field), field


def test_every_adapted_rate_is_rate_limited() -> None:
    _, ticks = run(Listener(awake("compliant"), seed=3), "wind-down")
    for prev, now in itertools.pairwise(ticks):
        if now.targets.pacer_bpm is not None and prev.targets.pacer_bpm is not None:
            # 1 breath/min per 15 s at most, and the default glide is 1/min per minute.
            assert abs(now.targets.pacer_bpm - prev.targets.pacer_bpm) <= 1.0 / 60.0 * DT + 1e-9
        assert prev.targets.entrain_hz - now.targets.entrain_hz <= 1.5 / 60.0 * DT + 1e-9


def test_unknown_breathing_at_the_start_is_met_once_it_is_estimated() -> None:
    # The real analysis needs about a minute before it estimates breathing.
    _, ticks = run(
        Listener(awake("non-compliant"), seed=2), "sleep", until=20 * 60.0, warmup_s=64.0
    )
    assert ticks[0].targets.pacer_bpm == 10.0  # the program's start rate
    assert all(k.targets.pacer_bpm == 10.0 for k in ticks if k.t < 64.0)
    assert max(k.targets.pacer_bpm for k in ticks) == pytest.approx(11.0)  # met, capped
    heard = [k for k in ticks if k.t > 64.0 + 20.0 and k.state != "released"]
    assert max(k.estimate - k.targets.pacer_bpm for k in heard) <= 1.5


def test_restless_with_unknown_breathing_is_met_once_then_never_faster() -> None:
    listener = Listener(awake("restless"), seed=5)
    _, ticks = run(listener, "wind-down", warmup_s=64.0)
    met = next(k.t for k in ticks if k.targets.pacer_bpm == pytest.approx(11.0))
    # 10 s to see the first estimate settle (it was 64 s coming), then 10 -> 11/min in 15 s.
    assert met <= 64.0 + 10.0 + 20.0
    later = [k for k in ticks if k.t >= met]
    for prev, now in itertools.pairwise(later):
        if now.targets.pacer_bpm is not None and prev.targets.pacer_bpm is not None:
            assert now.targets.pacer_bpm <= prev.targets.pacer_bpm
    for prev, now in itertools.pairwise(ticks):
        assert now.targets.entrain_hz <= prev.targets.entrain_hz


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_stale_first_estimate_never_raises_the_pacer_above_a_follower(seed: int) -> None:
    # #23.16: the first estimate (64 s coming) still covered the resting 13/min, so the
    # pacer was raised from 10 to 10.9/min while the listener already breathed 10.3.
    listener = Listener(awake("compliant"), seed=seed)
    _, ticks = run(listener, "wind-down", until=6 * 60.0, warmup_s=64.0)
    first = next(k for k in ticks if k.estimate is not None)
    assert first.estimate is not None and first.estimate > first.breathing + 0.3  # stale
    assert max(k.targets.pacer_bpm for k in ticks) == 10.0  # never raised
    # ... and the pacer is on its way down by minute 3 (it had to glide back from 10.9).
    assert ticks[-1].targets.pacer_bpm < 8.5


def test_a_listener_who_lags_is_met_once_the_estimate_stops_falling() -> None:
    loop = ClosedLoop()
    plain = SoundTargets(pacer_bpm=10.0)
    loop.update(0.0, FakeHeart(breathing_bpm=None), plain)
    for i in range(1, 61):
        loop.update(float(i), FakeHeart(breathing_bpm=None), plain)
    # Estimates falling fast toward the pacer (a follower's stale window): no meeting.
    for i in range(61, 81):
        out = loop.update(float(i), FakeHeart(breathing_bpm=13.0 - 0.1 * (i - 61)), plain)
        assert out.pacer_bpm == 10.0
    # Steady at 12.5 (2.5 above the pacer) for 10 s: met, capped at 11.
    for i in range(81, 120):
        out = loop.update(float(i), FakeHeart(breathing_bpm=12.5), plain)
    assert out.pacer_bpm == pytest.approx(11.0)
    assert [d for _, k, d in loop.drain_events() if k == "adapt"][-1].endswith("11.0/min")


def test_a_settled_estimate_within_reach_is_left_to_the_gated_glide() -> None:
    loop = ClosedLoop()
    plain = SoundTargets(pacer_bpm=10.0)
    for i in range(0, 61):
        loop.update(float(i), FakeHeart(breathing_bpm=None), plain)
    for i in range(61, 200):
        out = loop.update(float(i), FakeHeart(breathing_bpm=11.2), plain)
        assert out.pacer_bpm == 10.0  # 1.2 above: held, never raised


# --- losing and finding the signal ----------------------------------------------------------


def test_contact_loss_freezes_falls_back_over_30_s_and_resumes_after_10_s() -> None:
    # A slow follower: at 300 s the loop still holds the pacer above the program's plan.
    listener = Listener({**awake("compliant"), "lag_s": 60.0}, seed=4)
    session, ticks = run(listener, "wind-down", until=700.0, contact_off=(300.0, 400.0))
    by_t = {k.t: k for k in ticks}
    before = by_t[299.75]
    assert before.state in ("adapting", "holding", "settled")
    assert before.targets.pacer_bpm != pytest.approx(before.plain.pacer_bpm, abs=0.02)
    # Frozen at once: the sound holds where it was.
    for t in (300.0, 305.0, 309.75):
        assert by_t[t].state == "frozen"
        assert by_t[t].targets.pacer_bpm == before.targets.pacer_bpm
        assert by_t[t].targets.entrain_hz == before.targets.entrain_hz
    # After 10 s it glides back to the plain timeline over 30 s, continuously.
    assert by_t[310.0].state == "fallback"
    glide = [by_t[300.0 + i * DT] for i in range(40, 200)]
    for prev, now in itertools.pairwise(glide):
        assert abs(now.targets.pacer_bpm - prev.targets.pacer_bpm) < 0.05
    assert by_t[325.0].targets.pacer_bpm != pytest.approx(by_t[325.0].plain.pacer_bpm, abs=0.01)
    for t in (340.0, 360.0, 399.75):
        assert by_t[t].targets.pacer_bpm == pytest.approx(by_t[t].plain.pacer_bpm)
        assert by_t[t].targets.entrain_hz == pytest.approx(by_t[t].plain.entrain_hz)
    # Good signal again at 400 s: adaptation resumes after 10 s of it, from where it was.
    assert by_t[409.75].state == "fallback"
    assert by_t[410.0].state in ("adapting", "holding")
    assert abs(by_t[410.0].targets.pacer_bpm - by_t[409.75].targets.pacer_bpm) < 0.01
    kinds = [(round(t, 2), kind) for t, kind, _ in session.drain_events()]
    assert (310.0, "fallback") in kinds and (410.0, "recovery") in kinds


def test_low_quality_counts_as_no_signal_and_short_dropouts_only_freeze() -> None:
    loop = ClosedLoop()
    plain = SoundTargets(pacer_bpm=9.0, entrain_hz=9.0)
    good = FakeHeart(breathing_bpm=9.0)
    loop.update(0.0, good, plain)
    assert loop.state == "adapting"
    loop.update(1.0, FakeHeart(breathing_bpm=9.0, quality=0.3), plain)
    assert loop.state == "frozen"
    loop.update(5.0, good, plain)
    assert loop.state == "frozen"  # good again, but not yet for 10 s
    loop.update(15.0, good, plain)
    assert loop.state in ("adapting", "holding")
    assert [kind for _, kind, _ in loop.drain_events()] == ["adapt", "recovery"]


def test_without_a_sensor_the_loop_plays_the_plain_timeline() -> None:
    session = TherapySession(load_program("relax", []))
    for i in range(400):
        t = i * 1.5
        assert session.update(t, None) == session.timeline.at(t).targets
    assert session.status()["loop_state"] == "open-loop"


# --- unit behaviour ---------------------------------------------------------------------------


@dataclass
class FakeHeart:
    """A hand-made heart state (only the attributes the loop reads)."""

    breathing_bpm: float | None = 10.0
    coherence: float | None = 0.5
    hr_bpm: float | None = 65.0
    hr_beat_bpm: float | None = 65.0
    quality: float = 0.9
    contact: bool = True


@pytest.mark.parametrize(("breathing", "start"), [(14.0, 11.0), (9.0, 9.0), (5.0, 6.0)])
def test_pacer_starts_at_the_listeners_breathing_capped_at_11(
    breathing: float, start: float
) -> None:
    loop = ClosedLoop()
    out = loop.update(0.0, FakeHeart(breathing_bpm=breathing), SoundTargets(pacer_bpm=10.0))
    assert out.pacer_bpm == pytest.approx(start)


def test_unknown_breathing_starts_at_the_programs_rate_and_holds() -> None:
    loop = ClosedLoop()
    out = loop.update(0.0, FakeHeart(breathing_bpm=None), SoundTargets(pacer_bpm=10.0))
    assert out.pacer_bpm == 10.0
    for i in range(1, 100):
        out = loop.update(i * 1.0, FakeHeart(breathing_bpm=None), SoundTargets(pacer_bpm=9.0))
    assert out.pacer_bpm == 10.0 and loop.state == "holding"
    assert "breathing estimate" in loop.reason


def test_falling_coherence_holds_the_glide() -> None:
    loop = ClosedLoop()
    plain = SoundTargets(pacer_bpm=6.0, entrain_hz=6.0)
    for i in range(200):
        loop.update(i * 1.0, FakeHeart(breathing_bpm=9.5, coherence=3.0), plain)
    before = loop.pacer_bpm
    for i in range(200, 230):
        loop.update(i * 1.0, FakeHeart(breathing_bpm=9.5, coherence=0.3), plain)
    assert loop.state == "holding" and loop.reason == "coherence falling"
    assert loop.pacer_bpm == before


def test_high_coherence_at_the_target_settles_at_the_listeners_own_rate() -> None:
    loop = ClosedLoop(pacer_target_bpm=6.0)
    plain = SoundTargets(pacer_bpm=6.0)
    t = 0.0
    while loop.pacer_bpm is None or loop.pacer_bpm > 6.0 or t < 30.0:
        loop.update(t, FakeHeart(breathing_bpm=6.2, coherence=0.8), plain)
        t += 1.0
    for _ in range(400):
        loop.update(t, FakeHeart(breathing_bpm=5.2, coherence=4.0), plain)
        t += 1.0
    assert loop.state == "settled"
    assert loop.pacer_bpm == pytest.approx(5.2)
    for _ in range(400):
        loop.update(t, FakeHeart(breathing_bpm=3.5, coherence=4.0), plain)
        t += 1.0
    assert loop.pacer_bpm == pytest.approx(4.5)  # never below the allowed range


def test_pacer_target_is_bounded() -> None:
    with pytest.raises(ValueError, match=r"pacer_target_bpm must be 4.5..7 /min, not 8.0"):
        ClosedLoop(pacer_target_bpm=8.0)
    with pytest.raises(ValueError, match="lag_resume_bpm"):
        ClosedLoop(lag_hold_bpm=1.0, lag_resume_bpm=1.2)


def test_a_higher_target_stops_the_glide_there() -> None:
    _, ticks = run(Listener(awake("compliant"), seed=6), "wind-down", until=1100.0)
    assert min(k.targets.pacer_bpm for k in ticks) == pytest.approx(6.0, abs=0.15)
    session = TherapySession(load_program("wind-down", []), pacer_target_bpm=7.0)
    _, ticks = run(Listener(awake("compliant"), seed=6), "wind-down", until=1100.0, session=session)
    assert min(k.targets.pacer_bpm for k in ticks) == pytest.approx(7.0, abs=0.05)


def test_nonsense_figures_never_steer_the_loop() -> None:
    loop = ClosedLoop()
    plain = SoundTargets(pacer_bpm=6.0, entrain_hz=9.0)
    loop.update(0.0, FakeHeart(breathing_bpm=9.0), plain)
    nonsense = FakeHeart(breathing_bpm=float("nan"), coherence=float("inf"))
    for i in range(1, 200):
        out = loop.update(float(i), nonsense, plain)
    assert out.pacer_bpm == pytest.approx(8.0)  # within 1/min of the last real figure
    assert loop.state == "holding" and "breathing estimate" in loop.reason
    loop.update(201.0, FakeHeart(hr_bpm=float("nan")), plain)
    assert loop.state == "frozen"


def test_a_slow_first_breathing_estimate_never_drops_the_pacer() -> None:
    loop = ClosedLoop()
    plain = SoundTargets(pacer_bpm=6.0, entrain_hz=9.0)
    out = loop.update(0.0, FakeHeart(breathing_bpm=None), plain.with_changes(pacer_bpm=10.0))
    assert out.pacer_bpm == 10.0
    for i in range(1, 61):  # a noisy first estimate far below the pacer
        out = loop.update(float(i), FakeHeart(breathing_bpm=3.3), plain)
    # Only the gated glide moves it down: at most 1/min per minute.
    assert out.pacer_bpm >= 10.0 - 1.0 - 1e-9


# --- the loop's signal watch (device.therapy.loop_signal) ---------------------------------


def _heart(**kw: object) -> Any:
    base = dict(hr_bpm=60.0, hr_beat_bpm=60.0, coherence=1.0, breathing_bpm=8.0)
    return SimpleNamespace(**{**base, "quality": 0.9, "contact": True, **kw})


def test_signal_watch_counts_good_and_bad_time_and_rejects_nan_and_low_quality() -> None:
    watch = SignalWatch(quality_min=0.6, coherence_high=1.8, breath_hold_s=60.0)
    assert watch.observe(0.0, 0.0, _heart())
    assert watch.observe(1.0, 1.0, _heart()) and watch.good_since == 0.0
    assert not watch.observe(2.0, 1.0, _heart(quality=0.5))
    assert watch.good_since is None and watch.bad_since == 2.0
    assert not watch.observe(3.0, 1.0, _heart(hr_bpm=math.nan)) and watch.bad_since == 2.0
    assert not watch.observe(4.0, 1.0, None)
    assert watch.observe(5.0, 1.0, _heart()) and watch.bad_since is None


def test_signal_watch_breath_peak_is_the_highest_of_its_window_and_forgets_old_ones() -> None:
    watch = SignalWatch(quality_min=0.6, coherence_high=1.8, breath_hold_s=10.0)
    assert watch.track_breathing(0.0, 9.0) == 9.0
    assert watch.track_breathing(4.0, 7.0) == 9.0  # a dip never lowers the peak at once
    assert watch.track_breathing(8.0, None) == 9.0
    assert watch.track_breathing(10.5, 6.5) == 7.0  # 9.0 is older than 10 s now
    assert watch.track_breathing(20.0, None) == 6.5
    assert watch.track_breathing(21.0, None) is None


def test_signal_watch_view_falls_with_a_gliding_pacer_but_holds_for_one_that_stays() -> None:
    # The estimate trails the breathing by 32 s (a 64-s spectral window): a listener who
    # breathes with a pacer gliding down 1/min per minute shows an estimate 0.5 behind it.
    gliding = SignalWatch(quality_min=0.6, coherence_high=1.8, breath_hold_s=60.0)
    still = SignalWatch(quality_min=0.6, coherence_high=1.8, breath_hold_s=60.0)
    seen = 10.0
    for i in range(241):
        t = i * 0.25
        pacer = 10.0 - t / 60.0
        seen += (pacer - seen) * (0.25 / 32.0) if i else 0.0
        gliding.see_pacer(t, 0.25, pacer)
        still.see_pacer(t, 0.25, 10.0)
        view = gliding.track_breathing(t, seen)  # they breathe exactly with it
        held = still.track_breathing(t, seen)
    assert gliding.breath_peak == pytest.approx(10.0)  # the raw peak of the window
    # The view falls as the pacer, as the estimate shows it, fell: their lag is 0.5 (the
    # estimate's own delay), not the 1.0+ of the minute-old peak.
    assert view == pytest.approx(seen, abs=0.01) and view - pacer < 0.6
    assert held == pytest.approx(10.0)  # the pacer held still: a falling estimate is a dip


def test_signal_watch_view_never_falls_faster_than_the_pacer_nor_below_the_estimate() -> None:
    watch = SignalWatch(quality_min=0.6, coherence_high=1.8, breath_hold_s=60.0)
    for i in range(241):  # the pacer glides 1/min in a minute, seen (as the estimate) 0.6
        t = i * 0.25
        watch.see_pacer(t, 0.25, 10.0 - t / 60.0)
        watch.track_breathing(t, 11.0)
    assert watch.seen_pacer is not None and 9.3 < watch.seen_pacer < 9.5
    fall = 10.0 - watch.seen_pacer
    # A deep dip of the estimate lowers the view only as far as the pacer fell.
    assert watch.track_breathing(60.25, 7.0) == pytest.approx(11.0 - fall, abs=0.01)
    assert watch.track_breathing(60.5, 10.9) == pytest.approx(10.9)  # the latest wins
    assert SignalWatch(0.6, 1.8, 60.0).track_breathing(0.0, 8.0) == 8.0  # no pacer yet


def test_signal_watch_tells_a_rising_heart_and_falling_coherence() -> None:
    watch = SignalWatch(quality_min=0.6, coherence_high=1.8, breath_hold_s=60.0)
    t = 0.0
    for _ in range(400):
        watch.observe(t, 0.25, _heart(hr_bpm=60.0, coherence=1.5))
        t += 0.25
    assert not watch.heart_rising() and not watch.coherence_falling()
    for _ in range(80):  # 20 s at 64 bpm and a coherence of 0.5
        watch.observe(t, 0.25, _heart(hr_bpm=64.0, coherence=0.5))
        t += 0.25
    assert watch.heart_rising() and watch.coherence_falling()
    watch.restart_coherence()
    assert not watch.coherence_falling()


def test_signal_watch_times_high_coherence_with_hysteresis() -> None:
    watch = SignalWatch(quality_min=0.6, coherence_high=2.0, breath_hold_s=60.0)
    watch.observe(0.0, 0.0, _heart(coherence=2.5))
    watch.observe(1.0, 1.0, _heart(coherence=1.6))  # above 0.75 of high: still counts
    assert watch.high_since == 0.0
    watch.observe(2.0, 1.0, _heart(coherence=1.4))
    assert watch.high_since is None


# --- a listener who does not follow (#23.14) --------------------------------------------------


def test_not_followed_for_5_minutes_the_swell_fades_and_the_pacer_plays_the_plan() -> None:
    loop = ClosedLoop()

    def plain(t: float) -> SoundTargets:
        pacer = max(6.0, 10.0 - t / 120.0)  # the plan: 10 -> 6/min over 8 min
        return SoundTargets(pacer_bpm=pacer, entrain_hz=max(2.0, 10.0 - t / 60.0), swell_db=6.0)

    out = {}
    for i in range(0, 1200):
        t = float(i)
        breathing = 12.0 if t < 900.0 else 6.3  # they breathe 12/min, then slow down
        out[i] = loop.update(t, FakeHeart(breathing_bpm=breathing), plain(t))
        # The entrainment plays the plan whatever the breathing does.
        assert out[i].entrain_hz == pytest.approx(plain(t).entrain_hz)
        if i == 299:
            assert loop.state == "holding" and out[i].pacer_bpm == pytest.approx(11.0)
    events = [(round(t), kind) for t, kind, _ in loop.drain_events()]
    assert (300, "release") in events
    assert out[310].swell_db == pytest.approx(6.0 * 50.0 / 60.0)  # fading over 60 s
    assert out[360].swell_db == 0.0
    assert out[600].pacer_bpm == pytest.approx(6.0) and out[899].swell_db == 0.0
    # Breathing within 1/min of the plan again: the swell returns, the loop adapts.
    rejoin = next(t for t, kind in events if kind == "rejoin")
    assert 900 <= rejoin <= 960
    assert out[rejoin + 61].swell_db == pytest.approx(6.0)
    # A slow follower, behind the plan but 0.5/min lower every few minutes, is never let go.
    slow = ClosedLoop()
    for i in range(1800):
        breathing = max(6.2, 12.0 - i / 200.0)
        slow.update(float(i), FakeHeart(breathing_bpm=breathing), plain(float(i)))
        assert slow.state != "released"
