"""``bedside sessions`` (list the stored sessions) and ``bedside export SESSION --csv``."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from device.exc import StorageError

#: Where the service keeps its store when nothing else is said (config store.state_dir).
DEFAULT_STATE_DIR = "/var/lib/bedside"
#: File name of the store inside the state directory.
STORE_FILE = "sessions.db"


def add_state_dir(p: argparse.ArgumentParser) -> None:
    """The options every store-reading command takes."""
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help=f"state directory holding {STORE_FILE} (default: config store.state_dir, "
        f"{DEFAULT_STATE_DIR})",
    )
    p.add_argument("--config", metavar="FILE", help="configuration file to take the default from")


def state_dir(args: argparse.Namespace) -> Path:
    """The state directory: ``--state-dir``, ``$STATE_DIRECTORY``, else the configuration's
    ``store.state_dir`` (:mod:`device.store.location`, the box's own rule)."""
    from device.config import load_config
    from device.store.location import state_dir as find

    return find(args.state_dir, lambda: str(load_config(args.config).store.state_dir))


def open_store(args: argparse.Namespace) -> Any:
    """Open the store read-only; StorageError naming the file when there is none."""
    from device.store.sessions import Store

    path = state_dir(args) / STORE_FILE
    if path.parent.is_dir() and not os.access(path.parent, os.R_OK | os.X_OK):
        raise StorageError(
            f"{path.parent}: permission denied (the store belongs to the bedside user: "
            "run with sudo)"
        )
    if not path.is_file():
        raise StorageError(f"{path}: no session store here (is --state-dir right?)")
    return Store(path, readonly=True)


def parse_session(text: str) -> int | str:
    """A session id (a whole number) or ``last``."""
    if text == "last":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"SESSION must be a session id (see bedside sessions) or 'last', not {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"session ids start at 1, not {value}")
    return value


def resolve_session(store: Any, which: int | str) -> dict[str, Any]:
    """The summary of session ``which`` (an id or ``last``)."""
    if which == "last":
        sessions = store.sessions()
        if not sessions:
            raise StorageError(f"{store.path}: no sessions stored yet")
        return sessions[-1]
    return store.session(int(which))


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def _fmt(value: object, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_sessions(sessions: list[dict[str, Any]]) -> str:
    """The session list as an aligned table, one line per session."""
    head = f"{'ID':>4}  {'STARTED':16}  {'LENGTH':>7}  {'HR':>5}  {'RMSSD':>5}  PROGRAM / END"
    lines = [head]
    for s in sessions:
        length = s.get("duration_s")
        mins = "-" if length is None else f"{length / 60:.1f}m"
        extra = f" ({s['end_reason']})" if s.get("end_reason") else " (running or cut)"
        if s.get("ratings"):
            extra += f" [{s['ratings']}]"
        # The session's RMSSD over its corrected intervals; older sessions have only rows.
        rmssd = s.get("rmssd_ms") if s.get("rmssd_ms") is not None else s.get("mean_rmssd")
        lines.append(
            f"{s['id']:>4}  {_when(s.get('started_at')):16}  {mins:>7}  "
            f"{_fmt(s.get('mean_hr'), '5.1f'):>5}  {_fmt(rmssd, '5.1f'):>5}  "
            f"{s['program']}{extra}"
        )
    return "\n".join(lines)


def rows_csv(rows: list[dict[str, Any]]) -> str:
    """The 1 Hz rows as CSV with a header line (empty cells where a value is unknown)."""
    from device.console.lines import format_cell
    from device.store.sessions import ROW_FIELDS

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(ROW_FIELDS)
    for r in rows:
        cells = []
        for key in ROW_FIELDS:
            v = r.get(key)
            if v is None:
                cells.append("")
            elif isinstance(v, bool):
                cells.append(format_cell(v))  # true/false, as the console's EXPORT writes
            elif isinstance(v, float):
                cells.append(f"{v:.6g}")
            else:
                cells.append(str(v))
        writer.writerow(cells)
    return buf.getvalue()


def cmd_sessions(args: argparse.Namespace) -> int:
    """List the stored sessions."""
    with open_store(args) as store:
        sessions = store.sessions()
    if args.json:
        for s in sessions:
            print(json.dumps(s, separators=(",", ":")))
    elif not sessions:
        print("no sessions stored")
    else:
        print(format_sessions(sessions))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write one session's 1 Hz rows as CSV (or JSON lines), or its beat intervals as an RR
    file (``--rr``), to a file or stdout."""
    from device.store.rr import rr_text

    with open_store(args) as store:
        session = resolve_session(store, args.session)
        sid = int(session["id"])
        if args.rr:
            text = rr_text(store.beats(sid))
            what = f"{text.count(chr(10))} RR intervals"
        else:
            rows = store.rows(sid)
            what = f"{len(rows)} rows"
            if args.json:
                text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
            else:
                text = rows_csv(rows)
    if args.out:
        from device.store.permissions import write_for_caller

        # The file is the asking user's (under sudo too), with their umask's mode.
        write_for_caller(Path(args.out), text.encode())
        print(f"session {session['id']}: {what} written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def handle_storage_errors(
    fn: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Wrap a handler so a StorageError is one line on stderr and exit status 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(fn(args))
        except StorageError as exc:
            print(f"bedside: error: {exc}", file=sys.stderr)
            return 1

    run.__doc__ = fn.__doc__
    return run


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bedside sessions`` and ``bedside export``."""
    p = subparsers.add_parser("sessions", help="list the stored sessions", description=__doc__)
    add_state_dir(p)
    p.add_argument("--json", action="store_true", help="one JSON object per session")
    p.set_defaults(func=handle_storage_errors(cmd_sessions))

    e = subparsers.add_parser(
        "export",
        help="export one session's 1 Hz rows or its beat intervals",
        description="Write a session's 1 Hz rows (time, HR, RMSSD, coherence, quality, contact, "
        "pacer, breathing, entrainment, volume) as CSV, or with --rr its beat intervals as a "
        "plain RR text file (one interval in ms per line, as Kubios HRV imports).",
    )
    e.add_argument("session", type=parse_session, metavar="SESSION", help="session id or 'last'")
    fmt = e.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV with a header line (default)")
    fmt.add_argument("--json", action="store_true", help="one JSON object per row")
    fmt.add_argument(
        "--rr",
        action="store_true",
        help="the beat intervals instead, as a plain RR file Kubios HRV imports: one "
        "plausible interval per line in milliseconds",
    )
    e.add_argument("--out", metavar="FILE", help="write to FILE (default: standard output)")
    add_state_dir(e)
    e.set_defaults(func=handle_storage_errors(cmd_export))
