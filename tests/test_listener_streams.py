"""The simulated listener's random processes each draw from their own stream (#23.15).

Adding a draw to one process (the breathing-swing wander once moved every later draw, so
the default listener fell asleep 53 s into every program) must never shift another; the
moment of falling asleep must not depend on the step size; a ``--sim`` box shows the
listener's true breathing and sleep state.
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest

import device.sim.listener as listener_module
from device.sim.listener import KINDS, PROCESSES, Listener
from device.sound.targets import SoundTargets

PACED = SoundTargets(pacer_bpm=6.0)


class Recorded(random.Random):
    """A stream that records what it hands out; ``extra`` draws one more number each call."""

    def __init__(self, inner: random.Random, extra: bool = False) -> None:
        super().__init__()
        self.inner, self.extra = inner, extra
        self.drawn: list[float] = []

    def random(self) -> float:
        if self.extra:
            self.inner.random()
        value = self.inner.random()
        self.drawn.append(value)
        return value

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        if self.extra:
            self.inner.gauss(mu, sigma)
        value = self.inner.gauss(mu, sigma)
        self.drawn.append(value)
        return value

    def expovariate(self, lambd: float = 1.0) -> float:
        value = self.inner.expovariate(lambd)
        self.drawn.append(value)
        return value


def recorded(seed: int, extra_in: str | None = None) -> tuple[Listener, dict[str, Recorded]]:
    """A sleeper whose streams record their draws (``extra_in``: that one draws extra)."""
    made: dict[str, Recorded] = {}
    original = listener_module.streams

    def wrapped(seed: int) -> dict[str, random.Random]:
        for name, stream in original(seed).items():
            made[name] = Recorded(stream, extra=name == extra_in)
        return dict(made)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(listener_module, "streams", wrapped)
        listener = Listener("sleeper", seed=seed)
    return listener, made


def walk(listener: Listener, seconds: float, dt: float = 1.0) -> list[float]:
    breathing = []
    t = 0.0
    while t < seconds:
        listener.step(t + dt, dt, 6.0, PACED)
        breathing.append(listener.breathing_bpm)
        t += dt
    return breathing


@pytest.mark.parametrize("changed", ["breathing", "swing"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_extra_draw_in_one_process_never_shifts_another(changed: str, seed: int) -> None:
    plain, plain_streams = recorded(seed)
    other, other_streams = recorded(seed, extra_in=changed)
    walk(plain, 1800.0)
    walk(other, 1800.0)
    assert set(plain.streams) == set(PROCESSES)
    for name in PROCESSES:
        n = min(len(plain_streams[name].drawn), len(other_streams[name].drawn))
        assert n > 0
        same = plain_streams[name].drawn[:n] == other_streams[name].drawn[:n]
        assert same == (name != changed), name


def test_an_extra_swing_draw_leaves_breathing_and_sleep_alone() -> None:
    plain, _ = recorded(3)
    other, _ = recorded(3, extra_in="swing")
    assert walk(plain, 2400.0) == walk(other, 2400.0)
    assert plain.asleep_t is not None and plain.asleep_t == other.asleep_t
    assert plain.rsa_bpm != other.rsa_bpm  # the swing's own wander did change


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_moment_of_falling_asleep_does_not_depend_on_the_step_size(seed: int) -> None:
    # Without the breathing's wander the rest is deterministic but for the sleep draw.
    spec = {**KINDS["sleeper"], "breath_noise_bpm": 0.0}
    fine, coarse = Listener(spec, seed=seed), Listener(spec, seed=seed)
    walk(fine, 3600.0, dt=0.25)
    walk(coarse, 3600.0, dt=2.0)
    assert fine.asleep_t is not None and coarse.asleep_t is not None
    assert abs(fine.asleep_t - coarse.asleep_t) <= 4.0


@pytest.mark.parametrize("kind", ["compliant", "sleeper"])
def test_nobody_drops_off_in_the_first_minutes_but_a_sleeper_does_within_the_half_hour(
    kind: str,
) -> None:
    onsets = []
    for seed in range(30):
        listener = Listener(kind, seed=seed)
        walk(listener, 1800.0, dt=2.0)
        onsets.append(listener.asleep_t)
    # Drowsiness builds over minutes: a sleeper, paced at 6/min from the first second,
    # drops off after 2 minutes at the soonest, the ordinary listener after 5.
    soonest = 2 * 60.0 if kind == "sleeper" else 5 * 60.0
    assert all(t is None or t > soonest for t in onsets), onsets
    asleep = sum(t is not None for t in onsets)
    if kind == "sleeper":
        assert asleep >= 20, onsets
    else:
        assert asleep <= 15, onsets


def test_a_sim_box_shows_the_listeners_true_breathing_and_sleep(
    bedside_cmd: list[str], cli_env: dict[str, str]
) -> None:
    proc = subprocess.run(
        [*bedside_cmd, "run", "--sim", "--audio", "null", "--duration", "150", "--speed", "max",
         "--status", "json"],
        env=cli_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all("sim_breathing" in x and "sim_asleep" in x for x in lines)
    # The default compliant listener follows the pacer (10/min) and stays awake.
    assert lines[0]["sim_breathing"] > 12.0
    assert not any(x["sim_asleep"] for x in lines)
    late = [x for x in lines if x["t"] > 100.0]
    assert late and all(x["sim_breathing"] < 11.0 for x in late)
