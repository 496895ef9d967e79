"""``bedside analyze-ppg``: run the box's own streaming heart analysis on a PPG CSV file.

The file has a header row and one sample per row at a fixed rate. The samples are fed to
:class:`~device.dsp.heart.HeartAnalyzer` in FIFO-sized blocks, exactly as the box feeds what it
reads from the sensor, so the beats are the ones the box would have found.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from device.exc import InputFileError

if TYPE_CHECKING:
    import numpy as np

#: Samples per block: the MAX30102 FIFO depth.
FIFO_SAMPLES = 32
#: Column names taken without ``--column`` (case-insensitive), in order of preference.
DEFAULT_COLUMNS = ("ppg", "pleth", "ir")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bedside analyze-ppg``."""
    p = subparsers.add_parser(
        "analyze-ppg",
        help="find beats, heart rate and HRV in a PPG CSV file",
        description=__doc__,
    )
    p.add_argument("file", metavar="FILE.csv", help="CSV file: header row, one sample per row")
    p.add_argument("--rate", type=_rate, required=True, metavar="HZ", help="sample rate in Hz")
    p.add_argument(
        "--column",
        metavar="NAME",
        help="column to analyse (default: ppg, pleth or ir, or the only column besides time)",
    )
    p.add_argument(
        "--invert",
        action="store_true",
        help="the signal falls as blood arrives (raw sensor counts, camera red): negate it",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=analyze)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate {text!r} is not a number") from None
    if not 20.0 <= value <= 1000.0:
        raise argparse.ArgumentTypeError(f"rate {text!r} Hz is outside 20-1000 Hz")
    return value


def read_column(path: str | Path, column: str | None) -> np.ndarray:
    """Read one numeric column of a CSV file with a header row.

    Raises :class:`InputFileError` naming the file, the row (1 is the header) and the fault.
    """
    import numpy as np

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad_row = raw[: exc.start].count(b"\n") + 1
        raise InputFileError(f"{path}: row {bad_row}: not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise InputFileError(f"{path}: row 1: empty file, expected a header row") from None
    except csv.Error as exc:
        raise InputFileError(f"{path}: row 1: malformed CSV: {exc}") from None
    names = [h.strip() for h in header]
    col = _pick_column(path, names, column)
    values: list[float] = []
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputFileError(f"{path}: row {reader.line_num}: malformed CSV: {exc}") from None
        line = reader.line_num
        if not fields or all(not cell.strip() for cell in fields):
            continue
        if col >= len(fields):
            raise InputFileError(
                f"{path}: row {line}: has {len(fields)} fields, "
                f"column {names[col]!r} is field {col + 1}"
            )
        cell = fields[col].strip()
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise InputFileError(
                f"{path}: row {line}: column {names[col]!r} value {cell!r} is not a number"
            )
        values.append(value)
    if not values:
        raise InputFileError(f"{path}: row 2: no samples after the header")
    return np.asarray(values, dtype=float)


def _pick_column(path: str | Path, names: list[str], column: str | None) -> int:
    lower = [n.lower() for n in names]
    if column is not None:
        if column in names:
            return names.index(column)
        if column.lower() in lower:
            return lower.index(column.lower())
        raise InputFileError(f"{path}: row 1: no column {column!r} (columns: {', '.join(names)})")
    for name in DEFAULT_COLUMNS:
        if name in lower:
            return lower.index(name)
    others = [i for i, n in enumerate(lower) if n not in ("time", "t", "t_s", "time_s", "")]
    if len(others) == 1:
        return others[0]
    raise InputFileError(
        f"{path}: row 1: cannot tell which column is the PPG ({', '.join(names)}); use --column"
    )


def analyse(samples: np.ndarray, rate_hz: float, *, invert: bool = False) -> dict:
    """Run the streaming analysis over ``samples``; return the ``--json`` object.

    The samples are taken to rise as blood arrives (systolic peaks up, as a monitor's
    plethysmogram) unless ``invert`` says they fall (raw reflectance counts, camera red).
    Blocks of at most one FIFO are cut at whole seconds so that the heart rate is read once
    per second of signal (at ``t`` = 1, 2, ... s, from the samples before ``t``).
    """
    import numpy as np

    from device.drivers.samples import SampleBlock
    from device.dsp.heart import HeartAnalyzer

    analyzer = HeartAnalyzer(rate_hz)
    # The analyser takes sensor counts, which fall at systole.
    ir = samples if invert else -samples
    ir = np.ascontiguousarray(ir, dtype=float)
    beats: list[float] = []
    hr: list[list[float]] = []
    n = len(ir)
    i = 0
    second = 1
    boundary = math.ceil(rate_hz)
    while i < n:
        end = min(i + FIFO_SAMPLES, n, boundary)
        part = ir[i:end]
        beats += [b.t for b in analyzer.feed(SampleBlock(i, rate_hz, part, part))]
        i = end
        if i == boundary:
            state = analyzer.snapshot()
            if state.hr_bpm is not None:
                hr.append([float(second), round(state.hr_bpm, 2)])
            second += 1
            boundary = math.ceil(second * rate_hz)
    beats += analyzer.detector.flush()
    rmssd, sdnn = analyzer.session_hrv()
    return {
        "beats_s": [round(t, 4) for t in beats],
        "hr": hr,
        "rmssd_ms": None if rmssd is None else round(rmssd, 2),
        "sdnn_ms": None if sdnn is None else round(sdnn, 2),
        "latency_s": round(analyzer.latency_s, 4),
    }


def analyze(args: argparse.Namespace) -> int:
    """Handler of ``bedside analyze-ppg``."""
    samples = read_column(args.file, args.column)
    result = analyse(samples, args.rate, invert=args.invert)
    if args.json:
        print(json.dumps(result))
        return 0
    duration = len(samples) / args.rate
    beats = result["beats_s"]
    rates = [bpm for _, bpm in result["hr"]]
    print(f"{args.file}: {len(samples)} samples, {duration:.1f} s at {args.rate:g} Hz")
    print(f"beats: {len(beats)} (reported {result['latency_s']:.2f} s after each beat)")
    if rates:
        print(
            f"heart rate: mean {sum(rates) / len(rates):.1f} bpm, "
            f"range {min(rates):.1f}-{max(rates):.1f} bpm, shown {len(rates)} of "
            f"{math.floor(duration)} s"
        )
    else:
        print("heart rate: withheld (signal quality too low or recording too short)")
    for key, label in (("rmssd_ms", "RMSSD"), ("sdnn_ms", "SDNN")):
        value = result[key]
        print(
            f"{label}: "
            + ("withheld (too few clean intervals)" if value is None else f"{value:.1f} ms")
        )
    return 0
