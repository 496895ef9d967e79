"""The console's command set, acting on the box only through its public methods.

:class:`Console` is the interpreter of one console connection: it turns a parsed
:class:`~device.console.protocol.Request` into a :class:`~device.console.protocol.Reply`
and keeps the connection's state (echo, HR stream, the error queue, an erase token).
Exceptions from the box become error codes: ``ValueError``/``ConfigError`` 2,
``StateError`` 4, ``AuthError`` 5, ``HardwareError`` 6, ``StorageError`` 7.

The commands live by area: :mod:`~device.console.session_commands` (session and sound),
:mod:`~device.console.config_commands`, :mod:`~device.console.data_commands` (records,
self-test, erasure) and :mod:`~device.console.service_commands` (login, restart); this
module holds the connection's commands and :data:`COMMANDS`, the table ``HELP`` lists.
A command that touches the disk answers with a deferred reply: the work runs on the
console's worker thread, the answer is formatted back on the loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from device import PRODUCT, __version__
from device.console import config_commands as cfg_cmds
from device.console import data_commands as data
from device.console import music_commands as music
from device.console import service_commands as svc
from device.console import session_commands as session
from device.console.arguments import expect_args, on_off
from device.console.auth import PinAuth
from device.console.data_commands import ERASE_TOKEN_S, LOG_MAX, csv_lines
from device.console.protocol import (
    PROTOCOL_VERSION,
    Code,
    ErrorQueue,
    Reply,
    Request,
    flatten,
    format_final,
    format_pairs,
)
from device.exc import AuthError, BedsideError, HardwareError, StateError, StorageError

if TYPE_CHECKING:
    from device.box.api import BoxApi

__all__ = [
    "COMMANDS",
    "ERASE_TOKEN_S",
    "HR_PERIOD_S",
    "LOG_MAX",
    "Command",
    "Console",
    "code_for",
    "csv_lines",
    "message_for",
]

log = logging.getLogger(__name__)

#: Period of ``!HR`` lines while ``STREAM HR ON``, seconds of loop time.
HR_PERIOD_S = 1.0

Handler = Callable[["Console", list[str], float], Reply]


@dataclass(frozen=True, slots=True)
class Command:
    """One command of the set: its words, argument synopsis, meaning and handler."""

    words: tuple[str, ...]
    args: str
    summary: str
    handler: Handler
    #: Needs a service login (``AUTH``).
    service: bool = False

    @property
    def name(self) -> str:
        """The command's words joined, e.g. ``VOL CAP SET``."""
        return " ".join(self.words)


def code_for(exc: BaseException) -> int:
    """The protocol error code for an exception raised while answering a command."""
    if isinstance(exc, AuthError):
        return Code.PIN_REQUIRED
    if isinstance(exc, StateError):
        return Code.NOT_ALLOWED_NOW
    if isinstance(exc, HardwareError):
        return Code.HARDWARE_FAULT
    if isinstance(exc, BlockingIOError):
        return Code.BUSY
    if isinstance(exc, StorageError | OSError):
        return Code.STORAGE_FAULT
    if isinstance(exc, ValueError | LookupError):
        return Code.BAD_ARGUMENT
    if isinstance(exc, BedsideError):
        return Code.NOT_ALLOWED_NOW
    return Code.HARDWARE_FAULT


def message_for(exc: BaseException) -> str:
    """The text of an ``ERR`` line for ``exc`` (internal faults say only their kind)."""
    if isinstance(exc, BedsideError | ValueError | OSError | LookupError):
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        return text or type(exc).__name__
    return f"internal fault ({type(exc).__name__}); see the box's log"


