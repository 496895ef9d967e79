"""Build the running box's parts from its settings: the one place that reads the config.

:func:`assemble` turns a validated :class:`~device.config.Config` and the run's
:class:`~device.box.options.RunOptions` into :class:`Parts`: the engine and its sink, the
clock and the loop they drive, the pulse sensor (real, absent or over the simulator), the
session store, the systemd notifier and the buttons/LED/amplifier. The console is built by
:func:`build_console` once the box it acts on exists. Parts that may be missing (sensor,
store, GPIO) are logged and left out; the sound always plays.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from device.box.options import RunOptions
from device.box.systemd import Notifier
from device.config import Config
from device.config.settings import AudioSettings, BoxSettings
from device.controls.panel import Controls
from device.drivers.audio import AudioSink, open_sink
from device.exc import HardwareError, StateError, StorageError
from device.heart.feed import HeartFeed, PulseInput
from device.music.choice import TrackChooser
from device.music.composer.voice import composer_in
from device.music.player import MusicPlayer
from device.music.scan import MusicScan
from device.sched.clock import RealClock, VirtualClock
from device.sched.loop import Loop
from device.sim.rig import SimRig
from device.sound.engine import Engine
from device.store.keys import tracks_key
from device.store.location import state_dirs, user_state_dir
from device.store.permissions import prepare_state_dir
from device.store.recorder import Recorder

if TYPE_CHECKING:
    from device.box.api import BoxApi
    from device.console.server import ConsoleServer

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """Everything the box runs, built from its settings."""

    settings: BoxSettings
    engine: Engine
    sink: AudioSink
    audio_spec: str
    clock: RealClock | VirtualClock
    loop: Loop
    heart: HeartFeed
    #: The simulated listener and chip (``--sim`` only).
    rig: SimRig | None
    recorder: Recorder
    state_dir: Path | None
    #: A throw-away state directory (a ``--sim`` run without ``--state-dir``), removed at close.
    scratch_dir: Path | None
    notifier: Notifier
    controls: Controls | None
    #: A sensor is configured, so its absence is a fault.
    sensor_expected: bool
    #: The listener's music (``None``: no state directory or an unreadable index); it may
    #: have no track yet (silence until its scan indexes some).
    music: MusicPlayer | None = None
    #: The box's own scan of the music folder (``None``: no music or no such folder).
    music_scan: MusicScan | None = None


def sink_spec(settings: BoxSettings, opts: RunOptions) -> str:
    """The sink asked for: ``--audio`` over ``audio.backend`` (``wav`` = ``audio.wav_path``)."""
    spec = opts.audio or settings.audio.backend
    return f"wav:{settings.audio.wav_path}" if spec == "wav" else spec


def assemble(cfg: Config, opts: RunOptions, emit: Callable[[str], None]) -> Parts:
    """Build the box's parts from ``cfg`` and ``opts``; ``emit`` sends a ``!`` console line.

    :raises AudioDeviceError: the sound output cannot be opened.
    :raises ConfigError: a simulated listener that does not exist.
    """
    s = BoxSettings.from_config(cfg)
    a = s.audio
    run_seed = s.sim.seed if opts.seed is None else opts.seed
    # The simulation's seed never reaches a real box's sound (its noise is the same each night).
    engine = build_engine(a, a.block_frames, seed=run_seed if opts.sim else 0)
    composer = composer_in(engine.voices)
    if composer is not None:
        composer.start_worker()  # the box composes (and loads FluidSynth) off the audio path
    spec = sink_spec(s, opts)
    sink = open_sink(
        spec,
        sample_rate=a.sample_rate,
        channels=2,
        device=a.device,
        buffer_blocks=a.buffer_blocks,
        block_frames=a.block_frames,
        sample_format=a.sample_format,
    )
    clock: RealClock | VirtualClock = RealClock() if sink.paces else VirtualClock(opts.speed)
    loop = Loop(
        clock, engine.render, sink.write, sample_rate=a.sample_rate, block_frames=a.block_frames
    )
    try:
        rig, sensor, expected = _pulse(s, opts, clock.now, run_seed)
    except BaseException:
        sink.close()
        raise
    heart = HeartFeed(sensor)
    state_dir, scratch = _state_dir(s, opts)
    recorder = _recorder(s, state_dir, clock.now, emit)
    music = open_music(cfg, state_dir, engine, recorder, run_seed if opts.sim else None)
    if music is not None:
        music.sync = not sink.paces  # a virtual clock waits for the decoder (never a real one)
    # Idle priority where real-time audio plays; a virtual clock has none to protect.
    music_scan = scan_music(music, state_dir, wait=False, idle=sink.paces)
    return Parts(
        settings=s,
        engine=engine,
        sink=sink,
        audio_spec=spec,
        clock=clock,
        loop=loop,
        heart=heart,
        rig=rig,
        recorder=recorder,
        state_dir=state_dir,
        scratch_dir=scratch,
        notifier=Notifier(),
        controls=_controls(s, opts, clock.now),
        sensor_expected=expected,
        music=music,
        music_scan=music_scan,
    )


def build_engine(a: AudioSettings, block_frames: int, *, seed: int) -> Engine:
    """The sound engine of the ``[audio]`` settings ``a`` (the box's and a render's)."""
    rate, cap, volume = a.sample_rate, a.cap_dbfs, a.volume_db
    return Engine(
        sample_rate=rate, block_frames=block_frames, output=a.output, cap_dbfs=cap,
        volume_db=volume, seed=seed,
    )  # fmt: skip


def open_music(
    cfg: Config, state_dir: Path | None, engine: Engine, recorder: Recorder, seed: int | None
) -> MusicPlayer | None:
    """The music player over ``music.dir`` with its voice in the engine, or ``None`` (logged)."""
    music_dir = str(cfg.get("music.dir"))
    if state_dir is None:
        log.info("no music: no state directory for the music index")
        return None
    profile = str(cfg.get("therapy.profile"))
    state = recorder.preference(tracks_key(profile))
    chooser = TrackChooser(
        seed=int.from_bytes(os.urandom(4), "little") if seed is None else seed,
        profile=profile,
        state=state if isinstance(state, dict) and state else None,
    )
    try:
        player = MusicPlayer.open(music_dir, state_dir, engine.sample_rate, chooser)
    except (StorageError, OSError) as exc:
        log.warning("no music: the music index cannot be read (%s)", exc)
        return None
    engine.add_voice(player.voice)
    return player


def scan_music(
    music: MusicPlayer | None, state_dir: Path | None, *, wait: bool, idle: bool = True
) -> MusicScan | None:
    """Start the box's scan of the music folder in a child (see :mod:`device.music.scan`).

    The box never waits for it (``wait`` False): its loop polls the child
    (:meth:`MusicScan.poll`) and the tracks arrive when it is done; meanwhile the status shows
    ``music=scanning n/N``. ``bedside render`` waits (``wait``), so it renders the tracks and
    repeats exactly.
    """
    if music is None or state_dir is None:
        return None
    if not os.path.isdir(music.folder):
        log.info("no music: the music folder %s does not exist", music.folder)
        return None
    scan = MusicScan(music.folder, state_dir, music.set_tracks, idle=idle)
    music.scan_state = lambda: scan.state
    if scan.start() and wait:
        scan.wait()
    # Otherwise never waited for: the loop polls it (a virtual clock paces with it).
    return scan


def music_of(parts: Parts) -> MusicPlayer:
    """The box's music player. :raises StateError: the box has no music (no state directory)."""
    if parts.music is None:
        raise StateError("no music: the box has no state directory for the music index")
    return parts.music


