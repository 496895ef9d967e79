"""Serve the console on one serial port from the box's own loop.

A loop task calls :meth:`ConsoleServer.poll` every ~20 ms. Each poll does a bounded amount of
work with non-blocking reads and writes: it never waits for the port, never raises into the
loop, and never takes more than a few milliseconds, so the sound is never disturbed.

Input and output are decoupled. Every poll drains the port's input into a bounded backlog
(``in_max`` bytes, 64 KiB) even while the output cannot be written, and lines are taken from
the backlog only while the output queue has room. Stopping to read while the output is
blocked deadlocks against a relay that forwards both directions in one thread with blocking
writes (socat between two ptys, a USB bridge): the relay blocks writing the client's next
bytes to the box and so never carries the box's replies away, and the box never reads
because its replies cannot leave. With the backlog, any burst of up to ``in_max`` bytes is
answered, every line once and in order, whatever the client's read pattern; past it the
port's own buffers slow the sender down and memory stays bounded.

Lines the box sends on its own (``!HR ...``, ``!EVENT ...``) wait in a bounded queue and are
written only between replies. When the port fails (a USB adapter unplugged) the service
login ends, and the port is reopened once it is back.
"""

from __future__ import annotations

import contextlib
import logging
import select
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from device import PRODUCT, __version__
from device.console.auth import PinAuth
from device.console.commands import Console, code_for, message_for
from device.console.deferred_runner import DeferredRunner, PendingReply
from device.console.lines import BAD, ECHO, LINE, MAX_LINE, TOO_LONG, LineEvent, LineFramer
from device.console.protocol import EOL, PROTOCOL_VERSION, Code, Reply, parse_request

log = logging.getLogger(__name__)


