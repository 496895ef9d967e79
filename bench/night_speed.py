"""Benchmark of a whole simulated night through the real box: wall and CPU time, memory.

The same night as ``tests/test_night.py`` (the sleep program with a finger removal, then
silence, 4096-frame blocks, the sensor at 50 sps polled every 0.3 s, a null sink at
``--speed max``), timed here because a test never asserts wall time. Prints hours of
audio, wall seconds, CPU seconds, the speed-up over real time and the RSS growth from the
first hour to the end.

Run: ``.venv/bin/python bench/night_speed.py`` (``--hours 1`` for a shorter night).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from device.box.app import Box, RunOptions
from device.config import Config


def rss_kib() -> int:
    """Resident set size of this process, KiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def night(hours: float, state_dir: str) -> dict[str, float]:
    """Run ``hours`` of the night; return its figures."""
    cfg = Config.defaults()
    for key, value in [
        ("therapy.program", "sleep"),
        ("audio.block_frames", 4096),
        ("sensor.sample_rate_sps", 50),
        ("sensor.poll_interval_s", 0.3),
        ("sim.finger_off_at_s", 600.0),
        ("sim.finger_off_for_s", 120.0),
        ("sim.seed", 3),
    ]:
        cfg = cfg.with_value(key, value)
    seconds = hours * 3600.0
    opts = RunOptions(
        sim=True, audio="null", duration_s=seconds, speed=None, status="none", state_dir=state_dir
    )
    rss: dict[str, int] = {}
    with Box(cfg, opts, status_out=io.StringIO()) as box:

        def probe(deadline: float) -> float | None:
            rss["hour1"] = rss_kib()
            return None

        box.loop.add_task("rss", probe, min(3600.0, seconds / 2))
        wall, cpu = time.perf_counter(), time.process_time()
        box.run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        frames = box.engine.frames / box.engine.sample_rate
    return {
        "audio_h": frames / 3600.0,
        "wall_s": wall,
        "cpu_s": cpu,
        "speedup": frames / wall,
        "rss_growth_kib": rss_kib() - rss.get("hour1", 0),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=8.0, help="hours of night (default 8)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = night(args.hours, tmp)
    print(
        f"{figures['audio_h']:.2f} h of audio in {figures['wall_s']:.1f} s wall, "
        f"{figures['cpu_s']:.1f} s CPU ({figures['speedup']:.0f}x real time); "
        f"RSS growth after the first hour {figures['rss_growth_kib']} KiB"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
