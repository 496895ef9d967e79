"""The ``bedside`` command line.

Each subcommand lives in its own module of this package. A module defines
``register(subparsers) -> None``, which adds its parser(s) and sets ``func`` to a handler
``(args) -> int``. Modules import numpy and hardware libraries inside their handlers only,
so ``bedside --help`` stays fast on a Pi.

Exit status: 0 success, 1 failure of the requested work, 2 bad usage or bad configuration
(with a one-line message on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from device import PRODUCT, __version__
from device.exc import ConfigError, InputFileError, UsageError

#: Subcommand modules, in the order ``--help`` lists them.
MODULES = (
    "run",
    "render",
    "config_cmd",
    "analyze_ppg",
    "sessions",
    "report",
    "profile",
    "ctl",
    "pin",
    "music",
)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """Return the full ``bedside`` argument parser with every available subcommand."""
    parser = _Parser(prog="bedside", description=f"{PRODUCT} bedside box")
    parser.add_argument("--version", action="version", version=f"{PRODUCT} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in MODULES:
        try:
            module = importlib.import_module(f"device.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"device.cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except (UsageError, ConfigError, InputFileError) as exc:
        print(f"bedside: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
