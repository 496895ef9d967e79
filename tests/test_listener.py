"""The simulated listener: breathing follows the pacer as compliant as it is, RSA, sleep."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.exc import ConfigError
from device.sim.listener import KINDS, IdealHeart, Listener
from device.sim.pulse import PulseModel
from device.sound.targets import SoundTargets

PACED = SoundTargets(pacer_bpm=6.0)


def breathe(listener: Listener, seconds: float, pacer: float | None, targets=PACED) -> None:
    t = 0.0
    while t < seconds:
        listener.step(t + 1.0, 1.0, pacer, targets)
        t += 1.0


def test_breathing_follows_the_pacer_as_far_as_the_listener_complies() -> None:
    compliant = Listener({**KINDS["compliant"], "sleep_per_h": 0.0}, seed=1)
    stubborn = Listener({**KINDS["non-compliant"], "sleep_per_h": 0.0}, seed=1)
    breathe(compliant, 300.0, 6.0)
    breathe(stubborn, 300.0, 6.0)
    assert compliant.breathing_bpm == pytest.approx(6.0 + 0.05 * 7.0, abs=0.6)
    assert stubborn.breathing_bpm > 10.0


def test_without_a_swell_the_pacer_is_not_heard() -> None:
    listener = Listener({**KINDS["compliant"], "sleep_per_h": 0.0}, seed=1)
    breathe(listener, 300.0, 6.0, SoundTargets(pacer_bpm=6.0, swell_db=0.0))
    assert listener.breathing_bpm > 12.0


def test_rsa_grows_and_heart_rate_falls_as_breathing_slows() -> None:
    listener = Listener({**KINDS["compliant"], "sleep_per_h": 0.0}, seed=2)
    rsa0, hr0 = listener.rsa_bpm, listener.hr_mean_bpm
    breathe(listener, 600.0, 6.0)
    assert listener.rsa_bpm > 2.5 * rsa0
    assert listener.hr_mean_bpm < hr0 - 4.0
    assert listener.coherence > 2.0


def test_restless_heart_rate_rises_and_breathing_wanders() -> None:
    listener = Listener({**KINDS["restless"], "sleep_per_h": 0.0}, seed=3)
    rates = []
    for i in range(1200):
        listener.step(float(i + 1), 1.0, 10.0, SoundTargets(pacer_bpm=10.0))
        rates.append(listener.breathing_bpm)
    assert listener.hr_mean_bpm > 76.0 + 5.0
    assert max(rates) - min(rates) > 3.0


def test_liked_sound_lowers_the_heart_rate_and_brings_sleep_sooner() -> None:
    def run(pad: str) -> tuple[float, list[float]]:
        hrs, onsets = [], []
        for seed in range(12):
            listener = Listener("compliant", seed=seed, likes={"pad_preset": pad})
            targets = SoundTargets(pacer_bpm=6.0, pad_preset="deep")
            t = 0.0
            while t < 3600.0 and not listener.asleep:
                listener.step(t + 5.0, 5.0, 6.0, targets)
                t += 5.0
                if t == 600.0:
                    hrs.append(listener.hr_mean_bpm)
            onsets.append(listener.asleep_t or 3600.0)
        return sum(hrs) / len(hrs), onsets

    liked_hr, liked_onsets = run("deep")
    other_hr, other_onsets = run("glass")
    assert liked_hr < other_hr - 2.0
    assert sum(liked_onsets) < sum(other_onsets)


def test_asleep_the_heart_slows_and_breathing_steadies() -> None:
    listener = Listener({**KINDS["compliant"], "sleep_per_h": 30.0}, seed=4)
    t = 0.0
    while not listener.asleep:
        listener.step(t + 1.0, 1.0, 6.0, PACED)
        t += 1.0
    hr_at_sleep = listener.hr_mean_bpm
    for _ in range(900):
        listener.step(t + 1.0, 1.0, None, SoundTargets(pacer_bpm=None))
        t += 1.0
    assert listener.asleep_t is not None and listener.hr_mean_bpm < hr_at_sleep - 3.0


def test_same_seed_same_listener() -> None:
    a, b = Listener("restless", seed=9), Listener("restless", seed=9)
    breathe(a, 200.0, 8.0)
    breathe(b, 200.0, 8.0)
    assert (a.breathing_bpm, a.hr_mean_bpm) == (b.breathing_bpm, b.hr_mean_bpm)


class PulseInputsLog:
    """Records what a pulse model is told (the listener's half of the contract)."""

    def __init__(self) -> None:
        self.heart: list[tuple[float, float]] = []
        self.breathing: list[float] = []

    def set_heart(self, mean_bpm: float, rsa_bpm: float) -> None:
        self.heart.append((mean_bpm, rsa_bpm))

    def set_breathing(self, rate_bpm: float) -> None:
        self.breathing.append(rate_bpm)


def test_drives_the_pulse_model_every_step() -> None:
    log = PulseInputsLog()
    listener = Listener("compliant", seed=1, pulse=log)
    breathe(listener, 120.0, 6.0)
    assert len(log.heart) == len(log.breathing) == 121
    assert log.heart[-1] == (listener.hr_mean_bpm, listener.rsa_bpm)
    assert log.breathing[-1] == listener.breathing_bpm
    # The real pulse model accepts every value the listener sends.
    model = PulseModel(seed=1)
    Listener("restless", seed=2, pulse=model).step(1.0, 1.0, 8.0, PACED)


def test_parameters_from_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "anna.toml"
    path.write_text(
        '[listener]\nkind = "restless"\nhr_bpm = 90\n[listener.likes]\npad_preset = "deep"\n'
    )
    listener = Listener(path, seed=0)
    assert listener.params["hr_bpm"] == 90.0
    assert listener.params["compliance"] == KINDS["restless"]["compliance"]
    assert listener.likes == {"pad_preset": "deep"}
    assert listener.kind == "anna (restless)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hr_bpm = 300", r"listener.hr_bpm: 300 is out of range \(allowed 35 .. 130"),
        ("pulse = 3", r"listener.pulse: unknown key"),
        ('kind = "sleepy"', r"kind: 'sleepy' is not one of compliant"),
        ("hr_bpm = [", "not valid TOML"),
    ],
)
def test_bad_listener_files_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        Listener(str(path))
    assert str(path) in str(info.value)


