"""Every value the lab reads, parsed in one place, never raising.

The lab reads numbers from many sources it does not control: ``STATUS?`` fields of the
box (``elapsed_s=none`` before a session starts), ``systemctl show`` properties (empty
while a unit starts), ``/proc`` files of the host and of the guest (a process that has
just exited), the lab's own JSON lines. A value that is missing, a word such as ``none``,
or garbage reads as ``None`` here; the scenario then decides what a missing value means
(a failure it names, or a figure it reports as null), instead of the lab crashing with
``could not convert string to float: 'none'``.
"""

from __future__ import annotations

import json
import math
import re

#: Words that mean "no value" wherever the lab reads one.
NO_VALUE = frozenset({"", "none", "null", "nan", "n/a", "na", "-", "unknown", "unset"})
#: A number with an optional unit suffix as the box and systemd print them (12.5s, 81%).
_NUMBER = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?:%|[A-Za-z]{1,3})?")


def number(value: object) -> float | None:
    """A finite float from ``value`` (str, int, float), else None. Never raises.

    A trailing unit of up to three letters or ``%`` is accepted (``0.3s``, ``81%``);
    booleans are not numbers; ``inf`` and ``nan`` read as None.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower() in NO_VALUE:
        return None
    m = _NUMBER.fullmatch(text)
    if m is None:
        return None
    try:
        f = float(m.group(1))
    except ValueError:  # pragma: no cover - the pattern only matches float syntax
        return None
    return f if math.isfinite(f) else None


def integer(value: object) -> int | None:
    """An int from ``value`` when it is a whole number (``"3"``, ``"3.0"``, 3), else None."""
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[-+]?\d+", text):
            return int(text)  # exact, also for microsecond timestamps beyond 2**53
    f = number(value)
    if f is None or f != int(f):
        return None
    return int(f)


def field(fields: dict[str, str] | None, key: str) -> float | None:
    """The number in ``fields[key]`` (a ``STATUS?`` line's pairs), None when absent."""
    if not fields:
        return None
    return number(fields.get(key))


def flag(value: object) -> bool | None:
    """yes/no, true/false, on/off, 1/0 as a bool; None for anything else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in ("1", "yes", "true", "on", "ok"):
        return True
    if text in ("0", "no", "false", "off"):
        return False
    return None


def json_object(text: object) -> dict | None:
    """The JSON object in ``text`` (its last line that parses as one), else None."""
    if not isinstance(text, str):
        return None
    for line in reversed(text.strip().splitlines()):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def proc_cpu_ticks(stat: str) -> tuple[int, int] | None:
    """(utime, stime) clock ticks from a ``/proc/PID/stat`` line, else None.

    The command name (field 2) may hold spaces and parentheses, so the fields are
    counted after its last ``)``.
    """
    if not isinstance(stat, str) or ")" not in stat:
        return None
    rest = stat.rsplit(")", 1)[1].split()
    # After the name: state(3) ... utime(14) stime(15): indexes 11 and 12 of rest.
    if len(rest) < 13:
        return None
    utime, stime = integer(rest[11]), integer(rest[12])
    if utime is None or stime is None:
        return None
    return utime, stime


def schedstat(text: str) -> tuple[int, int] | None:
    """(ns on a CPU, ns waiting on a run queue) from a ``/proc/.../schedstat`` line."""
    parts = text.split() if isinstance(text, str) else []
    if len(parts) < 2:
        return None
    run, wait = integer(parts[0]), integer(parts[1])
    if run is None or wait is None:
        return None
    return run, wait


#: The columns of a ``cpu`` line of /proc/stat, in order.
PROC_STAT_COLUMNS = (
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
)


def proc_stat_cpu(text: str) -> dict[str, int] | None:
    """The aggregate ``cpu`` line of /proc/stat as {column: ticks}, else None.

    Older kernels print fewer columns; the missing ones read 0.
    """
    if not isinstance(text, str):
        return None
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            vals = [integer(p) for p in parts[1:]]
            if len(vals) < 4 or any(v is None for v in vals):
                return None
            out = {k: 0 for k in PROC_STAT_COLUMNS}
            for k, v in zip(PROC_STAT_COLUMNS, vals, strict=False):
                out[k] = int(v or 0)
            return out
    return None
