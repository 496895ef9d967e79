"""The personalisation raises warmth for a listener whose ratings are low (issue 14.4).

The chooser keeps every like and skip of a profile as its enjoyment, whatever was rated
(a preset, a track, a program without options); a session plays ``Chooser.warmth`` of the
program's warmth, so the music's low shelf and the pad's sub-bass come up for a listener
who skips what plays, and stay where the program put them for one who likes it.
"""

from __future__ import annotations

import json

import pytest

from device.sound.engine import Engine
from device.therapy.bandit import Choice, Chooser
from device.therapy.program import load_program
from device.therapy.session import TherapySession


def test_no_ratings_leave_the_programs_warmth() -> None:
    chooser = Chooser()
    assert chooser.enjoyment() == (0.0, 0.0)
    assert chooser.warmth(0.0) == 0.0 and chooser.warmth(0.4) == 0.4


def test_skips_raise_warmth_step_by_step_and_likes_do_not() -> None:
    skipper, liker = Chooser(profile="s"), Chooser(profile="l")
    levels = []
    for _ in range(6):
        skipper.rate(Choice(), "skip")
        liker.rate(Choice(), "like")
        levels.append(skipper.warmth(0.0))
        assert liker.warmth(0.0) == 0.0 and liker.warmth(0.3) == 0.3
    assert levels == sorted(levels) and levels[0] == pytest.approx(1 / 3)
    assert levels[-1] == pytest.approx(6 / 8) and levels[-1] < 1.0
    assert skipper.warmth(0.5) == pytest.approx(0.5 + 0.5 * 6 / 8)  # never above 1
    mixed = Chooser()
    for kind in ("like", "skip", "skip", "like"):
        mixed.rate(Choice({"pad_preset": "warm"}), kind)
    assert mixed.warmth(0.2) == pytest.approx(0.2)  # as many likes as skips: no change


def test_enjoyment_is_kept_per_profile_and_saved() -> None:
    anna = Chooser(profile="anna")
    for _ in range(3):
        anna.rate(Choice(), "skip")
    state = json.loads(json.dumps(anna.to_state()))
    assert Chooser.from_state(state, profile="anna").warmth(0.0) == pytest.approx(3 / 5)
    assert Chooser.from_state(state, profile="ben").warmth(0.0) == 0.0
    # a state saved before ratings were kept loads with none
    del state["profiles"]["anna"]["ratings"]
    assert Chooser.from_state(state, profile="anna").enjoyment() == (0.0, 0.0)
    state["profiles"]["anna"]["ratings"] = {"n": 1.0, "sum": -4.0}
    with pytest.raises(ValueError, match=r"profile 'anna': 'ratings' has n=1\.0, sum=-4\.0"):
        Chooser.from_state(state)
    state["profiles"]["anna"]["ratings"] = {"n": "x"}
    with pytest.raises(ValueError, match="'ratings' needs numbers 'n' and 'sum'"):
        Chooser.from_state(state)


def test_a_session_without_options_plays_more_warmth_after_skips() -> None:
    program = load_program("my-music")
    assert not program.options
    chooser = Chooser(seed=1)
    session = TherapySession(program, chooser=chooser, closed_loop=False)
    assert session.update(0.0, None).warmth == 0.0
    session.rate("skip", 5.0)
    session.rate("skip", 6.0)
    t = session.update(10.0, None)
    assert t.warmth == pytest.approx(0.5) and session.status()["warmth"] == t.warmth
    assert chooser.enjoyment() == (pytest.approx(-0.5), 2.0)
    events = [e for e in session.drain_events() if e[1] == "rating"]
    assert events == [(5.0, "rating", "skip"), (6.0, "rating", "skip")]
    # the next session of this listener starts warm, and the engine plays it
    engine = Engine()
    engine.set_targets(TherapySession(program, chooser=chooser).update(0.0, None))
    assert engine.mixer.pad is not None and engine.mixer.pad.sub.warmth.target == 0.5


def test_without_personalisation_the_program_decides() -> None:
    session = TherapySession(load_program("my-music"), closed_loop=False)
    session.rate("skip", 1.0)
    assert session.update(2.0, None).warmth == 0.0
