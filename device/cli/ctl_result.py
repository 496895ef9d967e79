"""One reply of the console as ``bedside ctl`` sees it, and its data lines as JSON objects."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    """The answer to one command."""

    command: str
    data: list[str] = field(default_factory=list)
    final: str = ""

    @property
    def ok(self) -> bool:
        """Whether the final line was ``OK``."""
        return self.final == "OK" or self.final.startswith("OK ")

    @property
    def error(self) -> str:
        """The final line without its tag (``ERR <code> <message>``)."""
        text = self.final
        head, sep, last = text.rpartition(" ")
        return head if sep and last.startswith("#") else text


def _convert(text: str) -> Any:
    """A console value as JSON: a number, ``true``/``false``, ``null`` or the word itself.

    JSON has no NaN or infinity: ``nan`` (not known) is null, ``inf`` stays a word.
    """
    if text in ("none", "nan"):
        return None
    if text in ("true", "false"):
        return text == "true"
    if text in ("inf", "-inf"):
        return text
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def to_json(result: Result) -> list[dict[str, Any]]:
    """The data lines of ``result`` as objects (CSV rows for ``EXPORT``)."""
    from device.console.protocol import parse_pairs

    words = result.command.upper().split()
    if words[0] == "EXPORT":
        return _export_rows(words, result.data)
    return [{k: _convert(v) for k, v in parse_pairs(line).items()} for line in result.data]


def _export_rows(words: list[str], data: list[str]) -> list[dict[str, Any]]:
    """The lines of an ``EXPORT`` reply as objects: ``rr_ms`` per line for ``EXPORT ... RR``,
    else one per CSV row keyed by the header (an empty cell is ``None``)."""
    if words[2:3] == ["RR"]:
        return [{"rr_ms": _convert(line)} for line in data]
    rows = list(csv.reader(data))
    if not rows:
        return []
    header = rows[0]
    return [
        {k: _convert(v) if v else None for k, v in zip(header, r, strict=False)} for r in rows[1:]
    ]
