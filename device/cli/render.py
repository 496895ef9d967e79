"""``bedside render``: render a program straight through the sound engine into a WAV file.

An offline job, not a box: no sensor, no scheduler, no console, no store. Without
``--listener`` it plays the program's plain timeline; with ``--listener KIND`` it plays the
closed loop against the ideal heart of a simulated listener (``device.sim.listener``: the
heart state a perfect analyser would report, no PPG simulation). The session starts as the
box starts one (its targets at once, the configured fade-in and the start chime), follows
the program to its end (or ``--minutes``, then the stop fade) and ends at silence. On a
terminal a progress line shows how far it is.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from device.cli.run import positive

if TYPE_CHECKING:
    from device.config import Config
    from device.sim.listener import IdealHeart, Listener
    from device.sound.engine import Engine
    from device.therapy.session import TherapySession

#: Frames per block of an offline render: one engine segment (16384 frames, 0.34 s at
#: 48 kHz), so each block is one segment and the therapy ticks once per segment, which is
#: when new targets take effect in the engine anyway.
RENDER_BLOCK = 16384
#: Seconds between progress line updates (wall clock).
PROGRESS_EVERY_S = 0.5
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


def _number(value: object) -> float:
    """A config value that the config's own checks made a number, as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number from the config, got {value!r}")
    return float(value)


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class OfflineSession:
    """A therapy session driven by audio time, with an ideal heart when closed loop."""

    def __init__(
        self,
        engine: Engine,
        session: TherapySession,
        listener: Listener | None,
        heart: IdealHeart | None,
    ) -> None:
        self.engine = engine
        self.session = session
        self.listener = listener
        self.heart = heart
        self._t_last = 0.0

    def tick(self, t: float) -> bool:
        """Update the targets at audio time ``t`` s; False once the program is over."""
        heart = None if self.heart is None else self.heart.snapshot(t)
        targets = self.session.update(t, heart)
        if self.listener is not None:
            self.listener.step(t, t - self._t_last, targets.pacer_bpm, targets)
        self._t_last = t
        self.engine.set_targets(targets, immediate=t == 0.0)
        for _, kind, detail in self.session.drain_events():
            if kind == "chime":
                self.engine.chime(detail)
        return not self.session.finished(t)


def build(
    cfg: Config,
    program: str | None,
    listener_kind: str | None,
    seed: int | None,
) -> tuple[Engine, OfflineSession]:
    """The engine and the session of a render, from the config (no Box, no store)."""
    from device.sim.listener import IdealHeart, Listener
    from device.sound.engine import Engine
    from device.therapy.program import load_program
    from device.therapy.session import TherapySession

    a = cfg.audio
    s = int(_number(cfg.sim.seed)) if seed is None else int(seed)
    engine = Engine(
        sample_rate=int(_number(a.sample_rate)),
        block_frames=RENDER_BLOCK,
        output=str(a.output),
        cap_dbfs=_number(a.cap_dbfs),
        volume_db=_number(a.volume_db),
        seed=s,
    )
    prog = load_program(program or str(cfg.therapy.program), [str(cfg.therapy.programs_dir)])
    listener = heart = None
    if listener_kind is not None:
        listener = Listener(listener_kind, seed=s)
        heart = IdealHeart(listener)
    session = TherapySession(
        prog,
        pacer_target_bpm=_number(cfg.therapy.pacer_target_bpm),
        seed=s,
        closed_loop=listener is not None,
    )
    return engine, OfflineSession(engine, session, listener, heart)


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
    from device.drivers.audio import open_sink

    cpu0, wall0 = time.process_time(), time.monotonic()
    engine, run = build(cfg, program, listener, seed)
    rate = engine.sample_rate
    name = run.session.program.name
    planned = run.session.timeline.duration_s
    if minutes is not None:
        planned = min(planned, 60.0 * minutes)
    stop_fade = _number(cfg.audio.stop_fade_s)
    bar = Progress(progress, f"rendering {name}", planned + stop_fade)
    sink = open_sink(f"wav:{out}", sample_rate=rate, channels=2, block_frames=RENDER_BLOCK)
    reason = "program complete"
    try:
        run.tick(0.0)
        engine.fade_in(_number(cfg.audio.fade_in_s))
        engine.chime("start")
        t = 0.0
        playing = True
        tail_end = math.inf
        while True:
            sink.write(engine.render())
            t = engine.frames / rate
            bar.update(t)
            if playing:
                if minutes is not None and t >= 60.0 * minutes:
                    playing, reason = False, "time"
                elif not run.tick(t):
                    playing = False
                if not playing:
                    run.session.stop(t, reason)
                    engine.fade_out(stop_fade)
                    tail_end = t + TAIL_MAX_S
            elif engine.faded_out or t >= tail_end:
                break
        bar.total_s = t  # the fades end when they end: the render is complete
        bar.update(t, force=True)
        bar.done()
    finally:
        sink.close()
    return RenderResult(
        audio_s=engine.frames / rate,
        frames=engine.frames,
        cpu_s=time.process_time() - cpu0,
        wall_s=time.monotonic() - wall0,
        program=name,
        closed_loop=listener is not None,
        stop_reason=reason,
        loop_state="plain" if run.session.loop is None else run.session.loop.state,
    )


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
