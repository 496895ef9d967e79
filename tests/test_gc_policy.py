"""Garbage collection belongs to the box: frozen and off during a session, collected between."""

from __future__ import annotations

import gc
import io

import pytest

from device.box.app import Box, RunOptions
from device.config import Config
from device.sched import collector as collector_mod
from device.sched.collector import Collector


@pytest.fixture
def gc_restored():
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


def test_collector_collects_young_in_a_session_and_everything_at_boundaries(
    gc_restored, monkeypatch
):
    playing = [False]
    c = Collector(lambda: playing[0])
    c.start()
    assert not gc.isenabled() and gc.get_freeze_count() > 0
    t = c.tick(0.0)  # idle at the first look: one full collection (of what is not frozen)
    assert c.counts == {"young": 0, "boundary": 0, "idle": 1}
    playing[0] = True
    t = c.tick(t)
    assert c.counts["boundary"] == 1
    monkeypatch.setattr(collector_mod, "YOUNG_LIMIT", 10**9)
    t = c.tick(t)
    assert c.counts == {"young": 0, "boundary": 1, "idle": 1}  # nothing due in a session
    monkeypatch.setattr(collector_mod, "YOUNG_LIMIT", 0)
    t = c.tick(t)
    assert c.counts["young"] == 1
    playing[0] = False
    t = c.tick(t)
    assert c.counts["boundary"] == 2
    for _ in range(round(collector_mod.IDLE_EVERY_S)):
        t = c.tick(t)
    assert c.counts["idle"] == 2  # a full collection a minute while idle
    c.stop()
    assert gc.get_freeze_count() == 0


def test_no_automatic_collection_runs_during_a_box_run(gc_restored, tmp_path):
    """A session of one minute, then idle: the only collections are the collector's own."""
    cfg = Config.defaults().with_value("sim.seed", 2)
    opts = RunOptions(
        sim=True, audio="null", duration_s=150.0, speed=None, status="none",
        state_dir=str(tmp_path), program="relax", minutes=1.0,
    )  # fmt: skip
    seen: list[int] = []
    during: list[tuple[bool, int]] = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            seen.append(info["generation"])

    with Box(cfg, opts, status_out=io.StringIO()) as box:

        def probe(deadline: float) -> float:
            if box.runner.playing():
                during.append((gc.isenabled(), gc.get_freeze_count()))
            return deadline + 5.0

        box.loop.add_task("probe", probe, 2.0)
        gc.callbacks.append(on_gc)
        try:
            box.run()
        finally:
            gc.callbacks.remove(on_gc)
        counts = box.collector.counts
        stats = box.loop.task_stats()
    assert during and all(not enabled and frozen > 0 for enabled, frozen in during)
    assert counts["boundary"] >= 1  # the session's end
    assert len(seen) == sum(counts.values())  # nothing collected behind the collector's back
    assert stats["gc"]["runs"] > 100
    assert gc.isenabled()  # handed back after the run
