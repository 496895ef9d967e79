"""``bedside ctl``: drive a box's technician console from a script or a terminal.

With commands, each is sent with a tag; ``ctl`` waits for the final line carrying that tag,
prints the data lines (``--json``: as JSON), and stops at the first error: exit status 0
when every command answered ``OK``, 1 on ``ERR`` (the message on stderr), a timeout or a
port that cannot be opened. Commands are the words given, several separated by ``;``, or
read one per line from standard input with ``-``. ``AUTH`` alone takes the PIN from
``$BEDSIDE_PIN`` or asks for it without echo, so it never lands in shell history.

Without commands, ``ctl`` is an interactive console with line editing and history.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from device.cli.ctl_result import Result, to_json

#: Environment variable holding the service PIN for ``AUTH`` without an argument.
PIN_ENV = "BEDSIDE_PIN"
HISTORY_FILE = Path.home() / ".bedside_ctl_history"
PROMPT = "bedside> "


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bedside ctl``."""
    p = subparsers.add_parser(
        "ctl",
        help="send console commands to a box (or open an interactive console)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", required=True, help="serial port or pyserial URL of the box")
    p.add_argument("--baud", type=int, default=115200, help="baud rate (8N1; default 115200)")
    p.add_argument("--json", action="store_true", help="print data lines as JSON")
    p.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for each reply (default 10)"
    )
    p.add_argument(
        "command",
        nargs="*",
        metavar="COMMAND",
        help='command words, e.g. STATUS? or VOL SET -20; separate commands with ";"; '
        '"-" reads commands from stdin',
    )
    p.set_defaults(func=main)


class ConsoleClient:
    """A tagged request/reply client over one serial port (pyserial, imported lazily).

    :param port: device path or pyserial URL.
    :param timeout: seconds to wait for a reply.
    """

    def __init__(self, port: str, *, baud: int = 115200, timeout: float = 10.0) -> None:
        import serial

        self.timeout = timeout
        try:
            self.ser = serial.serial_for_url(port, baudrate=baud, timeout=0.05, write_timeout=5)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ConnectionError(f"cannot open {port}: {exc}") from None
        self._buf = bytearray()
        self._prefix = secrets.token_hex(2)
        self._n = 0
        #: ``!`` lines seen while waiting for replies.
        self.async_lines: list[str] = []
        #: False once a reply did not come (then nothing more is waited for).
        self.answering = True

    def start(self) -> None:
        """End any half line a previous client left, drop stale input, turn echo off.

        A terminal session may have left ``ECHO ON``: the box would then send back every
        command, PINs masked, among the replies.
        """
        self.ser.write(b"\r\n")
        time.sleep(0.05)
        self.ser.reset_input_buffer()
        self.send("ECHO OFF")

    def logout(self) -> None:
        """End the service login, so the box is not left unlocked for the next person."""
        if self.answering:
            with contextlib.suppress(TimeoutError, OSError):
                self.send("LOGOUT")

    def readline(self, deadline: float) -> str | None:
        """The next line received (without its ending), or ``None`` at ``deadline``."""
        while True:
            ends = [i for i in (self._buf.find(b"\r"), self._buf.find(b"\n")) if i >= 0]
            if ends:
                i = min(ends)
                text = bytes(self._buf[:i]).decode("ascii", "replace")
                del self._buf[: i + 1]
                if text:
                    return text
                continue
            if time.monotonic() >= deadline:
                return None
            self._buf += self.ser.read(max(1, self.ser.in_waiting))

    def send(self, command: str) -> Result:
        """Send ``command`` with a fresh tag and wait for its final line.

        :raises TimeoutError: no final line within the timeout.
        """
        words = command.split()
        if words and words[-1].startswith("#"):
            command = " ".join(words[:-1])
        self._n += 1
        tag = f"{self._prefix}{self._n}"[:8]
        self.ser.write(f"{command} #{tag}\r\n".encode("ascii", "replace"))
        result = Result(command)
        deadline = time.monotonic() + self.timeout
        while True:
            line = self.readline(deadline)
            if line is None:
                self.answering = False
                raise TimeoutError(f"no reply to {_shown(command)!r} within {self.timeout:g} s")
            if line.startswith("!"):
                self.async_lines.append(line)
                continue
            if _is_final(line):
                if line.endswith(f" #{tag}"):
                    result.final = line
                    return result
                result.data.clear()
                continue
            if line.endswith(f" #{tag}"):
                continue  # our own line echoed back (ECHO ON; a PIN shows as *)
            result.data.append(line)

    def close(self) -> None:
        """Close the port."""
        with contextlib.suppress(Exception):
            self.ser.close()


def _is_final(line: str) -> bool:
    return line == "OK" or line.startswith(("OK ", "ERR "))


def _shown(command: str) -> str:
    # Never print a PIN back.
    upper = command.upper()
    if upper.startswith("AUTH ") or upper.startswith("PIN SET "):
        return command.split()[0] + " ..."
    return command


def split_commands(words: Iterable[str]) -> list[str]:
    """Join command words; ``;`` (outside double quotes) separates commands."""
    text = " ".join(words)
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    for c in text:
        if c == '"':
            quoted = not quoted
        if c == ";" and not quoted:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    out.append("".join(cur).strip())
    return [c for c in out if c]


