"""Console commands for the listener's music: MUSIC?, MUSIC LIST, MUSIC PLAY, MUSIC SCAN.

Handlers take the :class:`~device.console.commands.Console`, the arguments after the
command's words and the loop time, and return a :class:`~device.console.protocol.Reply`.
A box without music (no state directory) answers ``ERR 4``, as ``MUSIC PLAY`` does while no
track is indexed; a track number that is not in the list (or not a number) answers ``ERR 2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from device.console.arguments import expect_args
from device.console.protocol import Reply

if TYPE_CHECKING:
    from device.console.commands import Console


def music(c: Console, args: list[str], now: float) -> Reply:
    """``MUSIC?``: the composed music playing (``composed=True``, style, key, tempo, theme,
    section), or else the playing track, its number, tempo and position."""
    expect_args(args, 0, 0, "MUSIC?")
    return Reply.data(c.box.music_describe())


def music_list(c: Console, args: list[str], now: float) -> Reply:
    """``MUSIC LIST``: one line per playable track, numbered from 1."""
    expect_args(args, 0, 0, "MUSIC LIST")
    return Reply.data(*c.box.music_listing())


def music_play(c: Console, args: list[str], now: float) -> Reply:
    """``MUSIC PLAY n``: crossfade to track ``n`` of ``MUSIC LIST``."""
    (text,) = expect_args(args, 1, 1, "MUSIC PLAY <n>")
    if not text.isdigit():
        raise ValueError(f"MUSIC PLAY takes a track number from MUSIC LIST, not {text!r}")
    return Reply.data(c.box.music_play(int(text)))


def music_scan(c: Console, args: list[str], now: float) -> Reply:
    """``MUSIC SCAN``: index the music folder again (in the background; ``MUSIC LIST`` after)."""
    expect_args(args, 0, 0, "MUSIC SCAN")
    return Reply.data(c.box.music_scan())
