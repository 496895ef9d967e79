"""Checking a console command's arguments, and handing the box's disk work to the worker.

Every helper raises ``ValueError`` with a message for the ``ERR 2`` line (the usage, or what
was expected and what was typed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from device.box.api import OffLoop
from device.console.protocol import Deferred, Reply

T = TypeVar("T")


def expect_args(args: list[str], lo: int, hi: int, usage: str) -> list[str]:
    """``args`` when there are ``lo`` to ``hi`` of them, else ``ValueError("usage: ...")``."""
    if not lo <= len(args) <= hi:
        raise ValueError(f"usage: {usage}")
    return args


def number(text: str, what: str) -> float:
    """``text`` as a finite number (``what`` names it in the error)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, not {text!r}")
    return value


def on_off(args: list[str], usage: str) -> bool:
    """One ``ON`` or ``OFF`` word (any case) as a bool."""
    (word,) = expect_args(args, 1, 1, usage)
    if word.upper() not in ("ON", "OFF"):
        raise ValueError(f"expected ON or OFF, not {word!r} (usage: {usage})")
    return word.upper() == "ON"


def field(obj: Any, name: str, default: object = None) -> object:
    """A field of a row the box returned: a mapping's key or an object's attribute."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def off_loop(job: OffLoop[T], answer: Callable[[T], Reply]) -> Reply:
    """A reply whose disk work (``job.work``) runs on the console's worker thread; its
    ``apply`` and ``answer`` (the formatting) run back on the loop."""
    return Reply(deferred=Deferred(job.work, lambda result, _now: answer(job.apply(result))))
