"""Benchmark of ``bedside music scan``: seconds per track, tempo and loudness accuracy.

Makes a library of ``--tracks`` tracks of ``--minutes`` each (steady beats from 54 to 140
BPM over a soft chord, levels spread over 24 dB, formats cycling WAV / FLAC / OGG Vorbis /
MP3, 44.1 and 48 kHz), then scans it once cold (every file decoded and measured) and once
warm (everything from the index), timing both (wall and process CPU). Every track's tempo
is compared with the beat it was made with (octave-folded) and, for every ``--check``-th
track, its loudness with pyloudnorm on the decoded samples.

Targets (issue 14): < 1 s per track; tempo within 2 BPM; loudness within 0.5 LU.
Run: ``.venv/bin/python bench/music_scan.py [--tracks 100] [--minutes 3] [--check 5]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from device.music.index import MusicIndex, scan
from tests.support.music_tracks import FORMATS, beat_track, write


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=100)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--check", type=int, default=5, help="pyloudnorm on every N-th track")
    ap.add_argument("--dir", help="make the library here (kept) instead of a temp dir")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    root = Path(args.dir or tmp.name)
    lib = root / "music"
    lib.mkdir(parents=True, exist_ok=True)
    made: dict[str, float] = {}
    t0 = time.monotonic()
    for i in range(args.tracks):
        bpm = 54.0 + (86.0 * i / max(1, args.tracks - 1))
        ext = FORMATS[i % len(FORMATS)][0]
        rate = 48000 if i % 3 == 0 else 44100
        level = 0.9 * 10 ** (-(i % 7) * 4 / 20)  # 0 .. -24 dB
        path = lib / f"{i:03d}-{bpm:.1f}bpm.{ext}"
        if not path.exists():
            write(path, beat_track(bpm, args.minutes * 60.0, rate=rate, level=level), rate)
        made[str(path.absolute())] = bpm
    print(
        f"made {args.tracks} tracks of {args.minutes:g} min in {time.monotonic() - t0:.0f} s",
        file=sys.stderr,
    )
    state = root / "state"
    (state / "music.db").unlink(missing_ok=True)
    runs = {}
    for label in ("cold", "warm"):
        w, c = time.monotonic(), time.process_time()
        with MusicIndex.in_state_dir(state) as index:
            tracks = scan(index, lib)
        runs[label] = (time.monotonic() - w, time.process_time() - c)
    tempo_err = []
    misses = 0
    for t in tracks:
        truth = made[t.path]
        if t.tempo_bpm is None:
            misses += 1
            continue
        tempo_err.append(min(abs(t.tempo_bpm * m - truth) for m in (0.5, 1.0, 2.0)))
    lufs_err = []
    if args.check > 0:
        import pyloudnorm
        import soundfile as sf

        for t in tracks[:: args.check]:
            x, rate = sf.read(t.path, dtype="float64", always_2d=True)
            ref = pyloudnorm.Meter(rate).integrated_loudness(x)
            lufs_err.append(abs((t.lufs or 0.0) - ref))
    n = len(tracks)
    audio_min = args.minutes * n
    result = {
        "tracks": n,
        "minutes_each": args.minutes,
        "cold_wall_s_per_track": round(runs["cold"][0] / n, 3),
        "cold_cpu_s_per_track": round(runs["cold"][1] / n, 3),
        "warm_wall_s_total": round(runs["warm"][0], 3),
        "audio_minutes": audio_min,
        "tempo_max_err_bpm": round(max(tempo_err), 3) if tempo_err else None,
        "tempo_within_2bpm": sum(e < 2.0 for e in tempo_err),
        "tempo_no_clear_beat": misses,
        "lufs_checked": len(lufs_err),
        "lufs_max_err_lu": round(max(lufs_err), 4) if lufs_err else None,
        "errors": sum(t.error is not None for t in tracks),
    }
    print(json.dumps(result))
    ok = (
        result["cold_wall_s_per_track"] < 1.0
        and result["tempo_within_2bpm"] == n
        and (not lufs_err or max(lufs_err) < 0.5)
    )
    tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
