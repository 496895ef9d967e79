"""``bedside analyze-ppg``: run the box's own streaming heart analysis on a PPG CSV file.

The file has a header row and one sample per row. A time column (``time``, ``t``, ``t_s``,
``time_s``: seconds; ``time_ms``, ``t_ms``: milliseconds; a plain ``time`` whose steps exceed
1 is taken as milliseconds, as a phone camera writes it) gives the sample rate; a file sampled
unevenly is put on an even grid at its median step by linear interpolation. Without a time
column ``--rate`` is needed; when both are there and differ by more than 2 %, the time column
wins and a warning says so. Rates of 20-3200 Hz are read (the MAX30102 samples at up to 3200
sps); above 1000 Hz the samples are averaged in groups down to at most 1000 Hz first.

The samples are fed to :class:`~device.heart.analysis.HeartAnalyzer` in FIFO-sized blocks, exactly
as the box feeds what it reads from the sensor, so the beats are the ones the box would find.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from device.cli.ppg_csv import Recording, read_column
from device.exc import UsageError

if TYPE_CHECKING:
    import numpy as np

    from device.heart.analysis import HeartAnalyzer

#: Samples per block: the MAX30102 FIFO depth.
FIFO_SAMPLES = 32
#: Sample rates read, Hz: the MAX30102's slowest and fastest.
RATE_MIN_HZ = 20.0
RATE_MAX_HZ = 3200.0
#: Fastest rate fed to the analysis; faster files are averaged in groups first, Hz.
ANALYSIS_MAX_HZ = 1000.0
#: ``--rate`` and the time column disagree when they differ by more than this share.
RATE_TOLERANCE = 0.02
#: A time column with a sample more than this many steps off an even grid is uneven.
EVEN_TOLERANCE = 1.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bedside analyze-ppg``."""
    p = subparsers.add_parser(
        "analyze-ppg",
        help="find beats, heart rate and HRV in a PPG CSV file",
        description=__doc__,
    )
    p.add_argument("file", metavar="FILE.csv", help="CSV file: header row, one sample per row")
    p.add_argument(
        "--rate",
        type=_rate,
        metavar="HZ",
        help="sample rate in Hz, 20-3200 (needed when the file has no time column)",
    )
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
    if not RATE_MIN_HZ <= value <= RATE_MAX_HZ:
        raise argparse.ArgumentTypeError(
            f"rate {text!r} Hz is outside {RATE_MIN_HZ:g}-{RATE_MAX_HZ:g} Hz"
        )
    return value


def choose_rate(
    path: str | Path, rec: Recording, rate: float | None, warn: list[str]
) -> tuple[np.ndarray, float, str]:
    """The samples on an even grid, their rate (Hz) and where the rate came from.

    The rate is the time column's (its median step) when the file has a usable one, else
    ``--rate``.

    Warnings for the user (``--rate`` disagreeing with the time column, a time column that
    cannot be used) are appended to ``warn``. Raises :class:`UsageError` without a rate.
    """
    import numpy as np

    t = rec.times_s
    if t is None:
        if rate is None:
            raise UsageError(f"{path}: the file has no time column: give --rate HZ")
        return rec.samples, rate, "--rate"
    steps = np.diff(t)
    back = np.flatnonzero(steps < 0.0)
    if len(steps) == 0 or len(back) or t[-1] <= t[0]:
        row = 3 + int(back[0]) if len(back) else 2
        what = f"time column {rec.time_name!r} does not increase (row {row})"
        if rate is None:
            raise UsageError(f"{path}: {what}: give --rate HZ")
        warn.append(f"{path}: {what}; using --rate {rate:g} Hz")
        return rec.samples, rate, "--rate"
    file_rate = _agreed_rate(path, rec, _file_rate(path, rec, t), rate, warn)
    samples = rec.samples
    grid = np.arange(len(t)) / file_rate
    if float(np.max(np.abs(t - grid))) > EVEN_TOLERANCE / file_rate:
        # Samples more than a step off an even grid (a camera's irregular frames, dropped
        # frames): put them on one by linear interpolation.
        grid = np.arange(0.0, float(t[-1]), 1.0 / file_rate)
        samples = np.interp(grid, t, samples)
        warn.append(
            f"{path}: uneven time steps ({float(steps.min()):.4g}-{float(steps.max()):.4g} s):"
            f" resampled at {file_rate:g} Hz"
        )
    return samples, file_rate, f"time column {rec.time_name!r}"


def _file_rate(path: str | Path, rec: Recording, t: np.ndarray) -> float:
    """The time column's rate (Hz, 4 figures), or :class:`UsageError` outside the range.

    The mean step over the whole file: a column printed to a few digits (BIDMC's 100.01,
    100.02, 100.02 ...) has uneven and even repeated single steps but the right span.
    """
    file_rate = float(f"{(len(t) - 1) / float(t[-1] - t[0]):.4g}")
    if not RATE_MIN_HZ <= file_rate <= RATE_MAX_HZ:
        raise UsageError(
            f"{path}: time column {rec.time_name!r} gives {file_rate:g} Hz, "
            f"outside {RATE_MIN_HZ:g}-{RATE_MAX_HZ:g} Hz"
        )
    return file_rate


