"""The console's line protocol, version 1: requests, replies, error codes, the error queue.

A request is words separated by spaces, case-insensitive, with values that hold spaces in
double quotes, optionally ending in `` #TAG`` (1-8 letters or digits). A reply is zero or
more data lines of ``key=value`` pairs, then exactly one final line, ``OK`` or
``ERR <code> <message>``, carrying the request's `` #TAG``. Lines the box sends on its own
start with ``!``. Every line sent ends in CRLF. ``docs/protocol.md`` is the full text.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, TypeVar

# Every value the console prints is formatted in one place: device/console/lines.py.
from device.console.lines import flatten, format_cell, format_pairs, format_value, quote

__all__ = [
    "EOL",
    "PROTOCOL_VERSION",
    "Code",
    "Deferred",
    "ErrorQueue",
    "QueuedError",
    "Reply",
    "Request",
    "clean_message",
    "flatten",
    "format_cell",
    "format_final",
    "format_pairs",
    "format_value",
    "parse_pairs",
    "parse_request",
    "quote",
]

#: Protocol version reported by ``ID?``.
PROTOCOL_VERSION = 1
#: Every line the box sends ends with this.
EOL = "\r\n"


class Code(IntEnum):
    """Error codes of ``ERR <code> <message>`` (stable: scripts match the number)."""

    UNKNOWN_COMMAND = 1
    BAD_ARGUMENT = 2
    LINE_TOO_LONG = 3
    NOT_ALLOWED_NOW = 4
    PIN_REQUIRED = 5
    HARDWARE_FAULT = 6
    STORAGE_FAULT = 7
    BUSY = 8
    LOCKED_OUT = 9


_TAG = re.compile(r"#[A-Za-z0-9]{1,8}")
#: Longest message placed in an ``ERR`` line, in characters.
MAX_MESSAGE = 200


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed command line."""

    #: The words as typed (quotes removed); ``verb`` and friends upper-case them.
    words: tuple[str, ...]
    #: The tag without its ``#``, or ``None``.
    tag: str | None = None
    #: Why the line could not be split into words (unclosed quote, bad tag), or ``None``.
    error: str | None = None
    #: Indexes of the words that were typed in double quotes (always text, never numbers).
    quoted: frozenset[int] = frozenset()

    def upper(self, i: int) -> str:
        """Word ``i`` in upper case, or ``""`` when there are fewer words."""
        return self.words[i].upper() if i < len(self.words) else ""


def parse_request(line: str) -> Request:
    """Split a printable line into words and its tag (``error`` says what is malformed)."""
    tag = None
    head, sep, last = line.rpartition(" ")
    if sep and last.startswith("#"):
        if not _TAG.fullmatch(last):
            return Request((), None, f"bad tag {last!r}: a tag is # and 1-8 letters or digits")
        tag, line = last[1:], head
    elif not sep and _TAG.fullmatch(line):
        return Request((), line[1:])
    quoted: set[int] = set()
    try:
        words = _split_words(line, quoted)
    except ValueError as exc:
        return Request((), tag, str(exc))
    return Request(words, tag, None, frozenset(quoted))


def _split_words(line: str, quoted: set[int]) -> tuple[str, ...]:
    words: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] == " ":
            i += 1
            continue
        if line[i] == '"':
            word, i = _quoted(line, i + 1)
            if i < n and line[i] != " ":
                raise ValueError("a closing quote must be followed by a space")
            quoted.add(len(words))
            words.append(word)
            continue
        j = line.find(" ", i)
        j = n if j < 0 else j
        word = line[i:j]
        if '"' in word:
            raise ValueError("a quote inside a word: quote whole values")
        words.append(word)
        i = j
    return tuple(words)


def _quoted(line: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] in '"\\':
            out.append(line[i + 1])
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise ValueError("unclosed double quote")


def clean_message(message: object) -> str:
    """One printable line of at most :data:`MAX_MESSAGE` characters for an ``ERR`` line."""
    text = " ".join(str(message).split())
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 3] + "..."
    return text or "error"


