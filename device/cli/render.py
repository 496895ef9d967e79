"""``bedside render``: render a program straight through the sound engine into a WAV file.

An offline job, not a box: no sensor, no console, no store. The session is the box's: the
same :class:`~device.box.session_runner.SessionRunner` starts it (its targets at once, the
configured fade-in and the start chime), ticks it four times a second on the box's loop
(:class:`~device.sched.loop.Loop`, here on a virtual clock as fast as it goes) and ends it
(the program's end, or ``--minutes`` then the stop fade) into silence, with the box's
voices: the listener's music from the configured music folder too. Without ``--listener``
it plays the program's plain timeline; with ``--listener KIND`` it closes the loop on the
ideal heart of a simulated listener (``device.sim.ideal_feed``: the heart state a perfect
analyser would report, no PPG simulation). On a terminal a progress line shows how far it is.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from device.cli.run import positive
from device.exc import StateError

if TYPE_CHECKING:
    from device.box.session_runner import SessionRunner
    from device.config import Config
    from device.drivers.audio import AudioSink
    from device.sched.loop import Loop
    from device.sim.ideal_feed import IdealFeed
    from device.sound.engine import Engine

log = logging.getLogger(__name__)

#: Frames per block of an offline render: 8192 (0.17 s at 48 kHz), shorter than the
#: therapy's control period (0.25 s), so the session ticks on its own grid as in the box,
#: never skipping a tick; the engine still works a whole 16384-frame segment at a time.
RENDER_BLOCK = 8192
#: Seconds between progress line updates (wall clock).
PROGRESS_EVERY_S = 0.5
#: A task's time budget offline, s: a render keeps no real-time deadline, so no overruns.
OFFLINE = math.inf
#: After the session, at most this long for fades and chimes to ring out (s of audio).
TAIL_MAX_S = 30.0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bedside render``."""
    p = subparsers.add_parser(
        "render",
        help="render a program to a WAV file (offline, fast)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    p.add_argument("--program", metavar="NAME", help="program to render (name or file)")
    p.add_argument(
        "--listener",
        metavar="KIND",
        help="close the loop on a simulated listener: compliant, sleeper, restless, non-compliant"
        " or a file (default: the program's plain timeline)",
    )
    p.add_argument("--seed", type=int, metavar="S", help="seed of the listener and the sound")
    p.add_argument(
        "--minutes",
        type=positive,
        metavar="M",
        help="stop the session after M minutes (with the normal stop fade)",
    )
    p.add_argument("--out", required=True, metavar="FILE.wav", help="WAV file to write")
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress line on stderr (auto: only on a terminal)",
    )
    p.set_defaults(func=render)


@dataclass
class RenderResult:
    """What a render produced."""

    audio_s: float
    frames: int
    cpu_s: float
    wall_s: float
    program: str
    closed_loop: bool
    stop_reason: str
    #: The closed loop's state at the end (``"plain"`` for the plain timeline).
    loop_state: str

    @property
    def cpu_per_audio_s(self) -> float:
        """CPU seconds per second of audio."""
        return self.cpu_s / self.audio_s if self.audio_s else math.nan


class Progress:
    """A one-line progress report rewritten in place (``\\r``) on a terminal."""

    def __init__(self, out: TextIO | None, label: str, total_s: float) -> None:
        self.out = out
        self.label = label
        self.total_s = total_s
        self._t0 = time.monotonic()
        self._next = self._t0

    def update(self, audio_s: float, force: bool = False) -> None:
        """Show ``audio_s`` seconds done (at most every :data:`PROGRESS_EVERY_S`)."""
        if self.out is None:
            return
        now = time.monotonic()
        if now < self._next and not force:
            return
        self._next = now + PROGRESS_EVERY_S
        share = min(1.0, audio_s / self.total_s) if self.total_s > 0 else 1.0
        speed = audio_s / max(now - self._t0, 1e-6)
        self.out.write(
            f"\r{self.label}: {_clock(audio_s)} / {_clock(self.total_s)}"
            f" ({100 * share:3.0f} %), {speed:,.0f}x real time  "
        )
        self.out.flush()

    def done(self) -> None:
        """End the line."""
        if self.out is not None:
            self.out.write("\n")
            self.out.flush()


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


@dataclass
class OfflineBox:
    """The parts of a render: the box's engine, loop and session runner, without a box."""

    engine: Engine
    sink: AudioSink
    loop: Loop
    runner: SessionRunner
    feed: IdealFeed | None
    #: The throw-away state directory of the music index.
    scratch: Path
    #: The stop fade, s.
    stop_fade_s: float
    #: How often the listener moves: with each control tick, s.
    period_s: float = 0.25

    def step_listener(self, deadline: float) -> float:
        """Loop task: move the listener with what plays, as the box's sensor task does."""
        if self.feed is not None:
            self.feed.step(deadline, self.runner.pacer_bpm(), self.runner.targets)
        return deadline + self.period_s

    def decode_music(self, deadline: float) -> float:
        """Loop task: decode the music ahead after each block (no decoder thread offline)."""
        if self.runner.music is not None:
            self.runner.music.feed.decode()
        return deadline + self.loop.block_s


