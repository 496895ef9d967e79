"""Buttons, status LED and amplifier enable: the box's own hardware, driven from the loop.

Everything here is polled by the loop with its time ``now`` (seconds); nothing starts a
thread or reads a clock. The loop calls :meth:`Controls.poll` every 10-25 ms and maps the
returned action names to the Box's methods:

``"start_stop"`` (short press of start/stop), ``"stop_fade"`` (long press of start/stop),
``"volume_up"``, ``"volume_down"`` (press, repeating while held), ``"like"``, ``"skip"``.

A GPIO failure never stops the sound: it is counted, remembered in ``last_error`` and the
failing part goes quiet.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from device.controls.amp import AmpEnable
from device.controls.button import Button
from device.controls.led import FAULT_CODES, FaultCode, StatusLed
from device.drivers.gpio import PULL_DOWN, PULL_UP, GpioBackend
from device.exc import GpioError

__all__ = ["ACTIONS", "FAULT_CODES", "AmpEnable", "Button", "Controls", "FaultCode", "StatusLed"]

#: Action names :meth:`Controls.poll` can return.
ACTIONS = ("start_stop", "stop_fade", "volume_up", "volume_down", "like", "skip")

#: Which action each button role sends on a short press, and on a long press.
_SHORT = {
    "start_stop": "start_stop",
    "volume_up": "volume_up",
    "volume_down": "volume_down",
    "like": "like",
    "skip": "skip",
}
_LONG = {"start_stop": "stop_fade"}

_UNSET: object = object()


def _action(name: str, event: str) -> str | None:
    """The action of button ``name``'s ``event``: a button with a long press acts on its
    release (short) or its hold (long); the others on each press and repeat."""
    if name in _LONG:
        if event == "short":
            return _SHORT[name]
        return _LONG[name] if event == "long" else None
    return _SHORT[name] if event in ("press", "repeat") else None


class Controls:
    """All buttons, the status LED and the amplifier enable of one box.

    :param gpio: the GPIO backend (``RPiGpio`` on a Pi, ``FakeGpio`` in simulation).
    :param pins: role -> BCM pin for any of ``start_stop``, ``volume_up``,
        ``volume_down``, ``like``, ``skip``; a pin of -1 (or a missing role) means none.
    :param led_pin: BCM pin of the status LED, -1 for none.
    :param amp_pin: BCM pin of the amplifier enable, -1 for none (the kernel owns it).
    :param poll_s: how often the loop calls :meth:`poll`, seconds (5-100 ms).
    :param debounce_s: a button must read the same for this long, seconds (at least two
        reads are always required).
    :param long_press_s: hold time of a long press, seconds.
    :param repeat_s: volume buttons repeat this often while held, seconds.
    :param active_low: buttons pull the pin low when pressed (internal pull-up).
    :param amp_settle_s: quiet output before switching the amp off, seconds.
    """

    def __init__(
        self,
        gpio: GpioBackend,
        *,
        pins: dict[str, int],
        led_pin: int = -1,
        amp_pin: int = -1,
        poll_s: float = 0.02,
        debounce_s: float = 0.03,
        long_press_s: float = 1.0,
        repeat_s: float = 0.4,
        active_low: bool = True,
        amp_settle_s: float = 0.2,
    ) -> None:
        if not 0.005 <= poll_s <= 0.1:
            raise ValueError(f"controls poll_s {poll_s} s is outside 0.005..0.1")
        unknown = set(pins) - set(_SHORT)
        if unknown:
            raise ValueError(
                f"unknown button role(s) {', '.join(sorted(unknown))}; known: {', '.join(_SHORT)}"
            )
        used = [p for p in (*pins.values(), led_pin, amp_pin) if p >= 0]
        if len(used) != len(set(used)):
            raise GpioError(f"GPIO pins used twice in {sorted(used)}")
        self._gpio = gpio
        self.poll_s = poll_s
        #: GPIO failures seen while polling (the sound never stops for them).
        self.errors = 0
        #: Text of the last GPIO failure, or ``None``.
        self.last_error: str | None = None
        stable = max(2, math.ceil(round(debounce_s / poll_s, 6)))
        self.buttons: list[Button] = []
        for role, pin in pins.items():
            if pin < 0:
                continue
            gpio.setup_input(pin, PULL_UP if active_low else PULL_DOWN)
            self.buttons.append(
                Button(
                    role,
                    pin,
                    stable_reads=stable,
                    long_press_s=long_press_s if role in _LONG else None,
                    repeat_s=repeat_s if role.startswith("volume") else None,
                    active_low=active_low,
                )
            )
        self.led = StatusLed(gpio, led_pin) if led_pin >= 0 else None
        self.amp_enable = AmpEnable(gpio, amp_pin, settle_s=amp_settle_s) if amp_pin >= 0 else None
        self._level_db = -math.inf
        self._closed = False

    def poll(
        self,
        now: float,
        *,
        pacer_bpm: float | object | None = _UNSET,
        audio_level_db: float | None = None,
    ) -> list[str]:
        """Read every button, drive LED and amp for ``now``; return the actions, in order.

        :param now: loop time, seconds.
        :param pacer_bpm: the breathing pacer the LED follows (``None``: LED dark); left
            as it was when not given.
        :param audio_level_db: the engine's present output level in dBFS (``-inf`` when
            silent), for the amplifier sequence; the last value is kept when not given.
        """
        if self._closed:
            return []
        actions = self._read_buttons(now)
        if audio_level_db is not None:
            self._level_db = audio_level_db
        try:
            self._drive_led(now, pacer_bpm)
        except GpioError as exc:
            self._record(exc)
        try:
            if self.amp_enable is not None:
                self.amp_enable.update(now, self._level_db)
        except GpioError as exc:
            self._record(exc)
        return actions

    def _read_buttons(self, now: float) -> list[str]:
        """Read every button at ``now``; the actions their presses make, in order."""
        actions: list[str] = []
        for button in self.buttons:
            try:
                raw = self._gpio.input(button.pin)
            except GpioError as exc:
                self._record(exc)
                continue
            for event in button.update(raw, now):
                action = _action(button.name, event)
                if action is not None:
                    actions.append(action)
        return actions

    def _drive_led(self, now: float, pacer_bpm: float | object | None) -> None:
        """Breathe the LED at ``pacer_bpm`` (when given) and move it to ``now``."""
        if self.led is None:
            return
        if pacer_bpm is not _UNSET:
            try:
                self.led.breathe(pacer_bpm, now)  # type: ignore[arg-type]
            except ValueError as exc:
                # A nonsense pacer must not stop the loop: the LED goes dark.
                self.led.breathe(None, now)
                self.last_error = str(exc)
        self.led.update(now)

    def task(
        self,
        on_action: Callable[[str], None],
        level_db: Callable[[], float] | None = None,
    ) -> Callable[[float], float]:
        """A loop task ``cb(deadline) -> next deadline`` calling ``on_action`` per action."""

        def run(deadline: float) -> float:
            level = None if level_db is None else level_db()
            for action in self.poll(deadline, audio_level_db=level):
                on_action(action)
            return deadline + self.poll_s

        return run

    def breathe(self, pacer_bpm: float | None, now: float) -> None:
        """Let the status LED follow the pacer (``None``: dark)."""
        if self.led is not None:
            self.led.breathe(pacer_bpm, now)

    def show_fault(self, kind: str | None, now: float) -> None:
        """Blink the code of fault ``kind`` (see :data:`FAULT_CODES`), or stop with ``None``."""
        if kind is not None and kind not in FAULT_CODES:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_CODES)}")
        if self.led is not None:
            self.led.fault(None if kind is None else FAULT_CODES[kind], now)

    def amp(self, on: bool) -> None:
        """Ask for the amplifier on (before the fade-in) or off (after the fade-out).

        On: at once if the output is quiet. Off: once it has been quiet for
        ``amp_settle_s`` (at a later :meth:`poll`).
        """
        if self.amp_enable is not None:
            try:
                self.amp_enable.request(on)
            except GpioError as exc:
                self._record(exc)

    @property
    def ready_for_fade_in(self) -> bool:
        """True when the fade-in may start (the amp is on, or there is no amp pin)."""
        return self.amp_enable is None or self.amp_enable.ready_for_fade_in

    def _record(self, exc: GpioError) -> None:
        self.errors += 1
        self.last_error = str(exc)

    def status(self) -> dict[str, object]:
        """Buttons held, LED mode, amp state and GPIO errors, for ``STATUS?``/selftest."""
        return {
            "buttons_down": [b.name for b in self.buttons if b.pressed],
            "led_fault": None if self.led is None else self.led.fault_code,
            "amp": None if self.amp_enable is None else self.amp_enable.enabled,
            "amp_forced_on": 0 if self.amp_enable is None else self.amp_enable.forced,
            "gpio_errors": self.errors,
            "gpio_last_error": self.last_error,
        }

    def close(self) -> None:
        """LED and amp off, release our pins. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.amp_enable is not None:
                self.amp_enable.force_off()
            if self.led is not None:
                self.led.off()
        except GpioError as exc:
            self._record(exc)
        pins = [b.pin for b in self.buttons]
        pins += [p.pin for p in (self.led, self.amp_enable) if p is not None]
        self._gpio.cleanup(pins)

    def __enter__(self) -> Controls:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ",".join(b.name for b in self.buttons) or "no buttons"
        return f"<Controls {names} led={self.led!r} amp={self.amp_enable!r} errors={self.errors}>"
