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
from pathlib import Path

from device.exc import StorageError, UsageError


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


#: Files only a box's state directory holds (one of them marks a folder as a box's).
BOX_FILES = ("sessions.db", "console_pin.json", "console_pin.secret", "music.db")


def check_box_folder(path: str, given: bool, command: str = "bedside pin") -> None:
    """Refuse a folder that holds no box: a PIN made up for it would match no box.

    The configured state directory may still be empty (installed, never started); a folder
    given with ``--state-dir`` must hold one of the box's files.

    :raises UsageError: no such folder, or a ``--state-dir`` with none of :data:`BOX_FILES`.
    """
    folder = Path(path)
    hint = "give the box's state directory (store.state_dir, default /var/lib/bedside)"
    if not folder.is_dir():
        raise UsageError(
            f"no box keeps its state in {path} (no such folder); {hint}", command=command
        )
    if given and not any((folder / name).exists() for name in BOX_FILES):
        raise UsageError(
            f"{path} holds no box's state (none of {', '.join(BOX_FILES)}); {hint}",
            command=command,
        )


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

    folder = _state_dir(args)
    check_box_folder(folder, bool(args.state_dir), f"bedside pin {args.pin_command}")
    store = PinStore(folder, read_identity().secret_id)
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
