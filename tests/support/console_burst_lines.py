"""The burst of issue 16 item 15, shared by the pty tests and the lab's UART scenario."""

from __future__ import annotations

import random

from device.console.commands import COMMANDS
from device.console.protocol import parse_request

WORDS = ("PING", "STATUS?", "ID?", "VOL?", "HELP", "FOO", "PROG?", "SENSOR?", "CFG?", "X")


def burst_lines(n: int = 2000, seed: int = 7) -> list[str]:
    """The issue's burst: a word and up to four of ``abc123 ?`` appended."""
    rng = random.Random(seed)
    return [
        rng.choice(WORDS) + "".join(rng.choice("abc123 ?") for _ in range(rng.randint(0, 4)))
        for _ in range(n)
    ]


def unknown(line: str) -> bool:
    """Whether ``line`` names no command (its reply is ``ERR 1 unknown command '...'``)."""
    words = tuple(w.upper() for w in parse_request(line).words)
    return not any(words[: len(c.words)] == c.words for c in COMMANDS)


def in_order(lines: list[str], finals: list[str]) -> bool:
    """Whether the unknown-command errors among ``finals`` name ``lines``' unknown ones in order."""
    errs = [x for x in finals if x.startswith("ERR 1 unknown command '")]
    want = [x for x in lines if unknown(x)]
    return len(errs) == len(want) and all(
        " ".join(line.split()).upper().startswith(reply.split("'")[1].rstrip(".").upper())
        for reply, line in zip(errs, want, strict=True)
    )
