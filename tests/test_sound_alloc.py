"""The audio path allocates nothing per block once warm (tracemalloc).

numpy's ufuncs called with ``out=`` create no arrays, but Python itself makes a few small
objects (views, floats) per call. So the test asks two things over hundreds of blocks with
the targets changing as the closed loop changes them: nothing is retained (net growth 0)
and no block makes anything as large as an audio buffer (transient peak a few hundred
bytes of small objects).
"""

from __future__ import annotations

import tracemalloc

import pytest

from device.drivers.audio import open_sink
from device.sound.engine import Engine
from device.sound.targets import SoundTargets


def targets_at(i: int, base: SoundTargets) -> SoundTargets:
    """The targets the control side sets at step ``i``."""
    return base.with_changes(
        carrier_hz=200.0 + (i % 40),
        entrain_hz=6.0 + (i % 9) / 3.0,
        pad_brightness=(i % 10) / 10.0,
        noise_tone=(i % 7) / 7.0,
    )


def loop_step(
    engine: Engine, sink, i: int, base: SoundTargets, plan: dict[int, SoundTargets] | None = None
) -> None:
    if i % 4 == 0:
        # made beforehand when measured: building a dataclass is the control side's work, and
        # CPython keeps up to 2000 freed tuples of each size on a free list (held memory that
        # is not the audio path's)
        engine.set_targets(plan[i] if plan is not None else targets_at(i, base))
    sink.write(engine.render())


@pytest.mark.parametrize(("spec", "block"), [("null", 1024), ("wav", 1024), ("null", 256)])
def test_no_allocation_per_block(spec: str, block: int, tmp_path) -> None:
    engine = Engine(block_frames=block, volume_db=-20.0)
    sink = open_sink(
        "null" if spec == "null" else f"wav:{tmp_path / 'a.wav'}",
        sample_rate=48000,
        block_frames=block,
    )
    base = SoundTargets(entrain_bed=True, pacer_bpm=8.0)
    engine.fade_in(0.05)
    engine.chime("start")
    for i in range(400):  # warm: every layer, a chime, segment boundaries, cuts
        loop_step(engine, sink, i, base)
    plan = {i: targets_at(i, base) for i in range(400, 1220, 4)}
    tracemalloc.start()
    try:
        for i in range(400, 420):
            loop_step(engine, sink, i, base, plan)
        before = tracemalloc.get_traced_memory()[0]
        worst = 0
        for i in range(420, 1220):
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            loop_step(engine, sink, i, base, plan)
            worst = max(worst, tracemalloc.get_traced_memory()[1] - start)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        sink.close()
    # a few bytes are the test's own loop variables; one object kept per segment (100
    # segments here) would be several kB
    assert after - before < 256
    # small Python objects only: a segment of samples is 32 kB or more, a block 2 kB or more
    assert worst < 4096
