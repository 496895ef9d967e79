"""``bedside profile [--state-dir DIR] [--profile NAME] [--json]``: what the box has learned.

Shows a listener profile's resonance rate (the breathing rate at which their heart swings
most with the breath), how sure the box is of it (0-1), how many sessions measured it, the
pacer rate that brings them there and what the next session will do (``assess``: step
through candidate rates; ``narrow``: pace at the estimate and check a band around it;
``pace``: pace at the estimate). The profile is the configuration's ``therapy.profile``
unless ``--profile`` names another.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from device.cli.sessions import add_state_dir, open_store
from device.exc import StorageError, UsageError


def known_profile(store: Any, name: str) -> None:
    """Refuse a profile the store has never seen (a typo would show a blank profile).

    :raises UsageError: no session and no preference of ``name``.
    """
    known = store.profiles()
    if name not in known:
        listed = ", ".join(known) if known else "none yet"
        raise UsageError(
            f"no profile {name!r} in {store.path} (profiles: {listed}); "
            "--profile takes one of them",
            command="bedside profile",
        )


def _profile_name(args: argparse.Namespace) -> str:
    if args.profile:
        return str(args.profile)
    from device.config import load_config

    return str(load_config(args.config).therapy.profile)


def cmd_profile(args: argparse.Namespace) -> int:
    """Print the profile's learned figures."""
    from device.therapy.resonance import ResonanceEstimate

    name = _profile_name(args)
    try:
        with open_store(args) as store:
            if args.profile:  # the config's own profile may have nothing learnt yet
                known_profile(store, name)
            summary = ResonanceEstimate.load(store, name).summary()
    except StorageError as exc:
        print(f"bedside: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, sort_keys=False))
        return 0
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        shown = "unknown" if value is None else value
        print(f"{key:<{width}}  {shown}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bedside profile``."""
    p = subparsers.add_parser(
        "profile", help="show what the box has learned about a listener", description=__doc__
    )
    p.add_argument("--profile", metavar="NAME", help="profile to show (default: the config's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_state_dir(p)
    p.set_defaults(func=cmd_profile)
