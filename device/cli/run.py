"""``bedside run``: run the box (real hardware, or simulated with ``--sim``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from device.exc import AudioDeviceError, ConfigError, StorageError, UsageError

if TYPE_CHECKING:
    from device.box.app import Box
    from device.config import Config

log = logging.getLogger("device.run")


def parse_speed(text: str) -> float | None:
    """``N`` (a positive number) or ``max``; ``None`` stands for max."""
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"speed must be a number > 0 or 'max', not {text!r}"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"speed must be > 0 or 'max', not {text!r}")
    return value


def parse_audio(text: str) -> str:
    """``pyaudio``, ``null`` or ``wav:PATH``, optionally after ``realtime:``."""
    inner = text[len("realtime:") :] if text.startswith("realtime:") else text
    if inner in ("pyaudio", "null") or (inner.startswith("wav:") and len(inner) > 4):
        return text
    raise argparse.ArgumentTypeError(
        f"audio must be pyaudio, null or wav:PATH (optionally after realtime:), not {text!r}"
    )


def positive(text: str) -> float:
    """A number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, not {text!r}")
    return value


def add_common(p: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``render``."""
    p.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    p.add_argument("--program", metavar="NAME", help="program to play (name or file)")
    p.add_argument(
        "--listener",
        metavar="KIND",
        help="simulated listener: compliant, sleeper, restless, non-compliant or a file",
    )
    p.add_argument("--seed", type=int, metavar="S", help="seed of the simulation")
    p.add_argument("--state-dir", metavar="DIR", help="where sessions and preferences live")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bedside run``."""
    p = subparsers.add_parser("run", help="run the box", description=__doc__)
    add_common(p)
    p.add_argument(
        "--sim",
        action="store_true",
        help="simulated sensor, listener and buttons (no Pi hardware needed)",
    )
    p.add_argument(
        "--audio",
        type=parse_audio,
        metavar="[realtime:]pyaudio|wav:PATH|null",
        help="audio output (default from config)",
    )
    p.add_argument(
        "--duration", type=positive, metavar="SECONDS", help="stop after this many seconds of audio"
    )
    p.add_argument(
        "--minutes",
        type=positive,
        metavar="M",
        help="length of the first session (default: the program's own)",
    )
    p.add_argument(
        "--speed",
        type=parse_speed,
        default=1.0,
        metavar="N|max",
        help="with a WAV or null sink: run N times real time, or as fast as possible",
    )
    p.add_argument("--serial", metavar="PORT", help="serve the technician console on PORT")
    p.add_argument(
        "--status",
        choices=("text", "json", "none"),
        default=None,
        help="status line once per second (default text; none under --service)",
    )
    p.add_argument(
        "--service",
        action="store_true",
        help="run as the system service: a bad config falls back to defaults",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(func=run)


def load_for_run(args: argparse.Namespace) -> tuple[Config, str | None]:
    """Load the configuration; under ``--service`` a bad file keeps its valid keys (the cap
    never rises because a file was broken) and the refused ones are named in the error."""
    from device.config import load_config, load_config_lenient

    if not args.service:
        return load_config(args.config), None
    cfg, errors = load_config_lenient(args.config)
    for exc in errors:
        log.error("configuration refused for one key, its default is used: %s", exc)
    return cfg, "; ".join(map(str, errors)) or None


def run(args: argparse.Namespace) -> int:
    """Run the box until the duration ends or SIGTERM/SIGINT (exit 0 after the fade)."""
    from device.logsetup import setup_logging

    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    cfg, config_error = load_for_run(args)
    from device.box.app import Box, RunOptions

    status = args.status or ("none" if args.service else "text")
    opts = RunOptions(
        sim=args.sim,
        audio=args.audio,
        program=args.program,
        duration_s=args.duration,
        speed=args.speed,
        serial=args.serial,
        status=status,
        listener=args.listener,
        seed=args.seed,
        state_dir=args.state_dir,
        service=args.service,
        minutes=args.minutes,
        config_error=config_error,
        config_path=args.config,
    )
    if args.program:
        # A program that does not exist is bad usage: say so before any sound is made.
        from device.therapy.program import load_program

        try:
            load_program(args.program, [Path(str(cfg.get("therapy.programs_dir")))])
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
    try:
        box = Box(cfg, opts)
    except AudioDeviceError as exc:
        spec = args.audio or str(cfg.get("audio.backend"))
        if spec.removeprefix("realtime:").startswith("wav"):
            # A WAV file that cannot be made: the path is what is wrong, not the sound card.
            raise UsageError(
                f"{exc}; give --audio wav:PATH a file in a folder that exists and is writable"
            ) from None
        if args.sim:
            # A demo on a machine without a sound card: say how to run it instead.
            raise UsageError(
                f"{exc}; without a sound card use --audio null or --audio wav:PATH"
            ) from None
        print(f"bedside: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"bedside: error: {exc}", file=sys.stderr)
        return 1
    with box:
        if args.sim:
            print(sim_notice(box, show_pin=sys.stderr.isatty()), file=sys.stderr)
        box.install_signal_handlers()
        return box.run()


def sim_notice(box: Box, *, show_pin: bool) -> str:
    """One line for a ``--sim`` run: where its state lives and, with a console, its PIN.

    The PIN itself only with ``show_pin`` (stderr is a person's terminal): the PIN is never
    written into a log, so a run whose stderr is a file or the journal says where to find
    it instead.
    """
    where = box.state_dir
    if where is None:
        return "bedside: simulated box: no state directory (nothing is recorded)"
    kept = "a temporary folder, removed at exit" if box.parts.scratch_dir else "kept"
    text = f"bedside: simulated box: state in {where} ({kept})"
    auth = None if box.console is None else box.console.console.auth
    if auth is None:
        return text
    if not show_pin:
        return f"{text}; console service PIN: sudo bedside pin show-default --state-dir {where}"
    try:
        pin = auth.store.default_pin()
    except StorageError as exc:
        return f"{text}; service PIN unavailable: {exc}"
    return f"{text}; console service PIN {pin} (unless changed with PIN SET)"