class Console:
    """The command interpreter of one console connection.

    :param box: the box (:class:`device.box.app.Box`, or the tests' fake), through its
        :class:`~device.box.api.BoxApi`.
    :param auth: the service login; ``None`` when the box has no state directory (service
        commands then answer ``ERR 7``).
    :param clock: monotonic seconds, for the erase token's lifetime.
    :param serial: device serial reported by ``ID?`` (read from the machine when ``None``).
    """

    def __init__(
        self,
        box: BoxApi,
        auth: PinAuth | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        serial: str | None = None,
    ) -> None:
        self.box = box
        self.auth = auth
        self.clock = clock
        if serial is None:
            from device.console.identity import read_identity

            serial = read_identity().serial
        self.serial = serial
        self.errors = ErrorQueue()
        #: Echo typed characters (``ECHO ON``).
        self.echo = False
        #: Send a ``!HR`` line each second (``STREAM HR ON``).
        self.stream_hr = False
        #: Loop time of the next ``!HR`` line.
        self.next_hr = 0.0
        #: The ``ERASE USERDATA`` token handed out and when it expires (``clock`` s).
        self.erase_token: tuple[str, float] | None = None
        #: A service login was active at the last command (to report an idle logout).
        self.service_login = False
        #: Which arguments of the command being answered were typed in double quotes.
        self.quoted: set[int] = set()
        self.commands_total = 0

    # -- the connection ------------------------------------------------------------------

    def reset(self) -> None:
        """The port closed: end the login, echo and stream off, forget the erase token."""
        if self.auth is not None:
            self.auth.logout("port closed")
        self.service_login = False
        self.echo = False
        self.stream_hr = False
        self.erase_token = None

    def final(self, code: int, message: str, tag: str | None, now: float) -> str:
        """Format a final line; errors also go to the ``ERR?`` queue."""
        if code:
            self.errors.push(code, message, now)
        return format_final(code, message, tag)

    def tick(self, now: float) -> list[str]:
        """Async ``!`` lines due at loop time ``now``: the HR stream, an idle logout."""
        out: list[str] = []
        if self.service_login and self.auth is not None and not self.auth.logged_in:
            self.service_login = False
            out.append("!EVENT logout reason=idle")
        if not self.stream_hr or now < self.next_hr:
            return out
        self.next_hr = max(self.next_hr + HR_PERIOD_S, now)
        try:
            st = self.box.status()
        except Exception as exc:
            return [*out, f"!HR t={now:.1f} error={type(exc).__name__}"]
        pairs = {"t": round(now, 1), "bpm": st.get("hr"), "q": st.get("quality")}
        pairs["contact"] = st.get("contact")
        return [*out, "!HR " + format_pairs(pairs)]

    # -- dispatch ------------------------------------------------------------------------

    def lookup(self, request: Request) -> tuple[Command | None, list[str]]:
        """The command a request names and its arguments (``None`` when unknown)."""
        words = [w.upper() for w in request.words]
        for cmd in _BY_LENGTH:
            n = len(cmd.words)
            if tuple(words[:n]) == cmd.words:
                return cmd, list(request.words[n:])
        return None, list(request.words)

    def execute(self, request: Request, now: float) -> Reply:
        """Answer one request (never raises)."""
        reply = self._execute(request, now)
        if self.auth is not None:
            self.service_login = self.auth.logged_in
        return reply

    def _execute(self, request: Request, now: float) -> Reply:
        self.commands_total += 1
        if request.error:
            return Reply.error(Code.BAD_ARGUMENT, request.error)
        # A mistyped AUTH or PIN line may hold a PIN: quote none of it back.
        secret = request.upper(0).startswith(("AUTH", "PIN"))
        if not request.words:
            return _no_command(request)
        if self.auth is not None:
            self.auth.touch()
        cmd, args = self.lookup(request)
        if cmd is None:
            return Reply.error(Code.UNKNOWN_COMMAND, self._unknown(request, secret))
        log.debug("console command %s", cmd.name)
        n = len(cmd.words)
        self.quoted = {i - n for i in request.quoted if i >= n}
        return self._run(cmd, args, now)

    def _run(self, cmd: Command, args: list[str], now: float) -> Reply:
        """Run ``cmd``'s handler (after the service login check when it needs one); an
        exception becomes its error reply (logged when it is not a known hardware fault)."""
        try:
            if cmd.service:
                self.require_service(cmd.name)
            return cmd.handler(self, args, now)
        except Exception as exc:
            if code_for(exc) == Code.HARDWARE_FAULT and not isinstance(exc, HardwareError):
                log.exception("console command %s failed", cmd.name)
            return Reply.error(code_for(exc), message_for(exc))

    def _unknown(self, request: Request, secret: bool) -> str:
        """The message for an unknown command: its family's commands when the first word
        names one (nothing after the first word of a line that may hold a PIN)."""
        first = request.words[0].upper()
        if first.startswith("AT") and not first.startswith("AUTH"):
            return "unknown command"
        family = [c.name for c in COMMANDS if c.words[0].rstrip("?") == first.rstrip("?")]
        shown = " ".join(request.words[: 1 if secret else 3])
        if len(shown) > 40:
            shown = shown[:37] + "..."
        if family:
            return f"unknown command {shown!r}; {first.rstrip('?')} has: {', '.join(family)}"
        return f"unknown command {shown!r}; HELP lists the commands"

    def require_service(self, what: str) -> None:
        """Raise :class:`~device.exc.AuthError` unless a service login is active."""
        if self.auth is None:
            raise StorageError("the service PIN is unavailable: the box has no state directory")
        self.auth.require(what)

    # -- the connection's own commands ------------------------------------------------

    def _help(self, args: list[str], now: float) -> Reply:
        expect_args(args, 0, 3, "HELP [COMMAND]")
        chosen = list(COMMANDS)
        if args:
            # "HELP VOL" lists VOL? too: a query's "?" does not count in the match.
            want = tuple(a.upper().rstrip("?") for a in args)
            chosen = [
                c for c in COMMANDS if tuple(w.rstrip("?") for w in c.words[: len(want)]) == want
            ]
            if not chosen:
                raise ValueError(f"no command {' '.join(args)!r}; HELP lists them all")
        rows = []
        for c in chosen:
            synopsis = f"{c.name} {c.args}".strip()
            rows.append(
                {"command": synopsis, "auth": "service" if c.service else "none", "help": c.summary}
            )
        return Reply.data(*rows)

    def _id(self, args: list[str], now: float) -> Reply:
        expect_args(args, 0, 0, "ID?")
        return Reply.data(
            {
                "product": PRODUCT,
                "version": __version__,
                "protocol": PROTOCOL_VERSION,
                "serial": self.serial,
            }
        )

    def _status(self, args: list[str], now: float) -> Reply:
        expect_args(args, 0, 0, "STATUS?")
        return Reply.data(flatten(self.box.status()))

    def _ping(self, args: list[str], now: float) -> Reply:
        return Reply()

    def _echo(self, args: list[str], now: float) -> Reply:
        self.echo = on_off(args, "ECHO ON|OFF")
        return Reply()

    def _err(self, args: list[str], now: float) -> Reply:
        expect_args(args, 0, 0, "ERR?")
        items, dropped = self.errors.drain()
        rows: list[dict[str, object]] = [
            {"code": e.code, "msg": e.message, "t": round(e.t, 3)} for e in items
        ]
        if dropped:
            rows.append({"dropped": dropped})
        if not rows:
            rows.append({"code": 0, "msg": "no error"})
        return Reply.data(*rows)

    def __repr__(self) -> str:
        return f"<Console echo={self.echo} stream_hr={self.stream_hr} errors={len(self.errors)}>"


