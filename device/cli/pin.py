"""``bedside pin show-default|reset-default``: this box's service PIN, for root only.

Every box has its own default PIN, derived from its machine identity and a secret salt in
the state directory (no shared default password). ``show-default`` prints it for the
label or the commissioning sheet and says whether it is still the PIN in use;
``reset-default`` makes it the PIN again when a changed PIN was lost.
"""

from __future__ import annotations

import argparse
import os
import sys

from device.exc import StorageError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bedside pin``."""
    p = subparsers.add_parser(
        "pin", help="show or restore this box's default service PIN (root)", description=__doc__
    )
    sub = p.add_subparsers(dest="pin_command", metavar="show-default|reset-default", required=True)
    for name, text in (
        ("show-default", "print this box's default service PIN and whether it is in use"),
        ("reset-default", "make the default PIN the service PIN again"),
    ):
        q = sub.add_parser(name, help=text, description=text)
        q.add_argument("--state-dir", metavar="DIR", help="state directory (default: from config)")
        q.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
        q.set_defaults(func=main)


def _state_dir(args: argparse.Namespace) -> str:
    from device.cli.sessions import state_dir

    return str(state_dir(args))


def main(args: argparse.Namespace) -> int:
    """Run ``bedside pin``; exit 1 with a clear message unless run as root."""
    if os.geteuid() != 0:
        print(
            f"bedside pin {args.pin_command}: must be run as root "
            f"(sudo bedside pin {args.pin_command}): the PIN guards the box's service commands",
            file=sys.stderr,
        )
        return 1
    from device.console.auth import PinStore
    from device.console.identity import read_identity

    store = PinStore(_state_dir(args), read_identity().secret_id)
    try:
        if args.pin_command == "reset-default":
            store.reset_to_default()
            print(f"service PIN reset to this box's default ({store.pin_path})")
            return 0
        pin = store.default_pin()
        in_use = store.is_default()
    except StorageError as exc:
        print(f"bedside pin: {exc}", file=sys.stderr)
        return 1
    print(f"default service PIN: {pin}")
    if in_use:
        print("in use: yes")
    else:
        print("in use: no (changed with PIN SET; restore with: sudo bedside pin reset-default)")
    return 0
