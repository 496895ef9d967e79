"""Console commands for the running configuration: CFG?, CFG SET, CFG SAVE, CFG DEFAULTS.

``CFG SET`` is validated off the loop (a program key loads the program file) and applied
on it; ``CFG SAVE`` writes the file off the loop. Handlers take the
:class:`~device.console.commands.Console`, the arguments and the loop time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from device.config import SCHEMA, Config
from device.console.arguments import expect_args, off_loop
from device.console.protocol import Reply, format_pairs

if TYPE_CHECKING:
    from device.console.commands import Console


def cfg(c: Console, args: list[str], now: float) -> Reply:
    """``CFG? [KEY]``."""
    expect_args(args, 0, 1, "CFG? [KEY]")
    config = c.box.config
    if args:
        key = args[0].lower()
        return Reply.data({key: config.get(key)})
    return Reply([format_pairs({k: v}) for k, v in config.items()])


def cfg_set(c: Console, args: list[str], now: float) -> Reply:
    """``CFG SET KEY VALUE`` (a service key needs the login); answers the value in effect."""
    key, text = expect_args(args, 2, 2, 'CFG SET KEY VALUE (quote a value with spaces: "a b")')
    key = key.lower()
    section, _, name = key.partition(".")
    spec = SCHEMA.get(section, {}).get(name)
    if spec is not None and spec.service:
        c.require_service(f"CFG SET {key} (a service key)")
    if 1 in c.quoted:
        # A quoted value is text even when it looks like a number: hand it over as a
        # TOML string so the config validates it as one.
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def answer(config: Config) -> Reply:
        return Reply.data({key: config.get(key)})

    return off_loop(c.box.set_config(key, text), answer)


def cfg_save(c: Console, args: list[str], now: float) -> Reply:
    """``CFG SAVE``: the file is written off the loop."""
    expect_args(args, 0, 0, "CFG SAVE")

    def answer(path: Path) -> Reply:
        return Reply.data({"file": str(path)})

    return off_loop(c.box.save_config(), answer)


def cfg_defaults(c: Console, args: list[str], now: float) -> Reply:
    """``CFG DEFAULTS`` (not saved)."""
    expect_args(args, 0, 0, "CFG DEFAULTS")
    c.box.config_defaults()
    return Reply.data({"config": "defaults", "saved": False})
