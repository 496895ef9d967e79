"""The engine while silent: what it reports is what it would play, and time still passes."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from device.sound.engine import VOLUME_RATE, Engine
from device.sound.targets import OFF_DB, SoundTargets

REPO = Path(__file__).resolve().parent.parent


def test_reported_levels_stand_still_after_a_fade_cuts_a_ramp() -> None:
    # the sequence hypothesis found (tests/test_sound_props.py): a level ramp planned for a
    # segment, a fade-out that cuts it, then silence: the rest of that ramp never plays,
    # so the reported level must not keep moving along it while idle
    e = Engine(block_frames=512, volume_db=-20.0, cap_dbfs=-3.0)
    e.fade_in(0.0)
    e.render()
    e.set_targets(SoundTargets(tones_db=OFF_DB, pad_db=OFF_DB, noise_db=OFF_DB))
    e.render()
    e.fade_out(0.0)
    for _ in range(3):
        e.render()
    e.fade_out(0.0)
    e.render()
    assert e.faded_out
    seen = []
    for _ in range(3 * e.blocks_per_segment):
        e.render()
        seen.append(e.gains_db()["tones"])
    # silence: the tones level goes on towards its target (off) at its rate, never back
    assert all(b <= a for a, b in itertools.pairwise(seen))
    e.fade_in(0.0)
    before = e.gains_db()["tones"]
    e.render()
    assert e.gains_db()["tones"] <= before


def test_volume_moves_at_its_rate_while_idle() -> None:
    e = Engine(block_frames=1024, volume_db=-20.0)
    assert e.faded_out
    e.set_volume_db(-30.0)
    frames = 0
    while frames < 2 * e.sample_rate:  # 2 s of silence
        e.render()
        frames += e.block_frames
    got = e.gains_db()["volume"]
    # after 2 s at 3 dB/s the level has come down 6 dB (to within one segment's planning)
    assert got == pytest.approx(-20.0 - VOLUME_RATE * 2.0, abs=VOLUME_RATE * 0.35)
    while frames < 6 * e.sample_rate:
        e.render()
        frames += e.block_frames
    assert e.gains_db()["volume"] == -30.0
    e.fade_in(0.5)
    e.render()
    assert e.gains_db()["volume"] == -30.0  # the sound comes back at the volume set


def test_ci_profile_derandomises_property_tests() -> None:
    code = (
        "import runpy\n"
        "runpy.run_path('tests/conftest.py')\n"
        "from hypothesis import settings\n"
        "print(settings.default.derandomize, settings.default.database)\n"
    )
    env = dict(os.environ, CI="true", PYTHONPATH=str(REPO))
    env.pop("HYPOTHESIS_PROFILE", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "None"]
    assert isinstance(settings.default.derandomize, bool)
