"""The console's command set, acting on the box only through its public methods.

:class:`Console` is the interpreter of one console connection: it turns a parsed
:class:`~device.console.protocol.Request` into a :class:`~device.console.protocol.Reply`
and keeps the connection's state (echo, HR stream, the error queue, an erase token).
Exceptions from the box become error codes: ``ValueError``/``ConfigError`` 2,
``StateError`` 4, ``AuthError`` 5, ``HardwareError`` 6, ``StorageError`` 7.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from device import PRODUCT, __version__
from device.console.auth import PinAuth, check_new_pin
from device.console.protocol import (
    PROTOCOL_VERSION,
    Code,
    Deferred,
    ErrorQueue,
    Reply,
    Request,
    flatten,
    format_cell,
    format_final,
    format_pairs,
)
from device.exc import AuthError, BedsideError, HardwareError, StateError, StorageError

if TYPE_CHECKING:
    from device.box.api import BoxApi

log = logging.getLogger(__name__)

#: Seconds an ``ERASE USERDATA`` token stays valid.
ERASE_TOKEN_S = 60.0
#: Period of ``!HR`` lines while ``STREAM HR ON``, seconds of loop time.
HR_PERIOD_S = 1.0
#: Most events ``LOG?`` returns.
LOG_MAX = 500

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


def _args(args: list[str], lo: int, hi: int, usage: str) -> list[str]:
    if not lo <= len(args) <= hi:
        raise ValueError(f"usage: {usage}")
    return args


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, not {text!r}")
    return value


def _on_off(args: list[str], usage: str) -> bool:
    (word,) = _args(args, 1, 1, usage)
    if word.upper() not in ("ON", "OFF"):
        raise ValueError(f"expected ON or OFF, not {word!r} (usage: {usage})")
    return word.upper() == "ON"


def _field(obj: Any, name: str, default: object = None) -> object:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


class Console:
    """The command interpreter of one console connection.

    :param box: the box (:class:`device.app.Box`, or the tests' fake), through its
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
        self._next_hr = 0.0
        self._erase: tuple[str, float] | None = None
        #: A service login was active at the last command (to report an idle logout).
        self._service = False
        #: Which arguments of the command being answered were typed in double quotes.
        self._quoted: set[int] = set()
        self.commands_total = 0

    # -- the connection ------------------------------------------------------------------

    def reset(self) -> None:
        """The port closed: end the login, echo and stream off, forget the erase token."""
        if self.auth is not None:
            self.auth.logout("port closed")
        self._service = False
        self.echo = False
        self.stream_hr = False
        self._erase = None

    def final(self, code: int, message: str, tag: str | None, now: float) -> str:
        """Format a final line; errors also go to the ``ERR?`` queue."""
        if code:
            self.errors.push(code, message, now)
        return format_final(code, message, tag)

    def tick(self, now: float) -> list[str]:
        """Async ``!`` lines due at loop time ``now``: the HR stream, an idle logout."""
        out: list[str] = []
        if self._service and self.auth is not None and not self.auth.logged_in:
            self._service = False
            out.append("!EVENT logout reason=idle")
        if not self.stream_hr or now < self._next_hr:
            return out
        self._next_hr = max(self._next_hr + HR_PERIOD_S, now)
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
            self._service = self.auth.logged_in
        return reply

    def _execute(self, request: Request, now: float) -> Reply:
        self.commands_total += 1
        if request.error:
            return Reply.error(Code.BAD_ARGUMENT, request.error)
        # A mistyped AUTH or PIN line may hold a PIN: quote none of it back.
        secret = request.upper(0).startswith(("AUTH", "PIN"))
        if not request.words:
            if request.tag is None:
                return Reply()  # an empty line: OK, as PING (Enter shows the box is there)
            return Reply.error(Code.UNKNOWN_COMMAND, "no command before the tag")
        if self.auth is not None:
            self.auth.touch()
        cmd, args = self.lookup(request)
        if cmd is None:
            return Reply.error(Code.UNKNOWN_COMMAND, self._unknown(request, secret))
        log.debug("console command %s", cmd.name)
        n = len(cmd.words)
        self._quoted = {i - n for i in request.quoted if i >= n}
        try:
            if cmd.service:
                self._require_service(cmd.name)
            return cmd.handler(self, args, now)
        except Exception as exc:
            if code_for(exc) == Code.HARDWARE_FAULT and not isinstance(exc, HardwareError):
                log.exception("console command %s failed", cmd.name)
            return Reply.error(code_for(exc), message_for(exc))

    def _unknown(self, request: Request, secret: bool) -> str:
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

    def _require_service(self, what: str) -> None:
        if self.auth is None:
            raise StorageError("the service PIN is unavailable: the box has no state directory")
        self.auth.require(what)

    # -- commands ------------------------------------------------------------------------

    def _help(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 3, "HELP [COMMAND]")
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
        _args(args, 0, 0, "ID?")
        return Reply.data(
            {
                "product": PRODUCT,
                "version": __version__,
                "protocol": PROTOCOL_VERSION,
                "serial": self.serial,
            }
        )

    def _status(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "STATUS?")
        return Reply.data(flatten(self.box.status()))

    def _ping(self, args: list[str], now: float) -> Reply:
        return Reply()

    def _echo(self, args: list[str], now: float) -> Reply:
        self.echo = _on_off(args, "ECHO ON|OFF")
        return Reply()

    def _session_start(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 2, "SESSION START [PROGRAM] [MINUTES]")
        program: str | None = None
        minutes: float | None = None
        if len(args) == 2:
            program, minutes = args[0], _number(args[1], "MINUTES")
        elif len(args) == 1:
            try:
                minutes = _number(args[0], "MINUTES")
            except ValueError:
                program = args[0]
        if minutes is not None and not 0 < minutes <= 1440:
            raise ValueError(f"MINUTES must be more than 0 and at most 1440, not {minutes:g}")
        if program is not None:
            program = self._program_name(program)
        session = self.box.start_session(program, minutes)
        st = self.box.status()
        return Reply.data(
            {"session": session, "program": st.get("program"), "remaining_s": st.get("remaining_s")}
        )

    def _program_name(self, typed: str) -> str:
        try:
            names = [str(_field(p, "name")) for p in self.box.programs()]
        except Exception:
            return typed
        for name in names:
            if name.lower() == typed.lower():
                return name
        return typed

    def _session_stop(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "SESSION STOP")
        self.box.stop_session(reason="console")
        return Reply()

    def _prog_list(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "PROG LIST?")
        rows = []
        for p in self.box.programs():
            rows.append(
                {
                    "name": _field(p, "name"),
                    "duration_s": _field(p, "duration_s"),
                    "description": _field(p, "description", ""),
                }
            )
        return Reply.data(*rows)

    def _prog(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "PROG?")
        st = self.box.status()
        keys = ("program", "section", "elapsed_s", "remaining_s", "state")
        return Reply.data({k: st.get(k) for k in keys})

    def _vol(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "VOL?")
        st = self.box.status()
        return Reply.data({k: st.get(k) for k in ("volume_db", "cap_dbfs", "level_db")})

    def _vol_set(self, args: list[str], now: float) -> Reply:
        (text,) = _args(args, 1, 1, "VOL SET <dB>")
        self.box.set_volume_db(_number(text, "dB"))
        return self._vol([], now)

    def _vol_cap_set(self, args: list[str], now: float) -> Reply:
        (text,) = _args(args, 1, 1, "VOL CAP SET <dB>")
        self._set_cap(_number(text, "dB"))
        return self._vol([], now)

    def _set_cap(self, cap: float) -> None:
        # The volume follows the cap down: lowered first, as the config refuses a volume
        # above the cap; put back if the cap itself is refused.
        volume = self.box.status().get("volume_db")
        lowered = isinstance(volume, int | float) and volume > cap
        if lowered:
            self.box.set_volume_db(max(cap, -60.0))
        try:
            self.box.set_cap_dbfs(cap)
        except Exception:
            if lowered:
                self.box.set_volume_db(float(volume))
            raise

    def _sensor(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "SENSOR?")
        return Reply.data(flatten(self.box.sensor_info()))

    def _stream_hr(self, args: list[str], now: float) -> Reply:
        self.stream_hr = _on_off(args, "STREAM HR ON|OFF")
        self._next_hr = now
        return Reply()

    def _cfg(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 1, "CFG? [KEY]")
        cfg = self.box.config
        if args:
            key = args[0].lower()
            return Reply.data({key: cfg.get(key)})
        return Reply([format_pairs({k: v}) for k, v in cfg.items()])

    def _cfg_set(self, args: list[str], now: float) -> Reply:
        key, text = _args(args, 2, 2, 'CFG SET KEY VALUE (quote a value with spaces: "a b")')
        key = key.lower()
        from device.config import SCHEMA

        section, _, name = key.partition(".")
        spec = SCHEMA.get(section, {}).get(name)
        if spec is not None and spec.service:
            self._require_service(f"CFG SET {key} (a service key)")
        if 1 in self._quoted:
            # A quoted value is text even when it looks like a number: hand it over as a
            # TOML string so the config validates it as one.
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if key == "audio.cap_dbfs" and 1 not in self._quoted:
            self._set_cap(_number(text, key))
        else:
            self.box.set_config(key, text)
        return Reply.data({key: self.box.config.get(key)})

    def _cfg_save(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "CFG SAVE")
        path = self.box.save_config()
        return Reply.data({"file": str(path)})

    def _cfg_defaults(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "CFG DEFAULTS")
        self.box.config_defaults()
        return Reply.data({"config": "defaults", "saved": False})

    def _log(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 1, "LOG? [N]")
        n = 20
        if args:
            if not args[0].isdigit() or not 1 <= int(args[0]) <= LOG_MAX:
                raise ValueError(f"N must be a whole number from 1 to {LOG_MAX}, not {args[0]!r}")
            n = int(args[0])
        return Reply.data(*(flatten(e) for e in self.box.events(n)))

    def _sessions(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "SESSIONS?")
        return Reply.data(*(flatten(s) for s in self.box.sessions()))

    def _profile(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "PROFILE?")
        from device.therapy.resonance import ResonanceEstimate

        store = self.box.store
        if store is None:
            raise StorageError("the box has no state directory: nothing is learned")
        name = str(self.box.config.get("therapy.profile"))
        return Reply.data(flatten(ResonanceEstimate.load(store, name).summary()))

    def _export(self, args: list[str], now: float) -> Reply:
        (text,) = _args(args, 1, 1, "EXPORT <SESSION>")
        if not text.isdigit():
            raise ValueError(
                f"SESSION must be a session number (SESSIONS? lists them), not {text!r}"
            )
        sid = int(text)
        known = {
            int(str(_field(s, "id"))) for s in self.box.sessions() if _field(s, "id") is not None
        }
        if sid not in known:
            raise ValueError(f"no session {sid} (SESSIONS? lists them)")
        return Reply(_csv_lines(self.box.export_rows(sid)))

    def _selftest(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "SELFTEST")
        rows = []
        failed: list[str] = []
        for check in self.box.selftest():
            if isinstance(check, Mapping):
                name, ok, detail = check.get("check"), check.get("ok"), check.get("detail", "")
            else:
                name, ok, detail = check
            rows.append({"check": name, "result": "pass" if ok else "fail", "detail": detail})
            if not ok:
                failed.append(str(name))
        if not failed:
            return Reply.data(*rows)
        code = Code.STORAGE_FAULT if failed == ["storage"] else Code.HARDWARE_FAULT
        return Reply(
            [format_pairs(r) for r in rows], code, f"self-test failed: {', '.join(failed)}"
        )

    def _rate(self, args: list[str], now: float) -> Reply:
        (kind,) = _args(args, 1, 1, "RATE LIKE|SKIP")
        if kind.upper() not in ("LIKE", "SKIP"):
            raise ValueError(f"expected LIKE or SKIP, not {kind!r}")
        self.box.rate(kind.lower())
        return Reply()

    def _auth(self, args: list[str], now: float) -> Reply:
        if len(args) != 1:
            # Never repeat what was typed: it may hold the PIN.
            raise ValueError("usage: AUTH <PIN> (one PIN of digits)")
        if self.auth is None:
            raise StorageError("the service PIN is unavailable: the box has no state directory")
        auth = self.auth
        left = auth.locked_for()
        if left > 0:
            return Reply.error(Code.LOCKED_OUT, f"AUTH is locked for {math.ceil(left)} s more")
        pin = args[0]

        def finish(outcome: object, now: float) -> Reply:
            result = str(outcome)
            if result == "ok":
                self._service = True
                return Reply.data({"login": "service", "idle_logout_s": auth.idle_s})
            if result == "locked":
                return Reply.error(
                    Code.LOCKED_OUT,
                    f"wrong PIN; AUTH is locked for {math.ceil(auth.locked_for())} s",
                )
            return Reply.error(
                Code.PIN_REQUIRED, f"wrong PIN ({auth.tries_left} tries left before a lockout)"
            )

        # The check and the lockout's file write both run off the loop.
        return Reply(deferred=Deferred(lambda: auth.login(pin), finish))

    def _logout(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "LOGOUT")
        if self.auth is not None:
            self.auth.logout("LOGOUT")
        return Reply()

    def _pin_set(self, args: list[str], now: float) -> Reply:
        if len(args) != 1:
            raise ValueError("usage: PIN SET <NEW> (6-12 digits)")
        pin = check_new_pin(args[0])
        assert self.auth is not None
        store = self.auth.store
        return Reply(deferred=Deferred(lambda: store.set_pin(pin), lambda _r, _now: Reply()))

    def _erase(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 1, "ERASE USERDATA [TOKEN]")
        t = self.clock()
        if not args:
            token = secrets.token_hex(4).upper()
            self._erase = (token, t + ERASE_TOKEN_S)
            return Reply.data(
                {
                    "token": token,
                    "expires_s": int(ERASE_TOKEN_S),
                    "confirm": f"ERASE USERDATA {token}",
                }
            )
        pending, self._erase = self._erase, None
        if pending is None or t > pending[1] or args[0].upper() != pending[0]:
            raise ValueError("the token is wrong or expired; ask for a new one with ERASE USERDATA")
        counts = self.box.erase_userdata()
        erased = {f"erased_{k}": v for k, v in dict(counts or {}).items()}
        return Reply.data(erased) if erased else Reply()

    def _restart(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "RESTART")
        self.box.request_restart()
        return Reply()

    def _err(self, args: list[str], now: float) -> Reply:
        _args(args, 0, 0, "ERR?")
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


def _csv_lines(rows: Iterable[Any]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="")
    header: list[str] | None = None
    for row in rows:
        if header is None:
            header = list(row.keys()) if isinstance(row, Mapping) else []
            if header:
                writer.writerow(header)
                yield _take(buf)
        values = [row.get(k) for k in header] if isinstance(row, Mapping) and header else row
        writer.writerow([format_cell(v) for v in values])
        yield _take(buf)


def _take(buf: io.StringIO) -> str:
    text = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return text


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
        C._session_start,
    ),
    _c("SESSION STOP", "", "Stop the session with a short fade.", C._session_stop),
    _c("PROG LIST?", "", "The programs available.", C._prog_list),
    _c("PROG?", "", "The program playing, its section and time left.", C._prog),
    _c("VOL?", "", "Listener volume (dB), cap (dBFS) and present level.", C._vol),
    _c("VOL SET", "<dB>", "Set the listener volume (ramped; not above the cap).", C._vol_set),
    _c("VOL CAP SET", "<dB>", "Set the hard output cap in dBFS.", C._vol_cap_set, True),
    _c("SENSOR?", "", "Pulse sensor: part, rate, LEDs, levels, contact, faults.", C._sensor),
    _c("STREAM HR", "ON|OFF", "Send a !HR line each second.", C._stream_hr),
    _c("CFG?", "[KEY]", "Show the running configuration, or one key.", C._cfg),
    _c(
        "CFG SET",
        "KEY VALUE",
        "Set a key, validated as the config file is (service keys need AUTH).",
        C._cfg_set,
    ),
    _c("CFG SAVE", "", "Save the running configuration (atomic).", C._cfg_save, True),
    _c("CFG DEFAULTS", "", "Return every key to its default (not saved).", C._cfg_defaults, True),
    _c("LOG?", "[N]", "The last N events (default 20).", C._log),
    _c("SESSIONS?", "", "Sessions recorded.", C._sessions),
    _c("PROFILE?", "", "The listener profile's resonance rate and confidence.", C._profile),
    _c("EXPORT", "<SESSION>", "CSV rows of a session's 1 Hz record.", C._export),
    _c("SELFTEST", "", "Check sensor, audio, storage and clock; a line per check.", C._selftest),
    _c("RATE", "LIKE|SKIP", "Rate what is playing (teaches the personalisation).", C._rate),
    _c("AUTH", "<PIN>", "Log in for service commands (ends after 10 min idle).", C._auth),
    _c("LOGOUT", "", "End the service login.", C._logout),
    _c("PIN SET", "<NEW>", "Change the service PIN (6-12 digits).", C._pin_set, True),
    _c(
        "ERASE USERDATA",
        "[TOKEN]",
        "Erase sessions, ratings and preferences (asks for a one-time token first).",
        C._erase,
        True,
    ),
    _c("RESTART", "", "Restart the service cleanly (fades out).", C._restart, True),
    _c("ERR?", "", "The last errors, oldest first (clears them).", C._err),
)
_BY_LENGTH = sorted(COMMANDS, key=lambda c: -len(c.words))
