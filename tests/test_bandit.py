"""Personalisation: the chooser learns what works for one listener, deterministically."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from device.sim.listener import KINDS, IdealHeart, Listener
from device.therapy.bandit import Choice, Chooser, session_reward
from device.therapy.program import load_program
from device.therapy.session import TherapySession

OPTIONS = {"pad_preset": ("warm", "glass", "deep", "choir"), "noise_colour": ("pink", "brown")}


def play_first_ten_minutes(chooser: Chooser, likes: dict[str, str], seed: int) -> TherapySession:
    """One wind-down session to a listener who responds to ``likes``, until it is rewarded."""
    listener = Listener({**KINDS["compliant"], "sleep_per_h": 0.0}, seed=seed, likes=likes)
    heart = IdealHeart(listener)
    session = TherapySession(load_program("wind-down", []), chooser=chooser)
    t, dt = 0.0, 1.0
    while session.reward is None and t < 700.0:
        targets = session.update(t, heart.snapshot(t))
        listener.step(t + dt, dt, targets.pacer_bpm, targets)
        t += dt
    session.stop(t)
    return session


@pytest.mark.parametrize(("seed", "liked"), [(3, "deep"), (11, "glass")])
def test_sessions_converge_to_the_preset_the_listener_responds_to(seed: int, liked: str) -> None:
    chooser = Chooser(seed=seed)
    picks = []
    for i in range(40):
        session = play_first_ten_minutes(chooser, {"pad_preset": liked}, seed=100 + i)
        assert session.reward is not None
        picks.append(session.choice.values["pad_preset"])
    assert Counter(picks[-15:])[liked] >= 12, picks
    means = {v: chooser.posterior("pad_preset", v)[0] for v in OPTIONS["pad_preset"]}
    assert max(means, key=means.__getitem__) == liked
    assert f"pad={liked} best so far" in chooser.choose(load_program("wind-down").options).why


def test_ucb_converges_too() -> None:
    chooser = Chooser(seed=1, method="ucb")
    rng = random.Random(5)
    picks = []
    for _ in range(60):
        choice = chooser.choose(OPTIONS)
        reward = (1.5 if choice.values["pad_preset"] == "choir" else 0.5) + rng.gauss(0, 0.3)
        chooser.record(choice, reward)
        picks.append(choice.values["pad_preset"])
    assert Counter(picks[-20:])["choir"] >= 16


def test_choices_are_deterministic_under_a_seed() -> None:
    def sequence(seed: int) -> list[tuple[str, str]]:
        chooser = Chooser(seed=seed)
        out = []
        for i in range(20):
            choice = chooser.choose(OPTIONS)
            chooser.record(choice, 0.1 * (i % 3))
            out.append((choice.values["pad_preset"], choice.values["noise_colour"]))
        return out

    assert sequence(7) == sequence(7)
    assert sequence(7) != sequence(8)


def test_state_round_trips_through_json_and_continues_identically() -> None:
    chooser = Chooser(seed=2, profile="anna")
    for i in range(6):
        choice = chooser.choose(OPTIONS)
        chooser.record(choice, float(i % 2))
    chooser.rate(chooser.choose(OPTIONS), "like")
    state = json.loads(json.dumps(chooser.to_state()))
    restored = Chooser.from_state(state, seed=2, profile="anna")
    assert restored.to_state() == chooser.to_state()
    assert [restored.choose(OPTIONS).values for _ in range(5)] == [
        chooser.choose(OPTIONS).values for _ in range(5)
    ]


def test_profiles_learn_separately() -> None:
    anna = Chooser(seed=0, profile="anna")
    anna.record(Choice({"pad_preset": "deep"}, "", "anna"), 2.0)
    ben = Chooser.from_state(anna.to_state(), profile="ben")
    assert ben.posterior("pad_preset", "deep")[2] == 0
    assert (
        Chooser.from_state(ben.to_state(), profile="anna").posterior("pad_preset", "deep")[2] == 1
    )


def test_ratings_count_as_rewards() -> None:
    chooser = Chooser()
    liked = Choice({"pad_preset": "warm"})
    skipped = Choice({"pad_preset": "glass"})
    assert chooser.rate(liked, "like") == 1.0 and chooser.rate(skipped, "skip") == -1.0
    assert chooser.posterior("pad_preset", "warm")[0] > chooser.posterior("pad_preset", "glass")[0]
    with pytest.raises(ValueError, match="rating must be one of like, skip, not 'meh'"):
        chooser.rate(liked, "meh")


def test_reward_is_heart_rate_fall_and_coherence_rise() -> None:
    assert session_reward(70.0, 66.0, 1.0, 1.0) == pytest.approx(1.0)
    assert session_reward(70.0, 70.0, 1.0, 5.0) == pytest.approx(1.0)
    assert session_reward(70.0, 74.0, 1.0, 1.0) == pytest.approx(-1.0)
    assert session_reward(90.0, 50.0, 0.0, 40.0) == pytest.approx(6.0)  # each part capped at 3


def test_why_says_what_was_chosen_and_why() -> None:
    chooser = Chooser(seed=4)
    first = chooser.choose({"pad_preset": ("deep",)})
    assert first.why == "thompson: pad=deep untried"
    chooser.record(first, 0.8)
    assert (
        chooser.choose({"pad_preset": ("deep",)}).why
        == "thompson: pad=deep best so far (+0.80 over 1)"
    )
    assert Chooser().choose({}).why == "no options to choose"


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"version": 9, "profiles": {}}, "version 9"),
        ({"version": 1, "profiles": []}, "'profiles' must be a dict"),
        ({"version": 1, "profiles": {"a": {}}}, "profile 'a': must be a dict with 'arms'"),
        (
            {"version": 1, "profiles": {"a": {"arms": {"pad_preset": {"deep": {"n": 1}}}}}},
            "pad_preset=deep needs numbers 'n', 'sum' and 'sq'",
        ),
        (
            {
                "version": 1,
                "profiles": {"a": {"arms": {"pad_preset": {"deep": {"n": -1, "sum": 0, "sq": 0}}}}},
            },
            "has n=-1.0",
        ),
    ],
)
def test_bad_state_is_refused_naming_what_is_wrong(state: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Chooser.from_state(state)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="method must be one of thompson, ucb"):
        Chooser(method="greedy")
    with pytest.raises(ValueError, match="profile"):
        Chooser(profile="")
    with pytest.raises(ValueError, match="finite"):
        Chooser().record(Choice({"pad_preset": "deep"}), float("nan"))
