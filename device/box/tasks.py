"""The box's loop tasks: sensor, therapy, status, store, buttons, console, start, watchdog.

:class:`BoxTasks` puts the running box's periodic work on its
:class:`~device.sched.loop.Loop`. Each task returns its next deadline from the one it was
given. The buttons act on the box through :class:`~device.box.api.BoxApi`, as the console
does; the sessions they and the boot start are prepared off the loop on the box's
:class:`~device.box.session_start.StartWorker`.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import TextIO

from device import PRODUCT, __version__
from device.box.api import BoxApi, OffLoop
from device.box.assemble import Parts
from device.box.health import Health
from device.box.options import RunOptions
from device.box.session_runner import ON_AIR, THERAPY_PERIOD_S, SessionRunner, State
from device.box.session_start import SessionStart, StartWorker
from device.box.status import status_json, status_text
from device.console.server import ConsoleServer
from device.exc import BedsideError
from device.music.scan import PACE_S

log = logging.getLogger(__name__)

#: Volume step of one press of a volume button, dB.
VOLUME_STEP_DB = 3.0


class BoxTasks:
    """The periodic work of one box.

    :param box: the box the buttons act on and whose status is printed.
    :param parts: the box's parts.
    :param runner: its session runner.
    :param health: its health.
    :param console: its console (``None``: none).
    :param opts: the run's options (status format, program, minutes, duration).
    :param status_out: where the status line goes.
    :param exiting: True once the box was asked to exit (no session is started then).
    """

    def __init__(
        self,
        box: BoxApi,
        parts: Parts,
        runner: SessionRunner,
        health: Health,
        console: ConsoleServer | None,
        opts: RunOptions,
        status_out: TextIO,
        exiting: Callable[[], bool],
    ) -> None:
        self.box = box
        #: Prepares the buttons' and the boot's session starts off the loop. A virtual clock
        #: cannot underrun: there each start is finished at once, so a render repeats exactly.
        self.starter = StartWorker(wait=not parts.clock.paced_by_sink)
        self.parts = parts
        self.runner = runner
        self.health = health
        self.console = console
        self.opts = opts
        self._status_out = status_out
        self._exiting = exiting
        #: ``READY=1`` was sent (the output is primed and the first session decided).
        self.ready = False

    def schedule(self) -> None:
        """Add every task to the parts' loop."""
        p, s = self.parts, self.parts.settings
        loop, add, block_s = p.loop, p.loop.add_task, p.loop.block_s
        # Every task within the loop's default budget (8 ms, 1/20 of the output buffer).
        add("sensor", self._sensor, 0.0, period=s.sensor.poll_interval_s)
        add("therapy", self.runner.tick, 0.0, period=THERAPY_PERIOD_S)
        add("status", self._status, s.service.status_interval_s)
        add("store", self._store, 1.0)
        if p.controls is not None:
            add("controls", self._controls, 0.0, budget_s=0.005, period=self._controls_s())
        if self.console is not None:
            # Polled after every block ...
            add("console", self._console, 0.0, period=block_s)
            # ... and again halfway through each block's hand-over: replies wait half a block.
            loop.add_between(self._poll_console)
        # Applies a prepared start as soon as its work is done (a no-op otherwise).
        add("starter", self._starter, 0.0, period=block_s)
        add("start", self._start, s.audio.buffer_blocks * block_s, budget_s=0.05)
        period = p.notifier.watchdog_ping_s
        if period:
            add("watchdog", self._watchdog, 0.0, budget_s=0.005, period=period)
        if self.opts.duration_s is not None:
            add("duration", self._duration, max(0.0, self.opts.duration_s - s.audio.stop_fade_s))

    def _controls_s(self) -> float:
        return max(self.parts.loop.block_s, 0.02)

    # -- the tasks ------------------------------------------------------------------------

    def _sensor(self, deadline: float) -> float:
        p, r = self.parts, self.runner
        period = p.settings.sensor.poll_interval_s
        if p.rig is not None:
            pacer, targets, st = r.pacer_bpm(), r.targets, deadline - r.t0
            p.rig.step(deadline, period, pacer_bpm=pacer, targets=targets, session_t=st)
        p.heart.poll(p.clock.now())
        return deadline + period

    def _status(self, deadline: float) -> float:
        p = self.parts
        status = self.box.status()
        if self.opts.status != "none":
            text = status_json(status) if self.opts.status == "json" else status_text(status)
            try:
                print(text, file=self._status_out, flush=True)
            except (BrokenPipeError, ValueError):
                self.opts.status = "none"
        if self.runner.playing():
            p.recorder.add_row(self._row(status))
        self.runner.record_beats()
        p.notifier.status(f"{status['state']} {status.get('program') or ''} t={status['t']:.0f}s")
        return deadline + p.settings.service.status_interval_s

    def _row(self, status: dict[str, object]) -> dict[str, object]:
        now = self.parts.clock.now()
        h = self.parts.heart.state(now)
        return {
            "t": round(now - self.runner.t0, 3),
            "hr": h.hr_bpm,
            "rmssd": h.rmssd_ms,
            "coherence": h.coherence,
            "quality": h.quality,
            "contact": h.contact,
            "pacer": status.get("pacer"),
            "breathing": h.breathing_bpm,
            "entrain_hz": status.get("entrain_hz"),
            "volume_db": status.get("level_db"),
        }

    def _store(self, deadline: float) -> float:
        self.parts.recorder.tick(self.parts.settings.store.retention_days)
        self.health.show(self.parts.controls, deadline)
        if self.parts.music_scan is not None:
            self.parts.music_scan.poll()  # non-blocking; the result loads on a worker thread
            if not self.parts.sink.paces:  # a virtual clock: time waits a moment for the scan
                self.parts.music_scan.pace(PACE_S)
        return deadline + 1.0

    def _controls(self, deadline: float) -> float:
        controls = self.parts.controls
        if controls is not None:
            pacer, level = self.runner.pacer_bpm(), self.parts.engine.level_db
            for action in controls.poll(deadline, pacer_bpm=pacer, audio_level_db=level):
                self.button(action)
        return deadline + self._controls_s()

    def button(self, action: str) -> None:
        """Act on a button's action (see :data:`device.controls.panel.ACTIONS`)."""
        box, engine = self.box, self.parts.engine
        on_air = self.runner.state in ON_AIR
        try:
            if action == "start_stop":
                self._start_stop(on_air)
            elif action == "stop_fade" and (on_air or self.starter.preparing):
                box.stop_session("button-long")  # cancels a start being prepared
            elif action == "volume_up":
                box.set_volume_db(min(engine.volume_db + VOLUME_STEP_DB, engine.cap_dbfs))
            elif action == "volume_down":
                box.set_volume_db(max(engine.volume_db - VOLUME_STEP_DB, -60.0))
            elif action in ("like", "skip"):
                box.rate(action)
        except BedsideError as exc:
            log.info("button %s ignored: %s", action, exc)

    def _start_stop(self, on_air: bool) -> None:
        """The start/stop button: stop the session on air, else prepare one (a press while
        one is being prepared is ignored: a double press starts one session)."""
        action = "start_stop"
        if on_air:
            self.box.stop_session("button")
        elif self.starter.preparing:  # a double press starts one session
            log.info("button %s ignored: a session start is being prepared", action)
        else:
            self.starter.request(self.box.prepare_session(), self._failed(action))

    @staticmethod
    def _failed(action: str) -> Callable[[Exception], None]:
        def failed(exc: Exception) -> None:
            if isinstance(exc, BedsideError):
                log.info("button %s ignored: %s", action, exc)
            else:
                log.error("button %s failed: %r", action, exc)

        return failed

    def _starter(self, deadline: float) -> float:
        self.starter.poll()
        return deadline + self.parts.loop.block_s

    def _poll_console(self) -> None:
        if self.console is not None:
            self.console.poll(self.parts.clock.now())

    def _console(self, deadline: float) -> float:
        self._poll_console()
        return deadline + self.parts.loop.block_s

    def _start(self, deadline: float) -> float | None:
        # The output buffer is primed with silence by now: a session may fade in.
        if self._exiting():
            return None
        if self.starter.preparing:  # a button's start came first: its outcome decides
            return deadline + self.parts.loop.block_s
        p = self.parts
        sensor = "present" if p.heart.sensor.present else "absent"
        p.recorder.event("boot", f"{PRODUCT} {__version__} audio={p.audio_spec} sensor={sensor}")
        if self.opts.config_error:
            p.recorder.event("config-fallback", self.opts.config_error)
        if not self.health.wall.is_set():  # logged once here, at every start
            p.recorder.event("clock-not-set", "the wall clock reads before this release")
        self._boot(p.settings.service.auto_start or bool(self.opts.program))
        p.notifier.ready()
        self.ready = True
        return None

    def _boot(self, auto_start: bool) -> None:
        """Start the first session, or wait idle with the sensor dark.

        The program and preferences are read off the loop while the primed output plays (the
        box is ready meanwhile, and *starting* until the session starts). A session a
        technician started first (on the console) is kept; a start that fails or is
        cancelled leaves the box idle.
        """
        r = self.runner
        if r.state != State.STARTING:
            return
        if not auto_start:
            r.idle()
            return
        try:
            job = r.prepare(self.opts.program, self.opts.minutes)
        except BedsideError as exc:
            r.boot_failed(exc)
            return

        def apply(plan: SessionStart) -> SessionStart:
            return job.apply(plan) if r.state == State.STARTING else plan

        self.starter.request(OffLoop(job.work, apply), r.boot_failed, r.idle)

    def cancel_start(self, reason: str) -> bool:
        """Cancel the session start being prepared (none plays yet); True if there was one."""
        if self.runner.state in ON_AIR or not self.starter.cancel():
            return False
        log.info("session start cancelled (%s)", reason)
        return True

    def _watchdog(self, deadline: float) -> float:
        notifier = self.parts.notifier
        if self.health.may_pet_watchdog(self.ready):
            notifier.watchdog()
        return deadline + (notifier.watchdog_ping_s or 1.0)

    def _duration(self, deadline: float) -> None:
        self.box.request_exit("duration")
        return None