class ConsoleServer:
    """The technician console on one serial port, polled by the box's loop.

    :param open_port: returns an open pyserial-like port (``read``, ``write``, ``close``;
        non-blocking, timeout 0); called again to reopen after the port failed.
    :param box: the box the commands act on (its public methods only).
    :param auth: the service login, or ``None`` when the box has no state directory.
    :param clock: monotonic seconds (reopen pacing, erase tokens).
    :param period_s: poll period the loop should keep, seconds (:meth:`poll` returns the
        next deadline).
    :param reopen_s: pause between attempts to reopen a failed port, seconds.
    :param out_max: output queue size in bytes above which no new line is answered.
    :param in_max: unanswered input kept, in bytes (read from the port even while the
        output is blocked; the port is not read while the backlog is full).
    :param async_max: ``!`` lines kept while a reply is being written (older ones dropped).
    :param budget_s: wall time after which a poll stops taking new lines, seconds.
    :param serial: device serial for ``ID?`` (read from the machine when ``None``).
    """

    def __init__(
        self,
        open_port: Callable[[], Any],
        box: Any,
        auth: PinAuth | None,
        clock: Callable[[], float] = time.monotonic,
        *,
        period_s: float = 0.02,
        reopen_s: float = 1.0,
        out_max: int = 8192,
        in_max: int = 65536,
        async_max: int = 64,
        read_chunk: int = 512,
        lines_per_poll: int = 32,
        budget_s: float = 0.004,
        serial: str | None = None,
    ) -> None:
        self.open_port = open_port
        self.box = box
        self.clock = clock
        self.period_s = period_s
        self.reopen_s = reopen_s
        self.out_max = out_max
        self.in_max = in_max
        self.read_chunk = read_chunk
        self.lines_per_poll = lines_per_poll
        self.budget_s = budget_s
        self.console = Console(box, auth, clock=clock, serial=serial)
        # The framer always makes echo events; they are written only while ECHO ON, decided
        # in arrival order so an ECHO ON line affects exactly the lines after it.
        self.framer = LineFramer(MAX_LINE, echo=True)
        self._port: Any = None
        self._next_open = 0.0
        self._open_error: str | None = None
        self._out = bytearray()
        self._in = bytearray()
        self._events: deque[LineEvent] = deque()
        self._pending: PendingReply | None = None
        self._async: deque[str] = deque(maxlen=async_max)
        self._deferred = DeferredRunner()
        self._closed = False
        #: Counters shown in the log and by tests.
        self.opens = 0
        self.port_failures = 0
        self.faults = 0
        self.lines_in = 0
        self.replies = 0
        self.async_dropped = 0
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def is_open(self) -> bool:
        """Whether the port is open now."""
        return self._port is not None

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting to be written (bounded by ``out_max`` plus one reply line)."""
        return len(self._out)

    @property
    def busy(self) -> bool:
        """Whether input, output or a reply is still waiting in the server."""
        return bool(self._in or self._events or self._out or self._pending is not None)

    @property
    def backlog_bytes(self) -> int:
        """Bytes read from the port and not yet framed into lines (at most ``in_max``)."""
        return len(self._in)

    # -- the loop's entry points ---------------------------------------------------------

    def poll(self, now: float) -> float:
        """Do one bounded round of console work at loop time ``now``; never raises.

        Returns the next deadline, ``now + period_s``.
        """
        if self._closed:
            return now + self.period_s
        try:
            self._poll(now)
        except OSError as exc:
            self._drop_port(str(exc) or type(exc).__name__)
        except Exception:
            self.faults += 1
            if self.faults <= 5:
                log.exception("console fault (the box plays on)")
        return now + self.period_s

    def emit(self, line: str) -> None:
        """Queue an unsolicited ``!`` line (written between replies; dropped if no port)."""
        if self._port is None or self._closed:
            return
        text = _printable(line)
        if not text.startswith("!"):
            text = "!" + text
        if len(self._async) == self._async.maxlen:
            self.async_dropped += 1
        self._async.append(text)

    def close(self) -> None:
        """Close the port and end any service login. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._release_port()
        self.console.reset()
        self._deferred.shutdown()

    def __enter__(self) -> ConsoleServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self._port is not None else "closed"
        return (
            f"<ConsoleServer port={state} lines_in={self.lines_in} replies={self.replies} "
            f"queued={len(self._out)}>"
        )

    # -- one poll --------------------------------------------------------------------------

    def _poll(self, now: float) -> None:
        """One poll: open the port when due, then read, answer lines within the budget, and
        write."""
        if not self._ensure_open():
            return
        self._flush()
        self._fill()
        self._serve_lines(now)
        for line in self.console.tick(now):
            self.emit(line)
        if self._pending is None:
            self._queue_async()
        self._flush()
        # Read again after writing: what the peer sent meanwhile must not wait for our output.
        self._fill()

    def _ensure_open(self) -> bool:
        """Whether the port is open, opening it when the retry time has come."""
        if self._port is None:
            if self.clock() < self._next_open:
                return False
            self._open()
        return self._port is not None

    def _serve_lines(self, now: float) -> None:
        """Answer framed lines until a reply is pending, the output is full, or this poll's
        line count or CPU budget is spent."""
        started = time.perf_counter()
        handled = 0
        while True:
            self._advance_reply(now)
            if self._pending is not None or len(self._out) >= self.out_max:
                break
            self._queue_async()
            if handled >= self.lines_per_poll or time.perf_counter() - started > self.budget_s:
                break
            if not self._events:
                if not self._frame():
                    break
                continue
            handled += self._handle(self._events.popleft(), now)

    def _fill(self) -> None:
        """Move the port's pending input into the backlog, up to ``in_max`` bytes."""
        while len(self._in) < self.in_max:
            data = self._port.read(min(self.read_chunk * 8, self.in_max - len(self._in)))
            if not data:
                return
            self.bytes_in += len(data)
            self._in += data

    def _frame(self) -> bool:
        """Frame the next chunk of the backlog into line events; False when it is empty."""
        if not self._in:
            self._fill()
            if not self._in:
                return False
        chunk = bytes(self._in[: self.read_chunk])
        del self._in[: self.read_chunk]
        self._events.extend(self.framer.feed(chunk))
        return True

    def _handle(self, event: LineEvent, now: float) -> int:
        if event.kind == ECHO:
            if self.console.echo:
                self._out += event.text.encode("latin-1")
            return 0
        self.lines_in += 1
        if event.kind == LINE:
            request = parse_request(event.text)
            reply = self.console.execute(request, now)
            self._pending = PendingReply(reply, request.tag)
            if reply.deferred is not None:
                self._deferred.start(self._pending, reply.deferred)
        elif event.kind == TOO_LONG:
            message = f"line too long (at most {self.framer.max_len} characters)"
            self._pending = PendingReply(Reply.error(Code.LINE_TOO_LONG, message), None)
        elif event.kind == BAD:
            message = f"unknown command: {event.text} (only printable ASCII is understood)"
            self._pending = PendingReply(Reply.error(Code.UNKNOWN_COMMAND, message), None)
        return 1

    def _advance_reply(self, now: float) -> None:
        p = self._pending
        if p is None or not self._deferred.settle(p, now):
            return
        try:
            while len(self._out) < self.out_max:
                self._line(next(p.lines))
        except StopIteration:
            self._finish(p.code, p.message, p.tag, now)
        except Exception as exc:
            self._finish(code_for(exc), message_for(exc), p.tag, now)

    def _finish(self, code: int, message: str, tag: str | None, now: float) -> None:
        self._line(self.console.final(code, message, tag, now))
        self._pending = None
        self.replies += 1

    def _line(self, text: str) -> None:
        self._out += _printable(text).encode("ascii") + EOL.encode("ascii")

    def _queue_async(self) -> None:
        while self._async and len(self._out) < self.out_max:
            self._line(self._async.popleft())

    def _flush(self) -> None:
        port = self._port
        while self._out:
            if not _writable(port):
                return
            chunk = bytes(self._out[:1024])
            n = port.write(chunk)
            n = len(chunk) if n is None else int(n)
            if n <= 0:
                return
            del self._out[:n]
            self.bytes_out += n

    # -- the port ---------------------------------------------------------------------------

    def _open(self) -> None:
        self._next_open = self.clock() + self.reopen_s
        try:
            port = self.open_port()
        except Exception as exc:
            text = str(exc)
            if text != self._open_error:
                log.warning(
                    "console port unavailable: %s; retrying every %g s quietly", text, self.reopen_s
                )
            self._open_error = text
            return
        self._port = port
        self._open_error = None
        self.opens += 1
        self.framer.reset()
        log.info("console port open")
        self.emit(f"!READY product={PRODUCT} version={__version__} protocol={PROTOCOL_VERSION}")

    def _drop_port(self, reason: str) -> None:
        self.port_failures += 1
        log.warning("console port lost: %s (the box plays on; reopening)", reason)
        self._release_port()
        self.console.reset()
        self._next_open = self.clock() + self.reopen_s

    def _release_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()
        self._out.clear()
        self._in.clear()
        self._events.clear()
        self._async.clear()
        self.framer.reset()
        if self._pending is not None:
            self._pending.cancel()
        self._pending = None


def _writable(port: Any) -> bool:
    # pyserial's non-blocking write spins on EAGAIN while the port is full, so ask first.
    try:
        fd = port.fileno()
    except (AttributeError, OSError, ValueError):
        return True
    _, ready, _ = select.select([], [fd], [], 0)
    return bool(ready)


def _printable(text: str) -> str:
    return "".join(c if " " <= c <= "~" else ("?" if c not in "\r\n" else " ") for c in text)
