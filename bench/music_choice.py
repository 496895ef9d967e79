"""Benchmark of the track chooser: listening-time shares over many simulated sessions.

Makes a folder of calm and tense material (``tests.support.music_tracks``: two slow sustained
pieces, a 66 BPM beat over a chord, a noise bed, a 120 BPM and a 132 BPM march, a 156 BPM beat, a
5-s fanfare and a 10-s silent file), scans it as the box does, then plays ``--sessions``
sessions of ``--minutes`` through :class:`~device.music.player.MusicPlayer`'s own
choice (the calm judgement, the taste, the wind-down): each chosen track plays its audible
part less the crossfade. Prints each track's verdict and its share of the listening time and
of the sessions it came up in; then the same with a listener who likes one calm piece once
per session, and one who skips the other twice in the first session.

Run: ``.venv/bin/python bench/music_choice.py [--sessions 1000] [--minutes 40]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from device.music.choice import TrackChooser
from device.music.index import MusicIndex, Track, scan
from device.music.player import MusicPlayer
from tests.support.music_tracks import beat_track, calm_and_tense_folder, march, noise_bed, write


def folder(root: Path, minutes: float) -> list[Track]:
    music = calm_and_tense_folder(root / "music", minutes)
    s = minutes * 60.0
    write(music / "beat66.wav", beat_track(66.0, s))
    write(music / "beat156.wav", beat_track(156.0, s))
    write(music / "bed.wav", noise_bed(s))
    write(music / "march132.flac", march(s, 132.0))
    with MusicIndex(root / "music.db") as index:
        return scan(index, music)


def sessions(tracks: list[Track], n: int, minutes: float, listener: str) -> None:
    player = MusicPlayer(tracks, 48000, TrackChooser(seed=7))
    names = {t.path: t.name for t in tracks}
    heard: Counter[str] = Counter()
    came_up: Counter[str] = Counter()
    for k in range(n):
        player.chooser.new_night()
        player.chooser.last = None
        t, seen = 0.0, set()
        while t < minutes * 60.0:
            player.tick(0.0, progress=t / (minutes * 60.0), hr_bpm=62.0, coherence=1.0)
            cue = player._next_cue()
            if cue is None:
                break
            row = next(r for r in tracks if r.path == cue.key)
            span = (row.audible_end_s or row.duration_s or 0.0) - (row.audible_start_s or 0.0)
            if listener == "likes calm-a" and row.name == "calm-a.flac" and row.name not in seen:
                player.chooser.rate(cue.key, "like")
            if listener == "skips calm-b" and row.name == "calm-b.ogg" and k == 0:
                player.chooser.rate(cue.key, "skip")
                span = 20.0
            play = min(span - player.crossfade_s, minutes * 60.0 - t)
            heard[names[cue.key]] += play
            seen.add(row.name)
            t += play
        came_up.update(seen)
    total = sum(heard.values())
    print(f"\n{listener}: {n} sessions of {minutes:g} min")
    print(f"{'track':<16} {'verdict':<34} {'time share':>10} {'sessions':>9}")
    for row in tracks:
        v = player.verdict(row.path)
        verdict = "not playable" if v is None else ("ok " if v.ok else "out ") + v.why
        share = heard[row.name] / total if total else 0.0
        print(f"{row.name:<16} {verdict[:34]:<34} {100 * share:9.1f}% {came_up[row.name] / n:9.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--minutes", type=float, default=40.0, help="session length")
    ap.add_argument("--track-minutes", type=float, default=1.5, help="length of the made tracks")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        tracks = folder(Path(tmp), args.track_minutes)
        print(f"folder made and scanned in {time.perf_counter() - t0:.1f} s")
        for t in tracks:
            bpm = "no clear beat" if t.tempo_bpm is None else f"{t.tempo_bpm:.1f} BPM"
            print(
                f"  {t.name:<16} {t.duration_s or 0:6.1f} s {t.lufs or 0:6.1f} LUFS {bpm:>13} "
                f"conf {t.tempo_confidence or 0:.2f} onsets/min {t.onsets_per_min or 0:5.0f} "
                f"surge {t.surge_lu or 0:4.1f} LU centroid {t.centroid_hz or 0:5.0f} Hz "
                f"audible {t.audible_start_s or 0:.1f}-{t.audible_end_s or 0:.1f} s"
            )
        for listener in ("no ratings", "likes calm-a", "skips calm-b"):
            t1 = time.perf_counter()
            sessions(tracks, args.sessions, args.minutes, listener)
            print(f"({time.perf_counter() - t1:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