def build(cfg: Config, out: str, listener: str | None, seed: int | None) -> OfflineBox:
    """The engine, WAV sink, loop and session runner of a render (no Box, no store)."""
    from device.box.assemble import build_engine, open_music, scan_music
    from device.box.session_runner import THERAPY_PERIOD_S, SessionRunner
    from device.config.settings import BoxSettings, SessionSettings
    from device.drivers.audio import open_sink
    from device.drivers.no_sensor import NoSensor
    from device.heart.feed import HeartFeed
    from device.sched.clock import VirtualClock
    from device.sched.loop import Loop
    from device.sim.ideal_feed import IdealFeed
    from device.store.recorder import Recorder

    s = BoxSettings.from_config(cfg)
    run_seed = s.sim.seed if seed is None else seed
    feed = None if listener is None else IdealFeed(listener, seed=run_seed)
    engine = build_engine(s.audio, RENDER_BLOCK, seed=run_seed)
    rate = s.audio.sample_rate
    sink = open_sink(f"wav:{out}", sample_rate=rate, channels=2, block_frames=RENDER_BLOCK)
    clock = VirtualClock(None)
    loop = Loop(clock, engine.render, sink.write, sample_rate=rate, block_frames=RENDER_BLOCK)
    # The music index of the configured folder is built in a scratch state directory:
    # a render never writes the listener's store.
    scratch = Path(tempfile.mkdtemp(prefix="bedside-render-"))
    recorder = Recorder(None, clock.now, lambda line: None)
    music = open_music(cfg, scratch, engine, recorder, run_seed)
    scan = scan_music(music, scratch, wait=True, idle=False)
    if scan is not None:
        scan.close()
    if music is not None:
        music.feed.synchronous = True
    runner = SessionRunner(
        engine,
        feed if feed is not None else HeartFeed(NoSensor()),
        recorder,
        None,
        clock.now,
        lambda: SessionSettings.from_config(cfg),
        seed=run_seed,
        music=music,
        closed_loop=feed is not None,
    )
    box = OfflineBox(engine, sink, loop, runner, feed, scratch, s.audio.stop_fade_s)
    add = loop.add_task
    if feed is not None:
        add("listener", box.step_listener, 0.0, period=THERAPY_PERIOD_S, budget_s=OFFLINE)
    add("therapy", runner.tick, 0.0, period=THERAPY_PERIOD_S, budget_s=OFFLINE)
    if music is not None:
        add("music", box.decode_music, 0.0, period=loop.block_s, budget_s=OFFLINE)
    return box


def render_to(
    cfg: Config,
    out: str,
    *,
    program: str | None = None,
    listener: str | None = None,
    seed: int | None = None,
    minutes: float | None = None,
    progress: TextIO | None = None,
) -> RenderResult:
    """Render one session into the WAV file ``out``; return what was rendered."""
    cpu0, wall0 = time.process_time(), time.monotonic()
    box = build(cfg, out, listener, seed)
    engine, runner = box.engine, box.runner
    rate = engine.sample_rate
    try:
        runner.start(program, minutes)
        session = runner.session
        if session is None:
            raise StateError("the session did not start")
        planned = session.timeline.duration_s
        if minutes is not None:
            planned = min(planned, 60.0 * minutes)
        bar = Progress(progress, f"rendering {session.program.name}", planned + box.stop_fade_s)
        box.loop.run(until=_done(box, bar))
        bar.total_s = engine.frames / rate  # the fades end when they end: the render is complete
        bar.update(bar.total_s, force=True)
        bar.done()
    except BaseException:
        _close(box)
        Path(out).unlink(missing_ok=True)  # no half-written file left behind
        raise
    _close(box)
    return RenderResult(
        audio_s=engine.frames / rate,
        frames=engine.frames,
        cpu_s=time.process_time() - cpu0,
        wall_s=time.monotonic() - wall0,
        program=session.program.name,
        closed_loop=listener is not None,
        stop_reason=runner.end_reason or "stopped",
        loop_state="plain" if session.loop is None else session.loop.state,
    )


def _done(box: OfflineBox, bar: Progress) -> Callable[[], bool]:
    """The loop's stop test: the session has ended and faded out (or its tail rang out)."""
    engine, runner = box.engine, box.runner
    tail_end = math.inf

    def done() -> bool:
        nonlocal tail_end
        t = engine.frames / engine.sample_rate
        bar.update(t)
        if runner.session is not None:
            return False
        tail_end = min(tail_end, t + TAIL_MAX_S)
        return engine.faded_out or t >= tail_end

    return done


def _close(box: OfflineBox) -> None:
    box.sink.close()
    if box.runner.music is not None:
        box.runner.music.close()
    shutil.rmtree(box.scratch, ignore_errors=True)


def render(args: argparse.Namespace) -> int:
    """Render the whole program (its own ending included), or ``--minutes`` of it."""
    from device.config import load_config
    from device.exc import BedsideError

    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    try:
        cfg = load_config(args.config)
        result = render_to(
            cfg,
            args.out,
            program=args.program,
            listener=args.listener,
            seed=args.seed,
            minutes=args.minutes,
            progress=sys.stderr if show else None,
        )
    except (BedsideError, ValueError, OSError) as exc:
        print(f"bedside render: {exc}", file=sys.stderr)
        return 2
    loop = "closed loop" if result.closed_loop else "plain timeline"
    print(
        f"rendered {result.audio_s:.1f} s of {result.program} ({loop}) to {args.out}"
        f" in {result.wall_s:.1f} s ({result.cpu_per_audio_s:.4f} CPU s per s of audio)"
    )
    return 0
