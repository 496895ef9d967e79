"""The loop measures each task's CPU time beside its wall time, and says which an overrun was."""

from __future__ import annotations

import logging
import time

import numpy as np

from device.sched.clock import VirtualClock
from device.sched.loop import Loop

RATE, BLOCK = 48000, 1024


class FakeTimes:
    """A wall clock and a CPU clock that tasks advance by hand."""

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0

    def wall(self) -> float:
        return self.wall_s

    def cpu(self) -> float:
        return self.cpu_s


def make_loop(**clocks) -> Loop:
    block = np.zeros((BLOCK, 2), np.float32)
    return Loop(
        VirtualClock(None), lambda: block, lambda b: None, sample_rate=RATE, block_frames=BLOCK,
        **clocks,
    )  # fmt: skip


def test_status_reports_cpu_beside_wall_per_task():
    times = FakeTimes()
    loop = make_loop(wall=times.wall, cpu=times.cpu)

    def computes(deadline: float) -> float:
        times.wall_s += 0.004
        times.cpu_s += 0.003  # 3 ms of its 4 ms computing
        return deadline + 0.5

    def waits(deadline: float) -> float:
        times.wall_s += 0.002  # 2 ms, none of it computing
        return deadline + 0.5

    loop.add_task("computes", computes, 0.0)
    loop.add_task("waits", waits, 0.0)
    loop.run(until=lambda: loop.clock.now() >= 2.2)
    stats = loop.task_stats()
    assert stats["computes"]["runs"] == 5
    assert stats["computes"]["max_ms"] == 4.0 and stats["computes"]["max_cpu_ms"] == 3.0
    assert stats["computes"]["mean_ms"] == 4.0 and stats["computes"]["mean_cpu_ms"] == 3.0
    assert stats["waits"]["max_ms"] == 2.0 and stats["waits"]["max_cpu_ms"] == 0.0
    assert stats["computes"]["overruns"] == stats["waits"]["overruns"] == 0
    # The engine's render is timed the same way, once per block.
    assert loop.render_timing.stats()["runs"] == loop.blocks


def test_a_cpu_bound_overrun_is_named_cpu_bound(caplog):
    times = FakeTimes()
    loop = make_loop(wall=times.wall, cpu=times.cpu)

    def heavy(deadline: float) -> float:
        times.wall_s += 0.030
        times.cpu_s += 0.029
        return deadline + 1.0

    loop.add_task("heavy", heavy, 0.0, budget_s=0.008)
    with caplog.at_level(logging.WARNING):
        loop.run(until=lambda: loop.clock.now() >= 0.5)
    stats = loop.task_stats()["heavy"]
    assert stats["overruns"] == stats["cpu_overruns"] == 1 and stats["wait_overruns"] == 0
    assert "30.0 ms wall, 29.0 ms CPU" in caplog.text and "cpu-bound" in caplog.text


def test_a_task_that_sleeps_is_reported_as_wall_not_cpu(caplog):
    """Real clocks: a sleeping task spends wall time the thread does not compute."""
    loop = make_loop()

    def sleeper(deadline: float) -> float:
        time.sleep(0.03)
        return deadline + 1.0

    loop.add_task("sleeper", sleeper, 0.0, budget_s=0.01)
    with caplog.at_level(logging.WARNING):
        loop.run(until=lambda: loop.clock.now() >= 0.5)
    stats = loop.task_stats()["sleeper"]
    assert stats["overruns"] == stats["wait_overruns"] == 1 and stats["cpu_overruns"] == 0
    assert stats["max_ms"] >= 30.0
    assert stats["max_cpu_ms"] < 10.0  # what it computed stays under the budget
    assert "descheduled or waiting" in caplog.text
