"""``bedside report SESSION --out FILE.png``: one picture of a stored session.

Four panels over session time (minutes): heart rate; the breathing pacer with the
breathing rate estimated from the heart; coherence; output volume. Session events
(sections, ratings, sensor loss, stop) are marked as vertical lines on every panel and
labelled in a strip above them, in lanes, so no label hides another.
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


#: Figure width (inches) and resolution (dots per inch) of the report.
FIG_WIDTH_IN, DPI = 10.0, 100
#: Height of one data panel, inches; left and right margins, fractions of the width.
PANEL_IN, LEFT, RIGHT = 2.0, 0.09, 0.97
#: Event label font size (points) and the gap kept between two labels (pixels).
LABEL_PT, LABEL_GAP_PX = 7.0, 6.0
#: Longest event label, in characters (the rest is cut with an ellipsis).
LABEL_CHARS = 40


def _label(ev: dict[str, Any]) -> str:
    text = f"{ev['kind']} {ev.get('detail') or ''}".strip()
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def layout_labels(
    xs: list[float], widths_px: list[float], x_range: tuple[float, float], axis_px: float
) -> list[tuple[float, int]]:
    """Place event labels in lanes so that none overlaps another or leaves the axis.

    ``xs`` are the events' times and ``widths_px`` their labels' widths in pixels, on an axis
    ``axis_px`` pixels wide showing ``x_range``. Each label starts at its event (or ends at
    the axis's right end when it would run past it) and takes the lowest lane where it
    clears the labels already there. Returns ``(label start, lane)`` per event, in order.
    """
    x0, x1 = x_range
    per_px = (x1 - x0) / axis_px if axis_px > 0 and x1 > x0 else 0.0
    lanes: list[list[tuple[float, float]]] = []
    out: list[tuple[float, int]] = []
    for x, w in zip(xs, widths_px, strict=True):
        width = min(w, axis_px) * per_px
        start = max(x0, min(x, x1 - width))
        end = start + width
        gap = LABEL_GAP_PX * per_px
        for lane, taken in enumerate(lanes):
            if all(end + gap <= a or start >= b + gap for a, b in taken):
                taken.append((start, end))
                out.append((start, lane))
                break
        else:
            lanes.append([(start, end)])
            out.append((start, len(lanes) - 1))
    return out


def _event_marks(events: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """The timed events as ``(minute, label)`` pairs, in time order."""
    return sorted(
        ((float(ev["t"]) / 60.0, _label(ev)) for ev in events if ev.get("t") is not None),
        key=lambda m: m[0],
    )


def _time_span(t_min: list[float], marks: list[tuple[float, str]]) -> tuple[float, float]:
    """The time axis's limits in minutes: every row and mark, from 0, at least a second."""
    x0 = min([0.0, *t_min, *(m[0] for m in marks)])
    x1 = max([*t_min, *(m[0] for m in marks), x0 + 1.0 / 60.0])
    return x0, x1


def _place_marks(
    marks: list[tuple[float, str]], span: tuple[float, float]
) -> tuple[list[tuple[float, int]], int]:
    """Lay the event labels out in lanes, measured in the report's font.

    :returns: each label's ``(start, lane)`` and the number of lanes used.
    """
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    axis_px = FIG_WIDTH_IN * DPI * (RIGHT - LEFT)
    measure = RendererAgg(int(FIG_WIDTH_IN * DPI), 100, DPI)
    font = FontProperties(size=LABEL_PT)
    sizes = [measure.get_text_width_height_descent(m[1], font, ismath=False) for m in marks]
    placed = layout_labels([m[0] for m in marks], [w for w, _h, _d in sizes], span, axis_px)
    lanes = max((lane for _x, lane in placed), default=-1) + 1
    return placed, lanes


def _plot_panels(axes: list[Any], t_min: list[float], rows: list[dict[str, Any]]) -> None:
    """Draw the four panels: heart rate, pacer and breathing, coherence, volume."""
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


def _draw_marks(
    strip: Any,
    axes: list[Any],
    marks: list[tuple[float, str]],
    placed: list[tuple[float, int]],
    lanes: int,
) -> list[Any]:
    """Draw each event's line across the panels and its label in the strip; return the labels."""
    labels = []
    for (x, text), (start, lane) in zip(marks, placed, strict=True):
        for ax in axes:
            ax.axvline(x, color="black", lw=0.6, alpha=0.35)
        strip.plot([x, x], [lane + 1.0, max(1, lanes)], color="black", lw=0.6, alpha=0.35)
        labels.append(
            strip.text(start, lane + 0.5, text, fontsize=LABEL_PT, ha="left", va="center")
        )
    return labels


def _title(session: dict[str, Any]) -> str:
    """The report's title: the session, its program and its mean heart rate if known."""
    mean_hr = session.get("mean_hr")
    title = f"Session {session['id']}: {session['program']}"
    if mean_hr is not None:
        title += f"  mean HR {mean_hr:.0f} BPM"
    return title


def build_report(
    session: dict[str, Any], rows: list[dict[str, Any]], events: list[dict[str, Any]]
) -> tuple[Any, list[Any]]:
    """The report figure and its event label texts (for tests of the layout).

    Four panels share the time axis; above them a strip holds the event labels in as many
    lanes as they need, so none overlaps and none is cut at the figure's edge.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t_min = [float(r["t"]) / 60.0 for r in rows]
    marks = _event_marks(events)
    x0, x1 = _time_span(t_min, marks)
    placed, lanes = _place_marks(marks, (x0, x1))
    lane_in = 1.6 * LABEL_PT / 72.0
    strip_in = max(1, lanes) * lane_in + 0.1
    top_in, bottom_in = 0.55, 0.6  # the title above; the time axis's ticks and label below
    height_in = top_in + strip_in + 4 * PANEL_IN + bottom_in
    fig = plt.figure(figsize=(FIG_WIDTH_IN, height_in), dpi=DPI)
    grid = fig.add_gridspec(
        5,
        1,
        height_ratios=[strip_in, PANEL_IN, PANEL_IN, PANEL_IN, PANEL_IN],
        left=LEFT,
        right=RIGHT,
        top=1.0 - top_in / height_in,
        bottom=bottom_in / height_in,
        hspace=0.12,
    )
    strip = fig.add_subplot(grid[0])
    hr_ax = fig.add_subplot(grid[1], sharex=strip)
    axes = [hr_ax] + [fig.add_subplot(grid[i], sharex=strip) for i in (2, 3, 4)]
    _plot_panels(axes, t_min, rows)
    strip.set_xlim(x0, x1)
    strip.set_ylim(max(1, lanes), 0)  # lane 0 at the top, next to the title
    strip.axis("off")
    labels = _draw_marks(strip, axes, marks, placed, lanes)
    for ax in axes:
        ax.grid(alpha=0.3)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    fig.suptitle(_title(session), y=1.0 - 0.15 / height_in, va="top")
    return fig, labels


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
    fig, _labels = build_report(session, rows, events)
    png = io.BytesIO()
    try:
        fig.savefig(png, format="png", dpi=DPI)
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
