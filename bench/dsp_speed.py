"""Benchmark of the sound engine: CPU seconds per second of audio, block times, allocations.

Mixes (48 kHz stereo, each block rendered and converted to int16 by a NullSink, as the box
does before the sound card):

* ``a``: four binaural tone voices + pink noise, static (SBaGen's ``pink/40 100+1.5/10
  200+4/10 ...`` class of mix; SBaGen 1.4.4 in C: 0.0023 CPU s/s on the dev machine).
* ``c``: mix ``b`` with the composer voice on top (FluidSynth with its reverb, 3 parts);
  its phrases are composed before the timed run (on the box a worker thread composes
  them), and the composing's own CPU time is printed apart (``compose_cpu_s_per_s``).
  The composer's cost is ``c - b``; ``d`` is the composer alone.
* ``b``: the full product mix: isochronic entrainment on the four tone voices and on the
  bed, 6-voice pad, pink noise, breath swell and limiter (volume at the cap, so it works),
  with ``set_targets`` called before *every* block with new carrier, rate, brightness,
  tone, levels and pacer, as the closed loop does (more often than it does).

For every mix and block size: CPU s per s of audio (process time, all threads), block
wall-time p50/p99/p99.9/max in ms and as a share of the block period, the block's own CPU
time p99.9 (wall time also counts stalls while other processes hold the cores), then (in a second,
shorter pass under tracemalloc) bytes retained and the largest transient per block; at the
end the process's peak RSS. Prints a table and a JSON document.

Run: ``.venv/bin/python bench/dsp_speed.py`` (``--seconds 600`` for steadier figures,
``--json out.json`` to keep them).
"""

from __future__ import annotations

import os

# One BLAS thread, as on a quiet box (measured: the mixing matrix products are too small
# for OpenBLAS to use a second thread, so this changes nothing here).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import math
import platform
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from device.drivers.audio import NullSink
from device.sound.engine import Engine
from device.sound.targets import OFF_DB, SoundTargets

RATE = 48000
BLOCKS = (256, 512, 1024, 2048)
#: The issue's targets at the box's default block size (1024 frames).
TARGETS = {"a": 0.0015, "b": 0.003}
#: What the composer (synthesiser and reverb included) may add to mix b (issue #20).
COMPOSER_TARGET = 0.005
P999_SHARE = 0.10


def mix_a(block: int) -> tuple[Engine, Callable[[int], None]]:
    """Four binaural tone voices + pink noise, nothing changing."""
    e = Engine(sample_rate=RATE, block_frames=block, output="headphones", volume_db=-20.0)
    e.set_targets(
        SoundTargets(
            entrain_kind="binaural",
            carrier_hz=200.0,
            entrain_hz=4.0,
            tones_db=-10.0,
            pad_db=OFF_DB,
            noise_db=-6.0,
            noise_colour="pink",
            pacer_bpm=None,
        ),
        immediate=True,
    )
    return e, lambda i: None


def mix_b(block: int, **extra: object) -> tuple[Engine, Callable[[int], None]]:
    """The full mix with every parameter moving before every block (``extra``: more
    fields of every target)."""
    e = Engine(sample_rate=RATE, block_frames=block, volume_db=-6.0, cap_dbfs=-6.0)
    base = SoundTargets(
        entrain_kind="isochronic",
        entrain_bed=True,
        noise_colour="pink",
        pad_preset="warm",
        tones_db=-18.0,
        pad_db=-8.0,
        noise_db=-14.0,
        swell_db=6.0,
        pacer_bpm=6.0,
    ).with_changes(**extra)
    e.set_targets(base, immediate=True)

    # the targets themselves are made by the therapy layer: build them outside the timing
    variants = [
        base.with_changes(
            carrier_hz=200.0 + 30.0 * math.sin(i * 0.013),
            entrain_hz=8.0 + 2.0 * math.sin(i * 0.007),
            pad_brightness=0.5 + 0.3 * math.sin(i * 0.005),
            noise_tone=0.5 + 0.2 * math.sin(i * 0.004),
            tones_db=-18.0 + 2.0 * math.sin(i * 0.003),
            pacer_bpm=6.0 + math.sin(i * 0.001),
        )
        for i in range(4001)
    ]

    def change(i: int) -> None:
        e.set_targets(variants[i % len(variants)])

    return e, change


COMPOSE = SoundTargets(
    composer_db=-8.0, composer_style="piano", composer_energy=0.6, heart_bpm=80.0
)


def mix_c(block: int) -> tuple[Engine, Callable[[int], None]]:
    """Mix ``b`` plus the composer (its fields added to every variant)."""
    return mix_b(block, **{k: getattr(COMPOSE, k) for k in ("composer_db", "heart_bpm")})


def mix_d(block: int) -> tuple[Engine, Callable[[int], None]]:
    """The composer alone."""
    e = Engine(sample_rate=RATE, block_frames=block, volume_db=-6.0, cap_dbfs=-6.0)
    e.set_targets(
        COMPOSE.with_changes(tones_db=OFF_DB, pad_db=OFF_DB, noise_db=OFF_DB, pacer_bpm=6.0),
        immediate=True,
    )
    return e, lambda i: None


def precompose(engine: Engine, seconds: float) -> float:
    """Compose ``seconds`` of music ahead, as the box's worker would; CPU s per s of music."""
    from device.music.composer.voice import composer_in

    voice = composer_in(engine.voices)
    if voice is None or not voice.wanted(engine._targets):
        return 0.0
    voice.inline = False
    cpu0 = time.process_time()
    voice.compose_ahead(engine.frames + round(seconds * RATE))
    return (time.process_time() - cpu0) / seconds


MIXES = {"a": mix_a, "b": mix_b, "c": mix_c, "d": mix_d}