def _agreed_rate(
    path: str | Path, rec: Recording, file_rate: float, rate: float | None, warn: list[str]
) -> float:
    """``--rate`` when it agrees with the time column's rate (the exact figure the user
    knows), else the column's (with a warning when ``--rate`` disagrees)."""
    if rate is None:
        return file_rate
    if abs(rate - file_rate) > RATE_TOLERANCE * file_rate:
        warn.append(
            f"{path}: --rate {rate:g} Hz disagrees with the time column {rec.time_name!r} "
            f"({file_rate:g} Hz); using the time column"
        )
        return file_rate
    return rate


def analyse(samples: np.ndarray, rate_hz: float, *, invert: bool = False) -> dict:
    """Run the streaming analysis over ``samples``; return the ``--json`` object.

    The samples are taken to rise as blood arrives (systolic peaks up, as a monitor's
    plethysmogram) unless ``invert`` says they fall (raw reflectance counts, camera red).
    Above 1000 Hz, groups of ``q`` samples are averaged first (a moving average has its
    nulls at the new rate's multiples, just where what would alias into the pulse band
    lies); beat times stay in seconds since the first sample. Blocks of at most one FIFO are
    cut at whole seconds so that the heart rate is read once per second of signal (at
    ``t`` = 1, 2, ... s, from the samples before ``t``). HRV is given over the whole file
    and over its last 5 minutes.
    """
    import numpy as np

    from device.heart.analysis import HeartAnalyzer

    q = math.ceil(rate_hz / ANALYSIS_MAX_HZ - 1e-9)
    if q > 1:
        n_out = len(samples) // q
        samples = samples[: n_out * q].reshape(n_out, q).mean(axis=1)
    rate = rate_hz / q
    # The mean of samples k*q .. k*q+q-1 stands at their middle.
    shift = (q - 1) / (2.0 * rate_hz)
    analyzer = HeartAnalyzer(rate)
    # The analyser takes sensor counts, which fall at systole.
    ir = np.ascontiguousarray(samples if invert else -samples, dtype=float)
    beats, hr = _stream(analyzer, ir)
    beats += analyzer.detector.flush()
    rmssd, sdnn = analyzer.session_hrv()
    rmssd_5, sdnn_5 = analyzer.short_term_hrv()

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "beats_s": [round(t + shift, 4) for t in beats],
        "hr": hr,
        "rmssd_ms": ms(rmssd),
        "sdnn_ms": ms(sdnn),
        "rmssd_5min_ms": ms(rmssd_5),
        "sdnn_5min_ms": ms(sdnn_5),
        "rate_hz": round(rate_hz, 4),
        "latency_s": round(analyzer.latency_s + (q - 1) / rate_hz, 4),
    }


def _stream(analyzer: HeartAnalyzer, ir: np.ndarray) -> tuple[list[float], list[list[float]]]:
    """Feed ``ir`` in FIFO-sized blocks cut at whole seconds; the beat times and, once per
    second of signal, ``[t, shown HR]`` while a rate is shown."""
    from device.heart.samples import SampleBlock

    rate = analyzer.rate_hz
    beats: list[float] = []
    hr: list[list[float]] = []
    n = len(ir)
    i = 0
    second = 1
    boundary = math.ceil(rate - 1e-9)
    while i < n:
        end = min(i + FIFO_SAMPLES, n, boundary)
        part = ir[i:end]
        beats += [b.t for b in analyzer.feed(SampleBlock(i, rate, part, part))]
        i = end
        if i == boundary:
            state = analyzer.snapshot()
            if state.hr_bpm is not None:
                hr.append([float(second), round(state.hr_bpm, 2)])
            second += 1
            boundary = math.ceil(second * rate - 1e-9)
    return beats, hr


def analyze(args: argparse.Namespace) -> int:
    """Handler of ``bedside analyze-ppg``."""
    rec = read_column(args.file, args.column)
    warnings: list[str] = []
    samples, rate, source = choose_rate(args.file, rec, args.rate, warnings)
    for line in warnings:
        print(f"analyze-ppg: warning: {line}", file=sys.stderr)
    result = analyse(samples, rate, invert=args.invert)
    if args.json:
        print(json.dumps(result))
        return 0
    duration = len(samples) / rate
    beats = result["beats_s"]
    rates = [bpm for _, bpm in result["hr"]]
    print(f"{args.file}: {len(samples)} samples, {duration:.1f} s at {rate:.4g} Hz ({source})")
    print(f"beats: {len(beats)} (reported {result['latency_s']:.2f} s after each beat)")
    if rates:
        print(
            f"heart rate: mean {sum(rates) / len(rates):.1f} bpm, "
            f"range {min(rates):.1f}-{max(rates):.1f} bpm, shown {len(rates)} of "
            f"{math.floor(duration)} s"
        )
    else:
        print("heart rate: withheld (signal quality too low or recording too short)")
    for key, label in (
        ("rmssd_ms", "RMSSD"),
        ("sdnn_ms", "SDNN"),
        ("rmssd_5min_ms", "RMSSD, last 5 min"),
        ("sdnn_5min_ms", "SDNN, last 5 min"),
    ):
        value = result[key]
        print(
            f"{label}: "
            + ("withheld (too few clean intervals)" if value is None else f"{value:.1f} ms")
        )
    return 0
