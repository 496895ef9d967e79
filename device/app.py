"""The box: every room wired to one loop paced by the audio sink.

:class:`Box` builds the drivers (real or simulated), the sound engine, the heart analysis,
the therapy session, the store, the console and the buttons from a validated
:class:`~device.config.Config` plus the run options, and runs them as tasks of one
:class:`~device.sched.loop.Loop`. Anything outside the audio path may fail (sensor, store,
console, buttons): it is logged, counted and shown in the status, and the sound plays on.

The console and the buttons act on the box only through its public methods
(``status``, ``start_session``, ``stop_session``, ``set_volume_db`` ...).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from device import PRODUCT, __version__
from device.config import Config, save_config
from device.exc import (
    BedsideError,
    HardwareError,
    StateError,
    StorageError,
)
from device.sched.clock import RealClock, VirtualClock
from device.sched.loop import Loop
from device.status import status_json, status_text

if TYPE_CHECKING:
    from device.dsp.heart import HeartState

log = logging.getLogger(__name__)

#: Control tick of the therapy (targets to the engine), seconds.
THERAPY_PERIOD_S = 0.25
#: Environment switch for fault injection in tests only (``hang-after:SECONDS``).
FAULT_ENV = "BEDSIDE_FAULT"


@dataclass
class RunOptions:
    """How this run of the box was asked for (command line over config)."""

    sim: bool = False
    #: ``"pyaudio"``, ``"wav:PATH"`` or ``"null"``; ``None`` = from config.
    audio: str | None = None
    program: str | None = None
    #: Stop the box after this many seconds of audio; ``None`` = run until stopped.
    duration_s: float | None = None
    #: Virtual-clock speed factor; ``None`` = as fast as possible. Ignored with a sound card.
    speed: float | None = 1.0
    serial: str | None = None
    #: ``"text"``, ``"json"`` or ``"none"``.
    status: str = "text"
    listener: str | None = None
    seed: int | None = None
    state_dir: str | None = None
    #: Under systemd: a bad config falls back to defaults, the store lives in $STATE_DIRECTORY.
    service: bool = False
    #: End the run when the session's program has ended (``bedside render``).
    exit_when_done: bool = False
    #: Minutes for the first session (``None`` = the program's own length).
    minutes: float | None = None
    #: Error text of a configuration that was refused (service mode fell back to defaults).
    config_error: str | None = None
    config_path: str | None = None


@dataclass
class _Event:
    t: float
    kind: str
    detail: str
    wall: float = field(default_factory=time.time)


class Box:
    """The whole bedside box on one loop. Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        cfg: Config,
        opts: RunOptions | None = None,
        *,
        status_out: TextIO | None = None,
    ) -> None:
        self.config = cfg
        self.opts = opts or RunOptions()
        self._status_out = sys.stdout if status_out is None else status_out
        self._closed = False
        self._events: deque[_Event] = deque(maxlen=500)
        self._emit_hooks: list[Callable[[str], None]] = []
        self.state = "starting"
        self.session: Any = None
        self.session_id: int | None = None
        self._session_t0 = 0.0
        self._session_end_t: float | None = None
        self._stop_reason: str | None = None
        self._exit_requested = False
        self._restart_requested = False
        self._heart_state: HeartState | None = None
        self._targets: Any = None
        self._ready_sent = False
        self.started_wall = time.time()
        self.storage_error: str | None = None
        self._row_buffer: list[dict[str, object]] = []

        a = cfg.audio
        from device.drivers.audio import open_sink
        from device.dsp.engine import Engine

        seed = self.opts.seed if self.opts.seed is not None else int(cfg.sim.seed)
        self.seed = seed
        self.engine = Engine(
            sample_rate=int(a.sample_rate),
            block_frames=int(a.block_frames),
            output=str(a.output),
            cap_dbfs=float(a.cap_dbfs),
            volume_db=float(a.volume_db),
            seed=seed,
        )
        spec = self.opts.audio or str(a.backend)
        if spec == "wav":
            spec = f"wav:{a.wav_path}"
        self.audio_spec = spec
        self.sink = open_sink(
            spec,
            sample_rate=int(a.sample_rate),
            channels=2,
            device=str(a.device),
            buffer_blocks=int(a.buffer_blocks),
            block_frames=int(a.block_frames),
            sample_format=str(a.sample_format),
        )
        self.clock: RealClock | VirtualClock
        if getattr(self.sink, "paces", False):
            self.clock = RealClock()
        else:
            self.clock = VirtualClock(self.opts.speed)
        self.loop = Loop(
            self.clock,
            self.engine.render,
            self.sink.write,
            sample_rate=int(a.sample_rate),
            block_frames=int(a.block_frames),
        )
        self._build_pulse()
        self._build_store()
        self._build_notifier()
        self._build_controls()
        self._build_console()
        self._schedule()

    # -- construction -------------------------------------------------------------------

    def _build_pulse(self) -> None:
        from device.dsp.heart import HeartAnalyzer

        s = self.config.sensor
        self.listener = None
        self.pulse_model = None
        self.sim_chip = None
        settings = dict(
            sample_rate_sps=int(s.sample_rate_sps),
            averaging=int(s.averaging),
            pulse_width_us=int(s.pulse_width_us),
            adc_range_na=int(s.adc_range_na),
            led_red_ma=float(s.led_red_ma),
            led_ir_ma=float(s.led_ir_ma),
        )
        backend = "sim" if self.opts.sim else str(s.backend)
        from device.drivers.pulse_sensor import NoSensor, PulseSensor

        if backend == "sim":
            from device.sim.listener import Listener
            from device.sim.max30102 import SimulatedMAX30102
            from device.sim.pulse import PulseModel

            kind = self.opts.listener or str(self.config.sim.listener)
            self.listener = Listener(kind, seed=self.seed)
            self.pulse_model = PulseModel(seed=self.seed)
            self.sim_chip = SimulatedMAX30102(
                self.clock.now, self.pulse_model, address=int(s.address), seed=self.seed
            )
            chip = self.sim_chip
            self.sensor = PulseSensor(
                lambda: chip,
                address=int(s.address),
                bus_name="simulated",
                clock=self.clock.now,
                **settings,
            )
        elif backend == "max30102":
            from device.drivers.i2c import open_i2c_bus

            bus_no = int(s.i2c_bus)
            self.sensor = PulseSensor(
                lambda: open_i2c_bus(bus_no),
                address=int(s.address),
                bus_name=f"/dev/i2c-{bus_no}",
                clock=self.clock.now,
                **settings,
            )
        else:
            self.sensor = NoSensor()
        if not self.sensor.present and backend != "none":
            info = self.sensor.info()
            log.warning(
                "pulse sensor not available (%s): playing open loop; it is retried "
                "and used as soon as it answers",
                info.get("error", "not found"),
            )
        self.heart = HeartAnalyzer(self.sensor.rate_hz)

    def _state_dir(self) -> Path | None:
        candidates = [
            self.opts.state_dir,
            os.environ.get("STATE_DIRECTORY", "").split(":")[0],
            str(self.config.store.state_dir),
        ]
        for cand in candidates:
            if not cand:
                continue
            path = Path(cand)
            try:
                path.mkdir(parents=True, exist_ok=True)
                if os.access(path, os.W_OK):
                    return path
            except OSError:
                pass
            if self.opts.state_dir or self.opts.service:
                break
        if not self.opts.service:
            xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
            path = Path(xdg) / "bedside"
            try:
                path.mkdir(parents=True, exist_ok=True)
                log.info(
                    "state directory %s is not writable here; using %s",
                    self.config.store.state_dir,
                    path,
                )
                return path
            except OSError:
                pass
        return None

    def _build_store(self) -> None:
        self.store: Any = None
        self.state_dir = self._state_dir()
        if self.state_dir is None:
            self._storage_fault(f"no writable state directory ({self.config.store.state_dir})")
            return
        try:
            from device.store.sessions import Store

            self.store = Store(self.state_dir / "sessions.db")
            self.store.prune(int(self.config.store.retention_days))
        except (StorageError, OSError) as exc:
            self.store = None
            self._storage_fault(str(exc))

    def _storage_fault(self, text: str) -> None:
        if self.storage_error != text:
            log.error("storage fault: %s (sound goes on; sessions are not recorded)", text)
        self.storage_error = text

    def _build_notifier(self) -> None:
        from device.box.systemd import Notifier

        self.notifier = Notifier()

    def _build_controls(self) -> None:
        self.controls: Any = None
        g = self.config.gpio
        backend = "fake" if self.opts.sim else str(g.backend)
        if backend == "none":
            return
        try:
            from device.box.controls import Controls
            from device.drivers.gpio import FakeGpio, RPiGpio

            gpio = FakeGpio(clock=self.clock.now) if backend == "fake" else RPiGpio()
            self.controls = Controls(
                gpio,
                pins={
                    "start_stop": int(g.pin_start_stop),
                    "volume_up": int(g.pin_volume_up),
                    "volume_down": int(g.pin_volume_down),
                    "like": int(g.pin_like),
                    "skip": int(g.pin_skip),
                },
                led_pin=int(g.pin_led),
                amp_pin=int(g.pin_amp_enable),
                active_low=bool(g.buttons_active_low),
                debounce_s=int(g.debounce_ms) / 1000.0,
                long_press_s=float(g.long_press_s),
            )
        except (HardwareError, OSError) as exc:
            log.warning("buttons, LED and amplifier pin unavailable: %s (sound goes on)", exc)
            self.controls = None

    def _build_console(self) -> None:
        self.console: Any = None
        port = self.opts.serial
        if port is None and not self.opts.sim:
            port = str(self.config.console.port) or None
        if not port:
            return
        from device.console.auth import PinAuth
        from device.console.server import ConsoleServer
        from device.drivers.serial_port import serial_opener

        auth = PinAuth(self.state_dir, clock=time.monotonic) if self.state_dir else None
        self.console = ConsoleServer(
            serial_opener(port, int(self.config.console.baud)), self, auth, clock=time.monotonic
        )
        self._emit_hooks.append(self.console.emit)

    def _schedule(self) -> None:
        block_s = self.loop.block_s
        add = self.loop.add_task
        add(
            "sensor",
            self._task_sensor,
            0.0,
            period=float(self.config.sensor.poll_interval_s),
            budget_s=0.02,
        )
        add("therapy", self._task_therapy, 0.0, period=THERAPY_PERIOD_S, budget_s=0.02)
        add(
            "status", self._task_status, float(self.config.service.status_interval_s), budget_s=0.05
        )
        add("store", self._task_store, 1.0, budget_s=0.1)
        if self.controls is not None:
            add("controls", self._task_controls, 0.0, budget_s=0.005, period=max(block_s, 0.02))
        if self.console is not None:
            # Polled after every block ...
            add("console", self._task_console, 0.0, budget_s=0.02, period=block_s)
            # ... and again halfway through each block's hand-over: replies wait half a block.
            self.loop.add_between(self._poll_console)
        prime_s = int(self.config.audio.buffer_blocks) * block_s
        add("start", self._task_start, prime_s, budget_s=0.05)
        if self.notifier.watchdog_period_s:
            add(
                "watchdog",
                self._task_watchdog,
                0.0,
                budget_s=0.005,
                period=self.notifier.watchdog_period_s / 2.0,
            )
        fault = os.environ.get(FAULT_ENV, "")
        if fault.startswith("hang-after:"):
            add("fault", self._task_hang, float(fault.split(":", 1)[1]))
        if self.opts.duration_s is not None:
            fade = float(self.config.audio.stop_fade_s)
            add("duration", self._task_duration, max(0.0, self.opts.duration_s - fade))

    # -- tasks --------------------------------------------------------------------------

    def _task_sensor(self, deadline: float) -> float:
        period = float(self.config.sensor.poll_interval_s)
        if self.listener is not None and self.pulse_model is not None:
            self._step_listener(deadline, period)
        block = self.sensor.poll()
        if block is not None and len(block):
            self.heart.feed(block)
        return deadline + period

    def _step_listener(self, t: float, dt: float) -> None:
        assert self.listener is not None and self.pulse_model is not None
        targets = self._targets
        pacer = targets.pacer_bpm if targets is not None and self.state == "playing" else None
        if targets is not None:
            self.listener.step(t, dt, pacer, targets)
        model = self.pulse_model
        model.set_heart(self.listener.hr_mean_bpm, self.listener.rsa_bpm)
        model.set_breathing(self.listener.breathing_bpm)
        off_at = float(self.config.sim.finger_off_at_s)
        off_for = float(self.config.sim.finger_off_for_s)
        st = t - self._session_t0
        model.set_contact(not (off_at >= 0 and off_at <= st < off_at + off_for))

    def _task_therapy(self, deadline: float) -> float:
        self._heart_state = self.heart.snapshot()
        if self.session is not None and self.state in ("playing", "ending"):
            st = self.clock.now() - self._session_t0
            self._targets = self.session.update(st, self._heart_state)
            self.engine.set_targets(self._targets)
            self._drain_session_events()
            if self._session_end_t is not None and st >= self._session_end_t:
                self.stop_session(reason="time")
            elif self.session.finished(st):
                self._end_session("program-end")
        if self.state == "stopping-session" and self.engine.faded_out:
            self._end_session(self._stop_reason or "stop")
        return deadline + THERAPY_PERIOD_S

    def _task_status(self, deadline: float) -> float:
        status = self.status()
        mode = self.opts.status
        if mode != "none":
            line = status_json(status) if mode == "json" else status_text(status)
            try:
                print(line, file=self._status_out, flush=True)
            except (BrokenPipeError, ValueError):
                self.opts.status = "none"
        if self.session_id is not None and self.state in ("playing", "ending", "stopping-session"):
            self._row_buffer.append(self._row(status))
        self.notifier.status(
            f"{status['state']} {status.get('program') or ''} t={status['t']:.0f}s"
        )
        return deadline + float(self.config.service.status_interval_s)

    def _row(self, status: dict[str, Any]) -> dict[str, object]:
        h = self._heart_state
        return {
            "t": round(self.clock.now() - self._session_t0, 3),
            "hr": status.get("hr"),
            "rmssd": getattr(h, "rmssd_ms", None),
            "coherence": getattr(h, "coherence", None),
            "quality": status.get("quality"),
            "contact": bool(status.get("contact")),
            "pacer": status.get("pacer"),
            "breathing": status.get("breathing"),
            "entrain_hz": status.get("entrain_hz"),
            "volume_db": status.get("level_db"),
        }

    def _task_store(self, deadline: float) -> float:
        if self.store is not None and self._row_buffer:
            rows, self._row_buffer = self._row_buffer, []
            try:
                self.store.add_rows(self.session_id, rows)
                self.storage_error = None
            except StorageError as exc:
                self._storage_fault(str(exc))
        if self.store is not None:
            self.store.prune_daily(int(self.config.store.retention_days))
        self._show_faults(deadline)
        return deadline + 1.0

    def _show_faults(self, now: float) -> None:
        """Blink the LED code of the first fault, or breathe when there is none."""
        if self.controls is None:
            return
        fault = None
        if self.opts.config_error:
            fault = "config"
        if self.storage_error is not None:
            fault = "storage"
        if not self.sink_healthy():
            fault = "audio"
        if not self.sensor.present and not isinstance(self.sensor, _no_sensor_type()):
            fault = "sensor"
        if fault != getattr(self, "_fault_shown", None):
            self.controls.show_fault(fault, now)
            self._fault_shown = fault

    def _task_controls(self, deadline: float) -> float:
        assert self.controls is not None
        pacer = self._targets.pacer_bpm if self._targets is not None else None
        for action in self.controls.poll(
            deadline, pacer_bpm=pacer, audio_level_db=self.engine.level_db
        ):
            self._button(action)
        return deadline + max(self.loop.block_s, 0.02)

    def _button(self, action: str) -> None:
        try:
            if action == "start_stop":
                if self.state in ("playing", "ending"):
                    self.stop_session(reason="button")
                else:
                    self.start_session()
            elif action == "stop_fade":
                if self.state in ("playing", "ending"):
                    self.stop_session(reason="button-long")
            elif action == "volume_up":
                self.set_volume_db(min(self.engine.volume_db + 3.0, self.engine.cap_dbfs))
            elif action == "volume_down":
                self.set_volume_db(max(self.engine.volume_db - 3.0, -60.0))
            elif action in ("like", "skip"):
                self.rate(action)
        except BedsideError as exc:
            log.info("button %s ignored: %s", action, exc)

    def _poll_console(self) -> None:
        assert self.console is not None
        self.console.poll(self.clock.now())

    def _task_console(self, deadline: float) -> float:
        assert self.console is not None
        self.console.poll(self.clock.now())
        return deadline + self.loop.block_s

    def _task_start(self, deadline: float) -> None:
        # The output buffer is primed with silence by now: amplifier on, then fade in.
        if self._exit_requested:
            return None
        if self.controls is not None:
            self.controls.amp(True)
        self._event(
            "boot",
            f"{PRODUCT} {__version__} audio={self.audio_spec} "
            f"sensor={'present' if self.sensor.present else 'absent'}",
        )
        if self.opts.config_error:
            self._event("config-fallback", self.opts.config_error)
        if self.state != "starting":
            pass  # a technician started a session on the console before this: keep it
        elif bool(self.config.service.auto_start) or self.opts.program:
            try:
                self.start_session(self.opts.program, self.opts.minutes)
            except BedsideError as exc:
                log.error("cannot start the session: %s", exc)
                self.state = "idle"
        else:
            self.state = "idle"
            self._sensor_standby(True)
        self.notifier.ready()
        self._ready_sent = True
        return None

    def _task_watchdog(self, deadline: float) -> float:
        if self._ready_sent and self.sink_healthy():
            self.notifier.watchdog()
        return deadline + self.notifier.watchdog_period_s / 2.0

    def _task_hang(self, deadline: float) -> None:
        log.warning("fault injection: the loop hangs now (%s)", os.environ.get(FAULT_ENV))
        while True:
            time.sleep(1.0)

    def _task_duration(self, deadline: float) -> None:
        self.request_exit("duration")
        return None

    # -- public control API (console, buttons) -------------------------------------------

    def sink_healthy(self) -> bool:
        """False while the audio device keeps failing."""
        return bool(getattr(self.sink, "healthy", True))

    def programs(self) -> list[Any]:
        """The programs available (built-in and user)."""
        from device.therapy.program import list_programs

        return list_programs(self._program_dirs())

    def _program_dirs(self) -> list[Path]:
        return [Path(str(self.config.therapy.programs_dir))]

    def start_session(self, program: str | None = None, minutes: float | None = None) -> int | None:
        """Start a session with ``program`` (default: the configured one).

        :raises StateError: a session is already playing.
        :raises ProgramError: the program does not exist or is invalid.
        """
        if self.state in ("playing", "ending", "stopping-session"):
            raise StateError(f"a session is already {self.state}; stop it first")
        if self._exit_requested or self.state in ("exiting", "stopping"):
            raise StateError("the box is shutting down")
        from device.therapy.program import load_program
        from device.therapy.session import TherapySession

        name = program or str(self.config.therapy.program)
        prog = load_program(name, self._program_dirs())
        if minutes is not None and not (0 < minutes <= 24 * 60):
            raise ValueError(f"minutes must be between 0 and 1440, not {minutes}")
        chooser = self._chooser(prog)
        self._sensor_standby(False)
        self.session = TherapySession(
            prog,
            pacer_target_bpm=float(self.config.therapy.pacer_target_bpm),
            seed=self.seed,
            chooser=chooser,
        )
        self._session_t0 = self.clock.now()
        self._session_end_t = None if minutes is None else minutes * 60.0
        self.state = "playing"
        self._targets = self.session.update(0.0, self.heart.snapshot())
        # While silent the engine jumps straight to the program's sound (no glide), then fades in.
        self.engine.set_targets(self._targets, immediate=True)
        self.engine.fade_in(float(self.config.audio.fade_in_s))
        self.engine.chime("start")
        self.session_id = None
        if self.store is not None:
            try:
                self.session_id = self.store.start_session(
                    prog.name, str(self.config.therapy.profile)
                )
            except StorageError as exc:
                self._storage_fault(str(exc))
        self._event("start", f"program={prog.name}")
        return self.session_id

    def _chooser(self, prog: Any) -> Any:
        if not bool(self.config.therapy.personalise):
            return None
        try:
            from device.therapy.bandit import Chooser
        except ImportError:
            return None
        state = None
        if self.store is not None:
            try:
                state = self.store.get_preference(f"bandit:{self.config.therapy.profile}")
            except StorageError as exc:
                self._storage_fault(str(exc))
        profile = str(self.config.therapy.profile)
        if state:
            return Chooser.from_state(state, seed=self.seed, profile=profile)
        return Chooser(seed=self.seed, profile=profile)

    def stop_session(self, reason: str = "stop") -> None:
        """Fade the session out within the stop fade (at most 2 s), then go idle."""
        if self.state not in ("playing", "ending"):
            raise StateError(f"no session is playing (state {self.state})")
        self.engine.fade_out(float(self.config.audio.stop_fade_s))
        self._stop_reason = reason
        self.state = "stopping-session"

    def _drain_session_events(self) -> None:
        for t, kind, detail in self.session.drain_events():
            if kind == "chime":
                self.engine.chime(detail)
            self._event(kind, detail, t=self._session_t0 + t)

    def _end_session(self, reason: str) -> None:
        if self.session is not None:
            st = self.clock.now() - self._session_t0
            # Tells the chooser how a session that ends early went, and records its stop.
            self.session.stop(st, reason)
            self._drain_session_events()
        else:
            self._event("stop", f"reason={reason}")
        self._flush_rows()
        if self.store is not None and self.session_id is not None:
            try:
                self.store.end_session(self.session_id, reason)
                chooser = getattr(self.session, "chooser", None)
                if chooser is not None:
                    self.store.set_preference(
                        f"bandit:{self.config.therapy.profile}", chooser.to_state()
                    )
            except StorageError as exc:
                self._storage_fault(str(exc))
        self.engine.fade_out(float(self.config.audio.stop_fade_s))
        self.session = None
        self.session_id = None
        self.state = "idle"
        self._sensor_standby(True)

    def _sensor_standby(self, on: bool) -> None:
        """Sensor dark between sessions; each session starts a fresh heart analysis."""
        set_standby = getattr(self.sensor, "set_standby", None)
        if set_standby is None:
            return
        if on:
            set_standby(True)
            self.heart = self._new_heart()
            self._heart_state = None
        elif getattr(self.sensor, "standby", False):
            set_standby(False)

    def _new_heart(self) -> Any:
        from device.dsp.heart import HeartAnalyzer

        return HeartAnalyzer(self.sensor.rate_hz)

    def _flush_rows(self) -> None:
        if self.store is not None and self._row_buffer and self.session_id is not None:
            rows, self._row_buffer = self._row_buffer, []
            try:
                self.store.add_rows(self.session_id, rows)
            except StorageError as exc:
                self._storage_fault(str(exc))
        self._row_buffer = []

    def set_volume_db(self, db: float) -> None:
        """Set the listener volume in dBFS (ramped at <= 3 dB/s).

        :raises ValueError: above the hard cap (the message names the cap) or below -60.
        """
        db = float(db)
        cap = self.engine.cap_dbfs
        if not math.isfinite(db) or db > cap:
            raise ValueError(f"volume {db:g} dB is above the cap of {cap:g} dBFS")
        if db < -60.0:
            raise ValueError(f"volume {db:g} dB is below the minimum of -60 dBFS")
        self.engine.set_volume_db(db)
        self.config = self.config.with_value("audio.volume_db", db)

    def set_cap_dbfs(self, db: float) -> None:
        """Set the hard cap in dBFS (service); lowers the volume with it when needed."""
        self.config = self.config.with_value("audio.cap_dbfs", float(db))
        self.engine.set_cap_dbfs(float(db))
        if self.engine.volume_db > db:
            self.set_volume_db(db)

    def sensor_info(self) -> dict[str, object]:
        """What ``SENSOR?`` shows: the driver's facts plus the analysis' contact and quality."""
        info = dict(self.sensor.info())
        h = self._heart_state or self.heart.snapshot()
        info.setdefault("contact", h.contact)
        info["quality"] = round(h.quality, 3)
        return info

    def set_config(self, key: str, text: str) -> None:
        """Validate and apply ``key = text`` (as the config file would be validated)."""
        new = self.config.with_value(key, text)
        if key == "audio.volume_db":
            self.set_volume_db(float(new.get(key)))  # type: ignore[arg-type]
            return
        if key == "audio.cap_dbfs":
            self.set_cap_dbfs(float(new.get(key)))  # type: ignore[arg-type]
            return
        self.config = new

    def config_path(self) -> Path:
        """The file ``CFG SAVE`` writes."""
        return Path(
            self.opts.config_path or os.environ.get("BEDSIDE_CONFIG") or "/etc/bedside/config.toml"
        )

    def save_config(self) -> Path:
        """Save the running configuration atomically; return the file written."""
        path = self.config_path()
        try:
            save_config(self.config, path)
        except OSError as exc:
            raise StorageError(f"cannot save {path}: {exc}") from exc
        self._event("config-saved", str(path))
        return path

    def config_defaults(self) -> None:
        """Return every key to its built-in default (volume and cap included, ramped)."""
        defaults = Config.defaults()
        self.engine.set_cap_dbfs(float(defaults.audio.cap_dbfs))
        self.engine.set_volume_db(
            min(float(defaults.audio.volume_db), float(defaults.audio.cap_dbfs))
        )
        self.config = defaults

    def events(self, n: int = 20) -> list[dict[str, object]]:
        """The last ``n`` events, oldest first."""
        out = list(self._events)[-n:] if n > 0 else []
        return [{"t": round(e.t, 3), "kind": e.kind, "detail": e.detail} for e in out]

    def sessions(self) -> list[dict[str, object]]:
        """Sessions in the store, oldest first."""
        if self.store is None:
            raise StorageError(self.storage_error or "no session store")
        return list(self.store.sessions())

    def export_rows(self, session_id: int) -> list[dict[str, object]]:
        """The 1 Hz rows of one session."""
        if self.store is None:
            raise StorageError(self.storage_error or "no session store")
        if self.session_id == session_id:
            self._flush_rows()
        return list(self.store.rows(session_id))

    def rate(self, kind: str) -> None:
        """Record a like or skip of what is playing (it teaches the personalisation)."""
        kind = kind.lower()
        if kind not in ("like", "skip"):
            raise ValueError(f"rating must be like or skip, not {kind!r}")
        if self.session is None:
            raise StateError("no session is playing")
        rate = getattr(self.session, "rate", None)
        if rate is not None:
            rate(kind)
        if self.store is not None and self.session_id is not None:
            try:
                self.store.add_rating(self.session_id, kind)
            except StorageError as exc:
                self._storage_fault(str(exc))
        self._event("rating", kind)

    def erase_userdata(self) -> dict[str, int]:
        """Erase every session, row, event, rating and learned preference."""
        if self.store is None:
            raise StorageError(self.storage_error or "no session store")
        if self.session is not None:
            raise StateError("stop the session before erasing user data")
        counts = self.store.erase_userdata()
        self._events.clear()
        self._event("erase", " ".join(f"{k}={v}" for k, v in counts.items()))
        return counts

    def selftest(self) -> list[tuple[str, bool, str]]:
        """Check sensor, audio, storage and clock; one ``(name, ok, detail)`` per check."""
        checks: list[tuple[str, bool, str]] = []
        info = self.sensor.info()
        if self.sensor.present:
            h = self.heart.snapshot()
            checks.append(
                (
                    "sensor",
                    True,
                    f"part=0x{int(info.get('part', 0) or 0):02x} "
                    f"rev={info.get('rev')} contact={h.contact} "
                    f"quality={h.quality:.2f}",
                )
            )
        else:
            checks.append(("sensor", False, str(info.get("error", "not present"))))
        ok = self.sink_healthy() and self.loop.blocks > 0
        checks.append(
            (
                "audio",
                ok,
                f"sink={self.audio_spec} blocks={self.loop.blocks} "
                f"underruns={getattr(self.sink, 'underruns', 0)}",
            )
        )
        if self.store is not None:
            try:
                detail = self.store.check()
                checks.append(("storage", True, detail))
            except StorageError as exc:
                checks.append(("storage", False, str(exc)))
        else:
            checks.append(("storage", False, self.storage_error or "no store"))
        drift = abs(self.clock.now() - self.engine.frames / self.engine.sample_rate)
        checks.append(
            (
                "clock",
                drift < 1.0,
                f"loop_t={self.clock.now():.3f} "
                f"audio_t={self.engine.frames / self.engine.sample_rate:.3f}",
            )
        )
        return checks

    def request_restart(self) -> None:
        """Fade out and exit with status 75 so systemd starts the service again."""
        self._restart_requested = True
        self.request_exit("restart")

    def request_exit(self, reason: str = "signal") -> None:
        """Fade out (within the stop fade) and end the run; safe from signal handlers."""
        if self._exit_requested:
            return
        self._exit_requested = True
        self.notifier.stopping()
        self.engine.fade_out(float(self.config.audio.stop_fade_s))
        self._stop_reason = reason
        if self.state in ("playing", "ending", "stopping-session"):
            self.state = "stopping"
        else:
            self.state = "exiting"

    def emit(self, line: str) -> None:
        """Send an unsolicited ``!`` line to the console (if one is attached)."""
        for hook in self._emit_hooks:
            hook(line)

    def _event(self, kind: str, detail: str, *, t: float | None = None) -> None:
        t = self.clock.now() if t is None else t
        self._events.append(_Event(t, kind, detail))
        log.info("event %s %s", kind, detail)
        if self.store is not None and self.session_id is not None:
            try:
                self.store.add_event(self.session_id, t, kind, detail)
            except StorageError as exc:
                self._storage_fault(str(exc))
        self.emit(f"!EVENT {kind} {detail}".rstrip())

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Everything the status line and ``STATUS?`` show."""
        h = self._heart_state or self.heart.snapshot()
        t = self.clock.now()
        targets = self._targets
        sstat: dict[str, Any] = self.session.status() if self.session is not None else {}
        estat = self.engine.status()
        remaining = sstat.get("remaining_s")
        if self._session_end_t is not None:
            left = self._session_end_t - (t - self._session_t0)
            remaining = left if remaining is None else min(remaining, left)
        playing = self.session is not None
        return {
            "t": t,
            "state": self.state,
            "program": getattr(getattr(self.session, "program", None), "name", None),
            "section": sstat.get("section"),
            "elapsed_s": (t - self._session_t0) if playing else None,
            "remaining_s": remaining,
            "hr": h.hr_bpm,
            "quality": h.quality,
            "contact": h.contact,
            "rmssd": h.rmssd_ms,
            "coherence": h.coherence,
            "breathing": h.breathing_bpm,
            "pacer": sstat.get("pacer_bpm", targets.pacer_bpm if targets and playing else None),
            "loop_state": sstat.get("loop_state"),
            "chosen": sstat.get("chosen"),
            "why": sstat.get("why"),
            "entrain_kind": estat.get(
                "entrain_kind", targets.entrain_kind if targets and playing else None
            ),
            "binaural_as_monaural": estat.get("binaural_as_monaural", False),
            "entrain_hz": (
                targets.entrain_hz
                if targets and playing and targets.entrain_kind != "none"
                else None
            ),
            "volume_db": self.engine.volume_db,
            "cap_dbfs": self.engine.cap_dbfs,
            "level_db": self.engine.level_db,
            "underruns": int(getattr(self.sink, "underruns", 0)),
            "overruns": self.loop.overruns,
            "late_blocks": self.loop.late_blocks,
            "uptime_s": time.time() - self.started_wall,
            "sensor": (
                "standby"
                if getattr(self.sensor, "standby", False)
                else "present"
                if self.sensor.present
                else "absent"
            ),
            "storage": "ok" if self.storage_error is None else "fault",
            "storage_error": self.storage_error,
            "config": self.opts.config_path or self.config.source or "defaults",
            "config_error": self.opts.config_error,
            "sim_hr": (self.listener.hr_mean_bpm if self.listener is not None else None),
            "sim_breathing": (self.listener.breathing_bpm if self.listener is not None else None),
            "loop_reason": sstat.get("loop_reason"),
        }

    # -- running --------------------------------------------------------------------------

    def run(self) -> int:
        """Run until the duration ends, the program ends (render) or a stop is requested.

        Returns the exit status: 0, or 75 when a restart was requested (systemd restarts).
        """
        rate = self.engine.sample_rate
        end_frames = None if self.opts.duration_s is None else round(self.opts.duration_s * rate)

        def done() -> bool:
            if end_frames is not None and self.engine.frames >= end_frames:
                return True
            if self.opts.exit_when_done and self.state == "idle" and self.engine.faded_out:
                return True
            if end_frames is not None and self._stop_reason == "duration":
                return False  # the fade ends just before the duration; play it out exactly
            return self._exit_requested and self.engine.faded_out and self._tail_done()

        self._tail_blocks = 0
        self.loop.run(until=done)
        self.state = "stopped"
        return 75 if self._restart_requested else 0

    def _tail_done(self) -> bool:
        # A few blocks of silence after the fade let the amplifier switch off without a pop.
        if self.controls is not None and self._tail_blocks == 0:
            self.controls.amp(False)
        self._tail_blocks += 1
        return self._tail_blocks > 2

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT fade out and end the run (within the 2 s stop fade)."""

        def handler(signum: int, frame: object) -> None:
            self.request_exit(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def close(self) -> None:
        """Release everything, in the order that keeps the sound clean. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.session is not None:
            self._end_session(self._stop_reason or "exit")
        for name in ("controls", "console", "sensor", "sink", "store"):
            part = getattr(self, name, None)
            if part is None:
                continue
            try:
                part.close()
            except Exception:
                log.exception("closing %s failed", name)

    def __enter__(self) -> Box:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Box state={self.state} t={self.clock.now():.1f}s audio={self.audio_spec}>"


def _no_sensor_type() -> type:
    from device.drivers.pulse_sensor import NoSensor

    return NoSensor
