"""A whole night through the real box: the sleep program, then silence, 8 h of audio.

How long the night takes on the wall clock is a benchmark (``bench/night_speed.py``), not
a test: a loaded machine must not fail it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from device.box.app import Box, RunOptions
from device.config import Config

NIGHT_S = 8 * 3600.0


def rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_whole_night_sleep_program_with_a_finger_removal(tmp_path):
    cfg = Config.defaults()
    for key, value in [
        ("therapy.program", "sleep"),
        ("audio.block_frames", 4096),  # a night of 1024-frame blocks is 1.35 M loop turns
        ("sensor.sample_rate_sps", 50),  # 50 sps: a poll every 0.3 s (+ one 85 ms block)
        ("sensor.poll_interval_s", 0.3),  # stays well inside the 32-deep FIFO
        ("sim.finger_off_at_s", 600.0),  # finger off at 00:10 ...
        ("sim.finger_off_for_s", 120.0),  # ... and back at 00:12
        ("sim.seed", 3),
    ]:
        cfg = cfg.with_value(key, value)
    opts = RunOptions(
        sim=True,
        audio="null",
        duration_s=NIGHT_S,
        speed=None,
        status="none",
        state_dir=str(tmp_path / "state"),
    )
    # The probe's own record is preallocated: the memory check measures the box, not the test.
    n = int(NIGHT_S / 5.0) + 2
    nums = np.full((n, 4), np.nan)  # t, audio_t, loop_t, elapsed
    states: list[object] = [None] * n
    loop_states: list[object] = [None] * n
    count = [0]
    rss: dict[str, int] = {}
    with Box(cfg, opts, status_out=io.StringIO()) as box:

        def probe(deadline: float) -> float:
            status = box.status()
            i = count[0]
            nums[i, 0] = deadline
            nums[i, 1] = box.engine.frames / box.engine.sample_rate
            nums[i, 2] = box.clock.now()
            elapsed = status["elapsed_s"]
            nums[i, 3] = np.nan if elapsed is None else elapsed
            states[i] = status["state"]
            loop_states[i] = status["loop_state"]
            count[0] = i + 1
            if deadline == 3600.0:
                rss["hour1"] = rss_kib()
            return deadline + 5.0

        box.loop.add_task("probe", probe, 5.0)
        assert box.run() == 0
        rss["end"] = rss_kib()
        events = box.events(500)
        frames = box.engine.frames

    samples = [
        {
            "t": nums[i, 0],
            "audio_t": nums[i, 1],
            "loop_t": nums[i, 2],
            "state": states[i],
            "loop_state": loop_states[i],
            "elapsed": None if np.isnan(nums[i, 3]) else nums[i, 3],
        }
        for i in range(count[0])
    ]

    assert abs(frames / 48000 - NIGHT_S) <= 4096 / 48000
    # The timeline is the audio clock: loop time and session time never leave the frame count.
    for s in samples:
        assert abs(s["loop_t"] - s["audio_t"]) <= 0.010
    # The program plays, ends on its own, and the night goes on in silence.
    playing = [s for s in samples if s["state"] == "playing"]
    assert playing and playing[0]["t"] <= 10
    assert all(s["state"] == "idle" for s in samples if 3600 < s["t"] < NIGHT_S - 5)
    kinds = [e["kind"] for e in events]
    assert "fallback" in kinds and "recovery" in kinds

    def states(t0: float, t1: float) -> set[str]:
        return {s["loop_state"] for s in samples if t0 <= s["t"] < t1}

    # Finger off at 600 s: frozen at once, fallback to the plain timeline after 10 s.
    assert states(615, 720) <= {"frozen", "fallback"} and "fallback" in states(615, 720)
    # Finger back at 720 s: adaptation resumes once the signal is good for 10 s.
    assert states(760, 900) & {"adapting", "holding", "settled"}
    fallback_t = next(e["t"] for e in events if e["kind"] == "fallback")
    recovery_t = next(e["t"] for e in events if e["kind"] == "recovery")
    assert 600 < fallback_t < 625 and 720 < recovery_t < 760
    # Memory: less than 2 MB of growth from the first hour to the morning.
    assert rss["end"] - rss["hour1"] < 2048, rss
