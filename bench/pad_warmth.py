"""Benchmark of the pad voice alone: CPU seconds per second of 48 kHz audio, warmth 0 and 1.

The pad (``PadVoice``, preset ``warm``, a 200 Hz carrier to leave room for) renders
engine-sized segments (16384 frames) into a bed buffer at a gliding gain, chord changes
included (8 s crossfades every 30 s, so a long run covers them in proportion). At warmth 1
the sub-bass (``device/sound/voices/pad_sub.py``) renders too; the difference of the two rows is
its cost. Thread CPU time (``time.thread_time``) summed over the run, after a warm-up.

Run: ``.venv/bin/python bench/pad_warmth.py [--seconds 300] [--segment 16384]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from device.sound.swell import BreathSwell
from device.sound.targets import SoundTargets
from device.sound.voices.pad import PadVoice

RATE = 48000


def measure(warmth: float, seconds: float, segment: int) -> float:
    """CPU seconds per second of audio of the pad's render at ``warmth``."""
    swell = BreathSwell(RATE)
    voice = PadVoice(swell)
    voice.prepare(RATE, segment)
    voice.set_targets(SoundTargets(warmth=warmth, carrier_hz=200.0, tones_db=-20.0))
    voice.jump()
    bed = np.zeros((2, segment), np.float32)
    for _ in range(round(4.0 * RATE / segment)):  # warm-up
        voice.render(bed, segment, 0.5, 0.5)
    n = round(seconds * RATE / segment)
    cpu = 0.0
    for i in range(n):
        g = 0.5 + 0.001 * (i % 2)
        t0 = time.thread_time()
        voice.render(bed, segment, g, 0.5 + 0.001 * ((i + 1) % 2))
        cpu += time.thread_time() - t0
    return cpu / (n * segment / RATE)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="audio per row")
    ap.add_argument("--segment", type=int, default=16384, help="segment frames")
    args = ap.parse_args()
    rows = {f"warmth_{w:g}": measure(w, args.seconds, args.segment) for w in (0.0, 1.0)}
    rows["sub_bass_cost"] = rows["warmth_1"] - rows["warmth_0"]
    for k, v in rows.items():
        print(f"{k:>14}: {v:.6f} CPU s/s")
    print(json.dumps({"bench": "pad_warmth", "seconds": args.seconds, **rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
