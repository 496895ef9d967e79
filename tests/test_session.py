"""TherapySession: timeline + closed loop + chooser, as the box drives it."""

from __future__ import annotations

import pytest

from device.sim.listener import KINDS, IdealHeart, Listener
from device.therapy.bandit import Chooser
from device.therapy.program import load_program
from device.therapy.session import TherapySession


def play(session: TherapySession, start: float, seconds: float, listener: Listener | None = None):
    heart = IdealHeart(listener) if listener is not None else None
    t = start
    while t < start + seconds and not session.finished(t):
        targets = session.update(t, heart.snapshot(t) if heart else None)
        if listener is not None:
            listener.step(t + 1.0, 1.0, targets.pacer_bpm, targets)
        t += 1.0
    return t


def test_events_tell_the_story_of_a_session() -> None:
    session = TherapySession(load_program("relax", []))
    listener = Listener({**KINDS["compliant"], "sleep_per_h": 0.0}, seed=1)
    end = play(session, 1000.0, 900.0, listener)
    assert session.finished(end)
    events = session.drain_events()
    assert [(t, k, d) for t, k, d in events if k in ("start", "section", "stop")] == [
        (1000.0, "start", "relax (10 min)"),
        (1000.0, "section", "arrive"),
        (1120.0, "section", "breathe"),
        (1540.0, "section", "ending:fade"),
        (1600.0, "stop", "program complete"),
    ]
    assert any(k == "adapt" for _, k, _ in events)
    assert session.drain_events() == []


def test_status_says_where_the_session_is() -> None:
    chooser = Chooser(seed=1)
    session = TherapySession(load_program("wind-down", []), chooser=chooser)
    play(session, 0.0, 301.0, Listener({**KINDS["compliant"], "sleep_per_h": 0.0}, seed=2))
    status = session.status()
    assert status["program"] == "wind-down" and status["section"] == "slow"
    assert status["elapsed_s"] == 300.0 and status["remaining_s"] == 900.0
    assert status["section_remaining_s"] == pytest.approx(420.0)
    assert 6.0 <= status["pacer_bpm"] <= 11.0 and status["entrain_hz"] <= 10.0
    assert status["loop_state"] in ("adapting", "holding", "settled")
    assert set(status["chosen"]) == {"pad_preset", "noise_colour", "entrain_kind"}
    assert status["why"].startswith("thompson: ")
    kinds = [k for _, k, _ in session.drain_events()]
    assert kinds.index("preset") == 1


def test_a_wake_ramp_rings_the_chime_once_at_its_end() -> None:
    session = TherapySession(load_program("nap", []), closed_loop=False)
    t = 0.0
    while not session.finished(t):
        session.update(t, None)
        t += 0.25
    events = session.drain_events()
    chimes = [(t, d) for t, k, d in events if k == "chime"]
    assert chimes == [(pytest.approx(23 * 60.0 - 0.5, abs=0.3), "wake")]
    assert events[-1][1] == "stop"


def test_the_first_ten_minutes_earn_the_chooser_a_reward() -> None:
    chooser = Chooser(seed=2)
    session = TherapySession(load_program("sleep", []), chooser=chooser)
    listener = Listener({**KINDS["compliant"], "sleep_per_h": 0.0}, seed=3)
    play(session, 0.0, 601.0, listener)
    assert session.reward is not None and session.reward > 0.5
    assert any(k == "reward" and d.startswith("+") for _, k, d in session.drain_events())
    assert chooser.to_state()["profiles"]["default"]["sessions"] == 1


def test_stopping_early_rewards_after_5_minutes_but_not_before() -> None:
    listener = Listener({**KINDS["compliant"], "sleep_per_h": 0.0}, seed=4)
    late = TherapySession(load_program("sleep", []), chooser=Chooser())
    t = play(late, 0.0, 400.0, listener)
    late.stop(t)
    assert late.reward is not None and late.finished(t)
    early = TherapySession(load_program("sleep", []), chooser=Chooser())
    t = play(early, 0.0, 200.0, Listener("compliant", seed=4))
    early.stop(t, "button")
    early.stop(t + 1.0, "again")
    assert early.reward is None
    assert [d for _, k, d in early.drain_events() if k == "stop"] == ["button"]


def test_ratings_reach_the_chooser() -> None:
    chooser = Chooser(seed=5)
    session = TherapySession(load_program("wind-down", []), chooser=chooser)
    session.update(0.0, None)
    session.rate("like", 10.0)
    pad = session.choice.values["pad_preset"]
    assert chooser.posterior("pad_preset", pad)[0] > 0.0
    session.update(12.0, None)
    session.rate("skip")
    events = session.drain_events()
    assert (10.0, "rating", "like (+1)") in events and (12.0, "rating", "skip (-1)") in events
    with pytest.raises(ValueError, match="rating"):
        session.rate("love")


def test_no_chooser_plays_the_programs_own_choices() -> None:
    session = TherapySession(load_program("sleep", []))
    assert session.status()["why"] == "program defaults" and session.status()["chosen"] == {}
    assert session.update(0.0, None).pad_preset == "deep"


def test_personalise_without_a_chooser_makes_a_seeded_one() -> None:
    a = TherapySession(load_program("sleep", []), personalise=True, seed=42)
    b = TherapySession(load_program("sleep", []), personalise=True, seed=42)
    assert a.choice == b.choice and a.chooser is not None


def test_loop_settings_reach_the_closed_loop() -> None:
    session = TherapySession(load_program("sleep", []), loop_settings={"glide_bpm_per_min": 0.5})
    assert session.loop is not None and session.loop.cfg.glide_bpm_per_min == 0.5
    with pytest.raises(ValueError, match=r"glide_bpm_per_min must be 0\.05\.\.4"):
        TherapySession(load_program("sleep", []), loop_settings={"glide_bpm_per_min": 9.0})