def measure(mix: str, block: int, seconds: float) -> dict:
    """Time ``seconds`` of audio of ``mix`` at ``block`` frames per block."""
    engine, change = MIXES[mix](block)
    sink = NullSink(RATE, 2, block, "int16")
    engine.fade_in(0.05)
    warm = round(2.0 * RATE / block)
    compose_cpu = precompose(engine, seconds + 60.0)
    for i in range(warm):
        change(i)
        sink.write(engine.render())
    n = round(seconds * RATE / block)
    times = np.empty(n)
    cpu_times = np.empty(n)
    clock = time.perf_counter_ns
    tclock = time.thread_time_ns
    cpu0 = time.process_time()
    for i in range(n):
        c0 = tclock()
        t0 = clock()
        change(warm + i)
        sink.write(engine.render())
        times[i] = clock() - t0
        cpu_times[i] = tclock() - c0
    cpu = time.process_time() - cpu0
    ms = times / 1e6
    period_ms = 1000.0 * block / RATE
    pct = np.percentile(ms, [50, 99, 99.9])
    # the block's own CPU time: wall time minus what other processes took from us
    cpu_pct = np.percentile(cpu_times / 1e6, [99.9, 100])
    st = engine.status()
    return {
        "mix": mix,
        "block": block,
        "audio_s": n * block / RATE,
        "cpu_s_per_s": cpu / (n * block / RATE),
        "compose_cpu_s_per_s": compose_cpu,
        "p50_ms": float(pct[0]),
        "p99_ms": float(pct[1]),
        "p999_ms": float(pct[2]),
        "max_ms": float(ms.max()),
        "period_ms": period_ms,
        "p999_share": float(pct[2]) / period_ms,
        "cpu_p999_ms": float(cpu_pct[0]),
        "cpu_max_ms": float(cpu_pct[1]),
        "cpu_p999_share": float(cpu_pct[0]) / period_ms,
        "limiter_segments": st["limiter_segments"],
        "segment_frames": engine.segment_frames,
        **allocations(engine, sink, change, warm + n),
    }


def allocations(engine: Engine, sink: NullSink, change: Callable[[int], None], i0: int) -> dict:
    """Bytes retained per block and the largest transient of any block, under tracemalloc."""
    blocks = max(200, 4 * engine.blocks_per_segment * 8)
    tracemalloc.start()
    try:
        for i in range(i0, i0 + 2 * engine.blocks_per_segment):
            change(i)
            sink.write(engine.render())
        before = tracemalloc.get_traced_memory()[0]
        worst = 0
        for i in range(i0, i0 + blocks):
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            change(i)
            sink.write(engine.render())
            worst = max(worst, tracemalloc.get_traced_memory()[1] - start)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return {
        "alloc_net_bytes_per_block": (after - before) / blocks,
        "alloc_transient_max_bytes": worst,
        "block_buffer_bytes": engine.block_frames * 2 * 4,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio seconds per run")
    ap.add_argument("--blocks", default=",".join(map(str, BLOCKS)), help="block sizes")
    ap.add_argument("--mixes", default="a,b", help="mixes to run (a, b, c, d)")
    ap.add_argument("--json", help="also write the JSON here")
    args = ap.parse_args(argv)
    blocks = [int(b) for b in args.blocks.split(",")]
    rows = [measure(m, b, args.seconds) for m in args.mixes.split(",") for b in blocks]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    print(
        f"{'mix':>3} {'block':>5} {'CPU s/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} "
        f"{'max ms':>7} {'p99.9/per':>9} {'cpu p99.9':>9} {'cpu/per':>7} "
        f"{'net B/blk':>9} {'transient B':>11}"
    )
    for r in rows:
        print(
            f"{r['mix']:>3} {r['block']:>5} {r['cpu_s_per_s']:>9.5f} {r['p50_ms']:>7.3f} "
            f"{r['p99_ms']:>7.3f} {r['p999_ms']:>8.3f} {r['max_ms']:>7.3f} "
            f"{100 * r['p999_share']:>8.1f}% {r['cpu_p999_ms']:>9.3f} "
            f"{100 * r['cpu_p999_share']:>6.1f}% {r['alloc_net_bytes_per_block']:>9.1f} "
            f"{r['alloc_transient_max_bytes']:>11d}"
        )
    print(f"peak RSS {rss_mb:.1f} MB")
    verdict = {}
    for r in rows:
        if r["block"] == 1024 and r["mix"] in TARGETS:
            verdict[f"mix_{r['mix']}_cpu_ok"] = r["cpu_s_per_s"] <= TARGETS[r["mix"]]
    by = {(r["mix"], r["block"]): r for r in rows}
    for (mix, block), r in by.items():
        if mix == "c" and ("b", block) in by:
            added = r["cpu_s_per_s"] - by["b", block]["cpu_s_per_s"]
            r["composer_added_cpu_s_per_s"] = added
            print(f"composer adds {added:.5f} CPU s/s at {block} frames (+ composing "
                  f"{r['compose_cpu_s_per_s']:.5f} on the worker; target {COMPOSER_TARGET})")
            if block == 1024:
                verdict["composer_cpu_ok"] = added <= COMPOSER_TARGET
    verdict["p999_wall_ok_all"] = all(r["p999_share"] <= P999_SHARE for r in rows)
    verdict["p999_cpu_ok_all"] = all(r["cpu_p999_share"] <= P999_SHARE for r in rows)
    doc = {
        "bench": "dsp_speed",
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "targets": {"cpu_s_per_s_at_1024": TARGETS, "p999_share_of_period": P999_SHARE},
        "results": rows,
        "peak_rss_mb": rss_mb,
        "verdict": verdict,
    }
    text = json.dumps(doc, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