class RunEnd:
    """``Box.run``'s stop test: the duration played, the program ended, or the exit faded out.

    Without a duration, a run into a file or nowhere ends with its program (not a service,
    nor a box a technician drives on its console).
    """

    def __init__(
        self,
        parts: Parts,
        runner: SessionRunner,
        tasks: BoxTasks,
        opts: RunOptions,
        exiting: Callable[[], bool],
    ) -> None:
        self.parts, self.runner, self.tasks, self.exiting = parts, runner, tasks, exiting
        self.end_with_program = opts.exit_when_done or (
            opts.duration_s is None
            and not parts.sink.paces
            and tasks.console is None
            and not opts.service
        )
        rate = parts.engine.sample_rate
        self.end_frames = None if opts.duration_s is None else round(opts.duration_s * rate)
        self.tail = 0

    def __call__(self) -> bool:
        """True once the loop must stop."""
        engine = self.parts.engine
        if self._over():
            return True
        if self.end_frames is not None and self.runner.stop_reason == "duration":
            return False  # the fade ends just before the duration; play it out exactly
        if not (self.exiting() and engine.faded_out):
            return False
        return self._tail_done()

    def _over(self) -> bool:
        """The duration is reached, or the program ended (and the run ends with it)."""
        engine = self.parts.engine
        if self.end_frames is not None and engine.frames >= self.end_frames:
            return True
        idle = self.runner.state == State.IDLE and engine.faded_out
        return bool(self.end_with_program and idle and self.tasks.ready)

    def _tail_done(self) -> bool:
        """Count a block of silence after the fade (the amplifier off at the first): a few
        let the amplifier switch off without a pop."""
        controls = self.parts.controls
        if controls is not None and self.tail == 0:
            controls.amp(False)
        self.tail += 1
        return self.tail > 2


def install_signal_handlers(request_exit: Callable[[str], None]) -> None:
    """SIGTERM, SIGINT and SIGHUP call ``request_exit`` with the signal's name.

    SIGHUP is what a box run from an ssh session gets when the session drops: it fades out
    and closes the session as a SIGTERM does (the default action would kill it mid-block).
    """

    def handler(signum: int, frame: object) -> None:
        request_exit(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)
