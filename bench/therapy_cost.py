"""Cost of the therapy room per control tick over a whole simulated night.

Runs a TherapySession (program timeline + closed loop + chooser) every 0.25 s for 8 hours of
virtual time, fed by the listener model through an ideal heart analysis, and prints the
time per ``update`` (median, p99, max), the listener's cost per step, and how much the
Python heap grew (tracemalloc) between the first hour and the end.

    .venv/bin/python bench/therapy_cost.py [--program sleep] [--hours 8] [--listener compliant]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from array import array

from device.sim.listener import IdealHeart, Listener
from device.therapy.bandit import Chooser
from device.therapy.program import load_program
from device.therapy.session import TherapySession

TICK_S = 0.25


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--program", default="sleep")
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--listener", default="compliant")
    args = parser.parse_args()

    listener = Listener(args.listener, seed=1)
    heart = IdealHeart(listener)
    session = TherapySession(load_program(args.program, []), chooser=Chooser(seed=1))
    ticks = int(args.hours * 3600.0 / TICK_S)
    # Preallocated before tracing starts, so the heap figure is the therapy's alone.
    update_s = array("d", bytes(8 * ticks))
    step_s = array("d", bytes(8 * ticks))
    events = 0
    tracemalloc.start()
    heap_after_1h = 0
    wall0 = time.perf_counter()
    for i in range(ticks):
        t = i * TICK_S
        state = heart.snapshot(t)
        a = time.perf_counter()
        targets = session.update(t, state)
        b = time.perf_counter()
        listener.step(t + TICK_S, TICK_S, targets.pacer_bpm, targets)
        c = time.perf_counter()
        update_s[i] = b - a
        step_s[i] = c - b
        events += len(session.drain_events())
        if i == int(3600.0 / TICK_S):
            heap_after_1h = tracemalloc.get_traced_memory()[0]
    wall = time.perf_counter() - wall0
    heap_end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    def pct(xs: array, q: float) -> float:
        return sorted(xs)[int(q * (len(xs) - 1))] * 1e6

    print(f"program={args.program} listener={args.listener} hours={args.hours:g} ticks={ticks}")
    print(
        f"session.update: median {statistics.median(update_s) * 1e6:.1f} us, "
        f"p99 {pct(update_s, 0.99):.1f} us, max {max(update_s) * 1e6:.0f} us "
        f"(budget per 0.25 s tick: 20000 us)"
    )
    print(f"listener.step: median {statistics.median(step_s) * 1e6:.1f} us")
    print(f"whole night wall time: {wall:.2f} s (tracemalloc on: slows it ~2x), events {events}")
    growth = heap_end - heap_after_1h
    print(f"heap growth from hour 1 to the end: {growth / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
