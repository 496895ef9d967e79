"""The once-per-second status line: human text or one JSON object per line."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

#: Keys every JSON status line carries (scripts rely on them).
JSON_KEYS = (
    "t",
    "state",
    "program",
    "hr",
    "quality",
    "contact",
    "breathing",
    "pacer",
    "entrain_hz",
    "volume_db",
    "underruns",
    "overruns",
)


def _num(value: object, digits: int) -> float | None:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return round(float(value), digits)


def status_json(status: Mapping[str, object]) -> str:
    """One JSON object (one line) with at least :data:`JSON_KEYS`."""
    out = {
        "t": _num(status.get("t"), 3),
        "state": status.get("state"),
        "program": status.get("program"),
        "hr": _num(status.get("hr"), 1),
        "quality": _num(status.get("quality"), 3) or 0.0,
        "contact": bool(status.get("contact")),
        "breathing": _num(status.get("breathing"), 2),
        "pacer": _num(status.get("pacer"), 2),
        "entrain_hz": _num(status.get("entrain_hz"), 3),
        "volume_db": _num(status.get("volume_db"), 1),
        "underruns": int(status.get("underruns") or 0),
        "overruns": int(status.get("overruns") or 0),
    }
    for key in (
        "entrain_kind",
        "section",
        "remaining_s",
        "rmssd",
        "coherence",
        "loop_state",
        "late_blocks",
        "level_db",
        "sensor",
        "storage",
        "sim_hr",
        "config_error",
    ):
        if key in status:
            value = status[key]
            out[key] = _num(value, 3) if isinstance(value, float) else value
    return json.dumps(out, separators=(",", ":"))


def _clock(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def status_text(status: Mapping[str, object]) -> str:
    """A line a person can read at a terminal, ``--`` where a figure is not known."""

    def fmt(key: str, spec: str, unit: str = "") -> str:
        value = _num(status.get(key), 6)
        return "--" if value is None else f"{value:{spec}}{unit}"

    return (
        f"{_clock(float(status.get('t') or 0.0))} {status.get('state')!s:<8}"
        f" HR {fmt('hr', '.0f')}"
        f"  q {fmt('quality', '.2f')}"
        f"  breath {fmt('breathing', '.1f')}"
        f"  pacer {fmt('pacer', '.1f', '/min')}"
        f"  entrain {fmt('entrain_hz', '.1f', ' Hz')}"
        f"  vol {fmt('volume_db', '.1f', ' dB')}"
        f"  underruns {int(status.get('underruns') or 0)}"
        f"  overruns {int(status.get('overruns') or 0)}"
    )
