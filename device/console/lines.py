"""The console's lines: input framing (bytes to command lines) and output formatting.

Output: every value the console prints goes through :func:`format_value` (``key=value``
data lines, ``!HR`` lines) or :func:`format_cell` (``EXPORT`` CSV), the one place that
decides how a value looks: a plain number (numpy scalars included: ``66.506``, never
``np.float64(66.506)``), a word (``none``, ``true``, ``false``, ``nan``, ``inf``) or a quoted
string.

Input: a line ends at CR, LF or CRLF; each ending counts once, so a terminal that sends
CRLF gets one reply, not two. An empty line is a line too (the console answers it ``OK``).
Backspace (0x08) and DEL (0x7F) remove the last byte typed, Ctrl-C and Ctrl-U throw the
half-typed line away, NUL bytes (terminal padding) are dropped and a tab counts as a space.
Any other byte outside printable ASCII stays in the line and makes it a :data:`BAD` line,
so garbage from a baud-rate mismatch is answered with an error instead of being half
executed.

Memory is bounded whatever arrives: the framer holds at most ``max_len`` bytes of one line;
a longer line is discarded up to its end and reported once as :data:`TOO_LONG`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

#: A complete, printable line (``text`` holds it, without its ending).
LINE = "line"
#: A line longer than the limit, discarded up to its end.
TOO_LONG = "too_long"
#: A line holding a byte outside printable ASCII (``text`` describes the first one).
BAD = "bad"
#: Bytes to echo back to the terminal (only produced while echo is on).
ECHO = "echo"

#: Longest line accepted, in characters, not counting its ending.
MAX_LINE = 120

_CR, _LF, _BS, _DEL, _NUL, _TAB = 0x0D, 0x0A, 0x08, 0x7F, 0x00, 0x09
_CTRL_C, _CTRL_U = 0x03, 0x15
#: Lines whose remainder is a secret: echo shows ``*`` instead of the characters typed.
_SECRET_PREFIXES = (b"AUTH ", b"PIN SET ")
_SECRET_HEAD = max(len(p) for p in _SECRET_PREFIXES)
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]+")
_OVERFLOW_STOP = re.compile(rb"[\r\n\x03\x15]")


@dataclass(frozen=True, slots=True)
class LineEvent:
    """One thing the framer found in the byte stream, in arrival order."""

    kind: str
    #: The line for :data:`LINE`; a description of the first bad byte for :data:`BAD`;
    #: the echo bytes (latin-1 text) for :data:`ECHO`; empty for :data:`TOO_LONG`.
    text: str = ""


class LineFramer:
    """Turn a byte stream into :class:`LineEvent` objects, holding at most ``max_len`` bytes.

    :param max_len: longest line accepted, in characters (bytes).
    :param echo: echo typed characters and edits back (for terminals without local echo).
    """

    def __init__(self, max_len: int = MAX_LINE, *, echo: bool = False) -> None:
        if max_len < 1:
            raise ValueError(f"max_len must be at least 1, not {max_len}")
        self.max_len = max_len
        self.echo = echo
        self._buf = bytearray()
        self._overflow = False
        self._after_cr = False
        self._ending = 0
        #: Lines discarded for length since the framer was made.
        self.too_long = 0
        #: Complete lines (good or bad) since the framer was made.
        self.lines = 0

    @property
    def pending(self) -> int:
        """Bytes of the half-typed line held now (at most ``max_len``)."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget any half-typed line (for example when the port closed mid-line)."""
        self._buf.clear()
        self._overflow = False
        self._after_cr = False

    def feed(self, data: bytes) -> list[LineEvent]:
        """Consume ``data``; return the events it completes, in order."""
        events: list[LineEvent] = []
        echo = bytearray()
        i, n = 0, len(data)
        while i < n:
            if self._overflow:
                # Skip the rest of an overlong line in one step: only its end matters.
                m = _OVERFLOW_STOP.search(data, i)
                if m is None:
                    break
                i = m.start()
            else:
                m = _PRINTABLE_RUN.match(data, i)
                if m is not None:
                    self._take_run(m.group(), echo)
                    i = m.end()
                    continue
            self._take_byte(data[i], events, echo)
            i += 1
        if echo:
            events.append(LineEvent(ECHO, echo.decode("latin-1")))
        return events

    def _take_run(self, run: bytes, echo: bytearray) -> None:
        """Append a run of printable bytes, keeping at most ``max_len`` (more: overflow)."""
        buf = self._buf
        start = len(buf)
        buf += run[: self.max_len - start]
        if self.echo:
            echo += self._echo_since(start)
        if len(run) > self.max_len - start:
            self._overflow = True
            buf.clear()
        self._after_cr = False

    def _take_byte(self, byte: int, events: list[LineEvent], echo: bytearray) -> None:
        """Handle one byte outside a printable run: a line ending, an edit or a stray byte."""
        if self._after_cr and byte in (_CR, _LF) and byte != self._ending:
            # the second half of a CRLF (or LFCR) pair: the same ending, counted once
            self._after_cr = False
            return
        self._after_cr = byte in (_CR, _LF)
        self._ending = byte
        if byte in (_CR, _LF):
            self._take_ending(events, echo)
        elif byte in (_BS, _DEL):
            self._rub_out(echo)
        elif byte in (_CTRL_C, _CTRL_U):
            self._cancel(byte, echo)
        elif byte != _NUL and not self._overflow:
            self._take_other(byte, echo)

    def _take_ending(self, events: list[LineEvent], echo: bytearray) -> None:
        """A CR or LF: flush the echo so far, then emit the line it ends."""
        if self.echo:
            echo += b"\r\n"
            events.append(LineEvent(ECHO, echo.decode("latin-1")))
            echo.clear()
        event = self._end_line()
        if event is not None:
            events.append(event)

    def _rub_out(self, echo: bytearray) -> None:
        """Backspace or DEL: remove the last byte typed (nothing while overflowing)."""
        if self._buf and not self._overflow:
            self._buf.pop()
            if self.echo:
                echo += b"\b \b"

    def _cancel(self, byte: int, echo: bytearray) -> None:
        """Ctrl-C or Ctrl-U: throw the half-typed (or overlong) line away."""
        if self.echo and (self._buf or self._overflow):
            echo += b"^C\r\n" if byte == _CTRL_C else b"^U\r\n"
        self._buf.clear()
        self._overflow = False

    def _take_other(self, byte: int, echo: bytearray) -> None:
        """A tab (kept as a space) or a non-printable byte (kept; it makes the line BAD)."""
        buf = self._buf
        if len(buf) >= self.max_len:
            self._overflow = True
            buf.clear()
            return
        if byte == _TAB:
            buf.append(0x20)
            if self.echo:
                echo += self._echo_since(len(buf) - 1)
            return
        buf.append(byte)
        if self.echo:
            echo.append(0x3F)  # "?" stands for a byte the terminal cannot show

    def _secret_at(self, k: int) -> bool:
        head = bytes(self._buf[: min(k, _SECRET_HEAD)]).upper()
        return head.startswith(_SECRET_PREFIXES)

    def _echo_since(self, start: int) -> bytes:
        # Characters after "AUTH " or "PIN SET " are a PIN: echo shows "*" for them.
        buf = self._buf
        out = bytearray()
        for k in range(start, min(len(buf), _SECRET_HEAD)):
            out.append(0x2A if self._secret_at(k) else buf[k])
        if len(buf) > _SECRET_HEAD:
            rest = buf[max(start, _SECRET_HEAD) :]
            out += b"*" * len(rest) if self._secret_at(_SECRET_HEAD) else rest
        return bytes(out)

    def _end_line(self) -> LineEvent | None:
        if self._overflow:
            self._overflow = False
            self.too_long += 1
            self.lines += 1
            return LineEvent(TOO_LONG)
        raw = bytes(self._buf)
        self._buf.clear()
        self.lines += 1
        if not raw.strip(b" "):
            return LineEvent(LINE, "")  # an empty line is a line: it is answered (OK)
        for column, byte in enumerate(raw, 1):
            if not 0x20 <= byte <= 0x7E:
                return LineEvent(BAD, f"byte 0x{byte:02X} at column {column}")
        return LineEvent(LINE, raw.decode("ascii").strip(" "))

    def __repr__(self) -> str:
        return (
            f"<LineFramer max_len={self.max_len} echo={self.echo} pending={len(self._buf)} "
            f"lines={self.lines} too_long={self.too_long}>"
        )