def rescan_music(parts: Parts) -> dict[str, object]:
    """``MUSIC SCAN``: scan the music folder again in a child; the loop never waits for it.

    :raises StateError: the box has no music, or a scan is running.
    """
    music = music_of(parts)
    if parts.music_scan is None:  # the folder was missing at start (a USB stick put in since)
        assert parts.state_dir is not None  # a player exists only with a state directory
        scan = parts.music_scan = MusicScan(
            music.folder, parts.state_dir, music.set_tracks, idle=parts.sink.paces
        )
        music.scan_state = lambda: scan.state
    if parts.music_scan.running:
        raise StateError(f"a scan of {music.folder} is running")
    if not parts.music_scan.start():
        raise StateError(f"the scan of {music.folder} cannot start (see the log)")
    return {"scanning": music.folder}


def _pulse(
    s: BoxSettings, opts: RunOptions, now: Callable[[], float], seed: int
) -> tuple[SimRig | None, PulseInput, bool]:
    from device.drivers.pulse_sensor import NoSensor, PulseSensor

    p = s.sensor
    settings = dict(
        sample_rate_sps=p.sample_rate_sps,
        averaging=p.averaging,
        pulse_width_us=p.pulse_width_us,
        adc_range_na=p.adc_range_na,
        led_red_ma=p.led_red_ma,
        led_ir_ma=p.led_ir_ma,
    )
    rig = None
    sensor: PulseInput
    backend = "sim" if opts.sim else p.backend
    if backend == "sim":
        rig = SimRig(
            now,
            listener=opts.listener or s.sim.listener,
            seed=seed,
            finger_off_at_s=s.sim.finger_off_at_s,
            finger_off_for_s=s.sim.finger_off_for_s,
            address=p.address,
        )
        sensor = PulseSensor(
            rig.bus,
            address=p.address,
            bus_name="simulated",
            backend="simulated",
            clock=now,
            **settings,  # type: ignore[arg-type]
        )
    elif backend == "max30102":
        from device.drivers.i2c import open_i2c_bus

        bus_no = p.i2c_bus
        sensor = PulseSensor(
            lambda: open_i2c_bus(bus_no),
            address=p.address,
            bus_name=f"/dev/i2c-{bus_no}",
            clock=now,
            **settings,  # type: ignore[arg-type]
        )
    else:
        sensor = NoSensor()
    if not sensor.present and backend != "none":
        log.warning(
            "pulse sensor not available (%s): playing open loop; it is retried "
            "and used as soon as it answers",
            sensor.info().get("error") or "not found",
        )
    return rig, sensor, backend != "none"


