"""Benchmark of the music voice: CPU seconds its render adds per second of 48 kHz audio.

Two 60 s tracks (FLAC at 44.1 kHz, so the decoder resamples) play back to back with a 6 s
crossfade and warmth on, rendered in 1024-frame segments (the engine's segment) into a bed
buffer at a gliding gain. The decoder runs between segments in the same thread so the two
costs are measured apart: the **render** (the audio path's share, the issue's target
<= 0.002 CPU s/s) and the **decoder** (its own thread in the box: decode, resample, gain,
shelf). Both are thread CPU times (``time.thread_time``) summed over the run.

Run: ``.venv/bin/python bench/music_voice.py [--seconds 300] [--block 1024]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from device.music.analysis import analyse
from device.music.feed import Cue, MusicFeed
from device.music.voice import MusicVoice
from device.sound.targets import SoundTargets
from tests.support.music_tracks import beat_track, noise_bed, write

RATE = 48000
TARGET_RTF = 0.002


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0, help="audio to render")
    ap.add_argument("--block", type=int, default=1024, help="segment frames")
    ap.add_argument("--warmth", type=float, default=0.5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [
            write(Path(tmp) / "a.flac", beat_track(70.0, 60.0)),
            write(Path(tmp) / "b.flac", noise_bed(60.0, level=0.05)),
        ]
        cues = [Cue(str(p), p.name, analyse(p).lufs) for p in paths]
        cycle = itertools.cycle(cues)
        feed = MusicFeed(RATE, lambda: next(cycle))
        voice = MusicVoice(feed)
        voice.prepare(RATE, args.block)
        voice.set_targets(SoundTargets(music_crossfade_s=6.0, warmth=args.warmth))
        bed = np.zeros((2, args.block), np.float32)
        blocks = round(args.seconds * RATE / args.block)
        render_s = decode_s = 0.0
        worst = 0.0
        for i in range(blocks):
            t0 = time.thread_time()
            while feed.step():
                pass
            t1 = time.thread_time()
            bed.fill(0.0)
            g0 = 0.5 + 0.1 * np.sin(i / 50.0)
            voice.render(bed, args.block, float(g0), float(g0) + 0.001)
            t2 = time.thread_time()
            decode_s += t1 - t0
            render_s += t2 - t1
            worst = max(worst, t2 - t1)
        audio_s = blocks * args.block / RATE
        result = {
            "audio_s": round(audio_s, 1),
            "block": args.block,
            "render_cpu_s_per_s": round(render_s / audio_s, 5),
            "render_worst_ms": round(worst * 1e3, 3),
            "decoder_cpu_s_per_s": round(decode_s / audio_s, 5),
            "crossfades": voice.changes,
            "stalls": voice.stalls,
            "target_render_cpu_s_per_s": TARGET_RTF,
            "render_within_target": render_s / audio_s <= TARGET_RTF,
        }
    print(f"music voice, {result['audio_s']} s of audio at 48 kHz, {args.block}-frame segments")
    print(
        f"  render (audio path): {result['render_cpu_s_per_s']:.5f} CPU s/s "
        f"(target <= {TARGET_RTF}), worst segment {result['render_worst_ms']} ms"
    )
    print(f"  decoder thread:      {result['decoder_cpu_s_per_s']:.5f} CPU s/s")
    print(f"  crossfades {voice.changes}, stalls {voice.stalls}")
    print(json.dumps(result))
    return 0 if result["render_within_target"] and voice.stalls == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
