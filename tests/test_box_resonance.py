"""The Box hands each profile's resonance estimate to its sessions (issue 15's wiring)."""

from __future__ import annotations

import io
from pathlib import Path

from device.box.app import Box, RunOptions
from device.config import Config


def _box(state: Path) -> Box:
    opts = RunOptions(
        sim=True, audio="null", speed=None, status="none", program="wind-down",
        listener="compliant", seed=3, state_dir=str(state), duration_s=30.0,
    )  # fmt: skip
    return Box(Config.defaults(), opts, status_out=io.StringIO())


def test_a_first_session_assesses_the_profiles_resonance(tmp_path: Path) -> None:
    with _box(tmp_path / "state") as box:
        box.run()
        session = box.runner.session
        assert session is not None and session.loop is not None
        assessment = session.loop.assessment
        assert assessment is not None  # no estimate yet: the session steps through rates
        assert assessment.plan.kind == "assess"
