"""``bedside render``: render a program with the simulated listener to a WAV, fast."""

from __future__ import annotations

import argparse
import logging

from device.cli.run import add_common, positive


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bedside render``."""
    p = subparsers.add_parser("render", help="render a program to a WAV file", description=__doc__)
    add_common(p)
    p.add_argument(
        "--minutes",
        type=positive,
        metavar="M",
        help="stop the session after M minutes (with the normal stop fade)",
    )
    p.add_argument("--out", required=True, metavar="FILE.wav", help="WAV file to write")
    p.add_argument("--status", choices=("text", "json", "none"), default="none")
    p.set_defaults(func=render)


def render(args: argparse.Namespace) -> int:
    """Render the whole program (its own ending included), or ``--minutes`` of it."""
    from device.app import Box, RunOptions
    from device.config import load_config
    from device.logsetup import setup_logging

    setup_logging(logging.WARNING)
    cfg = load_config(args.config)
    cfg = cfg.with_value("service.auto_start", True)
    opts = RunOptions(
        sim=True,
        audio=f"wav:{args.out}",
        program=args.program,
        speed=None,
        status=args.status,
        listener=args.listener,
        seed=args.seed,
        state_dir=args.state_dir,
        exit_when_done=True,
        minutes=args.minutes,
        config_path=args.config,
    )
    with Box(cfg, opts) as box:
        box.install_signal_handlers()
        status = box.run()
    print(f"rendered {box.engine.frames / box.engine.sample_rate:.1f} s to {args.out}")
    return status
