"""The PPG CSV files ``bedside analyze-ppg`` reads: a header row, one sample per row, the
PPG column and, when there is one, the time column (its unit from its name or its steps).

Every fault is an :class:`~device.exc.InputFileError` naming the file, the row (1 is the
header) and what is wrong.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from device.exc import InputFileError

if TYPE_CHECKING:
    import numpy as np

#: Column names taken without ``--column`` (case-insensitive), in order of preference.
DEFAULT_COLUMNS = ("ppg", "pleth", "ir")
#: Time column names (case-insensitive) and their unit in seconds (``None``: by the steps).
TIME_COLUMNS: dict[str, float | None] = {
    "time": None,
    "t": None,
    "t_s": 1.0,
    "time_s": 1.0,
    "time_ms": 1e-3,
    "t_ms": 1e-3,
}


@dataclass
class Recording:
    """What a PPG CSV file holds: the samples and, when it has one, its time column."""

    #: The PPG column's values.
    samples: np.ndarray
    #: The time column in seconds, or ``None`` when the file has none.
    times_s: np.ndarray | None
    #: The time column's name as the header spells it (``""`` without one).
    time_name: str = ""


def read_column(path: str | Path, column: str | None) -> Recording:
    """Read one numeric column of a CSV file with a header row, and its time column if any.

    Raises :class:`InputFileError` naming the file, the row (1 is the header) and the fault.
    """
    import numpy as np

    reader = csv.reader(io.StringIO(_read_text(path), newline=""), strict=True)
    names = _read_header(path, reader)
    col = _pick_column(path, names, column)
    lower = [n.lower() for n in names]
    tcol = next((i for i, n in enumerate(lower) if n in TIME_COLUMNS and i != col), None)
    values, times = _read_rows(path, reader, names, col, tcol)
    if tcol is None:
        return Recording(np.asarray(values, dtype=float), None)
    t = np.asarray(times, dtype=float)
    unit = _time_unit(t, TIME_COLUMNS[lower[tcol]])
    return Recording(np.asarray(values, dtype=float), (t - t[0]) * unit, names[tcol])


def _read_header(path: str | Path, reader: Any) -> list[str]:
    """The header row's column names (stripped), or an error naming row 1."""
    try:
        header = next(reader)
    except StopIteration:
        raise InputFileError(f"{path}: row 1: empty file, expected a header row") from None
    except csv.Error as exc:
        raise InputFileError(f"{path}: row 1: malformed CSV: {exc}") from None
    return [h.strip() for h in header]


def _time_unit(t: np.ndarray, unit: float | None) -> float:
    """Seconds per unit of the time column: its name's unit, else guessed from its steps."""
    import numpy as np

    if unit is not None:
        return unit
    steps = np.diff(t)
    # Seconds unless a step of more than 1 would mean a rate below 1 Hz: milliseconds.
    return 1e-3 if len(steps) and float(np.median(steps)) > 1.0 else 1.0


def _read_text(path: str | Path) -> str:
    """The file as text (UTF-8, a byte-order mark allowed), or an error naming the row."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad_row = raw[: exc.start].count(b"\n") + 1
        raise InputFileError(f"{path}: row {bad_row}: not UTF-8 text") from None


def _read_rows(
    path: str | Path, reader: Any, names: list[str], col: int, tcol: int | None
) -> tuple[list[float], list[float]]:
    """The PPG column's values and the time column's (empty without one), row by row."""
    values: list[float] = []
    times: list[float] = []
    need = col if tcol is None else max(col, tcol)
    while (fields := _next_row(path, reader)) is not None:
        line = reader.line_num
        if not fields or all(not cell.strip() for cell in fields):
            continue
        _check_width(path, line, fields, names, need)
        values.append(_number(path, line, names[col], fields[col]))
        if tcol is not None:
            times.append(_number(path, line, names[tcol], fields[tcol]))
    if not values:
        raise InputFileError(f"{path}: row 2: no samples after the header")
    return values, times


def _next_row(path: str | Path, reader: Any) -> list[str] | None:
    """The next row's fields (``None`` at the end), or an error naming the malformed row."""
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise InputFileError(f"{path}: row {reader.line_num}: malformed CSV: {exc}") from None


def _check_width(
    path: str | Path, line: int, fields: list[str], names: list[str], need: int
) -> None:
    """Raise :class:`InputFileError` if row ``line`` has no field ``need`` (0-based)."""
    if need >= len(fields):
        raise InputFileError(
            f"{path}: row {line}: has {len(fields)} fields, "
            f"column {names[need]!r} is field {need + 1}"
        )


def _number(path: str | Path, line: int, name: str, cell: str) -> float:
    cell = cell.strip()
    try:
        value = float(cell)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputFileError(f"{path}: row {line}: column {name!r} value {cell!r} is not a number")
    return value


def _pick_column(path: str | Path, names: list[str], column: str | None) -> int:
    """The PPG column's index: ``column`` (exact, else any case) or the one the header
    makes plain (a usual name, or the only column that is not time)."""
    if column is not None:
        return _named_column(path, names, column)
    return _default_column(path, names)


def _named_column(path: str | Path, names: list[str], column: str) -> int:
    """The index of the column named ``column`` (exact, else any case), or an error."""
    lower = [n.lower() for n in names]
    if column in names:
        return names.index(column)
    if column.lower() in lower:
        return lower.index(column.lower())
    raise InputFileError(f"{path}: row 1: no column {column!r} (columns: {', '.join(names)})")


def _default_column(path: str | Path, names: list[str]) -> int:
    """The PPG column when none is named: a usual name, or the only column that is not time."""
    lower = [n.lower() for n in names]
    for name in DEFAULT_COLUMNS:
        if name in lower:
            return lower.index(name)
    others = [i for i, n in enumerate(lower) if n not in TIME_COLUMNS and n]
    if len(others) == 1:
        return others[0]
    raise InputFileError(
        f"{path}: row 1: cannot tell which column is the PPG ({', '.join(names)}); use --column"
    )