def _state_dir(s: BoxSettings, opts: RunOptions) -> tuple[Path | None, Path | None]:
    """The state directory and, for a throw-away one, the same path to remove at close.

    A simulated run without ``--state-dir`` (a demo, a render) never touches the
    listener's store: it gets a private temporary directory.
    """
    if opts.sim and not opts.state_dir:
        scratch = Path(tempfile.mkdtemp(prefix="bedside-sim-"))
        return scratch, scratch
    for path in state_dirs(opts.state_dir, lambda: s.store.state_dir):
        try:
            # The box's own directories are tightened (0700/0750); a --state-dir given by hand
            # only if it holds nothing but the box's files.
            prepare_state_dir(path, owned=not opts.state_dir)
            if os.access(path, os.W_OK):
                return path, None
        except OSError:
            pass
        if opts.state_dir or opts.service:
            break
    if not opts.service:
        path = user_state_dir()
        try:
            path.mkdir(parents=True, exist_ok=True)
            log.info("state directory %s is not writable here; using %s", s.store.state_dir, path)
            return path, None
        except OSError:
            pass
    return None, None


def close_parts(parts: Parts, console: ConsoleServer | None) -> None:
    """Close the parts in the order that keeps the sound clean; a failure is logged, not raised."""
    p = parts
    closers: list[tuple[str, Callable[[], None] | None]] = [
        ("controls", None if p.controls is None else p.controls.close),
        ("console", None if console is None else console.close),
        ("sensor", p.heart.close),
        ("music scan", None if p.music_scan is None else p.music_scan.close),
        ("music", None if p.music is None else p.music.close),
        ("sink", p.sink.close),
        ("composer", getattr(composer_in(p.engine.voices), "close", None)),
        ("store", p.recorder.close),
    ]
    for name, close in closers:
        try:
            if close is not None:
                close()
        except Exception:
            log.exception("closing %s failed", name)
    remove_scratch(p.scratch_dir)


def remove_scratch(path: Path | None) -> None:
    """Remove a throw-away state directory (nothing when ``path`` is ``None``)."""
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def _recorder(
    s: BoxSettings, state_dir: Path | None, now: Callable[[], float], emit: Callable[[str], None]
) -> Recorder:
    if state_dir is None:
        return Recorder(None, now, emit, error=f"no writable state directory ({s.store.state_dir})")
    try:
        from device.store.sessions import Store

        store = Store(state_dir / "sessions.db")
        store.prune(s.store.retention_days)
    except (StorageError, OSError) as exc:
        return Recorder(None, now, emit, error=str(exc))
    return Recorder(store, now, emit)


def _controls(s: BoxSettings, opts: RunOptions, now: Callable[[], float]) -> Controls | None:
    g = s.gpio
    backend = "fake" if opts.sim else g.backend
    if backend == "none":
        return None
    try:
        from device.drivers.fake_gpio import FakeGpio
        from device.drivers.gpio import GpioBackend, RPiGpio

        gpio: GpioBackend = FakeGpio(clock=now) if backend == "fake" else RPiGpio()
        return Controls(
            gpio,
            pins=g.button_pins(),
            led_pin=g.pin_led,
            amp_pin=g.pin_amp_enable,
            active_low=g.buttons_active_low,
            debounce_s=g.debounce_ms / 1000.0,
            long_press_s=g.long_press_s,
        )
    except (HardwareError, OSError) as exc:
        log.warning("buttons, LED and amplifier pin unavailable: %s (sound goes on)", exc)
        return None


def build_console(
    box: BoxApi, settings: BoxSettings, opts: RunOptions, state_dir: Path | None
) -> ConsoleServer | None:
    """The technician console on ``--serial`` (or ``console.port`` on a real box), or none."""
    port = opts.serial
    if port is None and not opts.sim:
        port = settings.console.port or None
    if not port:
        return None
    from device.console.auth import PinAuth
    from device.console.server import ConsoleServer
    from device.drivers.serial_port import serial_opener

    auth = PinAuth(state_dir, clock=time.monotonic) if state_dir else None
    return ConsoleServer(
        serial_opener(port, settings.console.baud), box, auth, clock=time.monotonic
    )
