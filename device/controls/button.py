"""A push button on a GPIO pin, debounced in the loop by consecutive equal reads."""

from __future__ import annotations

import math


class Button:
    """One push button, debounced by N consecutive equal reads.

    :param name: the button's role (``"start_stop"``, ``"volume_up"``, ...).
    :param pin: BCM pin.
    :param stable_reads: reads in a row that must agree before the state changes
        (debounce time / poll period, at least 2).
    :param long_press_s: hold time that makes a long press, seconds (``None``: no long press).
    :param repeat_s: while held, repeat the press action this often, seconds (``None``: no
        repeat; used for volume).
    :param active_low: the pin reads 0 while pressed.
    """

    def __init__(
        self,
        name: str,
        pin: int,
        *,
        stable_reads: int,
        long_press_s: float | None = None,
        repeat_s: float | None = None,
        active_low: bool = True,
    ) -> None:
        if stable_reads < 1:
            raise ValueError(f"{name}: stable_reads must be at least 1, not {stable_reads}")
        self.name = name
        self.pin = pin
        self.stable_reads = stable_reads
        self.long_press_s = long_press_s
        self.repeat_s = repeat_s
        self.active_low = active_low
        #: Debounced state: True while the button is held down.
        self.pressed = False
        self._candidate = False
        self._count = 0
        self._down_at = 0.0
        self._long_sent = False
        self._next_repeat = math.inf

    def update(self, raw: int, now: float) -> list[str]:
        """Feed one raw read taken at ``now``; return the events it completes.

        Events: ``"press"`` (debounced press), ``"short"`` (released before the long-press
        time), ``"long"`` (held for the long-press time; once per hold), ``"repeat"``
        (held, every ``repeat_s``).
        """
        down = (raw == 0) if self.active_low else (raw != 0)
        events: list[str] = []
        if down == self._candidate:
            self._count += 1
        else:
            self._candidate = down
            self._count = 1
        if self._count >= self.stable_reads and down != self.pressed:
            self._change(down, now, events)
        if self.pressed:
            self._held(now, events)
        return events

    def _change(self, down: bool, now: float, events: list[str]) -> None:
        """The debounced state changed: a press starts a hold; a release ends it with
        ``"short"`` unless ``"long"`` was sent."""
        self.pressed = down
        if down:
            self._down_at = now
            self._long_sent = False
            self._next_repeat = now + self.repeat_s if self.repeat_s else math.inf
            events.append("press")
        elif not self._long_sent:
            events.append("short")

    def _held(self, now: float, events: list[str]) -> None:
        """While held: ``"long"`` once at the long-press time, ``"repeat"`` every
        ``repeat_s``."""
        if (
            self.long_press_s is not None
            and not self._long_sent
            and now - self._down_at >= self.long_press_s
        ):
            self._long_sent = True
            events.append("long")
        if now >= self._next_repeat and self.repeat_s:
            events.append("repeat")
            self._next_repeat += self.repeat_s

    def __repr__(self) -> str:
        return f"<Button {self.name} pin={self.pin} {'down' if self.pressed else 'up'}>"