# -- output formatting ----------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_.:/+\-?@%,]+")
#: Decimals kept of a float value.
DECIMALS = 3


def plain(value: object) -> object:
    """``value`` as a built-in Python value: numpy scalars and 0-d arrays become
    bool/int/float/str, numpy arrays lists; anything else is returned as it is."""
    if type(value).__module__ == "numpy":
        import numpy as np  # already imported by whoever made the value

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.item() if value.ndim == 0 else value.tolist()
    return value


def format_number(value: bool | int | float) -> str:
    """A number as the console prints it (``true``/``false``, ``nan``, ``inf``, ``-inf``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    x = float(value)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(round(x, DECIMALS))


def format_value(value: object) -> str:
    """Format one value for a ``key=value`` pair (quoted when it holds spaces or quotes)."""
    value = plain(value)
    if value is None:
        return "none"
    if isinstance(value, bool | int | float):
        return format_number(value)
    if isinstance(value, list | tuple):
        return format_value(",".join(format_value(v) for v in value))
    text = str(value)
    if text and _BARE.fullmatch(text):
        return text
    return quote(text)


def format_cell(value: object) -> str:
    """Format one CSV cell of ``EXPORT`` (empty for ``None``; numbers as :func:`format_number`)."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return format_number(value)
    return str(value)


def quote(text: str) -> str:
    """Double-quote ``text``, escaping quotes, backslashes and anything not printable ASCII."""
    out = ['"']
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif " " <= c <= "~":
            out.append(c)
        elif ord(c) < 0x100:
            out.append(f"\\x{ord(c):02x}")
        else:
            out.append(f"\\u{ord(c):04x}")
    out.append('"')
    return "".join(out)


def format_pairs(pairs: Mapping[str, object] | Iterable[tuple[str, object]]) -> str:
    """Format a data line: ``key=value`` pairs separated by spaces, in the order given."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return " ".join(f"{_safe_key(k)}={format_value(v)}" for k, v in items)


def _safe_key(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", str(key)) or "_"


def flatten(data: Mapping[str, object], prefix: str = "") -> Iterator[tuple[str, object]]:
    """Yield ``(key, value)`` pairs of a nested mapping, nested keys joined with ``.``.

    A list of plain values becomes one comma-separated value; a list holding anything else
    is shown as one text.
    """
    for key, value in data.items():
        name = f"{prefix}{key}"
        value = plain(value)
        if isinstance(value, Mapping):
            yield from flatten(value, name + ".")
        elif isinstance(value, list | tuple):
            items = [plain(v) for v in value]
            if all(isinstance(v, str | int | float) for v in items):
                yield name, ",".join(format_value(v) for v in items)
            else:
                yield name, str(items)
        else:
            yield name, value
