"""The loop: deadlines from deadlines (no drift), overruns counted and named, clocks."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from device.sched.clock import RealClock, VirtualClock
from device.sched.loop import Loop

RATE, BLOCK = 48000, 1024


def make_loop(clock=None, wall=None):
    block = np.zeros((BLOCK, 2), np.float32)
    written: list[int] = []
    loop = Loop(
        clock or VirtualClock(None),
        lambda: block,
        lambda b: written.append(len(b)),
        sample_rate=RATE,
        block_frames=BLOCK,
        **({"wall": wall} if wall else {}),
    )
    return loop, written


def test_periodic_task_does_not_drift_over_an_hour():
    loop, written = make_loop()
    runs: list[float] = []

    def every_tenth(deadline: float) -> float:
        runs.append(deadline)
        return deadline + 0.1

    loop.add_task("poll", every_tenth, 0.0)
    hour_blocks = int(3600 * RATE / BLOCK) + 1
    loop.run(until=lambda: loop.blocks >= hour_blocks)
    assert len(written) == hour_blocks
    # Exactly one run per 0.1 s slot, on the grid, and never late by more than a block.
    assert len(runs) == 36001
    assert runs[-1] == pytest.approx(3600.0, abs=1e-6)
    assert np.allclose(np.diff(runs), 0.1, atol=1e-9)
    # Virtual time: only skipped periods count here (a loaded machine may exceed a task's
    # wall-time budget, which is not what this test is about).
    assert loop.task_stats()["poll"]["skipped"] == 0


def test_task_runs_in_the_first_block_after_its_deadline():
    loop, _ = make_loop()
    seen: list[tuple[float, float]] = []

    def task(deadline: float) -> None:
        seen.append((deadline, loop.clock.now()))
        return None

    loop.add_task("once", task, 0.5)
    loop.run(until=lambda: loop.clock.now() > 1.0)
    ((deadline, ran_at),) = seen
    assert deadline == 0.5
    assert 0.5 <= ran_at < 0.5 + BLOCK / RATE


def test_slow_task_is_counted_and_named(caplog):
    fake_wall = [0.0]

    def wall() -> float:
        return fake_wall[0]

    loop, _ = make_loop(wall=wall)

    def slow(deadline: float) -> float:
        fake_wall[0] += 0.050  # 50 ms of work against a 5 ms budget
        return deadline + 1.0

    loop.add_task("slowpoke", slow, 0.0, budget_s=0.005)
    loop.add_task("fine", lambda d: d + 1.0, 0.0)
    with caplog.at_level(logging.WARNING):
        loop.run(until=lambda: loop.clock.now() >= 3.5)
    stats = loop.task_stats()
    assert stats["slowpoke"]["overruns"] == 4
    assert stats["fine"]["overruns"] == 0
    assert loop.overruns == 4
    assert loop.late_blocks == 4  # each of those turns took longer than a 21 ms block
    assert "task slowpoke" in caplog.text and "budget 5.0 ms" in caplog.text


def test_skipped_periods_are_counted_and_cadence_kept():
    loop, _ = make_loop()
    runs: list[float] = []

    def task(deadline: float) -> float:
        runs.append(deadline)
        return deadline + 0.01  # faster than a 21.3 ms block: some slots must be skipped

    loop.add_task("fast", task, 0.0)
    loop.run(until=lambda: loop.clock.now() >= 1.0)
    t = loop.task_stats()["fast"]
    assert t["skipped"] > 0 and t["overruns"] > 0
    # Every deadline stays on the 10 ms grid that started at 0.
    assert np.allclose(np.round(np.array(runs) / 0.01), np.array(runs) / 0.01, atol=1e-6)


def test_failing_task_is_logged_retried_and_the_loop_goes_on(caplog):
    loop, written = make_loop()
    calls: list[float] = []

    def broken(deadline: float) -> float:
        calls.append(deadline)
        raise OSError("bus fell off")

    loop.add_task("sensor", broken, 0.0, period=0.5)
    with caplog.at_level(logging.ERROR):
        loop.run(until=lambda: loop.clock.now() >= 2.1)
    assert calls == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert loop.task_stats()["sensor"]["errors"] == 5
    assert "task sensor failed" in caplog.text
    assert len(written) == loop.blocks > 90


def test_cancel_and_none_end_tasks():
    loop, _ = make_loop()
    calls: list[str] = []
    a = loop.add_task("a", lambda d: calls.append("a") or d + 0.1, 0.0)
    loop.add_task("b", lambda d: calls.append("b") or None, 0.0)
    loop.turn()
    loop.cancel(a)
    loop.cancel(a)
    for _ in range(20):
        loop.turn()
    assert calls == ["a", "b"]
    assert loop.tasks == ()


def test_virtual_clock_paces_at_speed_without_drift():
    wall = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        wall[0] += s

    clock = VirtualClock(10.0, monotonic=lambda: wall[0], sleep=sleep)
    for _ in range(4688):  # 100 s of audio at 48 kHz in 1024-frame blocks
        clock.advance(1024, 48000)
        wall[0] += 0.0001  # render time
    assert clock.now() == pytest.approx(4688 * 1024 / 48000)
    assert wall[0] - 100.0 == pytest.approx(clock.now() / 10.0, abs=0.001)


def test_virtual_clock_max_speed_never_sleeps():
    clock = VirtualClock(None, sleep=lambda s: pytest.fail("slept"))
    clock.advance(48000, 48000)
    assert clock.now() == 1.0
    with pytest.raises(ValueError):
        VirtualClock(0)


def test_real_clock_reads_monotonic_time():
    t = [5.0]
    clock = RealClock(monotonic=lambda: t[0])
    t[0] = 7.5
    assert clock.now() == 2.5
    clock.advance(1024, 48000)
    assert clock.frames == 1024 and clock.now() == 2.5


def test_between_callbacks_run_mid_block_and_the_block_is_written_whole():
    block = np.arange(BLOCK * 2, dtype=np.float32).reshape(BLOCK, 2)
    written: list[np.ndarray] = []
    clock = VirtualClock(None)
    loop = Loop(
        clock,
        lambda: block,
        lambda b: written.append(np.array(b)),
        sample_rate=RATE,
        block_frames=BLOCK,
    )
    seen: list[float] = []
    loop.add_between(lambda: seen.append(clock.now()))
    loop.add_between(lambda: 1 / 0)  # a failing callback is counted, never raised
    for _ in range(3):
        loop.turn()
    assert seen == pytest.approx([(i + 0.5) * BLOCK / RATE for i in range(3)])
    assert np.array_equal(np.concatenate(written[:2]), block)
    assert len(written) == 6 and loop.between_errors == 3
    assert clock.now() == pytest.approx(3 * BLOCK / RATE)
