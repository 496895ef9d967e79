"""Garbage collection at the loop's own moments, never inside another task.

CPython collects cyclic garbage whenever its allocation counters cross a threshold, in
whatever code happens to be running: measured over a simulated 45-min session (issue 22),
a generation-2 collection of 67 ms landed inside the sensor task about once a session; a
Pi Zero 2 W, about ten times slower per core, would spend some 670 ms there against a
171 ms output buffer. So the box takes collection into its own hands:

* after start-up everything alive is frozen (:func:`gc.freeze`: modules, classes, the
  parts; a full collection never scans them again) and automatic collection is off;
* the :class:`Collector` runs as its own loop task, so its time is measured and budgeted
  like any task's and never charged to another: while a session plays it only collects
  the youngest generation, and only once enough new objects piled up (cheap and bounded);
  at a session boundary (a session starts or ends) and every minute while idle, when the
  sound is silent, it collects everything not frozen;
* every collection is counted, by kind, with its longest time.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

#: New container objects (net) that trigger a young-generation collection during a session.
YOUNG_LIMIT = 20_000
#: Seconds between full collections while no session plays.
IDLE_EVERY_S = 60.0
#: How often the collector's task looks, s.
PERIOD_S = 1.0


class Collector:
    """Owns the garbage collector while the box runs.

    :param playing: True while a session plays (young collections only, when due).
    :param clock: wall clock for the collections' durations, s.
    """

    def __init__(
        self,
        playing: Callable[[], bool],
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._playing = playing
        self._clock = clock
        self._was_playing: bool | None = None
        self._last_full = -float("inf")
        self._enabled_before: bool | None = None
        #: Collections made, by kind: ``young`` (in a session), ``boundary``, ``idle``.
        self.counts = {"young": 0, "boundary": 0, "idle": 0}
        #: Longest collection of each kind, s.
        self.max_s = {"young": 0.0, "boundary": 0.0, "idle": 0.0}
        #: Objects freed by the collections, all kinds together.
        self.freed = 0

    @property
    def active(self) -> bool:
        """The collector holds the garbage collector (between :meth:`start` and :meth:`stop`)."""
        return self._enabled_before is not None

    def start(self) -> None:
        """Freeze what start-up made and turn automatic collection off.

        No collection first: it would cost a full scan of the start-up heap before the first
        block (tens of ms here, several hundred on a Pi Zero); what little garbage start-up
        left is frozen with it, once.
        """
        if self.active:
            return
        self._enabled_before = gc.isenabled()
        gc.disable()
        gc.freeze()

    def stop(self) -> None:
        """Give the garbage collector back as it was, the frozen objects collectable again."""
        if self._enabled_before is None:
            return
        gc.unfreeze()
        if self._enabled_before:
            gc.enable()
        self._enabled_before = None

    def tick(self, deadline: float) -> float:
        """The loop task: collect what is due now; returns the next deadline."""
        playing = self._playing()
        boundary = self._was_playing is not None and playing != self._was_playing
        self._was_playing = playing
        if boundary:
            self._collect("boundary", 2)
            self._last_full = deadline
        elif playing:
            if gc.get_count()[0] >= YOUNG_LIMIT:
                self._collect("young", 0)
        elif deadline - self._last_full >= IDLE_EVERY_S:
            self._collect("idle", 2)
            self._last_full = deadline
        return deadline + PERIOD_S

    def _collect(self, kind: str, generation: int) -> None:
        t0 = self._clock()
        self.freed += gc.collect(generation)
        spent = self._clock() - t0
        self.counts[kind] += 1
        if spent > self.max_s[kind]:
            self.max_s[kind] = spent

    def stats(self) -> dict[str, object]:
        """Collections by kind, their longest time (ms) and the objects freed."""
        return {
            "collections": dict(self.counts),
            "max_ms": {k: round(v * 1000.0, 3) for k, v in self.max_s.items()},
            "freed": self.freed,
        }
