"""Test doubles: a fake monotonic clock, an in-memory serial port and the one fake box.

:class:`FakeBox` implements :class:`device.box.api.BoxApi` (mypy checks it below), so a
test of the console or the buttons talks to the same interface the real Box offers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from device.box.api import OffLoop
from device.box.session_start import SessionStart, find_program
from device.config import Config
from device.config.settings import SessionSettings
from device.console.protocol import Reply
from device.console.server import ConsoleServer
from device.exc import StateError, StorageError
from device.therapy.program import Program

if TYPE_CHECKING:
    from device.box.api import BoxApi
    from device.console.commands import Console

T = TypeVar("T")


class FakeBox:
    """A box in memory: an idle box with a status, events and no store.

    ``status_values`` is what :meth:`status` returns (merged over an idle box's); with
    ``fail`` set every method raises ``RuntimeError("boom")``, as a box with a bug would.
    ``calls`` lists the methods called, with their arguments. A request that touches the
    disk answers an :class:`~device.box.api.OffLoop` whose ``work`` first waits for
    ``gate`` (set by default): a test clears it to hold the disk part while the loop runs,
    and ``work_threads`` records the threads the work ran on.
    """

    def __init__(self, **status_values: object) -> None:
        self.fail = False
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.volume_db, self.cap_dbfs = -20.0, -6.0
        self.playing: str | None = None
        self._config = Config.defaults()
        self._status: dict[str, object] = {
            "state": "idle",
            "program": None,
            "hr": None,
            "quality": 0.0,
            "contact": False,
        }
        self._status.update(status_values)
        self.gate = threading.Event()
        self.gate.set()
        self.work_threads: list[str] = []
        self.saved: list[Config] = []

    def _off_loop(
        self, name: str, work: Callable[[], T], apply: Callable[[T], T] | None = None
    ) -> OffLoop[T]:
        def slow() -> T:
            self.work_threads.append(threading.current_thread().name)
            if not self.gate.wait(10.0):
                raise TimeoutError(f"{name}: the test never opened the gate")
            return work()

        return OffLoop(slow) if apply is None else OffLoop(slow, apply)

    def _call(self, name: str, *args: object) -> None:
        if self.fail:
            raise RuntimeError("boom")
        self.calls.append((name, args))

    @property
    def config(self) -> Config:
        self._call("config")
        return self._config

    def status(self) -> dict[str, object]:
        self._call("status")
        state = "playing" if self.playing else "idle"
        out = {"state": state, "program": self.playing, "volume_db": self.volume_db}
        out.update(cap_dbfs=self.cap_dbfs, level_db=-80.0)
        return {**out, **self._status} if not self.playing else {**self._status, **out}

    def start_session(
        self, program: str | Program | None = None, minutes: float | None = None
    ) -> int | None:
        self._call("start_session", program, minutes)
        if self.playing:
            raise StateError("a session is already playing; stop it first")
        name = program.name if isinstance(program, Program) else program
        self.playing = name or str(self._config.therapy.program)
        return None

    def prepare_session(
        self, program: str | Program | None = None, minutes: float | None = None
    ) -> OffLoop[SessionStart]:
        self._call("prepare_session", program, minutes)
        if self.playing:
            raise StateError("a session is already playing; stop it first")
        settings = SessionSettings.from_config(self._config)
        name = program or str(self._config.therapy.program)

        def work() -> SessionStart:
            prog = name if isinstance(name, Program) else find_program(name, [])
            return SessionStart(prog, minutes, settings, {})

        def apply(plan: SessionStart) -> SessionStart:
            self.start_session(plan.program, plan.minutes)
            return plan

        return self._off_loop("prepare_session", work, apply)

    def stop_session(self, reason: str = "stop") -> None:
        self._call("stop_session", reason)
        if not self.playing:
            raise StateError("no session is playing (state idle)")
        self.playing = None

    def programs(self) -> OffLoop[list[Program]]:
        self._call("programs")
        return self._off_loop("programs", list)

    def set_volume_db(self, db: float) -> None:
        self._call("set_volume_db", db)
        if db > self.cap_dbfs:
            raise ValueError(f"volume {db:g} dB is above the cap of {self.cap_dbfs:g} dBFS")
        self.volume_db = db

    def set_cap_dbfs(self, db: float) -> None:
        self._call("set_cap_dbfs", db)
        cfg = self._config
        if self.volume_db > db:
            cfg = cfg.with_value("audio.volume_db", max(db, -60.0))
        self._config = cfg.with_value("audio.cap_dbfs", db)
        self.cap_dbfs = db
        self.volume_db = min(self.volume_db, db)

    def sensor_info(self) -> dict[str, object]:
        self._call("sensor_info")
        return {"backend": "none", "present": False, "contact": False, "quality": 0.0}

    def set_config(self, key: str, text: str) -> OffLoop[Config]:
        self._call("set_config", key, text)
        base = self._config

        def apply(new: Config) -> Config:
            if key == "audio.cap_dbfs":
                self.set_cap_dbfs(float(str(new.get(key))))
            else:
                self._config = new
            return self._config

        return self._off_loop("set_config", lambda: base.with_value(key, text), apply)

    def save_config(self) -> OffLoop[Path]:
        self._call("save_config")
        cfg = self._config

        def work() -> Path:
            self.saved.append(cfg)
            raise StorageError("the fake box saves nothing")

        return self._off_loop("save_config", work)

    def config_defaults(self) -> None:
        self._call("config_defaults")
        self._config = Config.defaults()

    def events(self, n: int = 20) -> list[dict[str, object]]:
        self._call("events", n)
        return [{"t": float(i), "kind": "tick", "detail": "x" * 60} for i in range(n)]

    def sessions(self) -> OffLoop[list[dict[str, object]]]:
        self._call("sessions")
        return self._off_loop("sessions", _no_store)

    def export_rows(self, session_id: int) -> OffLoop[list[dict[str, object]]]:
        self._call("export_rows", session_id)
        return self._off_loop("export_rows", _no_store)

    def export_beats(self, session_id: int) -> OffLoop[list[dict[str, object]]]:
        self._call("export_beats", session_id)
        return self._off_loop("export_beats", _no_store)

    def profile(self) -> OffLoop[dict[str, object]]:
        self._call("profile")
        return self._off_loop("profile", _no_store)

    def selftest(self) -> OffLoop[list[tuple[str, bool, str]]]:
        self._call("selftest")
        return self._off_loop("selftest", lambda: [("storage", False, "no store")])

    def rate(self, kind: str) -> None:
        self._call("rate", kind)
        if not self.playing:
            raise StateError("no session is playing")

    #: The fake's music library (``MUSIC LIST``); empty: nothing indexed yet.
    tracks: tuple[str, ...] = ("rain.flac", "harbour.ogg")
    track_n: int | None = None
    #: False: the box has no music at all (no state directory), as the real one answers.
    has_music: bool = True
    scanning: bool = False

    def _music(self) -> None:
        if not self.has_music:
            raise StateError("no music: the box has no state directory for the music index")

    def music_describe(self) -> dict[str, object]:
        self._call("music_describe")
        self._music()
        n = self.track_n
        return {"track": None if n is None else self.tracks[n - 1], "n": n}

    def music_listing(self) -> list[dict[str, object]]:
        self._call("music_listing")
        self._music()
        return [{"n": i, "name": t} for i, t in enumerate(self.tracks, 1)]

    def music_play(self, n: int) -> dict[str, object]:
        self._call("music_play", n)
        self._music()
        if not self.tracks:
            raise StateError("no track to play: nothing indexed in the folder")
        if not 1 <= n <= len(self.tracks):
            raise ValueError(
                f"no track {n}: MUSIC LIST numbers the {len(self.tracks)} tracks from 1"
            )
        self.track_n = n
        return {"n": n, "name": self.tracks[n - 1]}

    def music_scan(self) -> dict[str, object]:
        self._call("music_scan")
        self._music()
        if self.scanning:
            raise StateError("a scan of /music is running")
        self.scanning = True
        return {"scanning": "/music"}

    def erase_userdata(self) -> OffLoop[dict[str, int]]:
        self._call("erase_userdata")
        if self.playing:
            raise StateError("stop the session before erasing user data")
        return self._off_loop("erase_userdata", _no_store)

    def request_restart(self) -> None:
        self._call("request_restart")

    def request_exit(self, reason: str = "signal") -> None:
        self._call("request_exit", reason)

    def emit(self, line: str) -> None:
        self._call("emit", line)


def _no_store() -> Any:
    raise StorageError("no session store")


if TYPE_CHECKING:
    _CHECK: BoxApi = FakeBox()


def answer(console: Console, line: str, now: float = 0.0) -> Reply:
    """``console``'s reply to ``line``, its deferred work (if any) run here and finished."""
    from device.console.protocol import parse_request

    reply = console.execute(parse_request(line), now)
    if reply.deferred is None:
        return reply
    try:
        return reply.deferred.finish(reply.deferred.work(), now)
    except Exception as exc:
        from device.console.commands import code_for, message_for

        return Reply.error(code_for(exc), message_for(exc))


class FakeClock:
    """Monotonic seconds that move only when a test moves them."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class MemoryPort:
    """An in-memory serial port: the test fills ``inbox`` and reads ``sent``.

    ``room`` bounds the bytes one ``write`` call takes (a slow port); ``broken`` makes every
    call fail as an unplugged USB adapter does.
    """

    def __init__(self, room: int | None = None) -> None:
        self.inbox = bytearray()
        self.sent = bytearray()
        self.room = room
        self.broken = False
        self.closed = False

    def read(self, n: int) -> bytes:
        if self.broken:
            raise OSError(5, "Input/output error")
        data = bytes(self.inbox[:n])
        del self.inbox[:n]
        return data

    def write(self, data: bytes) -> int:
        if self.broken:
            raise OSError(5, "Input/output error")
        n = len(data) if self.room is None else min(len(data), self.room)
        self.sent += data[:n]
        return n

    def close(self) -> None:
        self.closed = True


def is_final(line: str) -> bool:
    """Whether ``line`` is a reply's final line."""
    return line == "OK" or line.startswith(("OK ", "ERR "))


def run_server(
    server: ConsoleServer, port: MemoryPort, finals: int, t0: float = 0.0, timeout: float = 10.0
) -> list[str]:
    """Poll until ``finals`` final lines were sent (PIN checks run on a worker thread)."""
    deadline = time.monotonic() + timeout
    t = t0
    while time.monotonic() < deadline:
        server.poll(t)
        t += 0.02
        lines = port.sent.decode().split("\r\n")
        if sum(1 for x in lines if is_final(x)) >= finals:
            return [x for x in lines if x]
        time.sleep(0.0005)
    raise AssertionError(f"no {finals} replies: {bytes(port.sent[-500:])!r}")


class Hold:
    """Wraps a function so that each call first waits for ``gate``, noting its thread.

    The wait is bounded (10 s): a call made on the loop stalls the loop, not the test.
    """

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.threads: list[threading.Thread] = []

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, held at the gate."""

        def held(*args: Any, **kwargs: Any) -> Any:
            self.threads.append(threading.current_thread())
            self.gate.wait(10.0)
            return fn(*args, **kwargs)

        return held