def _with_pin(command: str, ask: Callable[[str], str]) -> str:
    if command.strip().upper() != "AUTH":
        return command
    pin = os.environ.get(PIN_ENV) or ask("service PIN: ")
    return f"AUTH {pin.strip()}"


def run_commands(
    client: ConsoleClient, commands: list[str], *, as_json: bool, ask: Callable[[str], str]
) -> int:
    """Run ``commands`` in order; print their data; return the exit status."""
    for command in commands:
        try:
            result = client.send(_with_pin(command, ask))
        except TimeoutError as exc:
            print(f"bedside ctl: {exc}", file=sys.stderr)
            return 1
        if as_json:
            if result.ok or result.data:
                _print(json.dumps(to_json(result), allow_nan=False))
        else:
            for line in result.data:
                _print(line)
        if not result.ok:
            print(f"bedside ctl: {_shown(command)}: {result.error}", file=sys.stderr)
            return 1
    return 0


def _print(text: str) -> None:
    """Print a line of output; once the reader has gone (``ctl ... | head``) the rest of the
    output is dropped quietly and the commands still run to the end (then ``LOGOUT``)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _load_readline(tty: bool) -> Any:
    """The ``readline`` module with the history loaded, when on a terminal that has it."""
    readline: Any = None
    if tty:
        try:
            import readline
        except ImportError:
            readline = None
    if readline is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(HISTORY_FILE)
    return readline


def _read_replies(
    client: ConsoleClient, tty: bool, readline: Any, done: threading.Event, stop: threading.Event
) -> None:
    """The reader thread: print every line the box sends until ``stop``; set ``done`` at each
    final line of a reply (and when the port fails, after which it sets ``stop`` too)."""
    while not stop.is_set():
        try:
            line = client.readline(time.monotonic() + 0.2)
        except Exception as exc:
            print(f"\nbedside ctl: port failed: {exc}", file=sys.stderr)
            stop.set()
            done.set()
            return
        if line is None:
            continue
        if tty and done.is_set():
            # At the prompt: print the async line above it, then redraw what was typed.
            typed = readline.get_line_buffer() if readline is not None else ""
            sys.stdout.write(f"\r\x1b[K{line}\r\n{PROMPT}{typed}")
            sys.stdout.flush()
            continue
        _print(line)
        if _is_final(line):
            done.set()


def _send_typed(
    client: ConsoleClient, command: str, readline: Any, done: threading.Event, timeout: float
) -> None:
    """Send one typed command (its PIN asked for, and kept out of the history) and wait up to
    ``timeout`` seconds for its reply."""
    secret = command.upper().startswith(("AUTH", "PIN SET"))
    if readline is not None and secret and readline.get_current_history_length():
        # Keep PINs out of the history file.
        readline.remove_history_item(readline.get_current_history_length() - 1)
    command = _with_pin(command, _getpass)
    done.clear()
    client.ser.write(command.encode("ascii", "replace") + b"\r\n")
    if not done.wait(timeout):
        print(f"bedside ctl: no reply within {timeout:g} s", file=sys.stderr)
        done.set()


def interactive(client: ConsoleClient, *, timeout: float) -> int:
    """A console for a person: line editing, history, async lines shown as they come."""
    tty = sys.stdin.isatty()
    readline = _load_readline(tty)
    done = threading.Event()  # set while no reply is awaited
    done.set()
    stop = threading.Event()
    thread = threading.Thread(
        target=_read_replies,
        args=(client, tty, readline, done, stop),
        name="ctl-reader",
        daemon=True,
    )
    thread.start()
    print(f"bedside ctl on {client.ser.port}: HELP lists commands, Ctrl-D ends.", file=sys.stderr)
    try:
        while not stop.is_set():
            try:
                line = input(PROMPT if tty else "")
            except EOFError:
                break
            command = line.strip()
            if not command:
                continue
            if command.lower() in ("exit", "quit"):
                break
            _send_typed(client, command, readline, done, timeout)
    except KeyboardInterrupt:
        print(file=sys.stderr)
    finally:
        stop.set()
        thread.join(1.0)
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(HISTORY_FILE)
    return 0


def _getpass(prompt: str) -> str:
    import getpass

    return getpass.getpass(prompt)


def main(args: argparse.Namespace) -> int:
    """Run ``bedside ctl``."""
    words = list(args.command)
    if words == ["-"]:
        commands = [line.strip() for line in sys.stdin if line.strip()]
    else:
        commands = split_commands(words)
    try:
        client = ConsoleClient(args.port, baud=args.baud, timeout=args.timeout)
    except ConnectionError as exc:
        print(f"bedside ctl: {exc}", file=sys.stderr)
        return 1
    try:
        client.start()
        if not words:
            status = interactive(client, timeout=args.timeout)
        else:
            status = run_commands(client, commands, as_json=args.json, ask=_getpass)
        client.logout()  # after the commands, an error or Ctrl-D: never left logged in
        return status
    except TimeoutError as exc:
        print(f"bedside ctl: {exc} (is the box on this port?)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"bedside ctl: port failed: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
