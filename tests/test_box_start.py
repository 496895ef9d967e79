"""The box's start-up: what the first block, the console and the start task each decide."""

from __future__ import annotations

import io

from device.box.app import Box, RunOptions
from device.config import Config


def run_box_for(tmp_path, seconds: float, before_boot=None) -> list[tuple[float, str, str]]:
    """Run the simulated box ``seconds`` of audio; (t, state, program) each 0.5 s till its exit."""
    cfg = Config.defaults().with_value("service.auto_start", False)
    opts = RunOptions(
        sim=True,
        audio="null",
        duration_s=seconds,
        speed=None,
        status="none",
        state_dir=str(tmp_path / "state"),
    )
    seen: list[tuple[float, str, str]] = []
    with Box(cfg, opts, status_out=io.StringIO()) as box:

        def probe(deadline: float) -> float:
            status = box.status()
            if deadline < seconds - 2.0:  # the last 2 s are the box's exit fade
                seen.append((deadline, status["state"], str(status["program"])))
            return deadline + 0.5

        box.loop.add_task("probe", probe, 0.5)
        if before_boot is not None:
            before_boot(box)
        assert box.run() == 0
    return seen


def test_without_auto_start_the_box_waits_idle(tmp_path) -> None:
    seen = run_box_for(tmp_path, 5.0)
    assert {state for _, state, _ in seen} == {"idle"}


def test_a_session_started_before_the_start_task_is_kept(tmp_path) -> None:
    # A technician's SESSION START can arrive as soon as the console says !READY, before the
    # start task has run (it waits for the output buffer to fill); the start task must not
    # put such a session back to idle.
    seen = run_box_for(tmp_path, 5.0, lambda box: box.start_session("relax", 5))
    assert [(state, program) for _, state, program in seen] == [("playing", "relax")] * len(seen)
    assert len(seen) >= 4
