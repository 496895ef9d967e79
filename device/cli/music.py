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

from device.exc import InputFileError


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
    s.add_argument(
        "--progress",
        action="store_true",
        help='with --summary: a line {"done": n, "total": N} before each file and after it',
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


#: What to install when the decoder is missing.
DECODER_HINT = "pip install 'bedside[music]' (or: sudo apt-get install python3-soundfile)"


def decoder_missing() -> str | None:
    """Why music cannot be decoded here (``None``: soundfile and its libsndfile load)."""
    try:
        import soundfile  # noqa: F401
    except (ImportError, OSError) as exc:  # OSError: the package without its libsndfile
        return f"the soundfile package (libsndfile) is not available ({exc})"
    return None


def _places(args: argparse.Namespace) -> tuple[Path, Path]:
    """The folder to scan and the state directory: the arguments, else the config."""
    from device.config import load_config

    cfg = None
    if not (args.dir and args.state_dir):
        cfg = load_config(args.config)
    folder = Path(args.dir or str(cfg.music.dir))  # type: ignore[union-attr]
    state = Path(args.state_dir or str(cfg.store.state_dir))  # type: ignore[union-attr]
    if not folder.is_dir():
        # Before the index is opened: a missing folder leaves no music.db behind.
        raise InputFileError(
            f"music folder {folder} does not exist or is not a folder; give the folder to scan "
            "(or set music.dir)"
        )
    return folder, state


class _Progress:
    """The scan's progress: a terminal line, or (``--progress``) one JSON line per file."""

    def __init__(self, tty: bool, lines: bool) -> None:
        self.tty, self.lines = tty, lines
        self.new: set[Path] = set()

    def __call__(self, done: int, total: int, path: Path, measured: bool) -> None:
        if self.lines:
            print(json.dumps({"done": done, "total": total}), flush=True)
        if measured:
            self.new.add(path)
        if self.tty:
            name = path.name if len(path.name) <= 40 else path.name[:37] + "..."
            print(f"\rscanning {done}/{total} {name:<40}", end="", file=sys.stderr, flush=True)


def _scan(args: argparse.Namespace) -> int:
    from device.music.index import MusicIndex, scan

    missing = decoder_missing()
    if missing is not None:
        print(f"bedside music scan: error: cannot decode music: {missing}; {DECODER_HINT}",
              file=sys.stderr)  # fmt: skip
        return 1
    folder, state = _places(args)
    if args.idle:
        lower_priority()
    progress = _Progress(sys.stderr.isatty() and not args.summary, args.summary and args.progress)
    with MusicIndex.in_state_dir(state) as index:
        tracks = scan(index, folder, progress)
    if progress.tty and tracks:
        print(file=sys.stderr)
    _scan_result(tracks, args, progress.new)
    return 0


def _scan_result(tracks: list[Any], args: argparse.Namespace, new: set[Path]) -> None:
    """Print what a scan found: the ``--summary`` JSON object, or the listing and a count."""
    bad = sum(t.error is not None for t in tracks)
    if args.summary:
        fresh = sum(Path(t.path) in new and t.error is None for t in tracks)
        print(json.dumps({"tracks": len(tracks) - bad, "new": fresh, "unreadable": bad}))
        return
    _listing(tracks, args.json)
    if not args.json:
        print(f"{len(tracks) - bad} tracks, {bad} skipped")


def _listing(tracks: list[Any], as_json: bool) -> None:
    """Print each track (JSON lines with ``as_json``); unreadable ones are named on stderr."""
    for t in tracks:
        if t.error is not None:
            print(f"bedside: skipped: {t.error}", file=sys.stderr)
        if as_json:
            print(json.dumps(t.to_json()))
        elif t.error is None:
            bpm = "no clear beat" if t.tempo_bpm is None else f"{t.tempo_bpm:6.1f} BPM"
            print(
                f"{t.duration_s or 0:8.1f} s {t.lufs or 0:7.1f} LUFS {bpm:>14} "
                f"({t.tempo_confidence or 0:.2f})  {t.path}"
            )
