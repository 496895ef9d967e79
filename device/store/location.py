"""Where the box keeps its state (the session store, the music index, the PIN): one rule.

An explicit directory (``--state-dir``) is the only candidate when given; else systemd's
``$STATE_DIRECTORY`` (the unit's ``StateDirectory=``), then the config's ``store.state_dir``.
A box run by hand that can write none of them falls back to :func:`user_state_dir`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path


def state_dirs(explicit: str | None, configured: Callable[[], str]) -> Iterator[Path]:
    """The state directories to try, best first (``configured`` is asked only if needed)."""
    if explicit:
        yield Path(explicit)
        return
    env = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if env:
        yield Path(env)
    conf = configured()
    if conf:
        yield Path(conf)


def state_dir(explicit: str | None, configured: Callable[[], str]) -> Path:
    """The state directory a reader of the box's files uses: the first of :func:`state_dirs`.

    :raises ValueError: there is none (no ``--state-dir``, no environment, no config value).
    """
    for path in state_dirs(explicit, configured):
        return path
    raise ValueError("no state directory: give --state-dir or set store.state_dir")


def user_state_dir() -> Path:
    """The fallback of a box run by hand: ``$XDG_STATE_HOME/bedside`` (``~/.local/state``)."""
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "bedside"
