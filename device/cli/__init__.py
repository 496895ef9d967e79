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
import re
import sys
from collections.abc import Sequence
from typing import Any

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


_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)


def plain(text: str) -> str:
    """``text`` without reStructuredText markup (double backquotes, ``:class:`` roles)."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return _LITERAL.sub(r"\1", text)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit 2, and whose help texts
    show plain words where the docstrings they come from have markup."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        for key in ("description", "epilog"):
            value = kwargs.get(key)
            if isinstance(value, str):
                kwargs[key] = plain(value)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """As :meth:`argparse.ArgumentParser.add_argument`, with the help text made plain."""
        value = kwargs.get("help")
        if isinstance(value, str):
            kwargs["help"] = plain(value)
        return super().add_argument(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}; {self.prog} --help lists the options", command=self.prog)


def build_parser() -> argparse.ArgumentParser:
    """Return the full ``bedside`` argument parser with every available subcommand."""
    parser = _Parser(prog="bedside", description=f"{PRODUCT} bedside box")
    parser.add_argument("--version", action="version", version=f"{PRODUCT} {__version__}")
    parser.set_defaults(func=None)
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
        if args.func is None:
            parser.print_help(sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except (UsageError, ConfigError, InputFileError) as exc:
        # "bedside run: error: ...": the command that refused, named once.
        command = getattr(exc, "command", None) or "bedside"
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
