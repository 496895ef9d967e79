"""Byte stream to command lines: the console's input framing.

A line ends at CR, LF or CRLF; each ending counts once, so a terminal that sends CRLF gets
one reply, not two. Empty lines are ignored. Backspace (0x08) and DEL (0x7F) remove the last
byte typed, Ctrl-C and Ctrl-U throw the half-typed line away, NUL bytes (terminal padding)
are dropped and a tab counts as a space. Any other byte outside printable ASCII stays in the
line and makes it a :data:`BAD` line, so garbage from a baud-rate mismatch is answered with
an error instead of being half executed.

Memory is bounded whatever arrives: the framer holds at most ``max_len`` bytes of one line;
a longer line is discarded up to its end and reported once as :data:`TOO_LONG`.
"""

from __future__ import annotations

import re
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
        buf = self._buf
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
                    run = m.group()
                    start = len(buf)
                    buf += run[: self.max_len - start]
                    if self.echo:
                        echo += self._echo_since(start)
                    if len(run) > self.max_len - start:
                        self._overflow = True
                        buf.clear()
                    self._after_cr = False
                    i = m.end()
                    continue
            byte = data[i]
            i += 1
            if byte == _LF and self._after_cr:
                self._after_cr = False
                continue
            self._after_cr = byte == _CR
            if byte in (_CR, _LF):
                if self.echo:
                    echo += b"\r\n"
                    events.append(LineEvent(ECHO, echo.decode("latin-1")))
                    echo.clear()
                event = self._end_line()
                if event is not None:
                    events.append(event)
                continue
            if byte == _NUL:
                continue
            if byte in (_BS, _DEL):
                if buf and not self._overflow:
                    buf.pop()
                    if self.echo:
                        echo += b"\b \b"
                continue
            if byte in (_CTRL_C, _CTRL_U):
                if self.echo and (buf or self._overflow):
                    echo += b"^C\r\n" if byte == _CTRL_C else b"^U\r\n"
                buf.clear()
                self._overflow = False
                continue
            if self._overflow:
                continue
            if len(buf) >= self.max_len:
                self._overflow = True
                buf.clear()
                continue
            if byte == _TAB:
                buf.append(0x20)
                if self.echo:
                    echo += self._echo_since(len(buf) - 1)
                continue
            buf.append(byte)
            if self.echo:
                echo.append(0x3F)  # "?" stands for a byte the terminal cannot show
        if echo:
            events.append(LineEvent(ECHO, echo.decode("latin-1")))
        return events

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
        if not self._buf:
            return None
        raw = bytes(self._buf)
        self._buf.clear()
        if not raw.strip(b" "):
            return None
        self.lines += 1
        for column, byte in enumerate(raw, 1):
            if not 0x20 <= byte <= 0x7E:
                return LineEvent(BAD, f"byte 0x{byte:02X} at column {column}")
        return LineEvent(LINE, raw.decode("ascii").strip(" "))

    def __repr__(self) -> str:
        return (
            f"<LineFramer max_len={self.max_len} echo={self.echo} pending={len(self._buf)} "
            f"lines={self.lines} too_long={self.too_long}>"
        )
