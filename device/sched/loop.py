"""The box's one cooperative loop, paced by the audio sink.

Each turn renders one fixed block, hands it to the sink (a sound card blocks here in real
time; a WAV or null sink returns at once and the virtual clock keeps time), then runs every
task whose deadline has come. A task is a callback ``cb(deadline) -> next_deadline`` in the
style of Klipper's reactor timers, except that the next deadline is computed from the
deadline the task was given, not from "now", so a periodic task never drifts.

What the loop counts (and never raises out of the audio path for):

* an *overrun* of a task: it took longer than its wall-time budget, or it fell so far behind
  that whole periods were skipped (it is then moved to its next future slot);
* each task's *CPU time* (the loop thread's, :func:`time.thread_time`) beside its wall time,
  so an overrun says which it was: the task computed too long (*cpu*), or the thread was
  descheduled, waited or page-faulted while it ran (*wait*: wall time it did not compute);
* a *late block*: one turn (render plus tasks) took longer than the block lasts;
* task *errors*: a task that raises is logged with its name and tried again a period later.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: A task callback: given its deadline (loop seconds), returns the next one, or None to end.
TaskCallback = Callable[[float], float | None]

#: Default wall-time budget of one task run, seconds: 1/20 of the box's 171 ms output
#: buffer, so that on a Pi Zero 2 W (about ten times slower per core than the x86 machine
#: the budgets are checked on) the worst task still leaves half the buffer.
TASK_BUDGET_S = 0.008


class Clock(Protocol):
    """What the loop needs of a clock (see :mod:`device.sched.clock`)."""

    def now(self) -> float: ...

    def advance(self, frames: int, sample_rate: int) -> None: ...


@dataclass(eq=False)
class Timing:
    """Wall and CPU time of the runs of one piece of the loop's work (a task, the render)."""

    runs: int = 0
    #: Longest wall time and longest CPU time (the loop thread's own) of one run, seconds.
    max_wall_s: float = 0.0
    max_cpu_s: float = 0.0
    #: Wall and CPU time of all runs together, seconds.
    wall_s: float = 0.0
    cpu_s: float = 0.0

    def add(self, wall_s: float, cpu_s: float) -> None:
        """Count one run."""
        self.runs += 1
        self.wall_s += wall_s
        self.cpu_s += cpu_s
        if wall_s > self.max_wall_s:
            self.max_wall_s = wall_s
        if cpu_s > self.max_cpu_s:
            self.max_cpu_s = cpu_s

    def stats(self) -> dict[str, float]:
        """Runs, and the max and mean of wall (``*_ms``) and CPU (``*_cpu_ms``) time, ms."""
        runs = max(self.runs, 1)
        return {
            "runs": self.runs,
            "max_ms": round(self.max_wall_s * 1000.0, 3),
            "max_cpu_ms": round(self.max_cpu_s * 1000.0, 3),
            "mean_ms": round(self.wall_s / runs * 1000.0, 4),
            "mean_cpu_ms": round(self.cpu_s / runs * 1000.0, 4),
        }


@dataclass(eq=False)
class Task:
    """A scheduled callback and its counters."""

    name: str
    callback: TaskCallback
    deadline: float
    #: Wall-time budget of one run, in seconds; longer runs count as overruns.
    budget_s: float
    #: Last period seen (next deadline minus previous), used to skip and to retry.
    period: float = 1.0
    overruns: int = 0
    skipped: int = 0
    errors: int = 0
    #: Wall and CPU time of its runs.
    timing: Timing = field(default_factory=Timing)
    #: Overruns in which the task computed beyond its budget (CPU time over budget) ...
    cpu_overruns: int = 0
    #: ... and those in which it did not: the thread waited or was descheduled.
    wait_overruns: int = 0
    cancelled: bool = field(default=False, repr=False)


