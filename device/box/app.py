"""The box: every room wired to one loop paced by the audio sink.

:class:`Box` is a small facade over the box's rooms: :func:`~device.box.assemble.assemble`
builds the parts from the config, :class:`~device.box.session_runner.SessionRunner` runs
the session, :class:`~device.box.health.Health` judges the parts' health,
:class:`~device.store.recorder.Recorder` records rows and events,
:class:`~device.box.live_config.LiveConfig` keeps the running configuration,
:class:`~device.box.tasks.BoxTasks` puts the periodic work on the
:class:`~device.sched.loop.Loop`, and :func:`~device.box.status.assemble_status` puts the status
together. The Box implements :class:`~device.box.api.BoxApi`, the only way the console,
the buttons and the CLI act on it. Anything outside the audio path may fail: it is logged,
counted and shown in the status, and the sound plays on.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from device.box.api import BoxApi, OffLoop
from device.box.assemble import assemble, build_console, close_parts, music_of, rescan_music
from device.box.health import Health
from device.box.live_config import LiveConfig
from device.box.options import RunOptions
from device.box.session_runner import THERAPY_PERIOD_S, SessionRunner, State
from device.box.session_start import SessionStart
from device.box.status import LoopFigures, SoundFigures, assemble_status
from device.box.tasks import BoxTasks, RunEnd, install_signal_handlers
from device.config import Config
from device.config.settings import SessionSettings
from device.exc import StateError
from device.music.composer.voice import composer_in
from device.sched.collector import PERIOD_S as GC_PERIOD_S
from device.sched.collector import Collector
from device.sched.realtime import raise_priority
from device.therapy.program import Program, list_programs

if TYPE_CHECKING:
    from device.store.sessions import Store

__all__ = ["BOX_HOOKS", "THERAPY_PERIOD_S", "Box", "BoxApi", "RunOptions", "State"]

log = logging.getLogger(__name__)

#: Called with every new Box before it runs. The product adds none; a test's wrapper adds
#: its fault injection here (for example a task that hangs the loop for the watchdog test).
BOX_HOOKS: list[Callable[[Box], None]] = []


class Box:
    """The whole bedside box on one loop. Use as a context manager or call :meth:`close`."""

    def __init__(
        self, cfg: Config, opts: RunOptions | None = None, *, status_out: TextIO | None = None
    ) -> None:
        self.opts = opts or RunOptions()
        self._closed = self._exit_requested = self._restart_requested = False
        self._emit_hooks: list[Callable[[str], None]] = []
        self.started_wall = time.time()
        #: Scheduling of the loop (and every thread started after it): ``fifo:20`` under the
        #: unit's LimitRTPRIO; raised before any part starts a thread.
        self.sched = raise_priority()
        self.parts = p = assemble(cfg, self.opts, self.emit)
        self.engine, self.sink, self.loop, self.clock = p.engine, p.sink, p.loop, p.clock
        self.heart, self.rig, self.recorder, self.controls = p.heart, p.rig, p.recorder, p.controls
        self.audio_spec, self.state_dir = p.audio_spec, p.state_dir
        self.live = LiveConfig(
            cfg,
            p.engine,
            path=self.opts.config_path,
            on_saved=lambda path: p.recorder.event("config-saved", str(path)),
        )
        self.runner = SessionRunner(
            p.engine,
            p.heart,
            p.recorder,
            p.controls,
            p.clock.now,
            lambda: SessionSettings.from_config(self.live.config),
            seed=None if p.rig is None else p.rig.seed,
            music=p.music,
        )
        self.runner.default_program = self.opts.program
        self.health = Health(
            p.sink,
            p.heart,
            p.recorder,
            audio_spec=p.audio_spec,
            sensor_expected=p.sensor_expected,
            config_error=self.opts.config_error,
        )
        self.console = build_console(self, p.settings, self.opts, p.state_dir)
        if self.console is not None:
            self._emit_hooks.append(self.console.emit)
        out = sys.stdout if status_out is None else status_out
        self.tasks = BoxTasks(
            self, p, self.runner, self.health, self.console, self.opts, out, self._exiting
        )
        self.tasks.schedule()
        #: Garbage collection in its own task, never inside another (see its module).
        self.collector = Collector(self.runner.playing)
        self.loop.add_task("gc", self.collector.tick, GC_PERIOD_S, period=GC_PERIOD_S)
        for hook in BOX_HOOKS:
            hook(self)

    def _exiting(self) -> bool:
        return self._exit_requested

    # -- BoxApi: what the console, the buttons and the CLI may ask ---------------------------

    @property
    def config(self) -> Config:
        """The running configuration."""
        return self.live.config

    @property
    def state(self) -> State:
        """Where the box is in its life (idle, playing, ending, ...)."""
        return self.runner.state

    def status(self) -> dict[str, object]:
        """Everything the status line and ``STATUS?`` show."""
        t = self.clock.now()
        health = self.health.status()
        health["config"] = self.opts.config_path or self.config.source or "defaults"
        health["sched"] = self.sched
        uptime = time.time() - self.started_wall
        return assemble_status(
            t=t,
            session=self.runner.status(t),
            targets=self.runner.targets if self.runner.playing() else None,
            heart=self.heart.state(t),
            sound=SoundFigures.of(self.engine),
            loop=LoopFigures(self.loop.overruns, self.loop.late_blocks, uptime),
            health=health,
            extra=None if self.rig is None else self.rig.status(),
            music=None if self.parts.music is None else self.parts.music.status_fields(),
        )

    def sink_healthy(self) -> bool:
        """False while the sound output keeps failing."""
        return self.health.sink_healthy()

    def programs(self) -> OffLoop[list[Program]]:
        """The programs available (built-in and user), read off the loop."""
        dirs = self.runner.program_dirs()
        return OffLoop(lambda: list_programs(dirs))

    def prepare_session(
        self, program: str | Program | None = None, minutes: float | None = None
    ) -> OffLoop[SessionStart]:
        """A session start: its files read off the loop, then started on it (the runner's)."""
        return self.runner.prepare(program, minutes)

    def start_session(
        self, program: str | Program | None = None, minutes: float | None = None
    ) -> int | None:
        """Start a session with ``program`` (default: the configured one); its store id.

        :raises StateError: a session plays, or the box is shutting down.
        :raises ProgramError: the program does not exist or is invalid.
        """
        return self.runner.start(program, minutes)

    def stop_session(self, reason: str = "stop") -> None:
        """Fade the session out within the stop fade (at most 2 s), then go idle."""
        if not self.tasks.cancel_start(reason):  # a button's or the boot's start is dropped
            self.runner.stop(reason)

    def set_volume_db(self, db: float) -> None:
        """Set the listener volume in dBFS (ramped); ``ValueError`` above the cap or < -60."""
        self.live.set_volume_db(db)

    def set_cap_dbfs(self, db: float) -> None:
        """Set the hard cap in dBFS (service); lowers the volume with it when needed."""
        self.live.set_cap_dbfs(db)

    def sensor_info(self) -> dict[str, object]:
        """What ``SENSOR?`` shows: the driver's facts plus the analysis' contact and quality."""
        return self.heart.info(self.clock.now())

    def set_config(self, key: str, text: str) -> OffLoop[Config]:
        """Validate ``key = text`` off the loop (as the config file would be), apply on it."""
        job = self.live.set_job(key, text)
        if key != "therapy.program":
            return job

        def apply(new: Config) -> Config:
            self.runner.default_program = None  # the technician's choice wins over --program
            return job.apply(new)

        return OffLoop(job.work, apply)

    def config_path(self) -> Path:
        """The file ``CFG SAVE`` writes."""
        return self.live.path()

    def save_config(self) -> OffLoop[Path]:
        """Save the running configuration atomically (off the loop); the file written.

        :raises StateError: a ``--sim`` box started without a config file of its own (it
            never writes the system's ``/etc/bedside/config.toml``).
        """
        if self.opts.sim and not self.opts.config_path and not os.environ.get("BEDSIDE_CONFIG"):
            raise StateError(
                "a --sim box saves only to its own config file: start it with --config FILE"
            )
        return self.live.save_job()

    def config_defaults(self) -> None:
        """Return every key to its built-in default (volume and cap included, ramped)."""
        self.live.defaults()

    def events(self, n: int = 20) -> list[dict[str, object]]:
        """The last ``n`` events, oldest first."""
        return self.recorder.events(n)

    def sessions(self) -> OffLoop[list[dict[str, object]]]:
        """Sessions in the store, oldest first (read off the loop)."""
        store = self.recorder.require()

        def work() -> list[dict[str, object]]:
            with store.reader() as reader:
                return list(reader.sessions())

        return OffLoop(work)

    def export_rows(self, session_id: int) -> OffLoop[list[dict[str, object]]]:
        """The 1 Hz rows of one session (read off the loop; buffered rows handed over now)."""
        if self.recorder.session_id == session_id:
            self.recorder.flush_rows()
        return self._read_session(lambda reader: reader.rows(session_id))

    def export_beats(self, session_id: int) -> OffLoop[list[dict[str, object]]]:
        """The beats of one session, read off the loop (the ones found so far handed over)."""
        if self.recorder.session_id == session_id:
            self.runner.record_beats()
        return self._read_session(lambda reader: reader.beats(session_id))

    def _read_session(
        self, read: Callable[[Store], list[dict[str, Any]]]
    ) -> OffLoop[list[dict[str, object]]]:
        """``read`` on a reader of the store, off the loop. :raises StorageError: no store."""
        store = self.recorder.require()

        def work() -> list[dict[str, object]]:
            with store.reader() as reader:
                return list(read(reader))

        return OffLoop(work)

    def profile(self) -> OffLoop[dict[str, object]]:
        """The listener profile's learned resonance (read off the loop)."""
        from device.therapy.resonance import ResonanceEstimate

        store, name = self.recorder.require(), str(self.config.get("therapy.profile"))

        def work() -> dict[str, object]:
            with store.reader() as reader:
                return dict(ResonanceEstimate.load(reader, name).summary())

        return OffLoop(work)

    def rate(self, kind: str) -> None:
        """Record a like or skip of what is playing (it teaches the personalisation)."""
        self.runner.rate(kind)

    def music_describe(self) -> dict[str, object]:
        """``MUSIC?``: the composed music playing (style, key, tempo, theme), else the
        playing track. :raises StateError: nothing composed and no music folder indexed."""
        composer = composer_in(self.parts.engine.voices)
        if composer is not None and (composer.status()["composed"] or composer.error):
            return composer.describe()
        return music_of(self.parts).describe()

    def music_listing(self) -> list[dict[str, object]]:
        """``MUSIC LIST``: the playable tracks, numbered from 1."""
        return music_of(self.parts).listing()

    def music_play(self, n: int) -> dict[str, object]:
        """``MUSIC PLAY n``: crossfade to track ``n``. :raises ValueError: no such track."""
        return music_of(self.parts).play(n)

    def music_scan(self) -> dict[str, object]:
        """``MUSIC SCAN``: rescan the music folder in a child (the tracks arrive when done)."""
        return rescan_music(self.parts)

    def erase_userdata(self) -> OffLoop[dict[str, int]]:
        """Erase every session, row, event, rating and learned preference (off the loop).

        :raises StateError: a session plays. :raises StorageError: there is no store.
        """
        store = self.recorder.require()
        if self.runner.playing():
            raise StateError("stop the session before erasing user data")

        def apply(counts: dict[str, int]) -> dict[str, int]:
            self.recorder.forget_events()
            self.recorder.event("erase", " ".join(f"{k}={v}" for k, v in counts.items()))
            return counts

        return OffLoop(store.erase_userdata, apply)

    def selftest(self) -> OffLoop[list[tuple[str, bool, str]]]:
        """Check sensor, audio, storage and clock; one ``(name, ok, detail)`` per check.

        The storage check reads the store off the loop (``work`` answers it alone); the
        others look at the running parts on the loop.
        """
        e, storage = self.engine, self.health.storage_check()

        def apply(checks: list[tuple[str, bool, str]]) -> list[tuple[str, bool, str]]:
            return self.health.selftest(
                now=self.clock.now(),
                blocks=self.loop.blocks,
                audio_t=lambda: e.frames / e.sample_rate,
                storage=checks[0],
            )

        return OffLoop(lambda: [storage().as_tuple()], apply)

    def request_restart(self) -> None:
        """Fade out and exit with status 75 so systemd starts the service again."""
        self._restart_requested = True
        self.request_exit("restart")

    def request_exit(self, reason: str = "signal") -> None:
        """Fade out (within the stop fade) and end the run; safe from signal handlers."""
        if self._exit_requested:
            return
        self._exit_requested = True
        self.tasks.starter.cancel()
        self.parts.notifier.stopping()
        self.runner.begin_exit(reason)

    def emit(self, line: str) -> None:
        """Send an unsolicited ``!`` line to the console (if one is attached)."""
        for hook in self._emit_hooks:
            hook(line)

    # -- running --------------------------------------------------------------------------

    def run(self) -> int:
        """Run until the duration ends, the program ends (a file or null sink) or a stop.

        Returns the exit status: 0, or 75 when a restart was requested (systemd restarts).
        """
        self.collector.start()
        try:
            self.loop.run(
                until=RunEnd(self.parts, self.runner, self.tasks, self.opts, self._exiting)
            )
        finally:
            self.collector.stop()
        self.runner.state = State.STOPPED
        return 75 if self._restart_requested else 0

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT fade out and end the run (within the 2 s stop fade)."""
        install_signal_handlers(self.request_exit)

    def close(self) -> None:
        """Release everything, in the order that keeps the sound clean. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.tasks.starter.close()
        if self.runner.playing():
            self.runner.end(self.runner.stop_reason or "exit")
        close_parts(self.parts, self.console)

    def __enter__(self) -> Box:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Box state={self.runner.state} t={self.clock.now():.1f}s audio={self.audio_spec}>"