def _c(words: str, args: str, summary: str, handler: Handler, service: bool = False) -> Command:
    return Command(tuple(words.split()), args, summary, handler, service)


C = Console
#: Every command, in the order ``HELP`` lists them.
COMMANDS: tuple[Command, ...] = (
    _c("HELP", "[COMMAND]", "List the commands, or the ones starting with COMMAND.", C._help),
    _c("ID?", "", "Product, version, protocol version and device serial.", C._id),
    _c("STATUS?", "", "State, program, time, heart, pacer, sound and health figures.", C._status),
    _c("PING", "", "Answer OK (to resynchronise a script).", C._ping),
    _c("ECHO", "ON|OFF", "Echo what is typed, for terminals without local echo.", C._echo),
    _c(
        "SESSION START",
        "[PROGRAM] [MINUTES]",
        "Start a session (default program).",
        session.session_start,
    ),
    _c("SESSION STOP", "", "Stop the session with a short fade.", session.session_stop),
    _c("PROG LIST?", "", "The programs available.", session.prog_list),
    _c("PROG?", "", "The program playing, its section and time left.", session.prog),
    _c("VOL?", "", "Listener volume (dB), cap (dBFS) and present level.", session.vol),
    _c("VOL SET", "<dB>", "Set the listener volume (ramped; not above the cap).", session.vol_set),
    _c("VOL CAP SET", "<dB>", "Set the hard output cap in dBFS.", session.vol_cap_set, True),
    _c("SENSOR?", "", "Pulse sensor: part, rate, LEDs, levels, contact, faults.", session.sensor),
    _c("STREAM HR", "ON|OFF", "Send a !HR line each second.", session.stream_hr),
    _c("CFG?", "[KEY]", "Show the running configuration, or one key.", cfg_cmds.cfg),
    _c(
        "CFG SET",
        "KEY VALUE",
        "Set a key, validated as the config file is (service keys need AUTH).",
        cfg_cmds.cfg_set,
    ),
    _c("CFG SAVE", "", "Save the running configuration (atomic).", cfg_cmds.cfg_save, True),
    _c(
        "CFG DEFAULTS",
        "",
        "Return every key to its default (not saved).",
        cfg_cmds.cfg_defaults,
        True,
    ),
    _c("LOG?", "[N]", "The last N events (default 20).", data.log_events),
    _c("SESSIONS?", "", "Sessions recorded.", data.sessions),
    _c("PROFILE?", "", "The listener profile's resonance rate and confidence.", data.profile),
    _c(
        "EXPORT",
        "<SESSION> [RR]",
        "CSV rows of a session's 1 Hz record; with RR its beat intervals (ms, one a line).",
        data.export,
    ),
    _c("SELFTEST", "", "Check sensor, audio, storage and clock; a line per check.", data.selftest),
    _c("RATE", "LIKE|SKIP", "Rate what is playing (teaches the personalisation).", session.rate),
    _c("MUSIC?", "", "The track playing: name, number, tempo, position.", music.music),
    _c("MUSIC LIST", "", "The listener's playable tracks, numbered from 1.", music.music_list),
    _c("MUSIC PLAY", "<N>", "Crossfade to track N of MUSIC LIST.", music.music_play),
    _c("MUSIC SCAN", "", "Index the music folder again, in the background.", music.music_scan),
    _c("AUTH", "<PIN>", "Log in for service commands (ends after 10 min idle).", svc.auth),
    _c("LOGOUT", "", "End the service login.", svc.logout),
    _c("PIN SET", "<NEW>", "Change the service PIN (6-12 digits).", svc.pin_set, True),
    _c(
        "ERASE USERDATA",
        "[TOKEN]",
        "Erase sessions, ratings and preferences (asks for a one-time token first).",
        data.erase,
        True,
    ),
    _c("RESTART", "", "Restart the service cleanly (fades out).", svc.restart, True),
    _c("ERR?", "", "The last errors, oldest first (clears them).", C._err),
)
_BY_LENGTH = sorted(COMMANDS, key=lambda c: -len(c.words))


def _no_command(request: Request) -> Reply:
    """The reply to a line without a command: ``OK`` for an empty line (as ``PING``: Enter
    shows the box is there), an error for a tag alone."""
    if request.tag is None:
        return Reply()
    return Reply.error(Code.UNKNOWN_COMMAND, "no command before the tag")