def test_unknown_kind_and_negative_step_are_refused() -> None:
    with pytest.raises(ValueError, match=r"no listener .* use compliant"):
        Listener("sleepy")
    with pytest.raises(ValueError, match="dt must be >= 0"):
        Listener().step(1.0, -1.0, None)


def test_ideal_heart_withholds_figures_without_contact() -> None:
    listener = Listener("compliant", seed=0)
    heart = IdealHeart(listener)
    state = heart.snapshot(0.0)
    assert state.hr_bpm == pytest.approx(68.0) and state.breathing_bpm == pytest.approx(13.0)
    heart.contact = False
    state = heart.snapshot(1.0)
    assert state.hr_bpm is None and state.breathing_bpm is None and state.quality == 0.0


# --- the listener's own resonance ------------------------------------------------------------


def test_the_breathing_swing_peaks_at_the_listeners_resonance_rate(tmp_path: Path) -> None:
    from device.sim.listener import resonance_response

    f = tmp_path / "slow.toml"
    f.write_text('[listener]\nkind = "compliant"\nresonance_bpm = 4.8\nresonance_width_bpm = 0.8\n')
    listener = Listener(f)
    rates = [4.5 + 0.05 * i for i in range(51)]
    swings = [listener.resting_swing_bpm(r) for r in rates]
    assert rates[swings.index(max(swings))] == pytest.approx(4.8, abs=0.06)
    # 4-10x the resting swing at resonance; the resting swing is the rsa_bpm parameter.
    assert 4.0 <= max(swings) / listener.params["rsa_bpm"] <= 10.0
    assert listener.resting_swing_bpm(13.0) == pytest.approx(listener.params["rsa_bpm"])
    assert resonance_response(4.8, 4.8, 0.8) == pytest.approx(1.0)
    # A sharper peak falls off faster either side.
    assert resonance_response(5.8, 4.8, 0.5) < resonance_response(5.8, 4.8, 1.5)


def test_built_in_kinds_resonate_at_6_and_bad_resonance_keys_are_refused(tmp_path: Path) -> None:
    for kind in KINDS:
        assert Listener(kind).params["resonance_bpm"] == 6.0
    bad = tmp_path / "bad.toml"
    bad.write_text("resonance_bpm = 8.0\n")
    with pytest.raises(ConfigError, match=r"listener.resonance_bpm: 8.0 is out of range"):
        Listener(bad)


def test_the_ideal_heart_beats_carry_the_breathing_swing() -> None:
    listener = Listener({**KINDS["compliant"], "sleep_per_h": 0.0}, seed=4)
    heart = IdealHeart(listener)
    beats = []
    t = 0.0
    while t < 120.0:
        state = heart.snapshot(t)
        beats.append(state.hr_beat_bpm)
        listener.step(t + 0.25, 0.25, None)
        t += 0.25
    late = beats[len(beats) // 2 :]
    swing = max(late) - min(late)
    assert 0.6 * listener.rsa_bpm <= swing <= 1.6 * listener.rsa_bpm