def format_final(code: int, message: str = "", tag: str | None = None) -> str:
    """The final line of a reply: ``OK`` or ``ERR <code> <message>``, then `` #TAG``."""
    line = "OK" if code == 0 else f"ERR {int(code)} {clean_message(message)}"
    return f"{line} #{tag}" if tag else line


T = TypeVar("T")


@dataclass(slots=True)
class Deferred(Generic[T]):
    """Slow work (disk, PIN hashing) run off the loop thread, then finished on it.

    ``work()`` runs on the console's worker thread: it must not touch the loop's state (the
    engine, the session, the console); the box hands out such work as
    :class:`~device.box.api.OffLoop`. ``finish(result, now)`` runs on the loop thread,
    applies the result and returns the :class:`Reply` to send. An exception raised by
    either becomes the reply's ``ERR`` line. Lines are answered in order: the line after
    it waits until this reply is out.
    """

    work: Callable[[], T]
    finish: Callable[[T, float], Reply]


@dataclass(slots=True)
class Reply:
    """What a command answers: data lines, then OK (``code`` 0) or ``ERR code message``.

    ``lines`` may be a lazy iterator (an export), pulled as the port takes the output; an
    exception raised while pulling it turns the final line into an error.
    """

    lines: Iterable[str] = ()
    code: int = 0
    message: str = ""
    deferred: Deferred[Any] | None = None

    @classmethod
    def error(cls, code: int, message: str) -> Reply:
        """A reply with no data lines and ``ERR code message``."""
        return cls((), int(code), message)

    @classmethod
    def data(cls, *rows: Mapping[str, object] | Iterable[tuple[str, object]]) -> Reply:
        """An OK reply whose data lines are the given ``key=value`` rows."""
        return cls([format_pairs(r) for r in rows])


@dataclass(frozen=True, slots=True)
class QueuedError:
    """One entry of the error queue."""

    code: int
    message: str
    t: float


@dataclass
class ErrorQueue:
    """The last errors answered, oldest first, read and cleared by ``ERR?`` (SCPI style).

    When full the oldest entry goes and ``dropped`` counts it, so a reader knows.
    """

    size: int = 16
    dropped: int = 0
    _q: deque[QueuedError] = field(default_factory=deque, repr=False)

    def push(self, code: int, message: str, t: float) -> None:
        """Record an error answered at loop time ``t``."""
        if len(self._q) >= self.size:
            self._q.popleft()
            self.dropped += 1
        self._q.append(QueuedError(int(code), clean_message(message), t))

    def drain(self) -> tuple[list[QueuedError], int]:
        """Return ``(errors oldest first, how many were dropped)`` and clear the queue."""
        items, dropped = list(self._q), self.dropped
        self._q.clear()
        self.dropped = 0
        return items, dropped

    def __len__(self) -> int:
        return len(self._q)


def parse_pairs(line: str) -> dict[str, str]:
    """Parse a data line of ``key=value`` pairs (the inverse of :func:`format_pairs`).

    Values stay text (``"none"``, ``"true"``, numbers as written); a word without ``=``
    becomes a key with an empty value. ``ValueError`` on an unclosed quote.
    """
    out: dict[str, str] = {}
    i, n = 0, len(line)
    while i < n:
        if line[i] == " ":
            i += 1
            continue
        eq = line.find("=", i)
        sp = line.find(" ", i)
        if eq < 0 or (0 <= sp < eq):
            end = n if sp < 0 else sp
            out[line[i:end]] = ""
            i = end
            continue
        key = line[i:eq]
        i = eq + 1
        if i < n and line[i] == '"':
            value, i = _unquote(line, i + 1)
        else:
            end = line.find(" ", i)
            end = n if end < 0 else end
            value, i = line[i:end], end
        out[key] = value
    return out


def _unquote(line: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    n = len(line)
    while i < n:
        c = line[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\" and i + 1 < n:
            nxt = line[i + 1]
            width = {"x": 2, "u": 4}.get(nxt)
            if width and i + 2 + width <= n:
                try:
                    out.append(chr(int(line[i + 2 : i + 2 + width], 16)))
                    i += 2 + width
                    continue
                except ValueError:
                    pass
            out.append(nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    raise ValueError("unclosed double quote in a data line")