class Loop:
    """Render a block, write it, run the tasks that are due; repeat until stopped.

    :param clock: a :class:`~device.sched.clock.VirtualClock` or
        :class:`~device.sched.clock.RealClock`.
    :param render: returns the next block (a ``(frames, channels)`` array).
    :param write: plays or stores a block; may block (a sound card paces the loop).
    :param sample_rate: frames per second of the audio.
    :param block_frames: frames per block.
    :param wall: wall clock used to measure task run time (seconds).
    :param cpu: CPU-time clock of the loop's thread (seconds), read beside ``wall``.
    """

    def __init__(
        self,
        clock: Clock,
        render: Callable[[], Any],
        write: Callable[[Any], None],
        *,
        sample_rate: int,
        block_frames: int,
        wall: Callable[[], float] = time.perf_counter,
        cpu: Callable[[], float] = time.thread_time,
    ) -> None:
        self.clock = clock
        self._render = render
        self._write = write
        self.sample_rate = sample_rate
        self.block_frames = block_frames
        self.block_s = block_frames / sample_rate
        self._wall = wall
        self._cpu = cpu
        self._tasks: list[Task] = []
        self._between: list[Callable[[], None]] = []
        self._halves: dict[int, tuple[Any, Any, Any]] = {}
        self._running = False
        self._stop_requested = False
        #: Blocks rendered and written.
        self.blocks = 0
        #: Turns whose render plus tasks took longer than one block lasts.
        self.late_blocks = 0
        #: Task overruns, all tasks together (see :attr:`Task.overruns`).
        self.overruns = 0
        #: Exceptions raised by mid-block callbacks (see :meth:`add_between`).
        self.between_errors = 0
        #: Longest turn seen (render plus tasks, without the sink's pacing wait), seconds.
        self.max_turn_s = 0.0
        #: Wall and CPU time of the engine's render, per block.
        self.render_timing = Timing()

    # -- tasks --------------------------------------------------------------------------

    def add_task(
        self,
        name: str,
        callback: TaskCallback,
        first_deadline: float | None = None,
        *,
        budget_s: float = TASK_BUDGET_S,
        period: float = 1.0,
    ) -> Task:
        """Schedule ``callback`` at ``first_deadline`` (default: now); return its task."""
        deadline = self.clock.now() if first_deadline is None else first_deadline
        task = Task(name, callback, deadline, budget_s, period=period)
        self._tasks.append(task)
        return task

    def add_between(self, callback: Callable[[], None]) -> None:
        """Also run ``callback`` halfway through handing each block to the sink.

        The block is then written (and the clock advanced) in two halves, so whatever the
        callback serves (the console) waits at most about half a block, not a whole one.
        It must be quick; an exception from it is logged and counted, never raised.
        """
        self._between.append(callback)

    def cancel(self, task: Task) -> None:
        """Remove a task; safe to call from inside any task, and more than once."""
        task.cancelled = True

    @property
    def tasks(self) -> tuple[Task, ...]:
        """The scheduled tasks."""
        return tuple(t for t in self._tasks if not t.cancelled)

    def task_stats(self) -> dict[str, dict[str, float]]:
        """Counters per task name, for status and diagnostics.

        ``max_ms``/``mean_ms`` are wall time of one run, ``max_cpu_ms``/``mean_cpu_ms`` the
        loop thread's CPU time; ``cpu_overruns`` and ``wait_overruns`` split ``overruns``
        that exceeded the budget by what the time went on (periods skipped are neither).
        """
        return {t.name: _stats(t) for t in self.tasks}

    # -- running ------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to return after the current turn (safe from signal handlers)."""
        self._stop_requested = True

    @property
    def running(self) -> bool:
        """True while :meth:`run` is looping."""
        return self._running

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Loop until :meth:`stop` is called or ``until()`` returns true (checked each turn)."""
        self._running = True
        self._stop_requested = False
        try:
            while not self._stop_requested and not (until is not None and until()):
                self.turn()
        finally:
            self._running = False

    def turn(self) -> None:
        """Render and write one block, then run the tasks that are due."""
        c0 = self._cpu()
        start = self._wall()
        block = self._render()
        rendered = self._wall()
        self.render_timing.add(rendered - start, self._cpu() - c0)
        if self._between:
            between_s = self._write_in_halves(block)
        else:
            self._write(block)
            self.clock.advance(self.block_frames, self.sample_rate)
            between_s = 0.0
        written = self._wall()
        self.blocks += 1
        self.run_due_tasks()
        turn_s = (rendered - start) + (self._wall() - written) + between_s
        if turn_s > self.max_turn_s:
            self.max_turn_s = turn_s
        if turn_s > self.block_s:
            self.late_blocks += 1

    def _write_in_halves(self, block: Any) -> float:
        cached = self._halves.get(id(block))
        if cached is None or cached[0] is not block:
            # The engine hands out the same few block views over and over: slice each once
            # (the cache holds the block itself, so its id cannot be reused meanwhile).
            if len(self._halves) > 64:
                self._halves.clear()
            half = self.block_frames // 2
            cached = (block, block[:half], block[half:])
            self._halves[id(block)] = cached
        _, first, second = cached
        self._write(first)
        self.clock.advance(len(first), self.sample_rate)
        t0 = self._wall()
        for callback in self._between:
            try:
                callback()
            except Exception:
                self.between_errors += 1
                if self.between_errors <= 3:
                    log.exception("mid-block callback failed")
        spent = self._wall() - t0
        self._write(second)
        self.clock.advance(len(second), self.sample_rate)
        return spent

    def run_due_tasks(self) -> None:
        """Run every task whose deadline is not after the clock's present time."""
        now = self.clock.now()
        if any(t.cancelled for t in self._tasks):
            self._tasks = [t for t in self._tasks if not t.cancelled]
        for task in sorted(self._tasks, key=lambda t: t.deadline):
            if task.deadline > now or task.cancelled:
                continue
            self._run_task(task, now)

    def _run_task(self, task: Task, now: float) -> None:
        deadline = task.deadline
        c0 = self._cpu()
        t0 = self._wall()
        try:
            nxt = task.callback(deadline)
        except Exception:
            task.errors += 1
            log.exception("task %s failed; retrying in %.3g s", task.name, task.period)
            nxt = deadline + task.period
        wall_s = self._wall() - t0
        cpu_s = self._cpu() - c0
        self._account(task, wall_s, cpu_s)
        if nxt is None:
            task.cancelled = True
            return
        if nxt < deadline:
            log.error(
                "task %s returned a deadline before its own (%.6f < %.6f)", task.name, nxt, deadline
            )
            nxt = deadline + task.period
        elif nxt > deadline:
            task.period = nxt - deadline
        # nxt == deadline: run again on the next turn (this turn visits each task once).
        # A microsecond of slack: deadlines summed from periods and frame-count time differ in
        # their last bits, and that is not a missed period.
        if deadline < nxt <= now - 1e-6:
            # Whole periods went by while the task (or the loop) was busy: skip to the next
            # future slot on the same grid, so the cadence stays where it was.
            missed = math.floor((now - nxt) / task.period) + 1
            nxt += missed * task.period
            task.skipped += missed
            self._count_overrun(task, f"skipped {missed} period(s) of {task.period:.3g} s")
        task.deadline = nxt

    def _account(self, task: Task, wall_s: float, cpu_s: float) -> None:
        task.timing.add(wall_s, cpu_s)
        if wall_s <= task.budget_s:
            return
        # CPU time over budget: the task itself computed too long. Otherwise the thread spent
        # the time waiting (descheduled by another process, a page fault, a blocking call).
        if cpu_s > task.budget_s:
            task.cpu_overruns += 1
            kind = "cpu-bound"
        else:
            task.wait_overruns += 1
            kind = "descheduled or waiting"
        self._count_overrun(
            task,
            f"ran {wall_s * 1000:.1f} ms wall, {cpu_s * 1000:.1f} ms CPU "
            f"(budget {task.budget_s * 1000:.1f} ms): {kind}",
        )

    def _count_overrun(self, task: Task, what: str) -> None:
        task.overruns += 1
        self.overruns += 1
        # Rate-limited: the first few, then every hundredth, so a sick task cannot flood logs.
        if task.overruns <= 3 or task.overruns % 100 == 0:
            log.warning("overrun #%d of task %s: %s", task.overruns, task.name, what)

    def __repr__(self) -> str:
        return (
            f"<Loop blocks={self.blocks} tasks={len(self.tasks)} "
            f"overruns={self.overruns} late_blocks={self.late_blocks}>"
        )


def _stats(t: Task) -> dict[str, float]:
    return {
        **t.timing.stats(),
        "overruns": t.overruns,
        "cpu_overruns": t.cpu_overruns,
        "wait_overruns": t.wait_overruns,
        "skipped": t.skipped,
        "errors": t.errors,
    }
