"""``bedside report SESSION --out FILE.png``: one picture of a stored session.

Four panels over session time (minutes): heart rate; the breathing pacer with the
breathing rate estimated from the heart; coherence; output volume. Session events
(sections, ratings, sensor loss, stop) are marked as vertical lines on every panel.
matplotlib is imported only here (``pip install 'bedside[report]'``).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from device.cli.sessions import add_state_dir, open_store, parse_session, resolve_session
from device.exc import StorageError, UsageError


def _column(rows: list[dict[str, Any]], key: str) -> list[float]:
    # Unknown values become NaN so matplotlib leaves a gap instead of joining across it.
    return [float("nan") if r.get(key) is None else float(r[key]) for r in rows]


def draw_report(
    session: dict[str, Any],
    rows: list[dict[str, Any]],
    events: list[dict[str, Any]],
    out: Path,
) -> None:
    """Draw the session to ``out`` (PNG); UsageError when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "bedside report needs matplotlib: pip install 'bedside[report]' "
            "(or apt install python3-matplotlib)"
        ) from None
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out must name a .png file, not {str(out)!r}")

    t_min = [float(r["t"]) / 60.0 for r in rows]
    fig, axes = plt.subplots(4, 1, sharex=True, figsize=(10, 9), constrained_layout=True)
    hr_ax, breath_ax, coh_ax, vol_ax = axes
    hr_ax.plot(t_min, _column(rows, "hr"), color="tab:red", lw=1.2, label="heart rate")
    hr_ax.set_ylabel("HR (BPM)")
    breath_ax.plot(t_min, _column(rows, "pacer"), color="tab:blue", lw=1.5, label="pacer")
    breath_ax.plot(
        t_min, _column(rows, "breathing"), color="tab:green", lw=1.0, ls="--", label="breathing"
    )
    breath_ax.set_ylabel("breaths/min")
    breath_ax.legend(loc="upper right", fontsize=8)
    coh_ax.plot(t_min, _column(rows, "coherence"), color="tab:purple", lw=1.0)
    coh_ax.set_ylabel("coherence")
    vol_ax.plot(t_min, _column(rows, "volume_db"), color="tab:gray", lw=1.0)
    vol_ax.set_ylabel("volume (dB)")
    vol_ax.set_xlabel("session time (min)")
    for ev in events:
        if ev.get("t") is None:
            continue
        x = float(ev["t"]) / 60.0
        for ax in axes:
            ax.axvline(x, color="black", lw=0.6, alpha=0.35)
        label = f"{ev['kind']} {ev.get('detail') or ''}".strip()[:28]
        hr_ax.annotate(
            label,
            (x, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=7,
        )
    for ax in axes:
        ax.grid(alpha=0.3)
    mean_hr = session.get("mean_hr")
    title = f"Session {session['id']}: {session['program']}"
    if mean_hr is not None:
        title += f"  mean HR {mean_hr:.0f} BPM"
    fig.suptitle(title)
    png = io.BytesIO()
    try:
        fig.savefig(png, format="png", dpi=100)
    finally:
        plt.close(fig)
    from device.store.permissions import write_for_caller

    # Atomic (a half-written PNG is never left) and the asking user's, under sudo too.
    write_for_caller(out, png.getvalue())


def cmd_report(args: argparse.Namespace) -> int:
    """Draw the report of one session."""
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"--out {args.out}: directory {out.parent} does not exist")
    try:
        with open_store(args) as store:
            session = resolve_session(store, args.session)
            rows = store.rows(int(session["id"]))
            events = store.events(int(session["id"]))
    except StorageError as exc:
        print(f"bedside: error: {exc}", file=sys.stderr)
        return 1
    if not rows:
        print(f"bedside: error: session {session['id']} has no rows to draw", file=sys.stderr)
        return 1
    draw_report(session, rows, events, out)
    print(f"session {session['id']}: report written to {out}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bedside report``."""
    p = subparsers.add_parser("report", help="draw a session report (PNG)", description=__doc__)
    p.add_argument("session", type=parse_session, metavar="SESSION", help="session id or 'last'")
    p.add_argument("--out", required=True, metavar="FILE.png", help="PNG file to write")
    add_state_dir(p)
    p.set_defaults(func=cmd_report)
