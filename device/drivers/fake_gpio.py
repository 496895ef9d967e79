"""The fake GPIO backend: RPi.GPIO's API in memory, for tests and ``--sim`` runs.

Moved out of :mod:`device.drivers.gpio` (the real backend and the shared pin checks);
what it models and logs: :class:`FakeGpio`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from device.drivers.gpio import (
    PULL_OFF,
    PULL_UP,
    PULLS,
    check_duty,
    check_level,
    check_pin,
)  # fmt: skip
from device.exc import GpioError

#: Level and PWM changes kept in :attr:`FakeGpio.log` and ``pwm_log``. Bounded: the
#: simulated box's LED toggles a pin some 15 times a second, and an unbounded log grew by
#: 40 000 objects in a 45-min session, each one scanned by the box's full collection at the
#: session's end (12-22 ms of CPU in the gc task, against a budget of 8 ms) and by a night,
#: half a million.
LOG_ENTRIES = 4096


@dataclass(frozen=True, slots=True)
class PinChange:
    """One entry of :attr:`FakeGpio.log`: at time ``t`` (s), ``pin`` became ``level``."""

    t: float
    pin: int
    level: int
    #: ``"setup"`` for the level set when claimed, ``"output"`` or ``"input"`` otherwise.
    how: str


class FakeGpio:
    """A GPIO chip in memory, like gpiozero's MockFactory: product code, not a test mock.

    Inputs float at the level their pull gives (up -> 1, down/off -> 0) until a test or
    the simulator drives them with :meth:`press`/:meth:`release`/:meth:`drive`. Every
    level change of every pin is logged with the injected clock's time.

    :param clock: returns the present time in seconds (``time.monotonic`` by default).
    :param active_low: buttons pull the pin low when pressed (the usual wiring with the
        internal pull-up); :meth:`press` then drives 0.
    :param pwm: offer :meth:`set_pwm` like RPi.GPIO (``False``: a chip without it, so the
        LED falls back to on/off PWM from the loop).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        active_low: bool = True,
        pwm: bool = False,
    ) -> None:
        self._clock = clock
        self.active_low = active_low
        self.has_pwm = pwm
        #: ``(t, pin, duty)`` of the last :data:`LOG_ENTRIES` PWM duty changes, oldest first.
        self.pwm_log: deque[tuple[float, int, float]] = deque(maxlen=LOG_ENTRIES)
        self._duty: dict[int, float] = {}
        self._lock = threading.Lock()
        self._mode: dict[int, str] = {}
        self._level: dict[int, int] = {}
        #: The last :data:`LOG_ENTRIES` level changes, oldest first.
        self.log: deque[PinChange] = deque(maxlen=LOG_ENTRIES)
        #: Pins released by :meth:`cleanup`.
        self.released: set[int] = set()
        self._failing: set[int] = set()

    # --- the GpioBackend API -------------------------------------------------------------

    def setup_input(self, pin: int, pull: str = PULL_OFF) -> None:
        """Claim ``pin`` as an input; it rests at the level its pull gives."""
        check_pin(pin)
        if pull not in PULLS:
            raise GpioError(f"GPIO pull {pull!r} is not one of {', '.join(PULLS)}")
        self._claim(pin, "in")
        self._set(pin, 1 if pull == PULL_UP else 0, "setup")

    def setup_output(self, pin: int, initial: int) -> None:
        """Claim ``pin`` as an output at ``initial``."""
        check_pin(pin)
        self._claim(pin, "out")
        self._set(pin, check_level(initial), "setup")

    def input(self, pin: int) -> int:
        """Read ``pin``; reading an unclaimed pin is an error, as on the real chip."""
        self._need(pin, "read")
        return self._level[pin]

    def output(self, pin: int, level: int) -> None:
        """Drive output ``pin``; driving an input is an error."""
        self._need(pin, "write")
        if self._mode[pin] != "out":
            raise GpioError(f"GPIO pin {pin} is an input; cannot drive it")
        self._set(pin, check_level(level), "output")

    def cleanup(self, pins: Iterable[int] | None = None) -> None:
        """Release ``pins`` (all claimed pins when ``None``); idempotent."""
        with self._lock:
            chosen = set(self._mode) if pins is None else set(pins) & set(self._mode)
            for pin in chosen:
                del self._mode[pin]
                self.released.add(pin)

    close = cleanup

    def set_pwm(self, pin: int, duty: float, frequency_hz: float = 400.0) -> None:
        """Hold output ``pin`` at ``duty`` (0..1); logged in :attr:`pwm_log`."""
        if not self.has_pwm:
            raise GpioError("this GPIO backend has no PWM")
        self._need(pin, "drive")
        if self._mode[pin] != "out":
            raise GpioError(f"GPIO pin {pin} is an input; cannot drive it")
        duty = check_duty(duty)
        if self._duty.get(pin) != duty:
            self._duty[pin] = duty
            self.pwm_log.append((self._clock(), pin, duty))
        self._set(pin, 1 if duty > 0 else 0, "output")

    def duty(self, pin: int) -> float:
        """Present PWM duty of ``pin`` (0 when never set)."""
        return self._duty.get(pin, 0.0)

    # --- driving inputs and faults -------------------------------------------------------

    def drive(self, pin: int, level: int) -> None:
        """Set the electrical level of input ``pin`` from outside (a switch, a wire)."""
        self._need(pin, "drive")
        if self._mode[pin] != "in":
            raise GpioError(f"GPIO pin {pin} is an output; drive inputs only")
        self._set(pin, check_level(level), "input")

    def press(self, pin: int) -> None:
        """Close the button on ``pin``."""
        self.drive(pin, 0 if self.active_low else 1)

    def release(self, pin: int) -> None:
        """Open the button on ``pin``."""
        self.drive(pin, 1 if self.active_low else 0)

    def fail(self, pin: int, failing: bool = True) -> None:
        """Make every access to ``pin`` raise ``GpioError`` (a pin taken by another program)."""
        if failing:
            self._failing.add(pin)
        else:
            self._failing.discard(pin)

    # --- inspection ----------------------------------------------------------------------

    def level(self, pin: int) -> int:
        """Present level of ``pin`` (claimed or not yet released)."""
        return self._level[pin]

    def mode(self, pin: int) -> str | None:
        """``"in"``, ``"out"`` or ``None`` when the pin is not claimed."""
        return self._mode.get(pin)

    def history(self, pin: int) -> list[tuple[float, int]]:
        """``(t, level)`` of every change of ``pin``, oldest first."""
        return [(c.t, c.level) for c in self.log if c.pin == pin]

    def level_at(self, pin: int, t: float) -> int | None:
        """The level ``pin`` had at time ``t`` (``None`` before it was claimed)."""
        level = None
        for change in self.log:
            if change.pin == pin and change.t <= t:
                level = change.level
        return level

    def assert_level(self, pin: int, level: int) -> None:
        """Fail with a readable message unless ``pin`` is at ``level`` now."""
        actual = self._level.get(pin)
        if actual != level:
            raise AssertionError(f"GPIO pin {pin} is {actual}, expected {level}")

    def assert_history(self, pin: int, levels: list[int]) -> None:
        """Fail unless the sequence of levels ``pin`` took is exactly ``levels``."""
        actual = [lv for _, lv in self.history(pin)]
        if actual != levels:
            raise AssertionError(f"GPIO pin {pin} went through {actual}, expected {levels}")

    # --- internals -----------------------------------------------------------------------

    def _claim(self, pin: int, mode: str) -> None:
        if pin in self._failing:
            raise GpioError(f"GPIO pin {pin} is busy (claimed by another program)")
        self._mode[pin] = mode
        self.released.discard(pin)

    def _need(self, pin: int, what: str) -> None:
        if pin in self._failing:
            raise GpioError(f"GPIO {what} of pin {pin} failed: pin busy")
        if pin not in self._mode:
            raise GpioError(f"GPIO pin {pin} is not set up; cannot {what} it")

    def _set(self, pin: int, level: int, how: str) -> None:
        with self._lock:
            changed = self._level.get(pin) != level or how == "setup"
            self._level[pin] = level
            if changed:
                self.log.append(PinChange(self._clock(), pin, level, how))

    def __enter__(self) -> FakeGpio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        pins = ", ".join(f"{p}:{self._mode[p]}={self._level[p]}" for p in sorted(self._mode))
        return f"<FakeGpio {pins or 'no pins'}>"
