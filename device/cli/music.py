"""``bedside music scan [DIR] [--json]``: index the listener's music folder.

Each new or changed file is decoded once and measured (duration, BS.1770 integrated
loudness, tempo with its confidence) into ``music.db`` in the state directory; unchanged
files are taken from the index. A file that cannot be decoded is listed with its error and
skipped. On a terminal a progress line counts the files.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``music`` and its ``scan`` subcommand."""
    p = subparsers.add_parser("music", help="the listener's music library")
    sub = p.add_subparsers(dest="music_command", metavar="ACTION")
    s = sub.add_parser("scan", help="index the music folder (loudness, tempo)")
    s.add_argument("dir", nargs="?", help="folder to scan (default: config music.dir)")
    s.add_argument("--json", action="store_true", help="one JSON object per track")
    s.add_argument("--state-dir", metavar="DIR", help="state directory (default: config)")
    s.add_argument("--config", metavar="FILE", help="configuration file to take defaults from")
    s.add_argument(
        "--summary",
        action="store_true",
        help='only one JSON line: {"tracks": N, "new": M, "unreadable": K} (the box uses it)',
    )
    s.add_argument(
        "--idle", action="store_true", help="run at idle CPU priority (the box's own scans)"
    )
    s.set_defaults(func=_scan)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def lower_priority() -> None:
    """Make the calling process idle-priority: ``SCHED_IDLE`` where Linux has it, nice 19.

    The box runs at ``SCHED_FIFO`` (systemd/bedside.service), which a child inherits; moving
    down needs no privilege, so it works under ``NoNewPrivileges``.
    """
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 19)


def _scan(args: argparse.Namespace) -> int:
    from device.config import load_config
    from device.music.index import MusicIndex, scan

    cfg = None
    if not (args.dir and args.state_dir):
        cfg = load_config(args.config)
    folder = Path(args.dir or str(cfg.music.dir))  # type: ignore[union-attr]
    state = Path(args.state_dir or str(cfg.store.state_dir))  # type: ignore[union-attr]
    if args.idle:
        lower_priority()
    tty = sys.stderr.isatty() and not args.summary
    new: set[Path] = set()

    def progress(done: int, total: int, path: Path, measured: bool) -> None:
        if measured:
            new.add(path)
        if tty:
            name = path.name if len(path.name) <= 40 else path.name[:37] + "..."
            print(f"\rscanning {done}/{total} {name:<40}", end="", file=sys.stderr, flush=True)

    with MusicIndex.in_state_dir(state) as index:
        tracks = scan(index, folder, progress)
    if tty and tracks:
        print(file=sys.stderr)
    bad = sum(t.error is not None for t in tracks)
    if args.summary:
        fresh = sum(Path(t.path) in new and t.error is None for t in tracks)
        summary = {"tracks": len(tracks) - bad, "new": fresh, "unreadable": bad}
        print(json.dumps(summary))
        return 0
    for t in tracks:
        if t.error is not None:
            print(f"bedside: skipped: {t.error}", file=sys.stderr)
        if args.json:
            print(json.dumps(t.to_json()))
        elif t.error is None:
            bpm = "no clear beat" if t.tempo_bpm is None else f"{t.tempo_bpm:6.1f} BPM"
            print(
                f"{t.duration_s or 0:8.1f} s {t.lufs or 0:7.1f} LUFS {bpm:>14} "
                f"({t.tempo_confidence or 0:.2f})  {t.path}"
            )
    if not args.json:
        print(f"{len(tracks) - bad} tracks, {bad} skipped")
    return 0
