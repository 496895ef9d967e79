"""``bedside config show|check``: the effective configuration, or validate a file."""

from __future__ import annotations

import argparse

from device.config import load_config, parse_config, read_config_text


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bedside config``."""
    p = subparsers.add_parser("config", help="show or check the configuration", description=__doc__)
    sub = p.add_subparsers(dest="config_command", metavar="show|check", required=True)
    show = sub.add_parser("show", help="print the effective configuration as TOML")
    show.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    show.add_argument(
        "--commented",
        action="store_true",
        help="explain every key and its allowed values (a default config file)",
    )
    show.set_defaults(func=show_config)
    check = sub.add_parser("check", help="validate a configuration file")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(func=check_config)


def show_config(args: argparse.Namespace) -> int:
    """Print the effective configuration (file over defaults) as TOML."""
    cfg = load_config(args.config)
    print(f"# effective configuration from {cfg.source or 'built-in defaults'}")
    print(cfg.to_toml(commented=args.commented))
    return 0


def check_config(args: argparse.Namespace) -> int:
    """Validate FILE; exit 0 and say so, or exit 2 with one line naming the first problem."""
    parse_config(read_config_text(args.file), file=args.file)
    print(f"{args.file}: ok")
    return 0
